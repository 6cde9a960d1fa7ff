#include "config/config_tree.h"

#include <openssl/sha.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <set>

namespace gatehouse::config {

namespace {

using nlohmann::json;

constexpr size_t kMaxDepth = 64;  // the loader refuses deeper documents anyway

bool isSecretKey(std::string_view key, std::string_view parent) {
  static const std::set<std::string_view> kSecret = {"password", "secret", "secret_base64url",
                                                     "client_secret", "token"};
  return kSecret.contains(key) || (key == "key" && parent == "sticky");
}

std::string redacted(const json& value) {
  const std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  char hex[9];
  std::snprintf(hex, sizeof hex, "%02x%02x%02x%02x", digest[0], digest[1], digest[2], digest[3]);
  return std::string("<redacted sha256:") + hex + ">";
}

void redact(json& node, std::string_view parent_key, size_t depth) {
  if (depth > kMaxDepth) return;
  if (node.is_object()) {
    for (auto& [k, v] : node.items()) {
      if (isSecretKey(k, parent_key) && !v.is_object() && !v.is_array()) {
        v = redacted(v);
      } else {
        redact(v, k, depth + 1);
      }
    }
  } else if (node.is_array()) {
    for (auto& v : node)
      redact(v, parent_key, depth + 1);
  }
}

json toJson(const YAML::Node& n, size_t depth) {
  if (depth > kMaxDepth) return nullptr;
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      json j = json::object();
      for (const auto& kv : n)
        j[kv.first.Scalar()] = toJson(kv.second, depth + 1);
      return j;
    }
    case YAML::NodeType::Sequence: {
      json j = json::array();
      for (const auto& item : n)
        j.push_back(toJson(item, depth + 1));
      return j;
    }
    case YAML::NodeType::Scalar:
      return n.Scalar();
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return nullptr;
}

bool namedList(const json& a) {
  if (!a.is_array() || a.empty()) return false;
  std::set<std::string> names;
  for (const auto& item : a) {
    if (!item.is_object() || !item.contains("name") || !item["name"].is_string()) return false;
    if (!names.insert(item["name"].get<std::string>()).second) return false;  // duplicates
  }
  return true;
}

const json* byName(const json& list, const std::string& name) {
  for (const auto& item : list) {
    if (item["name"] == name) return &item;
  }
  return nullptr;
}

void diff(const json& a, const json& b, const std::string& path, std::vector<TreeChange>& out,
          size_t depth) {
  if (a == b) return;
  auto change = [&](TreeChange::Kind kind, const json& before, const json& after,
                    const std::string& at) {
    out.push_back({kind, at, before, after});
  };
  if (depth < kMaxDepth && a.is_object() && b.is_object()) {
    for (const auto& [k, v] : a.items()) {
      const std::string at = path.empty() ? k : path + "." + k;
      if (!b.contains(k)) {
        change(TreeChange::Kind::kRemoved, v, nullptr, at);
      } else {
        diff(v, b[k], at, out, depth + 1);
      }
    }
    for (const auto& [k, v] : b.items()) {
      if (!a.contains(k))
        change(TreeChange::Kind::kAdded, nullptr, v, path.empty() ? k : path + "." + k);
    }
    return;
  }
  if (depth < kMaxDepth && namedList(a) && namedList(b)) {
    for (const auto& item : a) {
      const std::string name = item["name"].get<std::string>();
      const std::string at = path + "[" + name + "]";
      if (const json* other = byName(b, name)) {
        diff(item, *other, at, out, depth + 1);
      } else {
        change(TreeChange::Kind::kRemoved, item, nullptr, at);
      }
    }
    for (const auto& item : b) {
      const std::string name = item["name"].get<std::string>();
      if (!byName(a, name))
        change(TreeChange::Kind::kAdded, nullptr, item, path + "[" + name + "]");
    }
    return;
  }
  if (depth < kMaxDepth && a.is_array() && b.is_array()) {
    const size_t common = std::min(a.size(), b.size());
    for (size_t i = 0; i < common; ++i)
      diff(a[i], b[i], path + "[" + std::to_string(i) + "]", out, depth + 1);
    for (size_t i = common; i < a.size(); ++i)
      change(TreeChange::Kind::kRemoved, a[i], nullptr, path + "[" + std::to_string(i) + "]");
    for (size_t i = common; i < b.size(); ++i)
      change(TreeChange::Kind::kAdded, nullptr, b[i], path + "[" + std::to_string(i) + "]");
    return;
  }
  change(TreeChange::Kind::kChanged, a, b, path.empty() ? "(document)" : path);
}

std::string shown(const json& v) {
  std::string text = v.is_string() ? "\"" + v.get<std::string>() + "\"" : v.dump();
  constexpr size_t kMax = 200;
  if (text.size() > kMax) text = text.substr(0, kMax) + "...";
  return text;
}

}  // namespace

Result<nlohmann::json> configTree(std::string_view yaml) {
  try {
    json tree = toJson(YAML::Load(std::string(yaml)), 0);
    redact(tree, "", 0);
    return tree;
  } catch (const YAML::Exception& e) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "YAML syntax error: " + e.msg);
  }
}

void redactTree(nlohmann::json& tree) {
  redact(tree, "", 0);
}

std::vector<TreeChange> diffTrees(const nlohmann::json& before, const nlohmann::json& after) {
  std::vector<TreeChange> out;
  diff(before, after, "", out, 0);
  return out;
}

std::string formatChanges(const std::vector<TreeChange>& changes) {
  std::string out;
  for (const auto& c : changes) {
    switch (c.kind) {
      case TreeChange::Kind::kAdded:
        out += "+ " + c.path + ": " + shown(c.after) + "\n";
        break;
      case TreeChange::Kind::kRemoved:
        out += "- " + c.path + ": " + shown(c.before) + "\n";
        break;
      case TreeChange::Kind::kChanged:
        out += "~ " + c.path + ": " + shown(c.before) + " -> " + shown(c.after) + "\n";
        break;
    }
  }
  return out;
}

}  // namespace gatehouse::config

#include "policies/policy_yaml.h"

#include "config/yaml_helpers.h"
#include "http/http1_parser.h"

namespace gatehouse::policies {
namespace {

std::string at(std::string_view what, size_t i) {
  return std::string(what) + "[" + std::to_string(i) + "]";
}

}  // namespace

Error prefixed(std::string_view what, const Error& e) {
  return configError(std::string(what) + ": " + e.message);
}

Status checkKeys(const YAML::Node& node, std::initializer_list<std::string_view> allowed) {
  if (!node.IsMap()) return configError("expected a map");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>("");
    bool ok = false;
    for (auto a : allowed)
      ok = ok || key == a;
    if (!ok) {
      std::string list;
      for (auto a : allowed) {
        if (!list.empty()) list += ", ";
        list += a;
      }
      return configError("unknown option '" + key + "'; expected one of: " + list);
    }
  }
  return {};
}

Result<YAML::Node> optionalMap(const YAML::Node& config) {
  if (config && !config.IsMap() && !config.IsNull()) return configError("expected a map");
  return config && config.IsMap() ? config : YAML::Node(YAML::NodeType::Map);
}

Result<std::string> readString(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar()) return configError(std::string(what) + ": expected a string");
  return node.Scalar();
}

Result<std::string> readName(const YAML::Node& node, std::string_view what) {
  auto s = readString(node, what);
  if (s.ok() && s->empty()) return configError(std::string(what) + ": must not be empty");
  return s;
}

Result<int> readInt(const YAML::Node& node, std::string_view what, int min, int max) {
  if (!node.IsScalar()) return configError(std::string(what) + ": expected an integer");
  const std::string& s = node.Scalar();
  long v = 0;
  if (s.empty() || s.size() > 10) return configError(std::string(what) + ": expected an integer");
  for (char c : s) {
    if (c < '0' || c > '9') return configError(std::string(what) + ": expected an integer");
    v = v * 10 + (c - '0');
  }
  if (v < min || v > max) {
    return configError(std::string(what) + ": must be between " + std::to_string(min) + " and " +
                       std::to_string(max));
  }
  return static_cast<int>(v);
}

Result<bool> readBool(const YAML::Node& node, std::string_view what) {
  if (node.IsScalar()) {
    if (auto b = config::parseBool(node.Scalar())) return *b;
  }
  return configError(std::string(what) + ": expected true or false");
}

Result<double> readDecimal(const YAML::Node& node, std::string_view what, double lo, double hi,
                           std::string_view range) {
  auto s = readString(node, what);
  if (!s.ok()) return s.error();
  auto d = config::parseDecimal(*s);
  if (!d || *d < lo || *d > hi) {
    return configError(std::string(what) + ": expected a decimal number " + std::string(range) +
                       ", got '" + *s + "'");
  }
  return *d;
}

Result<config::Millis> readDuration(const YAML::Node& node, std::string_view what,
                                    config::Millis min, config::Millis max, std::string_view like) {
  std::optional<config::Millis> d;
  if (node.IsScalar()) d = config::parseDuration(node.Scalar());
  if (!d || *d < min || *d > max) {
    return configError(std::string(what) + ": expected a duration from " +
                       config::formatDuration(min) + " to " + config::formatDuration(max) +
                       ", like " + std::string(like));
  }
  return *d;
}

Result<int64_t> readDurationMs(const YAML::Node& node, std::string_view what, int64_t min_ms,
                               int64_t max_ms) {
  auto d = readDuration(node, what, config::Millis(min_ms), config::Millis(max_ms));
  if (!d.ok()) return d.error();
  return static_cast<int64_t>(d->count());
}

Result<uint64_t> readSize(const YAML::Node& node, std::string_view what, uint64_t min, uint64_t max,
                          std::string_view like) {
  std::optional<uint64_t> v;
  if (node.IsScalar()) v = config::parseSize(node.Scalar());
  if (!v || *v < min || *v > max) {
    return configError(std::string(what) + ": expected a size from " + config::formatSize(min) +
                       " to " + config::formatSize(max) + ", like " + std::string(like));
  }
  return *v;
}

Status readOptional(const YAML::Node& config, const char* key, bool& out, std::string_view what) {
  const YAML::Node& n = config[key];
  if (!n) return {};
  auto b = readBool(n, what.empty() ? key : what);
  if (!b.ok()) return b.error();
  out = *b;
  return {};
}

Status readOptional(const YAML::Node& config, const char* key, std::string& out,
                    std::string_view what) {
  const YAML::Node& n = config[key];
  if (!n) return {};
  auto s = readString(n, what.empty() ? key : what);
  if (!s.ok()) return s.error();
  out = std::move(*s);
  return {};
}

Result<size_t> readChoiceIndex(const YAML::Node& node, std::string_view what,
                               std::span<const std::string_view> names, std::string_view noun) {
  auto s = readString(node, what);
  if (!s.ok()) return s.error();
  std::string expected;
  for (size_t i = 0; i < names.size(); ++i) {
    if (*s == names[i]) return i;
    expected += i == 0 ? "" : i + 1 == names.size() ? " or " : ", ";
    expected += names[i];
  }
  return configError(std::string(what) + ": unknown " + std::string(noun) + " '" + *s +
                     "'; expected " + expected);
}

Result<std::vector<std::string>> readStringList(const YAML::Node& node, std::string_view what) {
  std::vector<std::string> out;
  if (node.IsScalar()) {
    out.push_back(node.Scalar());
    return out;
  }
  if (!node.IsSequence()) return configError(std::string(what) + ": expected a string or a list");
  for (const auto& e : node) {
    if (!e.IsScalar()) return configError(std::string(what) + ": expected a list of strings");
    out.push_back(e.Scalar());
  }
  return out;
}

Result<std::vector<std::string>> readNonEmptyList(const YAML::Node& node, std::string_view what,
                                                  std::string_view of) {
  if (!node.IsSequence() || node.size() == 0) {
    return configError(std::string(what) + ": expected a non-empty list" +
                       (of.empty() ? "" : " of " + std::string(of)));
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < node.size(); ++i) {
    auto s = readString(node[i], at(what, i));
    if (!s.ok()) return s.error();
    out.push_back(std::move(*s));
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> readHeaderMap(const YAML::Node& node,
                                                                       std::string_view what,
                                                                       std::string_view expected) {
  if (!node.IsMap()) {
    return configError(std::string(what) + ": expected a map of " + std::string(expected));
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>("");
    std::string path = std::string(what) + "." + key;
    auto header = readString(kv.second, path);
    if (!header.ok()) return header.error();
    if (key.empty() || !isHeaderName(*header)) {
      return configError(path + ": invalid header name '" + *header + "'");
    }
    out.emplace_back(std::move(key), std::move(*header));
  }
  return out;
}

bool isHeaderName(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (!http1::isTokenChar(c)) return false;
  }
  return true;
}

bool isHeaderValue(std::string_view value) {
  for (unsigned char c : value) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

}  // namespace gatehouse::policies

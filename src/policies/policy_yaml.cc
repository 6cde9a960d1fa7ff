#include "policies/policy_yaml.h"

#include "http/http1_parser.h"

namespace gatehouse::policies {

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

Result<std::string> readString(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar()) return configError(std::string(what) + ": expected a string");
  return node.Scalar();
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

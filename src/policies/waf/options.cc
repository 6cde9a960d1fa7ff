// The `waf` policy's options (control thread).
#include <yaml-cpp/yaml.h>

#include <charconv>

#include "policies/policy_yaml.h"
#include "policies/waf/waf.h"

namespace gatehouse::policies::waf {
namespace {

constexpr uint64_t kMaxBody = 64ull << 20;

std::optional<int> ruleId(std::string_view s) {
  int v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

// 942100 or "920000-920999".
Status readExcludedIds(const YAML::Node& node, Exclusions& out) {
  auto items = readStringList(node, "exclude_rules");
  if (!items.ok()) return items.error();
  for (size_t i = 0; i < items->size(); ++i) {
    const std::string& s = (*items)[i];
    const size_t dash = s.find('-');
    std::optional<int> lo = ruleId(dash == std::string::npos ? s : s.substr(0, dash));
    std::optional<int> hi = dash == std::string::npos ? lo : ruleId(s.substr(dash + 1));
    if (!lo || !hi || *hi < *lo) {
      return configError("exclude_rules[" + std::to_string(i) + "]: '" + s +
                         "' is not a rule id (942100) or a range of ids (920000-920999)");
    }
    out.id_ranges.emplace_back(*lo, *hi);
  }
  return {};
}

Status readRulesOptions(const YAML::Node& c, RulesSpec& r) {
  if (c["paranoia_level"]) {
    auto v = readInt(c["paranoia_level"], "paranoia_level", 1, 4);
    if (!v.ok()) return v.error();
    r.paranoia_level = *v;
  }
  if (c["inbound_threshold"]) {
    auto v = readInt(c["inbound_threshold"], "inbound_threshold", 1, 10000);
    if (!v.ok()) return v.error();
    r.inbound_threshold = *v;
  }
  if (c["outbound_threshold"]) {
    auto v = readInt(c["outbound_threshold"], "outbound_threshold", 1, 10000);
    if (!v.ok()) return v.error();
    r.outbound_threshold = *v;
  }
  if (c["mode"]) {
    auto m = readChoice<bool>(c["mode"], "mode", {{"block", true}, {"detect", false}}, "mode");
    if (!m.ok()) return m.error();
    r.block = *m;
  }
  bool crs = true;
  if (auto st = readOptional(c, "crs", crs); !st.ok()) return st;
  if (auto st = readOptional(c, "crs_dir", r.crs_dir); !st.ok()) return st;
  if (!crs) r.crs_dir.clear();
  if (c["rule_files"]) {
    auto files = readStringList(c["rule_files"], "rule_files");
    if (!files.ok()) return files.error();
    r.rule_files = std::move(*files);
  }
  if (r.crs_dir.empty() && r.rule_files.empty()) {
    return configError("crs: false needs rule_files (there would be no rules to run)");
  }
  if (c["allowed_methods"]) {
    auto m = readNonEmptyList(c["allowed_methods"], "allowed_methods", "HTTP methods");
    if (!m.ok()) return m.error();
    r.allowed_methods.clear();
    for (const auto& name : *m) {
      if (name.empty() ||
          name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string::npos) {
        return configError("allowed_methods: '" + name + "' is not a method name (GET, PUT)");
      }
      r.allowed_methods += (r.allowed_methods.empty() ? "" : " ") + name;
    }
  }
  if (c["allowed_content_types"]) {
    auto types = readNonEmptyList(c["allowed_content_types"], "allowed_content_types",
                                  "media types (application/json)");
    if (!types.ok()) return types.error();
    r.allowed_content_types.clear();
    for (const auto& t : *types) {
      if (t.find('/') == std::string::npos || t.find_first_of(" |'\"\\") != std::string::npos) {
        return configError("allowed_content_types: '" + t +
                           "' is not a media type (application/json)");
      }
      r.allowed_content_types += (r.allowed_content_types.empty() ? "" : " ") + t;
    }
  }
  if (c["max_body_size"]) {
    auto v = readSize(c["max_body_size"], "max_body_size", 1, kMaxBody, "128KiB or 1MiB");
    if (!v.ok()) return v.error();
    r.max_body_size = *v;
  }
  if (auto st = readOptional(c, "inspect_response", r.inspect_response); !st.ok()) return st;
  if (c["max_response_body_size"]) {
    auto v = readSize(c["max_response_body_size"], "max_response_body_size", 1, kMaxBody,
                      "128KiB or 1MiB");
    if (!v.ok()) return v.error();
    r.max_response_body_size = *v;
  }
  return {};
}

}  // namespace

Result<Options> parseOptions(const YAML::Node& config) {
  auto map = optionalMap(config);
  if (!map.ok()) return map.error();
  const YAML::Node& c = *map;
  if (auto st = checkKeys(c, {"paranoia_level", "inbound_threshold", "outbound_threshold", "mode",
                              "crs", "crs_dir", "rule_files", "exclude_rules", "exclude_tags",
                              "allowed_methods", "allowed_content_types", "max_body_size",
                              "over_limit", "inspect_response", "max_response_body_size"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  if (auto st = readRulesOptions(c, o.rules); !st.ok()) return st.error();
  if (c["exclude_rules"]) {
    if (auto st = readExcludedIds(c["exclude_rules"], o.exclusions); !st.ok()) return st.error();
  }
  if (c["exclude_tags"]) {
    auto tags = readStringList(c["exclude_tags"], "exclude_tags");
    if (!tags.ok()) return tags.error();
    o.exclusions.tags = std::move(*tags);
  }
  if (c["over_limit"]) {
    auto v = readChoice<OverLimit>(c["over_limit"], "over_limit",
                                   {{"reject", OverLimit::kReject}, {"skip", OverLimit::kSkip}},
                                   "choice");
    if (!v.ok()) return v.error();
    o.over_limit = *v;
  }
  return o;
}

}  // namespace gatehouse::policies::waf

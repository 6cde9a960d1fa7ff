// The `lua` policy's options (control thread).
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

#include "policies/lua/lua.h"
#include "policies/policy_yaml.h"
#include "policies/rate_limit/common.h"

namespace gatehouse::policies::lua {
namespace {

namespace glua = gatehouse::lua;

constexpr std::pair<std::string_view, uint32_t> kAllowances[] = {
    {"io", glua::kAllowIo},   {"os", glua::kAllowOs},           {"debug", glua::kAllowDebug},
    {"ffi", glua::kAllowFfi}, {"package", glua::kAllowPackage}, {"bytecode", glua::kAllowBytecode},
};

Status readAllow(const YAML::Node& node, Options& o) {
  auto names = readStringList(node, "allow");
  if (!names.ok()) return names.error();
  for (const auto& name : *names) {
    bool known = false;
    for (const auto& [n, bit] : kAllowances) {
      if (name == n) o.allow |= bit, known = true;
    }
    if (!known) {
      return configError("allow: unknown library '" + name +
                         "'; expected io, os, debug, ffi, package or bytecode");
    }
  }
  return {};
}

Status readMetric(const YAML::Node& node, glua::MetricSpec& m) {
  if (!node.IsMap()) return configError("metrics: each entry is a map with name and type");
  if (auto st = checkKeys(node, {"name", "type", "help", "labels", "max_series"}); !st.ok()) {
    return st;
  }
  auto name = readName(node["name"], "metrics.name");
  if (!name.ok()) return name.error();
  if (!glua::isMetricName(*name)) {
    return configError("metrics: name '" + *name + "' is not [a-zA-Z_][a-zA-Z0-9_]*");
  }
  m.name = std::move(*name);
  if (node["type"]) {
    auto type = readName(node["type"], "metrics.type");
    if (!type.ok()) return type.error();
    if (*type != "counter" && *type != "gauge") {
      return configError("metrics: type '" + *type + "'; expected counter or gauge");
    }
    m.type = *type == "counter" ? glua::MetricSpec::Type::kCounter : glua::MetricSpec::Type::kGauge;
  }
  m.help = "Lua metric " + m.name + ".";
  if (node["help"]) {
    auto help = readName(node["help"], "metrics.help");
    if (!help.ok()) return help.error();
    m.help = std::move(*help);
  }
  if (node["labels"]) {
    auto labels = readStringList(node["labels"], "metrics.labels");
    if (!labels.ok()) return labels.error();
    if (labels->size() > 4) return configError("metrics: at most 4 labels");
    for (const auto& l : *labels) {
      if (!glua::isMetricName(l)) return configError("metrics: label '" + l + "' is not a name");
    }
    m.labels = std::move(*labels);
  }
  if (node["max_series"]) {
    auto n = readInt(node["max_series"], "metrics.max_series", 1, 10000);
    if (!n.ok()) return n.error();
    m.max_series = static_cast<size_t>(*n);
  }
  return {};
}

Status readMetrics(const YAML::Node& node, Options& o) {
  if (!node.IsSequence()) return configError("metrics: expected a list");
  for (const auto& entry : node) {
    glua::MetricSpec m;
    if (auto st = readMetric(entry, m); !st.ok()) return st;
    for (const auto& other : o.metrics) {
      if (other.name == m.name) return configError("metrics: '" + m.name + "' declared twice");
    }
    o.metrics.push_back(std::move(m));
  }
  return {};
}

Status readSource(const YAML::Node& c, Options& o) {
  if (c["file"] && c["source"]) return configError("set one of file and source, not both");
  if (c["file"]) {
    auto file = readName(c["file"], "file");
    if (!file.ok()) return file.error();
    std::ifstream in(*file, std::ios::binary);
    if (!in) return configError("file: cannot read '" + *file + "'");
    std::ostringstream text;
    text << in.rdbuf();
    o.source = text.str();
    o.chunk_name = *file;
    o.name = *file;
    return {};
  }
  if (c["source"]) {
    auto text = readName(c["source"], "source");
    if (!text.ok()) return text.error();
    o.source = std::move(*text);
    o.chunk_name = "inline";
    o.name = "inline";
    return {};
  }
  return configError("set file (a script's path) or source (the script itself)");
}

// `redis` (the rate_limit policy's map; prefix default "gatehouse:lua:") and `on_redis_error`.
Status readGlobalRedis(const YAML::Node& c, Options& o) {
  if (!c["redis"]) {
    if (c["on_redis_error"]) return configError("on_redis_error: needs redis");
    return {};
  }
  rate_limit::RedisSettings settings;
  settings.prefix = "gatehouse:lua:";
  if (auto st = rate_limit::parseRedis(c["redis"], "gh.global", settings); !st.ok()) return st;
  GlobalRedis g;
  g.endpoint = std::move(settings.endpoint);
  g.endpoint_id = g.endpoint.id();
  // The braces keep one script's keys apart from another's whose name continues with ':'.
  g.key_prefix = settings.prefix + "{" + o.name + "}:";
  if (c["on_redis_error"]) {
    auto mode = readChoice<OnRedisError>(
        c["on_redis_error"], "on_redis_error",
        {{"error", OnRedisError::kError}, {"fallback", OnRedisError::kFallback}});
    if (!mode.ok()) return mode.error();
    g.on_error = *mode;
  }
  o.global_redis = std::move(g);
  return {};
}

}  // namespace

Result<Options> parseOptions(const YAML::Node& config) {
  if (!config.IsMap()) return configError("expected a map with file or source");
  const YAML::Node& c = config;
  if (auto st = checkKeys(c, {"file", "source", "name", "max_instructions", "max_memory",
                              "error_status", "max_body_size", "allow", "max_sub_requests",
                              "max_sub_response_size", "metrics", "redis", "on_redis_error"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  if (auto st = readSource(c, o); !st.ok()) return st.error();
  if (c["name"]) {
    auto name = readName(c["name"], "name");
    if (!name.ok()) return name.error();
    o.name = std::move(*name);
    if (o.chunk_name == "inline") o.chunk_name = "inline:" + o.name;
  }
  if (c["max_instructions"]) {
    auto n = readInt(c["max_instructions"], "max_instructions", 0, 1'000'000'000);
    if (!n.ok()) return n.error();
    o.limits.max_instructions = static_cast<uint64_t>(*n);
  }
  if (c["max_memory"]) {
    auto size = readSize(c["max_memory"], "max_memory", 256 * 1024, 1ull << 32, "16MiB");
    if (!size.ok()) return size.error();
    o.limits.max_memory = *size;
  }
  if (c["error_status"]) {
    auto status = readInt(c["error_status"], "error_status", 400, 599);
    if (!status.ok()) return status.error();
    o.error_status = *status;
  }
  if (c["max_body_size"]) {
    auto size = readSize(c["max_body_size"], "max_body_size", 1, 1ull << 30, "1MiB");
    if (!size.ok()) return size.error();
    o.max_body_size = *size;
  }
  if (c["max_sub_requests"]) {
    auto n = readInt(c["max_sub_requests"], "max_sub_requests", 0, 1000);
    if (!n.ok()) return n.error();
    o.max_sub_requests = static_cast<int>(*n);
  }
  if (c["max_sub_response_size"]) {
    auto size =
        readSize(c["max_sub_response_size"], "max_sub_response_size", 1, 1ull << 30, "1MiB");
    if (!size.ok()) return size.error();
    o.max_sub_response = *size;
  }
  if (c["metrics"]) {
    if (auto st = readMetrics(c["metrics"], o); !st.ok()) return st.error();
  }
  if (c["allow"]) {
    if (auto st = readAllow(c["allow"], o); !st.ok()) return st.error();
  }
  if (auto st = readGlobalRedis(c, o); !st.ok()) return st.error();  // after `name`
  return o;
}

}  // namespace gatehouse::policies::lua

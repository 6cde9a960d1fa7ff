// The `cache` policy's options. Control thread.
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "policies/cache/cache.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::cache {
namespace {

using gatehouse::cache::KeySpec;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

Status readKey(const YAML::Node& node, KeySpec& key) {
  if (auto st = checkKeys(node, {"host", "query", "headers", "consumer"}); !st.ok()) {
    return prefixed("key", st.error());
  }
  if (auto st = readOptional(node, "host", key.host, "key.host"); !st.ok()) return st;
  if (auto st = readOptional(node, "consumer", key.consumer, "key.consumer"); !st.ok()) return st;
  if (const YAML::Node q = node["query"]) {
    if (q.IsScalar() && (q.Scalar() == "all" || q.Scalar() == "none")) {
      key.query = q.Scalar() == "all" ? KeySpec::Query::kAll : KeySpec::Query::kNone;
    } else {
      auto names = readNonEmptyList(q, "key.query", "query parameter names, or all / none");
      if (!names.ok()) return names.error();
      key.query = KeySpec::Query::kListed;
      key.query_params = std::move(*names);
    }
  }
  if (const YAML::Node h = node["headers"]) {
    auto names = readNonEmptyList(h, "key.headers", "header names");
    if (!names.ok()) return names.error();
    for (auto& n : *names) {
      if (!isHeaderName(n)) return configError("key.headers: '" + n + "' is not a header name");
      key.headers.push_back(lower(std::move(n)));
    }
  }
  return {};
}

Status readSizes(const YAML::Node& c, Options& o) {
  if (c["size"]) {
    auto size = readSize(c["size"], "size", 1ull << 20, 1ull << 40, "64MiB or 1GiB");
    if (!size.ok()) return size.error();
    o.size = *size;
  }
  if (c["max_object_size"]) {
    auto size = readSize(c["max_object_size"], "max_object_size", 1, 1ull << 32, "1MiB");
    if (!size.ok()) return size.error();
    o.max_object_size = *size;
  }
  // An object is stored in one of the store's shards: it must fit in one.
  const uint64_t shard = o.size / gatehouse::cache::Store::kShards;
  if (o.max_object_size > shard) {
    return configError("max_object_size: larger than size / " +
                       std::to_string(gatehouse::cache::Store::kShards) +
                       " (the store's shards each hold that much)");
  }
  return {};
}

}  // namespace

Result<Options> parseOptions(const YAML::Node& config) {
  auto map = optionalMap(config);
  if (!map.ok()) return map.error();
  const YAML::Node& c = *map;
  if (auto st = checkKeys(
          c, {"zone", "size", "max_object_size", "key", "default_ttl", "heuristic_freshness",
              "max_heuristic_ttl", "status_headers", "request_cache_control", "coalesce",
              "coalesce_timeout", "stale_if_error", "stale_while_revalidate"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  if (c["zone"]) {
    auto zone = readName(c["zone"], "zone");
    if (!zone.ok()) return zone.error();
    o.zone = std::move(*zone);
  }
  if (auto st = readSizes(c, o); !st.ok()) return st.error();
  if (c["key"]) {
    if (auto st = readKey(c["key"], o.key); !st.ok()) return st.error();
  }
  constexpr int64_t kYearMs = 366ll * 86400 * 1000;
  if (c["default_ttl"]) {
    auto ttl = readDurationMs(c["default_ttl"], "default_ttl", 0, kYearMs);
    if (!ttl.ok()) return ttl.error();
    o.rules.fallback_ttl_s = *ttl / 1000;
  }
  if (auto st = readOptional(c, "heuristic_freshness", o.rules.heuristic.enabled); !st.ok()) {
    return st.error();
  }
  if (c["max_heuristic_ttl"]) {
    auto ttl = readDurationMs(c["max_heuristic_ttl"], "max_heuristic_ttl", 1000, kYearMs);
    if (!ttl.ok()) return ttl.error();
    o.rules.heuristic.max_s = *ttl / 1000;
  }
  if (auto st = readOptional(c, "status_headers", o.status_headers); !st.ok()) return st.error();
  if (auto st = readOptional(c, "request_cache_control", o.request_cache_control); !st.ok()) {
    return st.error();
  }
  if (auto st = readOptional(c, "coalesce", o.coalesce); !st.ok()) return st.error();
  if (c["coalesce_timeout"]) {
    auto t = readDurationMs(c["coalesce_timeout"], "coalesce_timeout", 1, 600'000);
    if (!t.ok()) return t.error();
    o.coalesce_timeout_ms = *t;
  }
  if (c["stale_if_error"]) {
    auto t = readDurationMs(c["stale_if_error"], "stale_if_error", 0, kYearMs);
    if (!t.ok()) return t.error();
    o.stale_if_error_s = *t / 1000;
  }
  if (c["stale_while_revalidate"]) {
    auto t = readDurationMs(c["stale_while_revalidate"], "stale_while_revalidate", 0, kYearMs);
    if (!t.ok()) return t.error();
    o.stale_while_revalidate_s = *t / 1000;
  }
  return o;
}

}  // namespace gatehouse::policies::cache

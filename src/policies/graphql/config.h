#pragma once
// The config half of policy `graphql`: limits, cost weights, persisted queries, introspection
// and operation routing, parsed and validated once on the control thread, then immutable and
// shared by every worker.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/result.h"
#include "graphql/analysis.h"
#include "graphql/parser.h"

namespace YAML {
class Node;
}

namespace gatehouse::policies::graphql {

using gatehouse::graphql::StringHash;
template <class V>
using NameMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct PersistedQueries {
  bool enabled = false;
  // Accept any query too (the list then only serves hash-only requests); default: only these.
  bool allow_unlisted = false;
  std::unordered_set<std::string, StringHash, std::equal_to<>> hashes;  // lowercase hex SHA-256
  NameMap<std::string> texts;  // hash -> query text, when the list gives it (APQ lookups)
};

struct Introspection {
  bool enabled = true;
  std::unordered_set<std::string, StringHash, std::equal_to<>> allow_consumers;  // when disabled
  std::unordered_set<std::string, StringHash, std::equal_to<>> deny_consumers;   // when enabled
  bool allowedFor(std::string_view consumer) const {
    return enabled ? !deny_consumers.contains(consumer) : allow_consumers.contains(consumer);
  }
};

struct GraphqlConfig {
  uint64_t max_body_bytes = 1 << 20;  // a POST body is buffered up to this
  gatehouse::graphql::ParseLimits parse;
  uint64_t max_depth = 0;  // 0: no limit, for each of these four
  uint64_t max_aliases = 0;
  uint64_t max_fields = 0;
  uint64_t max_cost = 0;
  gatehouse::graphql::CostOptions cost;
  PersistedQueries persisted;
  Introspection introspection;
  bool allow_get = true;
  int error_status = 400;
  NameMap<std::string> route_operations;  // operation name -> cluster
  NameMap<std::string> route_types;       // query / mutation / subscription -> cluster
};

Result<GraphqlConfig> parseConfig(const YAML::Node& config);

// Lowercase hex SHA-256 of `text`.
std::string sha256Hex(std::string_view text);

}  // namespace gatehouse::policies::graphql

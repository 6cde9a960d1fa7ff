#pragma once
// YAML -> Config. Runs on the control thread (startup, reload, `gatehouse validate`), never on a
// worker. Nothing here throws: yaml-cpp exceptions stop inside the loader and come back as
// ConfigErrors with a line number. The option reference is docs/config.md.
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"

namespace gatehouse::config {

struct ConfigError {
  std::string file;
  int line = 0;      // 1-based; 0 when the error has no position (e.g. an unreadable file)
  int column = 0;    // 1-based; 0 with line
  std::string path;  // YAML path, e.g. virtual_hosts[0].routes[3].cluster; empty = whole file
  std::string message;

  // "gatehouse.yaml:14:9: routes[3].cluster: unknown cluster 'payments'"; the position and the
  // path are left out when unknown.
  std::string format() const;
};

struct LoadResult {
  std::optional<Config> config;     // set if and only if `errors` is empty
  std::vector<ConfigError> errors;  // sorted by position; capped at kMaxReportedErrors

  bool ok() const { return config.has_value(); }
};

// Reads and validates a config file. `path` is recorded as Config::source_file and in errors.
LoadResult loadConfigFile(const std::string& path);

// Validates YAML text; `file_name` is only used to label errors and PolicySpecs.
LoadResult loadConfigString(std::string_view yaml, const std::string& file_name);

// Guards applied before and after yaml-cpp sees a document. A gateway config never needs more,
// and these keep hostile input (deep nesting, alias bombs) away from yaml-cpp's recursion, the
// loader and the policy factories that walk PolicySpec::config.
inline constexpr size_t kMaxConfigBytes = size_t{16} << 20;
inline constexpr int kMaxNestingDepth = 64;
inline constexpr size_t kMaxConfigNodes = 1'000'000;  // counting every alias expansion
inline constexpr size_t kMaxReportedErrors = 1000;

// Load-balancing algorithms a cluster may name. A new algorithm adds its name here.
inline constexpr auto kLbAlgorithms = std::to_array<std::string_view>(
    {"round_robin", "least_conn", "least_time", "random", "ip_hash", "ring_hash", "maglev"});

// Fields access_log.fields may list, and the list used when it is absent.
// clang-format off
inline constexpr auto kAccessLogFields = std::to_array<std::string_view>({
    "time", "request_id", "client_ip", "method", "host", "path", "query", "protocol", "status",
    "route", "cluster", "upstream", "upstream_status", "bytes_in", "bytes_out", "duration_ms",
    "upstream_connect_ms", "upstream_response_ms", "user_agent", "referer", "error", "consumer",
    "attempts", "vars", "trace_id", "span_id"});
inline constexpr auto kDefaultAccessLogFields = std::to_array<std::string_view>({
    "time", "request_id", "client_ip", "method", "host", "path", "status", "route", "upstream",
    "bytes_in", "bytes_out", "duration_ms"});
// clang-format on

}  // namespace gatehouse::config

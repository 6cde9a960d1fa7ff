#pragma once
// The admin API's endpoints, all served from here (admin_server.h is the listener):
//   GET /metrics  Prometheus text format
//   GET /healthz  200 while the process runs
//   GET /readyz   200 when serving, 503 while draining
//   GET /config   the active config's source file, generation and redacted tree (JSON)
//   /api/v1/...   the versioned admin API (admin/api_v1.h), including POST /api/v1/explain
// plus the endpoints that policies declare with their registration (http::AdminEndpoint,
// e.g. /quotas, /usage). Control thread only.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "admin/access.h"
#include "admin/control_plane.h"
#include "http/admin_endpoint.h"
#include "metrics/stats.h"
#include "proxy/snapshot.h"

namespace gatehouse::admin {

// What the built-in endpoints report, read from the server when a request comes.
struct ServerState {
  std::shared_ptr<const proxy::Snapshot> snapshot;  // null before the first config
  const metrics::Stats* stats = nullptr;
  uint64_t generation = 0;
  size_t workers = 0;
  bool draining = false;
  // The active config's YAML text as loaded (null for an in-memory config): GET /config serves
  // it as a redacted tree for `gatehouse validate --diff-with`.
  std::shared_ptr<const std::string> config_text;
  // Who may call the admin API; null = no access control (loopback, read-only).
  std::shared_ptr<const AccessPolicy> access;
  // The `admin:` access options of the running config (audit log, admin TLS); may be null.
  std::shared_ptr<const config::AdminAccess> admin_options;
  ControlPlane* control = nullptr;  // null when the server offers no writes (tests)
};
using ServerStateFn = std::function<ServerState()>;

// The handler of the longest `prefix` of `path` that ends at a '/' boundary or at the end of
// `path`; nullptr when none.
http::AdminHandler findEndpoint(std::span<const http::AdminEndpoint> endpoints,
                                std::string_view path);
// The same over every registered policy's endpoint.
http::AdminHandler findPolicyEndpoint(std::string_view path);

// The built-in endpoints; 404 for any other path.
http::AdminReply serveBuiltin(std::string_view method, std::string_view path,
                              const ServerState& state);

}  // namespace gatehouse::admin

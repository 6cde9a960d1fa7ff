#include "config/breaker_loader.h"

#include <string_view>

namespace gatehouse::config {
namespace {

constexpr std::string_view kBreakerKeys[] = {"max_connections", "max_pending_requests",
                                             "max_requests", "max_retries"};
// Far above any real fleet; keeps the atomics' arithmetic away from overflow.
constexpr int64_t kMaxLimit = 1'000'000'000;

}  // namespace

void readCircuitBreakers(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                         Cluster& c) {
  MapReader m(diag, node, path, kBreakerKeys);
  if (!m.isMap()) return;
  CircuitBreakers b;
  // A cap of 0 connections or requests would refuse everything: at least 1. Pending and
  // retries may be 0 (never queue, never retry).
  m.readInt("max_connections", 1, kMaxLimit, b.max_connections);
  m.readInt("max_pending_requests", 0, kMaxLimit, b.max_pending_requests);
  m.readInt("max_requests", 1, kMaxLimit, b.max_requests);
  m.readInt("max_retries", 0, kMaxLimit, b.max_retries);
  c.circuit_breakers = b;
}

}  // namespace gatehouse::config

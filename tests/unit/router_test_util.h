#pragma once
// Shared builders for the router unit tests (router_test.cc, router_match_test.cc).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/request_target.h"
#include "proxy/router.h"

namespace gatehouse::proxy::router_test {

inline config::Route route(std::string name) {
  config::Route r;
  r.name = std::move(name);
  r.cluster = "backend";
  return r;
}

inline config::Route prefixRoute(std::string name, std::string prefix) {
  config::Route r = route(std::move(name));
  r.match.path_prefix = std::move(prefix);
  return r;
}

inline config::VirtualHost vhost(std::string name, std::vector<std::string> domains,
                                 std::vector<config::Route> routes) {
  config::VirtualHost vh;
  vh.name = std::move(name);
  vh.domains = std::move(domains);
  vh.routes = std::move(routes);
  return vh;
}

inline config::Config oneListener(std::vector<config::VirtualHost> vhosts) {
  config::Config cfg;
  cfg.listeners.emplace_back();
  cfg.virtual_hosts = std::move(vhosts);
  return cfg;
}

// One vhost "*" holding `routes`: the shape most matcher tests need.
inline config::Config anyHost(std::vector<config::Route> routes) {
  return oneListener({vhost("main", {"*"}, std::move(routes))});
}

inline std::shared_ptr<const Router> mustBuild(const config::Config& cfg) {
  auto r = Router::build(cfg);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : nullptr;
}

inline std::string buildError(const config::Config& cfg) {
  auto r = Router::build(cfg);
  if (r.ok()) return "<built>";
  EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.error().source, ErrorSource::kConfig);
  return r.error().message;
}

struct Req {
  std::string host = "example.com";
  std::string method = "GET";
  std::string path = "/";
  std::string query;
  const http::HeaderMap* headers = nullptr;

  RouteRequest view() const { return {host, method, path, query, headers}; }
};

inline Req get(std::string path, std::string query = "") {
  Req r;
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

// The matched route's name, or "-" for no match.
inline std::string which(const Router& router, const Req& req, size_t listener = 0) {
  auto m = router.match(listener, req.view());
  return m ? std::string(m->route_name) : "-";
}

inline std::string whichHost(const Router& router, std::string host, size_t listener = 0) {
  Req r;
  r.host = std::move(host);
  return which(router, r, listener);
}

}  // namespace gatehouse::proxy::router_test

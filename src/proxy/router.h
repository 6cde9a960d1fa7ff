#pragma once
// TEMPORARY stub until the router lands: prefix match only, first vhost.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/model.h"
#include "core/result.h"
#include "http/headers.h"

namespace gatehouse::proxy {

struct RouteRequest {
  std::string_view host;
  std::string_view method;
  std::string_view path;
  std::string_view query;
  const http::HeaderMap* headers = nullptr;
};

struct RouteResult {
  size_t route_id = 0;
  std::string_view route_name;
};

class Router {
 public:
  static Result<std::shared_ptr<const Router>> build(const config::Config& cfg) {
    auto r = std::make_shared<Router>();
    for (const auto& vh : cfg.virtual_hosts) {
      for (const auto& rt : vh.routes) {
        r->routes_.push_back({rt.match.path_prefix.value_or(rt.match.path_exact.value_or("/")), rt.name});
      }
    }
    return std::shared_ptr<const Router>(r);
  }
  std::optional<RouteResult> match(size_t /*listener*/, const RouteRequest& req) const {
    for (size_t i = 0; i < routes_.size(); ++i) {
      if (req.path.substr(0, routes_[i].first.size()) == routes_[i].first) {
        return RouteResult{i, routes_[i].second};
      }
    }
    return std::nullopt;
  }

 private:
  std::vector<std::pair<std::string, std::string>> routes_;
};

}  // namespace gatehouse::proxy

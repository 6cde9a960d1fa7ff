#include "proxy/cluster_choice.h"

#include <algorithm>

#include "lb/hash_key.h"

namespace gatehouse::proxy {

const proxy::CompiledRoute& chooseRoute(const proxy::CompiledRoute& route, const http::Request& req,
                                        uint64_t random, std::string_view picked) {
  if (!route.split) return route;
  const proxy::RouteSplit& s = *route.split;
  if (!picked.empty()) {
    for (const auto& [name, variant] : s.by_name) {
      if (name == picked) return s.variants[variant];
    }
  }
  for (const auto& c : s.canary) {
    std::optional<std::string_view> v;
    if (!c.header.empty()) {
      if (const http::HeaderField* f = req.headers.find(c.header)) v = f->value;
    } else {
      v = lb::findCookie(req.headers, c.cookie);
    }
    if (v && (!c.value || *v == *c.value)) return s.variants[c.variant];
  }
  if (s.total_weight == 0) return route;
  const uint64_t x = random % s.total_weight;
  auto it = std::upper_bound(s.weighted.begin(), s.weighted.end(), x,
                             [](uint64_t v, const auto& e) { return v < e.first; });
  if (it == s.weighted.end()) return route;
  return s.variants[it->second];
}

}  // namespace gatehouse::proxy

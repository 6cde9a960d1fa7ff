#include "runtime/admin_hooks.h"

#include <mutex>
#include <utility>
#include <vector>

#include "core/encoding.h"

namespace gatehouse::runtime {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<std::pair<std::string, AdminRouteHandler>> routes;
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

void registerAdminRoute(std::string_view prefix, AdminRouteHandler fn) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  for (auto& [p, f] : r.routes) {
    if (p == prefix) {
      f = fn;
      return;
    }
  }
  r.routes.emplace_back(std::string(prefix), fn);
}

AdminRouteHandler findAdminRoute(std::string_view path) {
  auto& r = registry();
  std::lock_guard lock(r.mu);
  AdminRouteHandler best = nullptr;
  size_t best_len = 0;
  for (const auto& [p, f] : r.routes) {
    if (path.substr(0, p.size()) != p) continue;
    if (path.size() > p.size() && p.back() != '/' && path[p.size()] != '/') continue;
    if (p.size() >= best_len) {
      best = f;
      best_len = p.size();
    }
  }
  return best;
}

bool decodePathSegment(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = encoding::hexDigit(in[i + 1]), lo = encoding::hexDigit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

}  // namespace gatehouse::runtime

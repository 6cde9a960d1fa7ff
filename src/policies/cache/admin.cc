// The `cache` policy's admin endpoint: the zones and what they hold (GET /cache), and purges
// by exact key, key prefix or tag (POST /cache/purge). Control thread; the stores are
// thread-safe, so a purge takes effect for every worker at once.
#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cache/store.h"
#include "core/encoding.h"
#include "policies/admin_json.h"
#include "policies/cache/cache.h"

namespace gatehouse::policies::cache {
namespace {

using policies::jsonError;
using policies::jsonReply;

// The query's parameters, percent-decoded; false on a malformed escape.
bool parseQuery(std::string_view q, std::vector<std::pair<std::string, std::string>>& out) {
  while (!q.empty()) {
    const size_t amp = q.find('&');
    const std::string_view item = q.substr(0, amp);
    const size_t eq = item.find('=');
    std::string name, value;
    if (!encoding::percentDecodeSegment(item.substr(0, eq), name)) return false;
    if (eq != std::string_view::npos &&
        !encoding::percentDecodeSegment(item.substr(eq + 1), value)) {
      return false;
    }
    if (!name.empty()) out.emplace_back(std::move(name), std::move(value));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return true;
}

http::AdminReply listZones() {
  nlohmann::json zones = nlohmann::json::array();
  for (const auto& [name, store] : gatehouse::cache::liveZones()) {
    nlohmann::json z;
    z["zone"] = name;
    z["max_bytes"] = store->maxBytes();
    z["bytes"] = store->bytes();
    z["keys"] = store->keys();
    z["evictions"] = store->evictions();
    zones.push_back(std::move(z));
  }
  nlohmann::json out;
  out["zones"] = std::move(zones);
  return jsonReply(200, out);
}

http::AdminReply purge(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  if (!parseQuery(query, params)) return jsonError(400, "malformed percent-encoding in the query");
  std::string zone;
  const std::pair<std::string, std::string>* what = nullptr;
  for (const auto& p : params) {
    if (p.first == "zone") {
      zone = p.second;
    } else if (p.first == "key" || p.first == "prefix" || p.first == "tag") {
      if (what) return jsonError(400, "give one of key, prefix or tag");
      what = &p;
    } else {
      return jsonError(400, "unknown parameter '" + p.first + "'; expected key, prefix, tag, zone");
    }
  }
  if (!what) return jsonError(400, "expected key=, prefix= or tag= (and optionally zone=)");
  if (what->second.empty() && what->first != "prefix") {
    return jsonError(400, what->first + " must not be empty");
  }
  uint64_t purged = 0;
  bool zone_found = zone.empty();
  for (const auto& [name, store] : gatehouse::cache::liveZones()) {
    if (!zone.empty() && name != zone) continue;
    zone_found = true;
    if (what->first == "key") {
      purged += store->remove(what->second) ? 1 : 0;
    } else if (what->first == "prefix") {
      purged += store->removePrefix(what->second);
    } else {
      purged += store->removeTag(what->second);
    }
  }
  if (!zone_found) return jsonError(404, "no cache zone named '" + zone + "'");
  nlohmann::json out;
  out["purged"] = purged;
  return jsonReply(200, out);
}

runtime::Task<http::AdminReply> handleAdmin(std::string method, std::string path,
                                            std::string query) {
  if (path == "/cache") {
    if (method != "GET" && method != "HEAD") co_return jsonError(405, "method not allowed");
    co_return listZones();
  }
  if (path == "/cache/purge") {
    if (method != "POST") co_return jsonError(405, "use POST /cache/purge");
    co_return purge(query);
  }
  co_return jsonError(404, "expected GET /cache or POST /cache/purge");
}

}  // namespace

http::AdminEndpoint adminEndpoint() {
  return {"/cache", &handleAdmin};
}

}  // namespace gatehouse::policies::cache

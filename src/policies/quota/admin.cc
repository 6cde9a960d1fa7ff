// Policy quota's admin API, served by the control thread:
//   GET    /quotas                          the quota policies
//   GET    /quotas/<policy>/<key>           usage and remaining quota of one key
//   DELETE /quotas/<policy>/<key>           reset it (also POST /quotas/<policy>/<key>/reset)
// <key> is the policy's key value (usually the consumer name), percent-encoded; a key of
// several parts gives one path segment per part. Mode local reads the shared atomic table.
// Mode redis opens a short-lived connection on the control loop: the loop never blocks, and
// the whole exchange has a deadline (503 when Redis does not answer in time).
#include <nlohmann/json.hpp>

#include <algorithm>

#include "core/clock.h"
#include "core/encoding.h"
#include "policies/admin_json.h"
#include "policies/quota/factory.h"
#include "policies/rate_limit/redis_script.h"
#include "redis/client.h"
#include "runtime/event_loop.h"

namespace gatehouse::policies::quota {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

using policies::jsonError;
using policies::jsonReply;

nlohmann::json describeLimit(const LimitSpec& l, const std::string& zone, int64_t now_ns) {
  nlohmann::json j;
  j["name"] = l.name;
  j["limit"] = l.rate.count;
  if (l.algorithm == rate_limit::Algorithm::kCalendar) {
    const cal::Period p = l.calendar->at(now_ns / kSecond);
    j["period"] = cal::toString(l.calendar->unit());
    j["time_zone"] = zone;
    j["period_start"] = p.start_s;
    j["period_end"] = p.end_s;
  } else {
    j["period"] = "rolling";
    j["window_seconds"] = l.rate.period_ns / kSecond;
  }
  return j;
}

// The key text from path segments after the policy name (parts joined as extractKey does).
bool keyFromSegments(std::string_view rest, std::string& key) {
  key.clear();
  std::string part;
  bool first = true;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (!encoding::percentDecodeSegment(seg, part) || part.empty()) return false;
    if (!first) key += '\x1f';
    key += part;
    first = false;
  }
  return !key.empty();
}

runtime::Task<http::AdminReply> usage(std::shared_ptr<const QuotaFactory> f, std::string key,
                                      bool reset) {
  const QuotaConfig& cfg = f->config();
  const int64_t now = clock::wallNs();
  nlohmann::json out;
  out["policy"] = cfg.name;
  out["key"] = key;
  out["mode"] = cfg.use_redis ? "redis" : "local";
  if (!cfg.use_redis) {
    const uint64_t hash = rate_limit::LimiterTable::hashKey(key);
    if (reset) {
      f->table().reset(hash);
      out["reset"] = true;
      co_return jsonReply(200, out);
    }
    std::vector<uint64_t> states;
    f->table().peek(hash, states);
    nlohmann::json limits = nlohmann::json::array();
    for (size_t i = 0; i < cfg.limits.size(); ++i) {
      const LimitSpec& l = cfg.limits[i];
      nlohmann::json j = describeLimit(l, cfg.time_zone, now);
      const uint64_t used = std::min(l.rate.count, rate_limit::usedIn(l, states[i], now));
      j["used"] = used;
      j["remaining"] = l.rate.count - used;
      j["reset_seconds"] =
          rate_limit::ceilSeconds(rate_limit::checkLimit(l, states[i], now).reset_ns);
      limits.push_back(std::move(j));
    }
    out["limits"] = std::move(limits);
    co_return jsonReply(200, out);
  }
  // A connection of its own on the control loop, closed when done: the admin API is rare, and
  // worker connections belong to their workers.
  redis::Endpoint ep = cfg.redis.endpoint;
  ep.timeout = std::clamp<runtime::Duration>(ep.timeout, std::chrono::milliseconds(500),
                                             std::chrono::seconds(2));
  ep.connect_timeout = std::min<runtime::Duration>(ep.connect_timeout, ep.timeout);
  redis::Connection conn(*runtime::EventLoop::current(), ep,
                         std::string(rate_limit::limitScript()));
  redis::CallResult r = co_await conn.eval(f->redisArgs(key, now, reset ? -1 : 0),
                                           static_cast<int>(cfg.limits.size()));
  if (!r.ok) co_return jsonError(503, "redis did not answer: " + r.error);
  if (reset) {
    out["reset"] = true;
    co_return jsonReply(200, out);
  }
  if (r.ints.size() != cfg.limits.size() * 2)
    co_return jsonError(502, "unexpected reply from redis");
  nlohmann::json limits = nlohmann::json::array();
  for (size_t i = 0; i < cfg.limits.size(); ++i) {
    const LimitSpec& l = cfg.limits[i];
    nlohmann::json j = describeLimit(l, cfg.time_zone, now);
    const auto limit = static_cast<int64_t>(l.rate.count);
    const int64_t remaining = std::clamp<int64_t>(r.ints[2 * i], 0, limit);
    j["used"] = limit - remaining;
    j["remaining"] = remaining;
    j["reset_seconds"] = (r.ints[2 * i + 1] + 999) / 1000;
    limits.push_back(std::move(j));
  }
  out["limits"] = std::move(limits);
  co_return jsonReply(200, out);
}

}  // namespace

runtime::Task<http::AdminReply> handleAdmin(std::string method, std::string path,
                                            std::string /*query*/) {
  std::string_view rest = path;
  rest.remove_prefix(std::string_view("/quotas").size());
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  if (rest.empty()) {
    if (method != "GET" && method != "HEAD") co_return jsonError(405, "method not allowed");
    nlohmann::json list = nlohmann::json::array();
    const int64_t now = clock::wallNs();
    for (const auto& name : policyNames()) {
      auto f = findPolicy(name);
      if (!f) continue;
      nlohmann::json p;
      p["name"] = name;
      p["mode"] = f->config().use_redis ? "redis" : "local";
      nlohmann::json limits = nlohmann::json::array();
      for (const auto& l : f->config().limits)
        limits.push_back(describeLimit(l, f->config().time_zone, now));
      p["limits"] = std::move(limits);
      list.push_back(std::move(p));
    }
    nlohmann::json out;
    out["policies"] = std::move(list);
    co_return jsonReply(200, out);
  }
  const size_t slash = rest.find('/');
  std::string name;
  if (slash == std::string_view::npos ||
      !encoding::percentDecodeSegment(rest.substr(0, slash), name)) {
    co_return jsonError(404, "expected /quotas/<policy>/<key>");
  }
  rest.remove_prefix(slash + 1);
  bool reset = false;
  if (method == "POST") {
    constexpr std::string_view kReset = "/reset";
    if (rest.size() <= kReset.size() || rest.substr(rest.size() - kReset.size()) != kReset) {
      co_return jsonError(404, "expected POST /quotas/<policy>/<key>/reset");
    }
    rest.remove_suffix(kReset.size());
    reset = true;
  } else if (method == "DELETE") {
    reset = true;
  } else if (method != "GET" && method != "HEAD") {
    co_return jsonError(405, "method not allowed");
  }
  std::string key;
  if (!keyFromSegments(rest, key)) co_return jsonError(400, "bad key in the path");
  auto f = findPolicy(name);
  if (!f) co_return jsonError(404, "no quota policy named '" + name + "'");
  if (std::count(key.begin(), key.end(), '\x1f') + 1 !=
      static_cast<std::ptrdiff_t>(f->config().key.size())) {
    co_return jsonError(400, "policy '" + name + "' has a key of " +
                                 std::to_string(f->config().key.size()) + " part(s)");
  }
  co_return co_await usage(std::move(f), std::move(key), reset);
}

}  // namespace gatehouse::policies::quota

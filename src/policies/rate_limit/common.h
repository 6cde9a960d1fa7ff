#pragma once
// What the counting policies (rate_limit and quota) share: the request key, what to do without
// one, the quota headers, the `redis` connection options and the per-request steps both take
// (a decision from the Redis script's reply, the 429). Options are parsed on the control thread;
// the request-path helpers run on a worker and touch only the request and the given counters.
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "http/filter.h"
#include "metrics/cells.h"
#include "policies/rate_limit/limiter.h"
#include "redis/client.h"

namespace YAML {
class Node;
}

namespace gatehouse::policies::rate_limit {

// kVar: a request variable a policy earlier on the route set (RequestContext::vars), such as
// graphql's graphql_operation.
enum class KeyPart { kClientIp, kRoute, kConsumer, kHeader, kClaim, kVar };
enum class MissingKey { kAllow, kDeny, kShared };
enum class HeaderStyle { kNone, kDraft, kLegacy };
// What a limit does while Redis cannot answer (down, timed out, erroring).
enum class OnRedisError { kFailOpen, kFailClosed, kFallback };

struct KeySpec {
  KeyPart part = KeyPart::kClientIp;
  std::string header;  // for kHeader; the claim name for kClaim, the variable's for kVar
};

// The options both policies read the same way.
struct KeyedLimitOptions {
  std::vector<KeySpec> key;
  MissingKey missing_key = MissingKey::kShared;
  HeaderStyle headers = HeaderStyle::kDraft;
  bool headers_on_success = false;
  size_t max_keys = 65536;
  std::vector<LimitSpec> limits;
  std::string policy_header;  // precomputed RateLimit-Policy value
};

struct RedisSettings {
  redis::Endpoint endpoint;
  std::string prefix = "gatehouse:rl:";
  double fallback_share = 1.0;         // rate_limit only
  std::vector<OnRedisError> on_error;  // rate_limit only: one per limit
};

// Reads `key` (absent: `default_key`), `missing_key`, `headers`, `headers_on_success` and
// `max_keys` into `out`.
Status parseKeyedOptions(const YAML::Node& config, KeyPart default_key, KeyedLimitOptions& out);
// Reads `limits`: a list of at most 8, each parsed by `parse` (given the node and its path),
// with distinct names. `noun` names one in errors ("limit", "quota"). Sets out.policy_header.
using LimitParser = std::function<Result<LimitSpec>(const YAML::Node&, const std::string&)>;
Status parseLimitList(const YAML::Node& limits, std::string_view noun, const LimitParser& parse,
                      KeyedLimitOptions& out);
Result<KeySpec> parseKeyPart(const YAML::Node& node, std::string_view what);
// A Redis call deadline ("250ms", "2s"): 1 ms to 60 s.
Result<runtime::Duration> readCallTimeout(const YAML::Node& node, const std::string& what);
Result<OnRedisError> parseOnError(const YAML::Node& node, const std::string& what);
// The `redis` map (address or sentinel, username, password, database, timeout,
// connect_timeout, prefix, tls); `required` completes "redis: required with ..." when absent.
Status parseRedis(const YAML::Node& node, std::string_view required, RedisSettings& r);
// `mode` (absent: "local"), one of `modes`.
Result<std::string> parseMode(const YAML::Node& config,
                              std::initializer_list<std::string_view> modes);

// The key text of a request: parts joined by 0x1f. Empty when any part has no value.
// `scratch` is reused across calls to avoid an allocation per request.
bool extractKey(const std::vector<KeySpec>& spec, const http::RequestContext& ctx,
                std::string& scratch);
// The request's key in `key`. Without one (counted in `missing`), `missing_key` decides:
// allow returns kContinue, deny a 429 saying "request has no value for the `what` key"
// (counted in `rejected`); shared puts the one shared key in `key` and returns nullopt, as a
// found key does.
std::optional<http::Verdict> keyOf(const KeyedLimitOptions& o, http::RequestContext& ctx,
                                   std::string& key, metrics::Counter& missing,
                                   metrics::Counter& rejected, std::string_view what);

// The decision in the limit script's reply (allowed, limiting, remaining, reset ms, retry ms);
// false when the reply is not one.
bool decisionFromReply(const redis::CallResult& r, size_t limits, Decision& d);

// The per-request half both policies share: the decision taken for this request, the answer
// it gives (continue, or the 429) and the quota headers on a successful response when asked.
class KeyedLimitFilter : public http::Filter {
 public:
  http::Verdict onResponseHeaders(http::RequestContext& ctx) override;

 protected:
  // `allowed` and `rejected` count the decisions; `message` is the 429's.
  KeyedLimitFilter(const KeyedLimitOptions& o, metrics::Counter& allowed,
                   metrics::Counter& rejected, std::string_view message)
      : options_(o), allowed_(allowed), rejected_(rejected), message_(message) {}
  // Acts on decision_: kContinue when allowed (the request is then charged), else the 429.
  http::Verdict decide(http::RequestContext& ctx);

  Decision decision_;
  bool charged_ = false;

 private:
  const KeyedLimitOptions& options_;
  metrics::Counter& allowed_;
  metrics::Counter& rejected_;
  std::string_view message_;
};

// Adds the quota headers of `style` for decision `d` (nothing when d.limiting < 0).
// `policy_header` is the precomputed RateLimit-Policy value.
void addLimitHeaders(HeaderStyle style, const std::string& policy_header,
                     const std::vector<LimitSpec>& limits, const Decision& d, http::HeaderMap& h);
// The RateLimit-Policy value of `limits` (draft-ietf-httpapi-ratelimit-headers).
std::string policyHeader(const std::vector<LimitSpec>& limits);
// Whole seconds, rounded up: a client that waits that long is never early.
int64_t ceilSeconds(int64_t ns);

}  // namespace gatehouse::policies::rate_limit

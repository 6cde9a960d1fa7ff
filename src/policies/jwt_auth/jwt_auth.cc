#include "policies/jwt_auth/jwt_auth.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "policies/auth/auth_rejections.h"
#include "policies/auth/bearer_auth.h"
#include "policies/auth/consumers.h"
#include "policies/jwt_auth/config.h"

namespace gatehouse::policies::jwt_auth {
namespace {

constexpr std::array<std::string_view, kReasonCount> kReasonNames = {
    "none",
    "missing",
    "malformed",
    "algorithm",
    "unknown_kid",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "claims",
    "insufficient_scope",
    "keys_unavailable",
    "duplicate_member",
};
constexpr size_t kMaxCandidates = 8;  // keys tried for one token (bounds work per request)

// A NumericDate claim: absent (true, nullopt), valid, or of the wrong type (false).
bool numericDate(const nlohmann::json& payload, const char* name, std::optional<int64_t>& out) {
  out.reset();
  auto it = payload.find(name);
  if (it == payload.end()) return true;
  if (it->is_number_integer()) {
    out = it->get<int64_t>();
    return true;
  }
  if (it->is_number_float()) {
    double d = it->get<double>();
    if (!(d > -1e15 && d < 1e15)) return false;
    out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

// What evaluating a token gave.
struct Outcome {
  Reason reason = Reason::kNone;  // kNone: accepted (identity.status 200 or 403)
  bool need_keys = false;         // the remote key set must be (re)fetched first
  uint64_t seen_generation = 0;
  bearer::Identity identity;
};

class JwtAuthFilter final : public http::StatelessFilter {
 public:
  explicit JwtAuthFilter(Config c) : c_(std::move(c)), caches_(c_.cache_entries) {
    for (int i = 1; i < kReasonCount; ++i) {
      rejections_[static_cast<size_t>(i)] =
          authRejectionCounter("jwt_auth", kReasonNames[static_cast<size_t>(i)]);
    }
  }
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    std::string token;
    switch (bearer::extractToken(ctx.request, c_.source, token)) {
      case bearer::Extract::kNone:
        if (!c_.anonymous.empty()) return bearer::admitAnonymous(ctx, c_.anonymous, c_.forward);
        return reject(ctx, Reason::kMissing);
      case bearer::Extract::kMalformed:
        return reject(ctx, Reason::kMalformed);
      case bearer::Extract::kFound:
        break;
    }
    if (token.size() > c_.max_token_bytes) return reject(ctx, Reason::kMalformed);
    const int64_t now = bearer::unixNow();
    const Sha256Digest digest = sha256(token);
    bearer::TokenCache& cache = caches_.local();
    if (const bearer::Identity* hit = cache.find(digest, now)) return apply(ctx, *hit);

    Outcome o = evaluate(token, now, false);
    if (o.need_keys) {
      ctx.pending = awaitKeys(ctx, std::move(token), digest, o.seen_generation);
      return http::Verdict::kPause;
    }
    return finish(ctx, cache, digest, std::move(o));
  }

 private:
  runtime::Task<http::Verdict> awaitKeys(http::RequestContext& ctx, std::string token,
                                         Sha256Digest digest, uint64_t seen) const {
    co_await c_.remote->waitForFetch(seen);
    Outcome o = evaluate(token, bearer::unixNow(), true);
    co_return finish(ctx, caches_.local(), digest, std::move(o));
  }

  http::Verdict finish(http::RequestContext& ctx, bearer::TokenCache& cache,
                       const Sha256Digest& digest, Outcome o) const {
    if (o.reason != Reason::kNone) return reject(ctx, o.reason);
    http::Verdict v = apply(ctx, o.identity);
    cache.put(digest, std::move(o.identity));
    return v;
  }

  // Verifies `token` at `now`. `after_fetch`: the remote keys were just awaited; do not ask
  // for them again.
  Outcome evaluate(std::string_view text, int64_t now, bool after_fetch) const {
    Outcome o;
    jwt::Token t;
    switch (jwt::decodeToken(text, t)) {
      case jwt::DecodeError::kMalformed:
        o.reason = Reason::kMalformed;
        return o;
      case jwt::DecodeError::kAlgorithm:
        o.reason = Reason::kAlgorithm;
        return o;
      case jwt::DecodeError::kDuplicateMember:
        o.reason = Reason::kDuplicateMember;
        return o;
      case jwt::DecodeError::kNone:
        break;
    }
    if (!c_.allowed[static_cast<size_t>(t.alg)]) {
      o.reason = Reason::kAlgorithm;
      return o;
    }
    const jwt::KeySet* remote = nullptr;
    if (c_.remote) {
      remote = c_.remote->current();
      const bool in_static = !t.kid.empty() && c_.static_keys.hasKid(t.kid);
      const bool unknown = remote && !t.kid.empty() && !in_static && !remote->hasKid(t.kid);
      const bool fetching = c_.remote->refreshIfDue(unknown);
      // Wait only when the fetch can change the answer: no remote keys yet, or a new kid.
      if (!after_fetch && fetching && ((!remote && !in_static) || unknown)) {
        o.need_keys = true;
        o.seen_generation = c_.remote->generation();
        return o;
      }
      if (!remote && c_.static_keys.keys.empty()) {
        o.reason = Reason::kKeysUnavailable;
        return o;
      }
    }
    if (!t.kid.empty() && !c_.static_keys.hasKid(t.kid) && !(remote && remote->hasKid(t.kid))) {
      // A kid no key carries; keys without a kid may still verify it.
      bool kidless = false;
      for (const auto* set : {&c_.static_keys, remote}) {
        if (!set) continue;
        for (const auto& k : set->keys)
          kidless = kidless || k.kid.empty();
      }
      if (!kidless) {
        o.reason = Reason::kUnknownKid;
        return o;
      }
    }
    bool verified = false;
    auto tryKey = [&](const jwt::Key& k) {
      verified = jwt::verifySignature(t.alg, k, t.signing_input, t.signature);
      return verified;
    };
    jwt::forEachCandidate(c_.static_keys, t.kid, t.alg, kMaxCandidates, tryKey);
    if (!verified && remote) jwt::forEachCandidate(*remote, t.kid, t.alg, kMaxCandidates, tryKey);
    if (!verified) {
      o.reason = Reason::kBadSignature;
      return o;
    }
    o.reason = checkClaims(t.payload, c_.checks, now);
    if (o.reason != Reason::kNone) return o;
    resolve(t.payload, now, o);
    return o;
  }

  // Fills the identity of a verified token whose registered claims passed.
  void resolve(const nlohmann::json& claims, int64_t now, Outcome& o) const {
    bearer::Identity& id = o.identity;
    const nlohmann::json* consumer = bearer::claimAt(claims, c_.consumer_claim);
    if (!consumer || !consumer->is_string() || consumer->get_ref<const std::string&>().empty()) {
      o.reason = Reason::kClaims;
      return;
    }
    id.consumer = consumer->get<std::string>();
    bearer::resolveClaims(claims, c_.groups_claim, c_.forward, id);
    id.status = bearer::rulesPass(c_.rules, claims) ? 200 : 403;
    int64_t expires = now + c_.cache_ttl;
    if (auto it = claims.find("exp"); it != claims.end() && it->is_number()) {
      expires = std::min(expires, it->get<int64_t>() + c_.checks.skew);
    }
    id.expires = expires;
  }

  http::Verdict apply(http::RequestContext& ctx, const bearer::Identity& id) const {
    if (id.status == 403) {
      count(Reason::kInsufficientScope);
      ctx.consumer.clear();
      ctx.consumer_groups.clear();
      return bearer::forbidden(ctx);
    }
    return bearer::admit(ctx, id, c_.forward, c_.strip_token, c_.source);
  }

  void count(Reason r) const { rejections_[static_cast<size_t>(r)].inc(); }

  http::Verdict reject(http::RequestContext& ctx, Reason r) const {
    count(r);
    if (r == Reason::kKeysUnavailable) return bearer::unavailable(ctx);
    return bearer::unauthorized(ctx, r != Reason::kMissing);
  }

  const Config c_;
  bearer::WorkerCaches caches_;
  std::array<AuthRejectionCounter, kReasonCount> rejections_{};
};

}  // namespace

std::string_view reasonName(Reason r) {
  return kReasonNames[static_cast<size_t>(r)];
}

Reason checkClaims(const nlohmann::json& payload, const ClaimChecks& checks, int64_t now) {
  std::optional<int64_t> exp, nbf, iat;
  if (!numericDate(payload, "exp", exp) || !numericDate(payload, "nbf", nbf) ||
      !numericDate(payload, "iat", iat)) {
    return Reason::kClaims;
  }
  if (!exp && checks.require_exp) return Reason::kClaims;
  if (exp && now >= *exp + checks.skew) return Reason::kExpired;
  if (nbf && now + checks.skew < *nbf) return Reason::kNotYetValid;
  if (iat && now + checks.skew < *iat) return Reason::kNotYetValid;
  if (checks.max_age > 0) {
    if (!iat) return Reason::kClaims;
    if (now - *iat > checks.max_age + checks.skew) return Reason::kExpired;
  }
  if (!checks.issuers.empty()) {
    auto it = payload.find("iss");
    if (it == payload.end() || !it->is_string()) return Reason::kWrongIssuer;
    bool ok = false;
    for (const auto& i : checks.issuers)
      ok = ok || i == it->get_ref<const std::string&>();
    if (!ok) return Reason::kWrongIssuer;
  }
  if (!checks.audiences.empty()) {
    auto it = payload.find("aud");
    bool ok = false;
    auto match = [&](const nlohmann::json& a) {
      if (!a.is_string()) return;
      for (const auto& want : checks.audiences)
        ok = ok || want == a.get_ref<const std::string&>();
    };
    if (it != payload.end()) {
      if (it->is_array()) {
        for (const auto& a : *it)
          match(a);
      } else {
        match(*it);
      }
    }
    if (!ok) return Reason::kWrongAudience;
  }
  for (const auto& name : checks.required) {
    auto it = payload.find(name);
    if (it == payload.end() || it->is_null()) return Reason::kClaims;
  }
  return Reason::kNone;
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  auto c = parseConfig(config, ctx);
  if (!c.ok()) return c.error();
  return http::FilterFactoryPtr(
      std::make_shared<http::StatelessFactory<JwtAuthFilter>>(std::move(*c)));
}

}  // namespace gatehouse::policies::jwt_auth

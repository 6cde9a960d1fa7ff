#include "policies/auth/bearer_auth.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include "core/strings.h"
#include "http/headers.h"
#include "policies/auth/auth_common.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::bearer {
namespace {

bool validName(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c >= 0x7f || c == '&' || c == '=' || c == ';' || c == ',' || c == '#') {
      return false;
    }
  }
  return true;
}

std::atomic<uint64_t> g_next_cache_id{1};

struct LocalSlot {
  std::weak_ptr<int> alive;
  std::unique_ptr<TokenCache> cache;
};

}  // namespace

Status parseTokenSource(const YAML::Node& config, TokenSource& out) {
  if (const auto& h = config["header"]) {
    if (h.IsNull()) {
      out.header.clear();
    } else {
      auto s = readString(h, "header");
      if (!s.ok()) return s.error();
      if (!isHeaderName(*s)) return configError("header: invalid header name '" + *s + "'");
      out.header = *s;
      for (auto& c : out.header)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (const auto& c = config["cookie"]) {
    auto s = readString(c, "cookie");
    if (!s.ok()) return s.error();
    if (!validName(*s)) return configError("cookie: invalid cookie name '" + *s + "'");
    out.cookie = *s;
  }
  if (const auto& q = config["query"]) {
    auto s = readString(q, "query");
    if (!s.ok()) return s.error();
    if (!validName(*s)) return configError("query: invalid query parameter name '" + *s + "'");
    out.query = *s;
  }
  if (out.header.empty() && out.cookie.empty() && out.query.empty()) {
    return configError("header, cookie and query are all empty: there is nowhere to read a token");
  }
  return {};
}

Extract extractToken(const http::Request& req, const TokenSource& src, std::string& out) {
  int seen = 0;
  std::string_view found;
  if (!src.header.empty()) {
    for (const auto& f : req.headers.fields()) {
      if (!http::iequals(f.name, src.header)) continue;
      ++seen;
      found = strings::trimSpaces(f.value);
    }
    if (seen > 1) return Extract::kMalformed;
    if (seen == 1) {
      if (src.header == "authorization") {
        if (found.size() < 7 || !http::iequals(found.substr(0, 7), "bearer ")) {
          return Extract::kMalformed;
        }
        found = strings::trimSpaces(found.substr(7));
      }
      if (found.empty()) return Extract::kMalformed;
      out.assign(found);
      return Extract::kFound;
    }
  }
  if (!src.cookie.empty()) {
    for (const auto& f : req.headers.fields()) {
      if (!http::iequals(f.name, "cookie")) continue;
      std::string_view v = f.value;
      while (!v.empty()) {
        size_t semi = v.find(';');
        std::string_view pair = strings::trimSpaces(v.substr(0, semi));
        v = semi == std::string_view::npos ? std::string_view{} : v.substr(semi + 1);
        size_t eq = pair.find('=');
        if (eq == std::string_view::npos || pair.substr(0, eq) != src.cookie) continue;
        ++seen;
        found = pair.substr(eq + 1);
        if (found.size() >= 2 && found.front() == '"' && found.back() == '"') {
          found = found.substr(1, found.size() - 2);
        }
      }
    }
    if (seen > 1) return Extract::kMalformed;
    if (seen == 1) {
      if (found.empty()) return Extract::kMalformed;
      out.assign(found);
      return Extract::kFound;
    }
  }
  if (!src.query.empty()) {
    std::string_view q = req.query;
    while (!q.empty()) {
      size_t amp = q.find('&');
      std::string_view pair = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
      size_t eq = pair.find('=');
      if (pair.substr(0, eq) != src.query) continue;
      ++seen;
      found = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    }
    if (seen > 1) return Extract::kMalformed;
    if (seen == 1) {
      if (found.empty()) return Extract::kMalformed;
      out.assign(found);
      return Extract::kFound;
    }
  }
  return Extract::kNone;
}

void stripToken(http::Request& req, const TokenSource& src) {
  if (!src.header.empty()) req.headers.remove(src.header);
  if (!src.cookie.empty()) {
    auto& fields = req.headers.fields();
    for (size_t i = 0; i < fields.size();) {
      if (!http::iequals(fields[i].name, "cookie")) {
        ++i;
        continue;
      }
      std::string kept;
      std::string_view v = fields[i].value;
      while (!v.empty()) {
        size_t semi = v.find(';');
        std::string_view pair = strings::trimSpaces(v.substr(0, semi));
        v = semi == std::string_view::npos ? std::string_view{} : v.substr(semi + 1);
        if (pair.empty() || pair.substr(0, pair.find('=')) == src.cookie) continue;
        if (!kept.empty()) kept.append("; ");
        kept.append(pair);
      }
      if (kept.empty()) {
        fields.erase(fields.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      fields[i].value = req.headers.store(kept);
      ++i;
    }
  }
  auth::removeQueryParam(req, src.query);
}

Status parseRules(const YAML::Node& config, Rules& out) {
  if (const auto& s = config["scopes"]) {
    auto list = readStringList(s, "scopes");
    if (!list.ok()) return list.error();
    for (const auto& sc : *list) {
      if (sc.empty() || sc.find(' ') != std::string::npos) {
        return configError("scopes: '" + sc + "' is not a scope (no spaces, not empty)");
      }
    }
    out.scopes = std::move(*list);
  }
  if (const auto& c = config["claims"]) {
    if (!c.IsMap()) {
      return configError("claims: expected a map of claim name to a value or a list of values");
    }
    for (const auto& kv : c) {
      ClaimRule r;
      r.path = kv.first.as<std::string>("");
      if (r.path.empty()) return configError("claims: empty claim name");
      auto values = readStringList(kv.second, "claims." + r.path);
      if (!values.ok()) return values.error();
      if (values->empty()) return configError("claims." + r.path + ": expected at least one value");
      r.values = std::move(*values);
      out.claims.push_back(std::move(r));
    }
  }
  return {};
}

const nlohmann::json* claimAt(const nlohmann::json& claims, std::string_view path) {
  const nlohmann::json* cur = &claims;
  while (true) {
    if (!cur->is_object()) return nullptr;
    size_t dot = path.find('.');
    std::string_view part = path.substr(0, dot);
    auto it = cur->find(part);
    if (it == cur->end()) {
      // A claim name may itself contain dots (URL-style names): try the whole rest.
      if (dot != std::string_view::npos) {
        auto whole = cur->find(path);
        if (whole != cur->end()) return &*whole;
      }
      return nullptr;
    }
    if (dot == std::string_view::npos) return &*it;
    cur = &*it;
    path = path.substr(dot + 1);
  }
}

std::vector<std::string_view> grantedScopes(const nlohmann::json& claims) {
  std::vector<std::string_view> out;
  auto addSpaced = [&](const std::string& s) {
    std::string_view v = s;
    while (!v.empty()) {
      size_t sp = v.find(' ');
      if (sp != 0) out.push_back(v.substr(0, sp));
      if (sp == std::string_view::npos) break;
      v = v.substr(sp + 1);
    }
  };
  for (const char* name : {"scope", "scp"}) {
    auto it = claims.find(name);
    if (it == claims.end()) continue;
    if (it->is_string()) {
      addSpaced(it->get_ref<const std::string&>());
    } else if (it->is_array()) {
      for (const auto& e : *it) {
        if (e.is_string()) out.push_back(e.get_ref<const std::string&>());
      }
    }
  }
  return out;
}

bool rulesPass(const Rules& rules, const nlohmann::json& claims) {
  if (!rules.scopes.empty()) {
    auto granted = grantedScopes(claims);
    for (const auto& want : rules.scopes) {
      bool have = false;
      for (auto g : granted)
        have = have || g == want;
      if (!have) return false;
    }
  }
  for (const auto& r : rules.claims) {
    const nlohmann::json* v = claimAt(claims, r.path);
    if (!v) return false;
    auto matches = [&](const nlohmann::json& x) {
      std::string s;
      if (x.is_string()) {
        s = x.get<std::string>();
      } else if (x.is_number() || x.is_boolean()) {
        s = x.dump();
      } else {
        return false;
      }
      for (const auto& want : r.values) {
        if (s == want) return true;
      }
      return false;
    };
    bool ok = false;
    if (v->is_array()) {
      for (const auto& e : *v)
        ok = ok || matches(e);
    } else {
      ok = matches(*v);
    }
    if (!ok) return false;
  }
  return true;
}

bool claimHeaderValue(const nlohmann::json& v, std::string& out) {
  out.clear();
  if (v.is_string()) {
    out = v.get<std::string>();
  } else if (v.is_array() &&
             std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_string(); })) {
    for (const auto& e : v) {
      if (!out.empty()) out.push_back(',');
      out += e.get<std::string>();
    }
  } else {
    out = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  return isHeaderValue(out);
}

const Identity* TokenCache::find(const Sha256Digest& key, int64_t now) {
  auto it = map_.find(key);
  if (it == map_.end()) return nullptr;
  if (it->second.expires <= now) {
    map_.erase(it);  // its `order_` entry is skipped when it reaches the front
    return nullptr;
  }
  return &it->second;
}

void setIdentity(http::RequestContext& ctx, const Identity& id) {
  for (const auto& [name, value] : id.headers)
    ctx.request.headers.add(name, value);
  if (ctx.trace) auth::traceAuthAllowed(ctx, id.consumer);
  ctx.consumer = id.consumer;
  ctx.consumer_groups.assign(id.groups.begin(), id.groups.end());
  ctx.claims = id.claims;
}

void stripClaimHeaders(http::Request& req, const ClaimHeaders& forward) {
  for (const auto& [claim, header] : forward)
    req.headers.remove(header);
}

http::Verdict admitAnonymous(http::RequestContext& ctx, const std::string& anonymous,
                             const ClaimHeaders& forward) {
  stripClaimHeaders(ctx.request, forward);
  ctx.consumer = anonymous;
  ctx.consumer_groups.clear();
  return http::Verdict::kContinue;
}

http::Verdict admit(http::RequestContext& ctx, const Identity& id, const ClaimHeaders& forward,
                    bool strip_token, const TokenSource& source) {
  stripClaimHeaders(ctx.request, forward);
  if (strip_token) stripToken(ctx.request, source);
  setIdentity(ctx, id);
  return http::Verdict::kContinue;
}

std::shared_ptr<const http::TokenClaims> scalarClaims(const nlohmann::json& payload) {
  auto out = std::make_shared<http::TokenClaims>();
  if (!payload.is_object()) return out;
  for (const auto& [name, v] : payload.items()) {
    if (out->values.size() >= 64) break;
    if (v.is_string()) {
      const auto& str = v.get_ref<const std::string&>();
      if (str.size() <= 256) out->values.emplace_back(name, str);
    } else if (v.is_number_integer()) {
      out->values.emplace_back(name, std::to_string(v.get<int64_t>()));
    }
  }
  return out;
}

void TokenCache::put(const Sha256Digest& key, Identity id) {
  if (max_ == 0) return;
  auto [it, inserted] = map_.insert_or_assign(key, std::move(id));
  (void)it;
  if (inserted) order_.push_back(key);
  // Keys erased on expiry stay in order_ until they reach the front; popping one that is
  // gone (or was re-inserted later) costs nothing or evicts early, never late.
  while (map_.size() > max_ || order_.size() > 2 * max_) {
    map_.erase(order_.front());
    order_.pop_front();
  }
}

WorkerCaches::WorkerCaches(size_t max_entries)
    : id_(g_next_cache_id.fetch_add(1, std::memory_order_relaxed)), max_(max_entries) {}

TokenCache& WorkerCaches::local() const {
  thread_local std::unordered_map<uint64_t, LocalSlot> slots;
  thread_local uint64_t last_id = 0;
  thread_local TokenCache* last = nullptr;
  if (last_id == id_) return *last;
  auto it = slots.find(id_);
  if (it == slots.end()) {
    std::erase_if(slots, [](const auto& kv) { return kv.second.alive.expired(); });
    it = slots.emplace(id_, LocalSlot{alive_, std::make_unique<TokenCache>(max_)}).first;
  }
  last_id = id_;
  last = it->second.cache.get();
  return *last;
}

int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

http::Verdict unauthorized(http::RequestContext& ctx, bool token_present) {
  if (ctx.trace) {
    auth::traceAuthDenied(ctx, "bearer", token_present ? "invalid_token" : "missing_token");
  }
  ctx.consumer.clear();
  ctx.consumer_groups.clear();
  http::Verdict v = ctx.respondError(401, token_present ? "invalid token" : "missing token");
  ctx.local_reply.headers.add("www-authenticate",
                              token_present ? "Bearer realm=\"gatehouse\", error=\"invalid_token\""
                                            : "Bearer realm=\"gatehouse\"");
  return v;
}

http::Verdict forbidden(http::RequestContext& ctx) {
  http::Verdict v = ctx.respondError(403, "insufficient scope");
  ctx.local_reply.headers.add("www-authenticate",
                              "Bearer realm=\"gatehouse\", error=\"insufficient_scope\"");
  return v;
}

http::Verdict unavailable(http::RequestContext& ctx) {
  ctx.consumer.clear();
  ctx.consumer_groups.clear();
  return ctx.respondError(503, "authorization server unavailable");
}

void resolveClaims(const nlohmann::json& claims, const std::string& groups_claim,
                   const ClaimHeaders& forward, Identity& id) {
  id.claims = scalarClaims(claims);
  if (!groups_claim.empty()) {
    if (const nlohmann::json* g = claimAt(claims, groups_claim)) {
      if (g->is_string()) id.groups.push_back(g->get<std::string>());
      if (g->is_array()) {
        for (const auto& e : *g) {
          if (e.is_string()) id.groups.push_back(e.get<std::string>());
        }
      }
    }
  }
  std::string value;
  for (const auto& [claim, header] : forward) {
    const nlohmann::json* v = claimAt(claims, claim);
    if (v && claimHeaderValue(*v, value)) id.headers.emplace_back(header, value);
  }
}

Status parseBearerOptions(const YAML::Node& config, BearerOptions& out) {
  if (auto st = parseTokenSource(config, out.source); !st.ok()) return st.error();
  if (auto st = parseRules(config, out.rules); !st.ok()) return st.error();
  if (const auto& n = config["forward_claims"]) {
    auto map = readHeaderMap(n, "forward_claims", "claim -> header name");
    if (!map.ok()) return map.error();
    out.forward = std::move(*map);
  }
  for (auto [key, field] :
       {std::pair{"groups_claim", &out.groups_claim}, std::pair{"anonymous", &out.anonymous}}) {
    if (const auto& n = config[key]) {
      auto s = readName(n, key);
      if (!s.ok()) return s.error();
      *field = std::move(*s);
    }
  }
  if (auto st = readOptional(config, "strip_token", out.strip_token); !st.ok()) return st.error();
  if (const auto& n = config["cache_size"]) {
    auto v = readInt(n, "cache_size", 0, 10'000'000);
    if (!v.ok()) return v.error();
    out.cache_entries = static_cast<size_t>(*v);
  }
  return {};
}

}  // namespace gatehouse::policies::bearer

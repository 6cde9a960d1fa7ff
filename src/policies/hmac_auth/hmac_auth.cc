#include "policies/hmac_auth/hmac_auth.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

#include "core/strings.h"
#include "http/headers.h"
#include "policies/auth/auth_common.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::hmac_auth {
namespace {

constexpr std::string_view kPolicy = "hmac_auth";
constexpr std::string_view kMessage = "invalid or missing signature";
constexpr size_t kReplaySlots = size_t{1} << 16;  // 512 KiB, shared by every worker
constexpr uint64_t kDefaultMaxBody = uint64_t{1} << 20;

using Reason = auth_metrics::Reason;

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool isRequestTarget(std::string_view h) {
  return h == "(request-target)" || h == "@request-target";
}

// Each slot: high 32 bits = fingerprint (from the MAC), low 32 bits = expiry in Unix seconds.
std::array<std::atomic<uint64_t>, kReplaySlots> g_replay{};

enum class BodyDigest { kOff, kOptional, kRequired };

struct Options {
  std::vector<HmacAlgorithm> algorithms;
  std::vector<std::string> required;  // lower case
  int64_t clock_skew_s = 300;
  BodyDigest body_digest = BodyDigest::kOptional;
  uint64_t max_body = kDefaultMaxBody;
  bool replay_protection = true;
  bool strip = false;  // remove Authorization before proxying
  std::shared_ptr<const ConsumerRegistry> registry;
  std::map<std::string, ConsumerRegistry::HmacEntry, std::less<>> keys;
  std::string challenge;
  auth::IdentityOptions identity;
};

class HmacAuthFactory;

// Per request: remembers the signed body digest to check in the body phase.
class HmacAuthFilter final : public http::Filter {
 public:
  explicit HmacAuthFilter(const HmacAuthFactory& f) : f_(f) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) override;
  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override;

 private:
  http::Verdict reject(http::RequestContext& ctx, Reason reason) const;
  // Parses `Digest`; false when it names no supported algorithm or is malformed.
  bool startDigest(std::string_view header);

  const HmacAuthFactory& f_;
  struct MdFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  std::unique_ptr<EVP_MD_CTX, MdFree> md_;
  std::string expected_;  // raw digest bytes
};

class HmacAuthFactory final : public auth::AuthFactory {
 public:
  explicit HmacAuthFactory(Options o) : opts_(std::move(o)) {}
  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<HmacAuthFilter>(*this));
  }
  bool wantsRequestBody() const override { return opts_.body_digest != BodyDigest::kOff; }
  std::string_view policyName() const override { return kPolicy; }
  std::string challenge() const override { return opts_.challenge; }
  bool isOptional() const override { return opts_.identity.optional; }
  bool definesConsumer(std::string_view) const override { return false; }
  const auth::IdentityOptions& identity() const override { return opts_.identity; }
  const Options& opts() const { return opts_; }

 private:
  const Options opts_;
};

http::Verdict HmacAuthFilter::reject(http::RequestContext& ctx, Reason reason) const {
  return auth::reject(ctx, kPolicy, reason, f_.opts().challenge, kMessage);
}

bool HmacAuthFilter::startDigest(std::string_view header) {
  // "SHA-256=<b64>, SHA-512=<b64>": the strongest supported one is checked.
  const EVP_MD* md = nullptr;
  std::string expected;
  int strength = 0;
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    item = strings::trimSpaces(item);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return false;
    std::string alg = lower(item.substr(0, eq));
    int s = alg == "sha-512" ? 2 : alg == "sha-256" ? 1 : 0;
    if (s <= strength) continue;
    auto bytes = base64Decode(item.substr(eq + 1));
    size_t want = s == 2 ? 64 : 32;
    if (!bytes || bytes->size() != want) return false;
    strength = s;
    md = s == 2 ? EVP_sha512() : EVP_sha256();
    expected = std::move(*bytes);
  }
  if (!md) return false;
  md_.reset(EVP_MD_CTX_new());
  if (!md_ || EVP_DigestInit_ex(md_.get(), md, nullptr) != 1) return false;
  expected_ = std::move(expected);
  return true;
}

http::Verdict HmacAuthFilter::onRequestHeaders(http::RequestContext& ctx) {
  const Options& o = f_.opts();
  if (auth::alreadyAuthenticated(ctx, o.identity)) return http::Verdict::kContinue;
  int found = 0;
  std::string_view params;
  for (const auto& f : ctx.request.headers.fields()) {
    if (!http::iequals(f.name, "authorization")) continue;
    if (f.value.size() < 10 || !http::iequals(f.value.substr(0, 10), "signature ")) continue;
    ++found;
    params = f.value.substr(10);
  }
  if (found == 0) {
    if (o.identity.optional) return http::Verdict::kContinue;
    return reject(ctx, Reason::kMissing);
  }
  std::optional<SignatureParams> sig = found == 1 ? parseSignature(params) : std::nullopt;
  if (!sig || sig->key_id.empty() || sig->signature.empty()) return reject(ctx, Reason::kMalformed);

  HmacAlgorithm alg = o.algorithms.front();
  if (!sig->algorithm.empty()) {
    auto a = parseHmacAlgorithm(lower(sig->algorithm));
    if (!a || std::find(o.algorithms.begin(), o.algorithms.end(), *a) == o.algorithms.end()) {
      return reject(ctx, Reason::kBadAlgorithm);
    }
    alg = *a;
  }
  auto key = o.keys.find(sig->key_id);
  if (key == o.keys.end()) return reject(ctx, Reason::kUnknownKey);

  if (!sig->has_headers) sig->headers = {"date"};
  auto signs = [&](std::string_view h) {
    return std::find(sig->headers.begin(), sig->headers.end(), h) != sig->headers.end();
  };
  // The timestamp must be signed, or a captured request could be replayed with a fresh one.
  const std::string_view date_name = ctx.request.headers.has("x-date") ? "x-date" : "date";
  if (!signs(date_name)) return reject(ctx, Reason::kMissingSignedHeader);
  for (const auto& r : o.required) {
    bool ok = r == "date"          ? true
              : isRequestTarget(r) ? signs("(request-target)") || signs("@request-target")
                                   : signs(r);
    if (!ok) return reject(ctx, Reason::kMissingSignedHeader);
  }
  const bool has_digest = ctx.request.headers.has("digest");
  if (o.body_digest != BodyDigest::kOff) {
    // An unsigned Digest protects nothing; a required one must be there for a body.
    if (has_digest && !signs("digest")) return reject(ctx, Reason::kMissingSignedHeader);
    if (o.body_digest == BodyDigest::kRequired && ctx.request.has_body && !has_digest) {
      return reject(ctx, Reason::kMissingSignedHeader);
    }
  }
  thread_local std::string signing;
  std::string missing;
  if (!buildSigningString(ctx.request, sig->headers, signing, missing)) {
    return reject(ctx, Reason::kMissingSignedHeader);
  }
  auto provided = base64Decode(sig->signature);
  if (!provided) return reject(ctx, Reason::kMalformed);
  std::string mac = hmac(alg, key->second.credential->secret, signing);
  if (mac.empty() || !constantTimeEquals(mac, *provided)) {
    return reject(ctx, Reason::kBadSignature);
  }
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  auto date = parseHttpDate(ctx.request.headers.get(date_name));
  if (!date || *date < now - o.clock_skew_s || *date > now + o.clock_skew_s) {
    return reject(ctx, Reason::kStaleDate);
  }
  if (o.replay_protection && seenBefore(mac, *date + o.clock_skew_s, now)) {
    return reject(ctx, Reason::kReplay);
  }
  if (o.body_digest != BodyDigest::kOff && has_digest) {
    if (!startDigest(ctx.request.headers.get("digest"))) return reject(ctx, Reason::kMalformed);
    if (!ctx.request.has_body) {
      std::string empty;
      if (onRequestBody(ctx, empty, true) != http::Verdict::kContinue) {
        return http::Verdict::kRespond;
      }
    } else {
      // The upstream must not see a byte before the digest matches.
      ctx.buffer_request_body = o.max_body;
    }
  }
  auth::setIdentity(ctx, *key->second.consumer, o.identity);
  if (o.strip) ctx.request.headers.remove("authorization");
  return http::Verdict::kContinue;
}

http::Verdict HmacAuthFilter::onRequestBody(http::RequestContext& ctx, std::string& chunk,
                                            bool end) {
  if (!md_) return http::Verdict::kContinue;
  if (!chunk.empty()) EVP_DigestUpdate(md_.get(), chunk.data(), chunk.size());
  if (!end) return http::Verdict::kContinue;
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  bool ok = EVP_DigestFinal_ex(md_.get(), out, &len) == 1 &&
            constantTimeEquals(std::string_view(reinterpret_cast<char*>(out), len), expected_);
  md_.reset();
  if (ok) return http::Verdict::kContinue;
  return reject(ctx, Reason::kDigestMismatch);
}

Result<std::vector<std::string>> readNameList(const YAML::Node& n, std::string_view what) {
  auto names = readNonEmptyList(n, what);
  if (names.ok()) {
    for (auto& s : *names)
      s = lower(s);
  }
  return names;
}

}  // namespace

std::optional<SignatureParams> parseSignature(std::string_view s) {
  SignatureParams p;
  bool have_key = false;
  bool have_sig = false;
  while (true) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == ',')) {
      s.remove_prefix(1);
    }
    if (s.empty()) break;
    size_t eq = s.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    std::string name = lower(s.substr(0, eq));
    s.remove_prefix(eq + 1);
    if (s.empty() || s.front() != '"') return std::nullopt;
    size_t close = s.find('"', 1);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view value = s.substr(1, close - 1);
    s.remove_prefix(close + 1);
    if (!s.empty() && s.front() != ',' && s.front() != ' ') return std::nullopt;
    if (name == "keyid") {
      if (have_key) return std::nullopt;
      have_key = true;
      p.key_id = std::string(value);
    } else if (name == "algorithm") {
      p.algorithm = std::string(value);
    } else if (name == "headers") {
      p.has_headers = true;
      while (!value.empty()) {
        size_t sp = value.find(' ');
        std::string_view h = value.substr(0, sp);
        value = sp == std::string_view::npos ? std::string_view{} : value.substr(sp + 1);
        if (!h.empty()) p.headers.push_back(lower(h));
      }
    } else if (name == "signature") {
      if (have_sig) return std::nullopt;
      have_sig = true;
      p.signature = std::string(value);
    }
    // Other parameters (created, expires) are ignored.
  }
  if (!have_key || !have_sig) return std::nullopt;
  return p;
}

bool buildSigningString(const http::Request& req, const std::vector<std::string>& headers,
                        std::string& out, std::string& missing) {
  out.clear();
  for (size_t i = 0; i < headers.size(); ++i) {
    const std::string& h = headers[i];
    if (i > 0) out.push_back('\n');
    out.append(h).append(": ");
    if (isRequestTarget(h)) {
      out.append(lower(req.method)).push_back(' ');
      out.append(req.path);
      if (!req.query.empty()) out.append("?").append(req.query);
      continue;
    }
    bool any = false;
    for (const auto& f : req.headers.fields()) {
      if (!http::iequals(f.name, h)) continue;
      if (any) out.append(", ");
      out.append(f.value);
      any = true;
    }
    if (!any && h == "host" && !req.authority.empty()) {
      out.append(req.authority);
      any = true;
    }
    if (!any) {
      missing = h;
      return false;
    }
  }
  return true;
}

std::optional<int64_t> parseHttpDate(std::string_view t) {
  // "Sun, 06 Nov 1994 08:49:37 GMT"
  if (t.size() != 29 || t[3] != ',' || t[4] != ' ' || t[7] != ' ' || t[11] != ' ' || t[16] != ' ' ||
      t[19] != ':' || t[22] != ':' || t[25] != ' ' || t.substr(26) != "GMT") {
    return std::nullopt;
  }
  auto num = [&](size_t pos, size_t n) -> int {
    int v = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (t[i] < '0' || t[i] > '9') return -1;
      v = v * 10 + (t[i] - '0');
    }
    return v;
  };
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int month = -1;
  for (int m = 0; m < 12; ++m) {
    if (t.substr(8, 3) == kMonths[m]) month = m + 1;
  }
  int day = num(5, 2), year = num(12, 4), hh = num(17, 2), mm = num(20, 2), ss = num(23, 2);
  if (month < 0 || day < 1 || day > 31 || year < 1970 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
      ss < 0 || ss > 60) {
    return std::nullopt;
  }
  // Days from civil (H. Hinnant's algorithm).
  int y = year - (month <= 2 ? 1 : 0);
  int era = y / 400;
  int yoe = y - era * 400;
  int mp = (month + 9) % 12;
  int doy = (153 * mp + 2) / 5 + day - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = int64_t{era} * 146097 + doe - 719468;
  return days * 86400 + hh * 3600 + mm * 60 + ss;
}

bool seenBefore(std::string_view mac, int64_t expires, int64_t now) {
  uint64_t h = 0;
  std::memcpy(&h, mac.data(), std::min(mac.size(), sizeof h));
  const uint64_t fp = (h >> 32) | 1;  // never 0, so an empty slot never matches
  const uint64_t exp = static_cast<uint64_t>(std::clamp<int64_t>(expires, 0, UINT32_MAX));
  const uint64_t mine = fp << 32 | exp;
  auto& slot = g_replay[static_cast<size_t>(h & (kReplaySlots - 1))];
  uint64_t cur = slot.load(std::memory_order_acquire);
  for (;;) {
    if ((cur >> 32) == fp && static_cast<int64_t>(cur & 0xffffffffu) >= now) return true;
    // Free, expired or another signature: take the slot (a collision evicts the older entry).
    if (slot.compare_exchange_weak(cur, mine, std::memory_order_acq_rel)) return false;
  }
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  auto options = optionalMap(config);
  if (!options.ok()) return options.error();
  const YAML::Node& cfg = *options;
  if (auto st =
          auth::checkAuthKeys(cfg, {"consumers", "algorithms", "required_headers", "clock_skew",
                                    "body_digest", "max_body_bytes", "replay_protection", "strip"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  o.algorithms = {HmacAlgorithm::kSha256, HmacAlgorithm::kSha384, HmacAlgorithm::kSha512};
  if (const auto& a = cfg["algorithms"]) {
    auto names = readNameList(a, "algorithms");
    if (!names.ok()) return names.error();
    o.algorithms.clear();
    for (const auto& n : *names) {
      auto alg = parseHmacAlgorithm(n);
      if (!alg) {
        return configError("algorithms: unknown algorithm '" + n +
                           "'; expected hmac-sha256, hmac-sha384 or hmac-sha512");
      }
      o.algorithms.push_back(*alg);
    }
  }
  o.required = {"@request-target", "host", "date"};
  if (const auto& r = cfg["required_headers"]) {
    auto names = readNameList(r, "required_headers");
    if (!names.ok()) return names.error();
    o.required = std::move(*names);
    for (const auto& n : o.required) {
      if (!isRequestTarget(n) && !isHeaderName(n)) {
        return configError("required_headers: invalid header name '" + n + "'");
      }
    }
  }
  if (const auto& s = cfg["clock_skew"]) {
    auto ms = readDuration(s, "clock_skew", std::chrono::seconds(1), std::chrono::hours(1), "300s");
    if (!ms.ok()) return ms.error();
    o.clock_skew_s = std::chrono::duration_cast<std::chrono::seconds>(*ms).count();
  }
  if (const auto& b = cfg["body_digest"]) {
    auto d = readChoice<BodyDigest>(b, "body_digest",
                                    {{"off", BodyDigest::kOff},
                                     {"optional", BodyDigest::kOptional},
                                     {"required", BodyDigest::kRequired}});
    if (!d.ok()) return d.error();
    o.body_digest = *d;
  }

  if (const auto& m = cfg["max_body_bytes"]) {
    auto v = readSize(m, "max_body_bytes", 1, uint64_t{1} << 30, "1MiB");
    if (!v.ok()) return v.error();
    o.max_body = *v;
  }
  if (auto st = readOptional(cfg, "replay_protection", o.replay_protection); !st.ok())
    return st.error();
  if (auto st = readOptional(cfg, "strip", o.strip); !st.ok()) return st.error();
  auto identity = auth::readIdentityOptions(cfg, ctx);
  if (!identity.ok()) return identity.error();
  o.identity = std::move(*identity);
  o.registry = auth::registryOf(ctx);
  if (o.registry->isEmpty()) {
    return configError("needs a top-level consumers registry with hmac credentials");
  }
  auto picked = auth::selectConsumers(
      cfg["consumers"], *o.registry, [](const Consumer& c) { return !c.hmac.empty(); },
      "hmac credentials");
  if (!picked.ok()) return picked.error();
  for (const Consumer* c : *picked) {
    for (const auto& h : c->hmac)
      o.keys.emplace(h.key_id, ConsumerRegistry::HmacEntry{c, &h});
  }
  std::string list;
  for (const auto& r : o.required)
    list += (list.empty() ? "" : " ") + r;
  o.challenge = "Signature realm=\"gatehouse\",headers=\"" + list + "\"";
  auth_metrics::ensureRegistered();
  return http::FilterFactoryPtr(std::make_shared<HmacAuthFactory>(std::move(o)));
}

}  // namespace gatehouse::policies::hmac_auth

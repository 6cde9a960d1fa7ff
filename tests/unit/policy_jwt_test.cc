// JWT primitives: base64url, JWK parsing, signature verification against the RFC 7515 and
// RFC 8037 example vectors, alg/key-type confusion, and the registered-claim checks.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "metrics/registry.h"
#include "policies/auth/bearer_auth.h"
#include "policies/auth/credentials.h"
#include "policies/jwt_auth/jwks.h"
#include "policies/jwt_auth/jwt.h"
#include "policies/jwt_auth/jwt_auth.h"
#include "policy_test_util.h"

namespace gatehouse::policies {
namespace {

using jwt::Alg;
using nlohmann::json;

// RFC 7515 A.1.
constexpr const char* kHsToken =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
constexpr const char* kHsJwk =
    R"({"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"})";
// RFC 7515 A.2.
constexpr const char* kRsToken =
    "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5"
    "jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_"
    "nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07"
    "Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-"
    "eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8n"
    "p6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
constexpr const char* kRsJwk =
    R"({"kty":"RSA","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"})";
// RFC 7515 A.3.
constexpr const char* kEsToken =
    "eyJhbGciOiJFUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    "."
    "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
constexpr const char* kEsJwk =
    R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})";
// RFC 8037 A.4 (the payload is not JSON: verified at the signature level).
constexpr const char* kEdInput = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
constexpr const char* kEdSig =
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
constexpr const char* kEdJwk =
    R"({"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})";

jwt::Key key(const char* jwk) {
  auto k = jwt::parseJwk(json::parse(jwk));
  EXPECT_TRUE(k.ok()) << (k.ok() ? "" : k.error().message);
  return k.ok() ? *k : jwt::Key{};
}

bool verifies(const char* token, const jwt::Key& k) {
  jwt::Token t;
  if (jwt::decodeToken(token, t) != jwt::DecodeError::kNone) return false;
  return k.usableFor(t.alg) && jwt::verifySignature(t.alg, k, t.signing_input, t.signature);
}

std::string tamper(std::string token) {
  // Flip a payload character: the signature no longer matches.
  size_t dot = token.find('.');
  token[dot + 5] = token[dot + 5] == 'A' ? 'B' : 'A';
  return token;
}

TEST(Base64Url, RoundTripAndStrictness) {
  std::string out;
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00\x01"}) {
    ASSERT_TRUE(jwt::base64UrlDecode(jwt::base64UrlEncode(s), out));
    EXPECT_EQ(out, s);
  }
  EXPECT_EQ(jwt::base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(jwt::base64UrlDecode("Zm9v=", out));  // padding
  EXPECT_FALSE(jwt::base64UrlDecode("Zm+v", out));   // standard alphabet
  EXPECT_FALSE(jwt::base64UrlDecode("Z", out));      // 4n+1 length
  EXPECT_FALSE(jwt::base64UrlDecode("Zh", out));     // non-zero leftover bits
  EXPECT_TRUE(jwt::base64UrlDecode("Zg", out));
  EXPECT_EQ(out, "f");
}

TEST(Jwk, ParsesEveryKeyTypeAndRefusesBadOnes) {
  EXPECT_EQ(key(kHsJwk).type, jwt::KeyType::kOct);
  EXPECT_EQ(key(kRsJwk).type, jwt::KeyType::kRsa);
  EXPECT_EQ(key(kEsJwk).ec_bits, 256);
  EXPECT_EQ(key(kEdJwk).type, jwt::KeyType::kOkp);
  for (const char* bad :
       {R"({"kty":"oct","k":"c2hvcnQ"})",                   // too short
        R"({"kty":"RSA","n":"AQAB","e":"AQAB"})",           // tiny modulus
        R"({"kty":"EC","crv":"P-521","x":"AA","y":"AA"})",  // unsupported curve
        R"({"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",)"
        R"("y":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU"})",  // point not on the curve
        R"({"kty":"OKP","crv":"X25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})",
        R"({"kty":"RSA","alg":"HS256","e":"AQAB","n":"ofgW"})",  // alg does not fit
        R"({"kid":"x"})", R"([1])"}) {
    auto k = jwt::parseJwk(json::parse(bad));
    EXPECT_FALSE(k.ok()) << bad;
  }
}

TEST(Jwk, EcCoordinateWithoutItsLeadingZeroIsPadded) {
  // x is 31 bytes: the issuer dropped its leading zero byte. The token is signed by that key.
  const char* jwk = R"({"kty":"EC","crv":"P-256","x":"MkbFT0Q7BqqBpDxU5EVPlp33Gaz0kFK-q-hm1JLTEw",)"
                    R"("y":"M0Hh57U43XHF_4Rew1MEJN9AVtqID2cRofSqWZlGBgk"})";
  const char* token =
      "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ6In0."
      "AVfZV6G8CS3lm4uyL5MEUbCszBfOZ_3NASa-94IOCxNQ0skK5reifrDX8ip4Hyd0dCbR_dx7iCY5hzs-AuJmkQ";
  EXPECT_TRUE(verifies(token, key(jwk)));
  EXPECT_FALSE(verifies(tamper(token).c_str(), key(jwk)));
  // Longer than the curve's size is still refused.
  EXPECT_FALSE(
      jwt::parseJwk(
          json::parse(
              R"({"kty":"EC","crv":"P-256","x":"AH_Nzidw9sRdQYPL7m_bS3tYBzM1e-nvE7rPbjx70VRF",)"
              R"("y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})"))
          .ok());
}

TEST(Jwk, SetSkipsEncryptionAndUnknownKeys) {
  std::string set = std::string(R"({"keys":[)") + kRsJwk + "," +
                    R"({"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},)" +
                    R"({"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"},)" + kEdJwk + "]}";
  size_t skipped = 0;
  auto keys = jwt::parseJwks(set, &skipped);
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_EQ(keys->size(), 2u);
  EXPECT_EQ(skipped, 2u);
  EXPECT_FALSE(jwt::parseJwks("{}").ok());
  EXPECT_FALSE(jwt::parseJwks("not json").ok());
}

TEST(JwsVectors, Rfc7515AndRfc8037) {
  EXPECT_TRUE(verifies(kHsToken, key(kHsJwk)));
  EXPECT_TRUE(verifies(kRsToken, key(kRsJwk)));
  EXPECT_TRUE(verifies(kEsToken, key(kEsJwk)));
  std::string sig;
  ASSERT_TRUE(jwt::base64UrlDecode(kEdSig, sig));
  EXPECT_TRUE(jwt::verifySignature(Alg::kEdDSA, key(kEdJwk), kEdInput, sig));
  sig[0] ^= 1;
  EXPECT_FALSE(jwt::verifySignature(Alg::kEdDSA, key(kEdJwk), kEdInput, sig));
  for (const char* t : {kHsToken, kRsToken, kEsToken}) {
    EXPECT_FALSE(verifies(tamper(t).c_str(), key(kHsJwk)));
    EXPECT_FALSE(verifies(tamper(t).c_str(), key(kRsJwk)));
    EXPECT_FALSE(verifies(tamper(t).c_str(), key(kEsJwk)));
  }
}

TEST(JwsVectors, KeyTypeMustFitTheAlgorithm) {
  // Each vector verifies only with its own key family: no HS/RS or RS/ES confusion.
  EXPECT_FALSE(verifies(kHsToken, key(kRsJwk)));
  EXPECT_FALSE(verifies(kRsToken, key(kHsJwk)));
  EXPECT_FALSE(verifies(kEsToken, key(kRsJwk)));
  EXPECT_FALSE(key(kRsJwk).usableFor(Alg::kHS256));
  EXPECT_FALSE(key(kHsJwk).usableFor(Alg::kRS256));
  EXPECT_FALSE(key(kEsJwk).usableFor(Alg::kES384));
  EXPECT_TRUE(key(kRsJwk).usableFor(Alg::kPS512));
  // An RSA key pinned to RS256 refuses PS256 tokens.
  json pinned = json::parse(kRsJwk);
  pinned["alg"] = "RS256";
  auto k = jwt::parseJwk(pinned);
  ASSERT_TRUE(k.ok());
  EXPECT_TRUE(k->usableFor(Alg::kRS256));
  EXPECT_FALSE(k->usableFor(Alg::kPS256));
  // The HMAC path refuses a public key even if called directly.
  jwt::Token t;
  ASSERT_EQ(jwt::decodeToken(kHsToken, t), jwt::DecodeError::kNone);
  EXPECT_FALSE(jwt::verifySignature(Alg::kHS256, key(kRsJwk), t.signing_input, t.signature));
}

TEST(JwsDecode, RejectsNoneCritAndMalformed) {
  jwt::Token t;
  const std::string none = jwt::base64UrlEncode(R"({"alg":"none"})") + "." +
                           jwt::base64UrlEncode(R"({"sub":"x"})") + ".";
  EXPECT_EQ(jwt::decodeToken(none, t), jwt::DecodeError::kAlgorithm);
  const std::string crit = jwt::base64UrlEncode(R"({"alg":"HS256","crit":["b64"]})") + "." +
                           jwt::base64UrlEncode(R"({"sub":"x"})") + ".c2ln";
  EXPECT_EQ(jwt::decodeToken(crit, t), jwt::DecodeError::kAlgorithm);
  for (std::string bad : {"", "a.b", "a.b.c.d", "..", "e30.e30.", "bm90anNvbg.e30.c2ln"}) {
    EXPECT_NE(jwt::decodeToken(bad, t), jwt::DecodeError::kNone) << bad;
  }
  EXPECT_EQ(jwt::parseAlg("none"), std::nullopt);
  EXPECT_EQ(jwt::algName(*jwt::parseAlg("PS384")), "PS384");
}

// "header.claims.<hmac-sha256 under kDupSecret>" from JSON texts (duplicates survive as sent).
constexpr std::string_view kDupSecret = "0123456789abcdef0123456789abcdef";
std::string signedToken(const std::string& header, const std::string& claims) {
  std::string input = jwt::base64UrlEncode(header) + "." + jwt::base64UrlEncode(claims);
  return input + "." + jwt::base64UrlEncode(hmac(HmacAlgorithm::kSha256, kDupSecret, input));
}

TEST(JwsDecode, RefusesDuplicateMemberNames) {
  jwt::Token t;
  const std::string hs = R"({"alg":"HS256"})";
  // Two exp: the first expired, the last valid. A last-wins parser would accept it.
  EXPECT_EQ(jwt::decodeToken(signedToken(hs, R"({"sub":"a","exp":1,"exp":4000000000})"), t),
            jwt::DecodeError::kDuplicateMember);
  // In the JOSE header, and spelled with an escape (the same name once decoded).
  EXPECT_EQ(jwt::decodeToken(signedToken(R"({"alg":"HS256","kid":"a","kid":"b"})", "{}"), t),
            jwt::DecodeError::kDuplicateMember);
  EXPECT_EQ(jwt::decodeToken(signedToken(hs, R"({"sub":"a","\u0073ub":"b"})"), t),
            jwt::DecodeError::kDuplicateMember);
  // At any depth of the claims.
  EXPECT_EQ(jwt::decodeToken(signedToken(hs, R"({"tenant":{"tier":"gold","tier":"free"}})"), t),
            jwt::DecodeError::kDuplicateMember);
  EXPECT_EQ(jwt::decodeToken(signedToken(hs, R"({"a":[{"x":1},{"y":1,"y":2}]})"), t),
            jwt::DecodeError::kDuplicateMember);
  // The same name in sibling objects, or as a value, is not a duplicate.
  EXPECT_EQ(
      jwt::decodeToken(
          signedToken(hs, R"({"a":{"x":1},"b":{"x":2,"c":{"a":"a"}},"x":[{"x":0},{"x":1}]})"), t),
      jwt::DecodeError::kNone);
}

TEST(JwtAuthFilter, DuplicateClaimIsRefusedUnderItsOwnReason) {
  auto f = testutil::buildPolicy(
      "jwt_auth", std::string("{keys: [{secret: ") + std::string(kDupSecret) + "}]}");
  ASSERT_NE(f, nullptr);
  auto run = [&](const std::string& token) {
    http::RequestContext ctx;
    ctx.request.headers.add("authorization", "Bearer " + token);
    auto ref = f->create();
    ref.filter->onRequestHeaders(ctx);
    return ctx.consumer.empty() ? ctx.local_reply.status : 200;
  };
  // Read from /metrics' text: the family's rendering is the contract, not the counter type.
  auto counted = [] {
    const std::string text = metrics::Registry::process().render();
    const std::string series =
        "gatehouse_auth_rejections_total{policy=\"jwt_auth\",reason=\"duplicate_member\"} ";
    size_t at = text.find(series);
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + series.size()));
  };
  const uint64_t before = counted();
  const std::string hs = R"({"alg":"HS256"})";
  EXPECT_EQ(run(signedToken(hs, R"({"sub":"alice","exp":4000000000})")), 200);
  EXPECT_EQ(run(signedToken(hs, R"({"sub":"alice","exp":1,"exp":4000000000})")), 401);
  EXPECT_EQ(run(signedToken(hs, R"({"sub":"alice","sub":"admin","exp":4000000000})")), 401);
  EXPECT_EQ(counted(), before + 2);
  EXPECT_EQ(jwt_auth::reasonName(jwt_auth::Reason::kDuplicateMember), "duplicate_member");
}

TEST(JwtClaims, TimesIssuerAudienceRequired) {
  using jwt_auth::Reason;
  jwt_auth::ClaimChecks c;
  c.skew = 10;
  const int64_t now = 1'700'000'000;
  auto check = [&](json p) { return jwt_auth::checkClaims(p, c, now); };
  EXPECT_EQ(check({{"exp", now + 100}}), Reason::kNone);
  EXPECT_EQ(check({{"exp", now - 5}}), Reason::kNone);  // within the skew
  EXPECT_EQ(check({{"exp", now - 11}}), Reason::kExpired);
  EXPECT_EQ(check(json::object()), Reason::kClaims);  // exp required by default
  EXPECT_EQ(check({{"exp", "soon"}}), Reason::kClaims);
  EXPECT_EQ(check({{"exp", now + 100}, {"nbf", now + 50}}), Reason::kNotYetValid);
  EXPECT_EQ(check({{"exp", now + 100}, {"nbf", now + 5}}), Reason::kNone);
  EXPECT_EQ(check({{"exp", now + 100}, {"iat", now + 60}}), Reason::kNotYetValid);
  EXPECT_EQ(check({{"exp", 1.7e9 + 100.5}}), Reason::kNone);
  c.max_age = 60;
  EXPECT_EQ(check({{"exp", now + 100}}), Reason::kClaims);
  EXPECT_EQ(check({{"exp", now + 100}, {"iat", now - 100}}), Reason::kExpired);
  c.max_age = 0;
  c.issuers = {"https://a", "https://b"};
  EXPECT_EQ(check({{"exp", now + 1}, {"iss", "https://b"}}), Reason::kNone);
  EXPECT_EQ(check({{"exp", now + 1}, {"iss", "https://c"}}), Reason::kWrongIssuer);
  EXPECT_EQ(check({{"exp", now + 1}}), Reason::kWrongIssuer);
  c.issuers.clear();
  c.audiences = {"api"};
  EXPECT_EQ(check({{"exp", now + 1}, {"aud", "api"}}), Reason::kNone);
  EXPECT_EQ(check({{"exp", now + 1}, {"aud", {"x", "api"}}}), Reason::kNone);
  EXPECT_EQ(check({{"exp", now + 1}, {"aud", {"x"}}}), Reason::kWrongAudience);
  EXPECT_EQ(check({{"exp", now + 1}}), Reason::kWrongAudience);
  c.audiences.clear();
  c.required = {"sub"};
  EXPECT_EQ(check({{"exp", now + 1}}), Reason::kClaims);
  EXPECT_EQ(check({{"exp", now + 1}, {"sub", "u"}}), Reason::kNone);
  c.require_exp = false;
  EXPECT_EQ(check({{"sub", "u"}}), Reason::kNone);
}

TEST(BearerRules, ScopesAndClaimValues) {
  bearer::Rules r;
  ASSERT_TRUE(bearer::parseRules(YAML::Load("{scopes: [read, write], claims: "
                                            "{role: [admin, ops], realm.tier: gold}}"),
                                 r)
                  .ok());
  json ok = {{"scope", "read  write other"}, {"role", "ops"}, {"realm", {{"tier", "gold"}}}};
  EXPECT_TRUE(bearer::rulesPass(r, ok));
  json scp = ok;
  scp.erase("scope");
  scp["scp"] = {"read", "write"};
  EXPECT_TRUE(bearer::rulesPass(r, scp));
  json missing = ok;
  missing["scope"] = "read";
  EXPECT_FALSE(bearer::rulesPass(r, missing));
  json role = ok;
  role["role"] = {"user", "admin"};
  EXPECT_TRUE(bearer::rulesPass(r, role));
  role["role"] = "user";
  EXPECT_FALSE(bearer::rulesPass(r, role));
  json tier = ok;
  tier["realm"]["tier"] = "silver";
  EXPECT_FALSE(bearer::rulesPass(r, tier));
  std::string v;
  EXPECT_TRUE(bearer::claimHeaderValue(json({"a", "b"}), v));
  EXPECT_EQ(v, "a,b");
  EXPECT_TRUE(bearer::claimHeaderValue(json(42), v));
  EXPECT_EQ(v, "42");
  EXPECT_FALSE(bearer::claimHeaderValue(json("a\r\nb"), v));
}

TEST(BearerSource, ExtractsFromTheFirstSourceAndRefusesAmbiguity) {
  bearer::TokenSource src;
  src.cookie = "session";
  src.query = "access_token";
  std::string tok;
  http::Request req;
  EXPECT_EQ(bearer::extractToken(req, src, tok), bearer::Extract::kNone);
  req.headers.add("Authorization", "bearer   abc.def.ghi ");
  ASSERT_EQ(bearer::extractToken(req, src, tok), bearer::Extract::kFound);
  EXPECT_EQ(tok, "abc.def.ghi");
  req.headers.add("authorization", "Bearer other");
  EXPECT_EQ(bearer::extractToken(req, src, tok), bearer::Extract::kMalformed);
  req.headers.clear();
  req.headers.add("authorization", "Basic dXNlcjpwdw==");
  EXPECT_EQ(bearer::extractToken(req, src, tok), bearer::Extract::kMalformed);
  req.headers.clear();
  req.headers.add("cookie", "a=1; session=\"c.o.k\"; b=2");
  ASSERT_EQ(bearer::extractToken(req, src, tok), bearer::Extract::kFound);
  EXPECT_EQ(tok, "c.o.k");
  req.headers.add("cookie", "session=again");
  EXPECT_EQ(bearer::extractToken(req, src, tok), bearer::Extract::kMalformed);
  req.headers.clear();
  req.query = "x=1&access_token=q.q.q";
  ASSERT_EQ(bearer::extractToken(req, src, tok), bearer::Extract::kFound);
  EXPECT_EQ(tok, "q.q.q");

  // strip removes the token everywhere and keeps everything else.
  req.headers.add("authorization", "Bearer t");
  req.headers.add("cookie", "a=1; session=t; b=2");
  req.headers.add("cookie", "session=t");
  req.query = "a=1&access_token=t&b=2";
  bearer::stripToken(req, src);
  EXPECT_FALSE(req.headers.has("authorization"));
  EXPECT_EQ(req.headers.count("cookie"), 1u);
  EXPECT_EQ(req.headers.get("cookie"), "a=1; b=2");
  EXPECT_EQ(req.query, "a=1&b=2");
}

TEST(BearerCache, BoundedAndHonoursExpiry) {
  bearer::TokenCache cache(2);
  bearer::Identity id;
  id.consumer = "a";
  id.expires = 100;
  cache.put(sha256("t1"), id);
  cache.put(sha256("t2"), id);
  cache.put(sha256("t3"), id);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.find(sha256("t1"), 50), nullptr);  // evicted first
  ASSERT_NE(cache.find(sha256("t3"), 50), nullptr);
  EXPECT_EQ(cache.find(sha256("t3"), 100), nullptr);  // expired
  for (int i = 0; i < 100; ++i)
    cache.put(sha256(std::to_string(i)), id);
  EXPECT_LE(cache.size(), 2u);
}

TEST(JwtAuthConfig, ErrorsNameTheOption) {
  auto err = [](const std::string& yaml) {
    std::string e;
    EXPECT_EQ(testutil::buildPolicy("jwt_auth", yaml, &e), nullptr) << yaml;
    return e;
  };
  EXPECT_NE(err("{}").find("no keys"), std::string::npos);
  EXPECT_NE(err("{keys: [{secret: short}]}").find("32 bytes"), std::string::npos);
  EXPECT_NE(err("{keys: [{secret: 0123456789abcdef0123456789abcdef, alg: RS256}]}").find("alg"),
            std::string::npos);
  EXPECT_NE(err("{keys: [{secret: 0123456789abcdef0123456789abcdef}], algorithms: [none]}")
                .find("algorithms"),
            std::string::npos);
  EXPECT_NE(err("{jwks_uri: 'ftp://x/'}").find("jwks_uri"), std::string::npos);
  EXPECT_NE(err("{keys: [{pem: nope}]}").find("keys[0].pem"), std::string::npos);
  EXPECT_NE(err("{keys: [{secret: 0123456789abcdef0123456789abcdef}], jwks_refresh: 5m}")
                .find("jwks_refresh"),
            std::string::npos);
  EXPECT_NE(err("{keys: [{secret: 0123456789abcdef0123456789abcdef}], bogus: 1}").find("bogus"),
            std::string::npos);
  // Inline JWKS as a YAML map and as a JSON string both load.
  EXPECT_NE(
      testutil::buildPolicy("jwt_auth", std::string("{jwks: '{\"keys\": [") + kEsJwk + "]}'}"),
      nullptr);
  EXPECT_NE(testutil::buildPolicy("jwt_auth", std::string("{jwks: {keys: [") + kRsJwk + "]}}"),
            nullptr);
}

}  // namespace
}  // namespace gatehouse::policies

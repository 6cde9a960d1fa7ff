// Credential primitives, the consumer registry and its config section, and the pure parts of
// hmac_auth (signature parameters, signing string, HTTP dates, replay table).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config_test_util.h"
#include "policies/auth/consumers.h"
#include "policies/auth/credentials.h"
#include "policies/hmac_auth/hmac_auth.h"
#include "server/snapshot_builder.h"

namespace gatehouse {
namespace {

using config::ConfigError;
using ::testing::HasSubstr;
using namespace config::test_util;  // NOLINT: test helpers

TEST(Credentials, BcryptKnownVectorsVerify) {
  // crypt_blowfish's published test vector, and $2b$ / $2y$ hashes made by libxcrypt.
  struct Case {
    const char* hash;
    const char* password;
  } cases[] = {
      {"$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", "U*U"},
      {"$2b$04$GoXkKWr.DLgXwvEgZMLSgunxq8ilacEu7YAlPTgYy7LvpYE2MuzFy", "s3cret"},
      {"$2y$04$2zrVcdykhms4B1pMx4RLMe9AYdYorYReGy3JRl2gnh.3Pvcwosoh6", "s3cret"},
  };
  for (const auto& c : cases) {
    auto h = policies::parsePasswordHash(c.hash);
    ASSERT_TRUE(h.ok()) << c.hash << ": " << h.error().message;
    EXPECT_EQ(h->kind, policies::PasswordHash::Kind::kBcrypt);
    EXPECT_TRUE(policies::verifyPassword(*h, c.password)) << c.hash;
    EXPECT_FALSE(policies::verifyPassword(*h, std::string(c.password) + "x")) << c.hash;
    EXPECT_FALSE(policies::verifyPassword(*h, "")) << c.hash;
    EXPECT_FALSE(policies::verifyPassword(*h, std::string(c.password) + '\0')) << c.hash;
  }
}

TEST(Credentials, Sha256SaltedAndPlain) {
  // sha256("pepper" + "hunter2")
  auto h = policies::parsePasswordHash(
      "sha256:pepper:ca458f67a1e64e60f40414c062c57abbfc1d41b5d0c30cd07d12704540067f21");
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->salt, "pepper");
  EXPECT_TRUE(policies::verifyPassword(*h, "hunter2"));
  EXPECT_FALSE(policies::verifyPassword(*h, "hunter3"));
  EXPECT_FALSE(policies::verifyPassword(*h, "pepperhunter2"));
  // sha256("password"), no salt
  auto plain = policies::parsePasswordHash(
      "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8");
  ASSERT_TRUE(plain.ok());
  EXPECT_TRUE(policies::verifyPassword(*plain, "password"));
}

TEST(Credentials, BadHashesAreConfigErrors) {
  for (const char* bad :
       {"hunter2", "sha256:abc",
        "sha256::5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8", "$2b$10$short",
        "$2x$10$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"}) {
    EXPECT_FALSE(policies::parsePasswordHash(bad).ok()) << bad;
  }
  EXPECT_THAT(policies::parsePasswordHash("hunter2").error().message, HasSubstr("plaintext"));
  EXPECT_THAT(
      policies::parsePasswordHash("$2b$31$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW")
          .error()
          .message,
      HasSubstr("cost 31"));
}

TEST(Credentials, Base64RoundTripAndStrictness) {
  const std::vector<std::string> inputs = {"",     "f",     "fo",     "foo",
                                           "foob", "fooba", "foobar", std::string("\0\xff", 2)};
  for (const std::string& s : inputs) {
    auto d = policies::base64Decode(policies::base64Encode(s));
    ASSERT_TRUE(d.has_value()) << s;
    EXPECT_EQ(*d, s);
  }
  EXPECT_EQ(policies::base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(policies::base64Encode("fo"), "Zm8=");
  EXPECT_FALSE(policies::base64Decode("Zm9").has_value());
  EXPECT_FALSE(policies::base64Decode("Zm=v").has_value());
  EXPECT_FALSE(policies::base64Decode("Zm 9").has_value());
}

TEST(Credentials, HmacKnownAnswer) {
  const std::string signing =
      "@request-target: post /foo?a=1\nhost: example.com\ndate: Sun, 06 Nov 1994 08:49:37 "
      "GMT\ndigest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=";
  const std::string key = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(policies::base64Encode(policies::hmac(policies::HmacAlgorithm::kSha256, key, signing)),
            "YWrhuNevUJ6xaJk8nLKivLfEhQTctT0ld+cdCBBx9Lo=");
  EXPECT_EQ(
      policies::base64Encode(policies::hmac(policies::HmacAlgorithm::kSha512, key, signing)),
      "ZxTm4cxhlfdbwxHt3EGaHrnMsDaoqf4MN4nwD9xVbbJucx4ElEHP2XRVs7xUbuLZfDwI7v2+3CpXjosgTY0fBg==");
}

TEST(HmacAuth, SigningStringConstruction) {
  http::Request req;
  req.method = "POST";
  req.path = "/foo";
  req.query = "a=1";
  req.authority = "example.com";
  req.headers.add("Date", "Sun, 06 Nov 1994 08:49:37 GMT");
  req.headers.add("Digest", "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=");
  req.headers.add("X-Multi", "a");
  req.headers.add("x-multi", "b");
  std::string out, missing;
  ASSERT_TRUE(policies::hmac_auth::buildSigningString(
      req, {"@request-target", "host", "date", "digest"}, out, missing));
  EXPECT_EQ(out,
            "@request-target: post /foo?a=1\nhost: example.com\ndate: Sun, 06 Nov 1994 08:49:37 "
            "GMT\ndigest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=");
  ASSERT_TRUE(
      policies::hmac_auth::buildSigningString(req, {"(request-target)", "x-multi"}, out, missing));
  EXPECT_EQ(out, "(request-target): post /foo?a=1\nx-multi: a, b");
  EXPECT_FALSE(policies::hmac_auth::buildSigningString(req, {"date", "x-absent"}, out, missing));
  EXPECT_EQ(missing, "x-absent");
}

TEST(HmacAuth, ParsesSignatureParameters) {
  auto p = policies::hmac_auth::parseSignature(
      R"(keyId="k1", algorithm="hmac-sha256",headers="@request-target Host date",signature="YWJj")");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->key_id, "k1");
  EXPECT_EQ(p->algorithm, "hmac-sha256");
  EXPECT_EQ(p->headers, (std::vector<std::string>{"@request-target", "host", "date"}));
  EXPECT_EQ(p->signature, "YWJj");
  EXPECT_FALSE(policies::hmac_auth::parseSignature(R"(keyId="k1")").has_value());
  EXPECT_FALSE(policies::hmac_auth::parseSignature(R"(keyId=k1,signature="x")").has_value());
  EXPECT_FALSE(policies::hmac_auth::parseSignature(R"(keyId="k1,signature="x")").has_value());
  EXPECT_FALSE(
      policies::hmac_auth::parseSignature(R"(keyId="a",keyId="b",signature="x")").has_value());
}

TEST(HmacAuth, HttpDateAndSkew) {
  using policies::hmac_auth::parseHttpDate;
  EXPECT_EQ(parseHttpDate("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
  EXPECT_EQ(parseHttpDate("Tue, 29 Feb 2028 23:59:59 GMT"), 1835481599);
  EXPECT_FALSE(parseHttpDate("Sunday, 06-Nov-94 08:49:37 GMT").has_value());
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 08:49:37 UTC").has_value());
  EXPECT_FALSE(parseHttpDate("Sun, 06 Foo 1994 08:49:37 GMT").has_value());
  EXPECT_FALSE(parseHttpDate("Sun, 06 Nov 1994 25:49:37 GMT").has_value());
}

TEST(HmacAuth, ReplayTableRejectsExactRepeatsUntilExpiry) {
  static int run_id = 0;  // the table is process-wide: a repeated test needs a fresh MAC
  const std::string mac = std::to_string(++run_id) + "23456789abcdef0123456789abcdef-test-mac";
  EXPECT_FALSE(policies::hmac_auth::seenBefore(mac, 1000, 900));
  EXPECT_TRUE(policies::hmac_auth::seenBefore(mac, 1000, 950));
  EXPECT_TRUE(policies::hmac_auth::seenBefore(mac, 1000, 1000));
  EXPECT_FALSE(policies::hmac_auth::seenBefore(mac, 2000, 1001));  // expired: recorded again
  EXPECT_TRUE(policies::hmac_auth::seenBefore(mac, 2000, 1500));
}

constexpr std::string_view kRegistry = R"(consumers:
  - name: alice
    groups: [admins]
    metadata: {tier: gold}
    credentials:
      api_keys: [{sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8}]
      basic: [{password: "sha256:pepper:ca458f67a1e64e60f40414c062c57abbfc1d41b5d0c30cd07d12704540067f21"}]
      hmac: [{key_id: alice-1, secret: 0123456789abcdef0123456789abcdef}]
  - name: bob
    credentials:
      basic: [{username: bobby, password: "$2b$04$GoXkKWr.DLgXwvEgZMLSgunxq8ilacEu7YAlPTgYy7LvpYE2MuzFy"}]
)";

TEST(ConsumersConfig, LoadsAndCompilesTheRegistry) {
  auto cfg = std::make_shared<config::Config>(loadOk(kRegistry));
  ASSERT_EQ(cfg->consumers.size(), 2u);
  EXPECT_EQ(cfg->consumers[0].metadata[0], (std::pair<std::string, std::string>{"tier", "gold"}));
  EXPECT_EQ(cfg->consumers[0].basic[0].username, "alice");  // defaults to the consumer name
  auto built = server::buildSnapshot(cfg, nullptr, 1);
  ASSERT_TRUE(built.snapshot) << (built.errors.empty() ? "" : built.errors[0]);
  const auto& reg = *built.snapshot->consumers;
  ASSERT_NE(reg.byName("alice"), nullptr);
  EXPECT_EQ(reg.byName("alice")->groups, std::vector<std::string>{"admins"});
  ASSERT_NE(reg.findBasic("bobby"), nullptr);
  EXPECT_EQ(reg.findBasic("bobby")->consumer->name, "bob");
  ASSERT_NE(reg.findHmac("alice-1"), nullptr);
  EXPECT_EQ(reg.findHmac("alice-1")->credential->secret, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(reg.findBasic("alice")->credential->password.kind,
            policies::PasswordHash::Kind::kSha256);
}

TEST(ConsumersConfig, ErrorsNameTheOption) {
  EXPECT_CONFIG_ERROR(onlyError("consumers:\n  - {name: a}\n  - {name: a}\n"), 3,
                      "consumers[1].name", "duplicate consumer name 'a' (first at line 2)");
  EXPECT_CONFIG_ERROR(
      onlyError("consumers:\n  - name: a\n    credentials: {basic: [{password: hunter2}]}\n"), 3,
      "consumers[0].credentials.basic[0].password", "plaintext passwords are not accepted");
  EXPECT_CONFIG_ERROR(onlyError("consumers:\n  - name: a\n    credentials: {api_keys: [secret]}\n"),
                      3, "consumers[0].credentials.api_keys[0]", "plaintext keys are not accepted");
  EXPECT_CONFIG_ERROR(
      onlyError("consumers:\n  - name: a\n    credentials: {hmac: [{key_id: k, secret: short}]}\n"),
      3, "consumers[0].credentials.hmac[0].secret", "at least 16 bytes");
  EXPECT_CONFIG_ERROR(
      onlyError("consumers:\n  - name: a\n    credentials: {hmac: [{key_id: k}]}\n"), 3,
      "consumers[0].credentials.hmac[0]", "exactly one of secret, secret_env");
  EXPECT_CONFIG_ERROR(onlyError("consumers:\n  - name: a\n    credentials: {passwd: []}\n"), 3,
                      "consumers[0].credentials.passwd", "unknown");
  EXPECT_CONFIG_ERROR(onlyError(R"(consumers:
  - {name: a, credentials: {basic: [{username: u, password: "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}]}}
  - {name: b, credentials: {basic: [{username: u, password: "sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"}]}}
)"),
                      3, "consumers[1].credentials.basic[0].username",
                      "duplicate basic-auth username 'u'");
  EXPECT_CONFIG_ERROR(onlyError("consumers:\n  - name: a\n    metadata: {tier: \"a\\nb\"}\n"), 3,
                      "consumers[0].metadata.tier", "control characters");
}

TEST(ConsumersConfig, UnknownConsumerReferencedByAPolicyFailsTheSnapshot) {
  auto cfg = std::make_shared<config::Config>(loadOk(std::string(kRegistry) + R"(
routes:
  - direct_response: {status: 200}
    policies:
      - {name: basic_auth, config: {consumers: [alice, carol]}}
)"));
  auto built = server::buildSnapshot(cfg, nullptr, 1);
  ASSERT_FALSE(built.snapshot);
  ASSERT_EQ(built.errors.size(), 1u);
  EXPECT_THAT(built.errors[0], HasSubstr("routes[0].policies[0].config"));
  EXPECT_THAT(built.errors[0], HasSubstr("unknown consumer 'carol'"));

  auto acl = std::make_shared<config::Config>(loadOk(std::string(kRegistry) + R"(
routes:
  - direct_response: {status: 200}
    policies:
      - {name: key_auth, config: {anonymous: guest}}
      - {name: acl, config: {allow: {consumers: [alice, guest, mallory]}}}
)"));
  built = server::buildSnapshot(acl, nullptr, 1);
  ASSERT_FALSE(built.snapshot);
  ASSERT_EQ(built.errors.size(), 1u);
  EXPECT_THAT(built.errors[0], HasSubstr("allow.consumers[2]: unknown consumer 'mallory'"));
}

}  // namespace
}  // namespace gatehouse

// Policy `cert_auth`: a verified client certificate mapped to a registry consumer by its
// fingerprint, a subjectAltName entry or its subject; ambiguity, rejections and config errors.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "http/filter.h"
#include "policies/auth/auth_metrics.h"
#include "policies/auth/consumers.h"

namespace gatehouse {
namespace {

using Kind = policies::CertificateCredential::Kind;
using policies::auth_metrics::Reason;

const std::string kAliceSha256(64, 'a');
const std::string kOther(64, 'f');

std::shared_ptr<const policies::ConsumerRegistry> registry() {
  std::vector<policies::Consumer> list(4);
  list[0].name = "alice";
  list[0].groups = {"admins"};
  list[0].certificates = {{Kind::kSha256, kAliceSha256}};
  list[1].name = "bob";
  list[1].certificates = {{Kind::kSan, "URI:spiffe://example.test/bob"}};
  list[2].name = "carol";
  list[2].certificates = {{Kind::kSubject, "CN=carol.test,O=Example"}};
  list[3].name = "dave";  // no certificate
  list[3].key_digests.push_back(policies::sha256("dave-key"));
  return *policies::ConsumerRegistry::create(std::move(list));
}

http::FilterFactoryPtr build(const std::string& yaml, std::string* error = nullptr) {
  http::PolicyContext ctx;
  ctx.consumers = registry();
  auto r = http::findPolicy("cert_auth")->build(YAML::Load(yaml), ctx);
  if (!r.ok()) {
    if (error) *error = r.error().message;
    return nullptr;
  }
  return *r;
}

struct Cert {
  std::string subject;
  std::vector<std::string> sans;
  std::string sha256;
};

// The consumer the policy set, or "<status>" when it answered.
std::string identify(const http::FilterFactoryPtr& f, const Cert* cert) {
  http::RequestContext ctx;
  if (cert) {
    ctx.client_cert_subject = cert->subject;
    ctx.client_cert_san_entries = cert->sans;
    ctx.client_cert_sha256 = cert->sha256;
  }
  auto ref = f->create();
  if (ref.filter->onRequestHeaders(ctx) == http::Verdict::kRespond) {
    return "<" + std::to_string(ctx.local_reply.status) + ">";
  }
  return ctx.consumer;
}

TEST(CertAuth, MapsFingerprintSanOrSubjectToAConsumer) {
  auto f = build("{}");
  ASSERT_TRUE(f);
  Cert alice{"CN=alice", {"DNS:alice.test"}, kAliceSha256};
  Cert bob{"CN=bob", {"DNS:bob.test", "URI:spiffe://example.test/bob"}, kOther};
  Cert carol{"CN=carol.test,O=Example", {}, kOther};
  EXPECT_EQ(identify(f, &alice), "alice");
  EXPECT_EQ(identify(f, &bob), "bob");
  EXPECT_EQ(identify(f, &carol), "carol");
}

TEST(CertAuth, MissingUnknownOrAmbiguousCertificateIs401) {
  auto f = build("{}");
  ASSERT_TRUE(f);
  const uint64_t missing = policies::auth_metrics::count("cert_auth", Reason::kMissing);
  const uint64_t bad = policies::auth_metrics::count("cert_auth", Reason::kBadCredentials);
  EXPECT_EQ(identify(f, nullptr), "<401>");
  Cert stranger{"CN=stranger", {"DNS:stranger.test"}, kOther};
  EXPECT_EQ(identify(f, &stranger), "<401>");
  // One entry whose value holds a comma is one entry: it is not bob's SAN.
  Cert comma{"CN=x", {"URI:spiffe://example.test/x,URI:spiffe://example.test/bob"}, kOther};
  EXPECT_EQ(identify(f, &comma), "<401>");
  // Bob's SAN and carol's subject on one certificate: which consumer? Neither.
  Cert both{"CN=carol.test,O=Example", {"URI:spiffe://example.test/bob"}, kOther};
  EXPECT_EQ(identify(f, &both), "<401>");
  EXPECT_EQ(policies::auth_metrics::count("cert_auth", Reason::kMissing), missing + 1);
  EXPECT_EQ(policies::auth_metrics::count("cert_auth", Reason::kBadCredentials), bad + 3);
}

TEST(CertAuth, ConsumerSubsetAndOptional) {
  auto only_bob = build("{consumers: [bob]}");
  ASSERT_TRUE(only_bob);
  Cert alice{"CN=alice", {}, kAliceSha256};
  Cert bob{"CN=bob", {"URI:spiffe://example.test/bob"}, kOther};
  EXPECT_EQ(identify(only_bob, &alice), "<401>");
  EXPECT_EQ(identify(only_bob, &bob), "bob");
  // Optional: no certificate leaves the request to a later policy; a wrong one is still a 401.
  auto optional = build("{optional: true}");
  ASSERT_TRUE(optional);
  EXPECT_EQ(identify(optional, nullptr), "");
  Cert stranger{"CN=stranger", {}, kOther};
  EXPECT_EQ(identify(optional, &stranger), "<401>");
}

TEST(CertAuth, ConfigErrors) {
  std::string e;
  EXPECT_FALSE(build("{consumers: [dave]}", &e));
  EXPECT_NE(e.find("has no certificate credentials"), std::string::npos) << e;
  EXPECT_FALSE(build("{consumers: [{name: x, keys: []}]}", &e));
  EXPECT_NE(e.find("top-level consumers registry"), std::string::npos) << e;
  EXPECT_FALSE(build("{bogus: 1}", &e));
  EXPECT_NE(e.find("unknown option 'bogus'"), std::string::npos) << e;
  http::PolicyContext empty;
  EXPECT_FALSE(http::findPolicy("cert_auth")->build(YAML::Load("{}"), empty).ok());
}

TEST(CertAuth, RegistryRefusesACertificateGivenTwice) {
  std::vector<policies::Consumer> list(2);
  list[0].name = "a";
  list[0].certificates = {{Kind::kSubject, "CN=x"}, {Kind::kSubject, "CN=x"}};
  list[1].name = "b";
  EXPECT_FALSE(policies::ConsumerRegistry::create(std::move(list)).ok());
}

}  // namespace
}  // namespace gatehouse

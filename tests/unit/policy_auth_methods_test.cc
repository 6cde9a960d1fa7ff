// Policies basic_auth, hmac_auth and require_consumer, key_auth over the consumer registry,
// and the shared rejection counters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>

#include "http/filter.h"
#include "metrics/registry.h"
#include "policies/auth/auth_metrics.h"
#include "policies/auth/consumers.h"
#include "policies/auth/credentials.h"
#include "policies/basic_auth/basic_auth.h"
#include "policies/offload.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

namespace gatehouse {
namespace {

using policies::auth_metrics::Reason;
using ::testing::HasSubstr;

const char* kSecret = "0123456789abcdef0123456789abcdef";

std::shared_ptr<const policies::ConsumerRegistry> registry() {
  std::vector<policies::Consumer> list(2);
  list[0].name = "alice";
  list[0].groups = {"admins"};
  list[0].metadata = {{"tier", "gold"}};
  list[0].key_digests.push_back(policies::sha256("alice-key"));
  list[0].basic.push_back({"alice", *policies::parsePasswordHash(
                                        "sha256:pepper:ca458f67a1e64e60f40414c062c57abbfc1d41b5d0c"
                                        "30cd07d12704540067f21")});  // hunter2
  list[0].hmac.push_back({"alice-1", kSecret});
  list[1].name = "bob";
  list[1].basic.push_back(
      {"bob", *policies::parsePasswordHash(
                  "$2b$04$GoXkKWr.DLgXwvEgZMLSgunxq8ilacEu7YAlPTgYy7LvpYE2MuzFy")});  // s3cret
  return *policies::ConsumerRegistry::create(std::move(list));
}

// Builds one policy after `preceding` (the chain so far), with the registry above.
http::FilterFactoryPtr build(std::string_view name, const std::string& yaml,
                             std::vector<http::FilterFactoryPtr>* chain = nullptr,
                             std::string* error = nullptr) {
  http::PolicyContext ctx;
  ctx.consumers = registry();
  if (chain) ctx.preceding = *chain;
  auto r = http::findPolicy(name)->build(YAML::Load(yaml), ctx);
  if (!r.ok()) {
    if (error) *error = r.error().message;
    return nullptr;
  }
  if (chain) chain->push_back(*r);
  return *r;
}

runtime::Task<void> collect(runtime::Task<http::Verdict> t, http::Verdict* out, bool* done) {
  *out = co_await std::move(t);
  *done = true;
}

// Runs the headers phase; a kPause is driven to completion (no loop: offload runs inline).
http::Verdict run(const http::FilterFactoryPtr& f, http::RequestContext& ctx) {
  auto ref = f->create();
  http::Verdict v = ref.filter->onRequestHeaders(ctx);
  if (v != http::Verdict::kPause) return v;
  bool done = false;
  runtime::spawn(collect(std::move(ctx.pending), &v, &done));
  EXPECT_TRUE(done);
  return v;
}

std::string basic(std::string_view user, std::string_view pw) {
  return "Basic " + policies::base64Encode(std::string(user) + ":" + std::string(pw));
}

TEST(BasicAuth, Sha256AndBcryptFromTheRegistry) {
  auto f = build("basic_auth", "{realm: api, metadata_headers: {tier: x-tier}}");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.headers.add("authorization", basic("alice", "hunter2"));
  ctx.request.headers.add("x-tier", "spoofed");
  EXPECT_EQ(run(f, ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.consumer, "alice");
  EXPECT_EQ(ctx.request.headers.get("x-tier"), "gold");
  EXPECT_EQ(ctx.request.headers.count("x-tier"), 1u);

  using policies::basic_auth::bcryptCounters;
  const auto checks = bcryptCounters().verified + bcryptCounters().cache_hits;
  http::RequestContext b;
  b.request.headers.add("Authorization", basic("bob", "s3cret"));
  EXPECT_EQ(run(f, b), http::Verdict::kContinue);
  EXPECT_EQ(b.consumer, "bob");
  // bcrypt ran, or (when the test repeats in one process) the cache answered.
  EXPECT_EQ(bcryptCounters().verified + bcryptCounters().cache_hits, checks + 1);
  const auto verified = bcryptCounters().verified;
  const auto hits = bcryptCounters().cache_hits;
  http::RequestContext b2;  // second time: from the per-worker cache, no bcrypt
  b2.request.headers.add("Authorization", basic("bob", "s3cret"));
  EXPECT_EQ(run(f, b2), http::Verdict::kContinue);
  EXPECT_EQ(bcryptCounters().verified, verified);
  EXPECT_EQ(bcryptCounters().cache_hits, hits + 1);
}

TEST(BasicAuth, RejectsWithChallengeAndCountsReasons) {
  auto f = build("basic_auth", "{realm: api}");
  ASSERT_TRUE(f);
  auto bad = policies::auth_metrics::count("basic_auth", Reason::kBadCredentials);
  auto missing = policies::auth_metrics::count("basic_auth", Reason::kMissing);
  auto malformed = policies::auth_metrics::count("basic_auth", Reason::kMalformed);
  for (std::string h : {basic("alice", "wrong"), basic("nobody", "x"), basic("bob", "S3cret")}) {
    http::RequestContext ctx;
    ctx.request_id = "rid-1";
    ctx.request.headers.add("authorization", h);
    EXPECT_EQ(run(f, ctx), http::Verdict::kRespond) << h;
    EXPECT_EQ(ctx.local_reply.status, 401);
    EXPECT_EQ(ctx.local_reply.headers.get("www-authenticate"), "Basic realm=\"api\"");
    EXPECT_THAT(ctx.local_reply.body, HasSubstr("\"request_id\":\"rid-1\""));
    EXPECT_TRUE(ctx.consumer.empty());
  }
  http::RequestContext none;
  EXPECT_EQ(run(f, none), http::Verdict::kRespond);
  http::RequestContext junk;
  junk.request.headers.add("authorization", "Basic !!!");
  EXPECT_EQ(run(f, junk), http::Verdict::kRespond);
  EXPECT_EQ(policies::auth_metrics::count("basic_auth", Reason::kBadCredentials), bad + 3);
  EXPECT_EQ(policies::auth_metrics::count("basic_auth", Reason::kMissing), missing + 1);
  EXPECT_EQ(policies::auth_metrics::count("basic_auth", Reason::kMalformed), malformed + 1);
  std::string page = metrics::Registry::process().render();
  EXPECT_THAT(page, HasSubstr("gatehouse_auth_rejections_total{policy=\"basic_auth\",reason="
                              "\"bad_credentials\"}"));
  // One HELP/TYPE header for the family, however many policies contribute.
  EXPECT_EQ(page.find("# TYPE gatehouse_auth_rejections_total"),
            page.rfind("# TYPE gatehouse_auth_rejections_total"));
}

TEST(BasicAuth, InlineUsersAndConfigErrors) {
  auto f = build("basic_auth",
                 "{users: [{username: ops, groups: [staff], password: \"sha256:pepper:"
                 "ca458f67a1e64e60f40414c062c57abbfc1d41b5d0c30cd07d12704540067f21\"}]}");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.headers.add("authorization", basic("ops", "hunter2"));
  EXPECT_EQ(run(f, ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.consumer, "ops");
  http::RequestContext reg;  // inline users only: the registry is not used unless asked
  reg.request.headers.add("authorization", basic("alice", "hunter2"));
  EXPECT_EQ(run(f, reg), http::Verdict::kRespond);

  std::string err;
  EXPECT_FALSE(build("basic_auth", "{users: [{username: x, password: hunter2}]}", nullptr, &err));
  EXPECT_THAT(err, HasSubstr("plaintext"));
  EXPECT_FALSE(build("basic_auth", "{consumers: [carol]}", nullptr, &err));
  EXPECT_THAT(err, HasSubstr("unknown consumer 'carol'"));
  EXPECT_FALSE(build("basic_auth", "{realm: 'a\"b'}", nullptr, &err));
  EXPECT_THAT(err, HasSubstr("realm"));
  EXPECT_FALSE(build("basic_auth", "{cache_ttl: forever}", nullptr, &err));
  EXPECT_THAT(err, HasSubstr("cache_ttl"));
}

TEST(KeyAuth, UsesTheRegistryByDefaultOrByName) {
  auto f = build("key_auth", "{consumer_header: x-consumer}");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.headers.add("x-api-key", "alice-key");
  ctx.request.headers.add("x-consumer", "mallory");
  EXPECT_EQ(run(f, ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.consumer, "alice");
  EXPECT_EQ(ctx.request.headers.get("x-consumer"), "alice");
  EXPECT_EQ(ctx.request.headers.count("x-consumer"), 1u);
  EXPECT_TRUE(build("key_auth", "{consumers: registry}"));
  std::string err;
  EXPECT_FALSE(build("key_auth", "{consumers: [bob]}", nullptr, &err));
  EXPECT_THAT(err, HasSubstr("has no API key credentials"));
  EXPECT_FALSE(build("key_auth", "{anonymous: alice}", nullptr, &err));
  EXPECT_THAT(err, HasSubstr("registry"));
  EXPECT_FALSE(build("key_auth", "{anonymous: guest, optional: true}", nullptr, &err));
  EXPECT_THAT(err, HasSubstr("exclude"));
}

TEST(RequireConsumer, AnyOfBasicOrKey) {
  std::vector<http::FilterFactoryPtr> chain;
  ASSERT_TRUE(build("key_auth", "{optional: true}", &chain));
  ASSERT_TRUE(build("basic_auth", "{optional: true, realm: api}", &chain));
  ASSERT_TRUE(build("require_consumer", "{}", &chain));
  auto runChain = [&](http::RequestContext& ctx) {
    for (const auto& f : chain) {
      http::Verdict v = run(f, ctx);
      if (v != http::Verdict::kContinue) return v;
    }
    return http::Verdict::kContinue;
  };
  http::RequestContext key;
  key.request.headers.add("x-api-key", "alice-key");
  EXPECT_EQ(runChain(key), http::Verdict::kContinue);
  EXPECT_EQ(key.consumer, "alice");
  http::RequestContext pw;
  pw.request.headers.add("authorization", basic("alice", "hunter2"));
  EXPECT_EQ(runChain(pw), http::Verdict::kContinue);
  http::RequestContext none;
  EXPECT_EQ(runChain(none), http::Verdict::kRespond);
  EXPECT_EQ(none.local_reply.status, 401);
  EXPECT_EQ(none.local_reply.headers.count("www-authenticate"), 2u);
  http::RequestContext wrong;  // a present but wrong credential is a 401, not a fall-through
  wrong.request.headers.add("authorization", basic("alice", "nope"));
  EXPECT_EQ(runChain(wrong), http::Verdict::kRespond);
  EXPECT_EQ(wrong.local_reply.headers.get("www-authenticate"), "Basic realm=\"api\"");

  std::string err;
  EXPECT_FALSE(build("require_consumer", "{}", nullptr, &err));
  EXPECT_THAT(err, HasSubstr("no authentication policy"));
}

TEST(HmacAuth, VerifiesASignedRequest) {
  auto f = build("hmac_auth", "{}");
  ASSERT_TRUE(f);
  char date[64];
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  static int run_id = 0;  // a fresh path per run: a repeated test is not a replay
  const std::string path = "/x" + std::to_string(++run_id);
  auto make = [&](std::string_view secret, std::string_view headers) {
    auto ctx = std::make_unique<http::RequestContext>();
    ctx->request.method = "GET";
    ctx->request.path = path;
    ctx->request.authority = "example.com";
    ctx->request.headers.add("date", date);
    std::string signing =
        "@request-target: get " + path + "\nhost: example.com\ndate: " + std::string(date);
    std::string sig =
        policies::base64Encode(policies::hmac(policies::HmacAlgorithm::kSha256, secret, signing));
    ctx->request.headers.add("authorization",
                             "Signature keyId=\"alice-1\",algorithm=\"hmac-sha256\","
                             "headers=\"" +
                                 std::string(headers) + "\",signature=\"" + sig + "\"");
    return ctx;
  };
  auto count = [](Reason r) { return policies::auth_metrics::count("hmac_auth", r); };
  const auto replays = count(Reason::kReplay);
  const auto bad_sigs = count(Reason::kBadSignature);
  const auto unsigned_headers = count(Reason::kMissingSignedHeader);
  auto good = make(kSecret, "@request-target host date");
  EXPECT_EQ(run(f, *good), http::Verdict::kContinue);
  EXPECT_EQ(good->consumer, "alice");
  auto replay = make(kSecret, "@request-target host date");
  EXPECT_EQ(run(f, *replay), http::Verdict::kRespond);
  EXPECT_EQ(count(Reason::kReplay), replays + 1);
  auto wrong = make("another-secret-of-some-length!!", "@request-target host date");
  EXPECT_EQ(run(f, *wrong), http::Verdict::kRespond);
  EXPECT_EQ(count(Reason::kBadSignature), bad_sigs + 1);
  auto unsigned_host = make(kSecret, "@request-target date");
  EXPECT_EQ(run(f, *unsigned_host), http::Verdict::kRespond);
  EXPECT_EQ(count(Reason::kMissingSignedHeader), unsigned_headers + 1);
  EXPECT_THAT(unsigned_host->local_reply.headers.get("www-authenticate"),
              HasSubstr("Signature realm="));
}

}  // namespace
}  // namespace gatehouse

namespace gatehouse {
namespace {

TEST(MetricsRegistryShared, SharedFamilyPrintsItsHeaderOnce) {
  static constexpr metrics::Family kShared{
      "gatehouse_test_shared_total", "Test.", metrics::Type::kCounter, {"p"}};
  auto& reg = metrics::Registry::process();
  reg.add("test.a", [](metrics::Scrape& s) { s.family(kShared).add({"a"}, uint64_t{1}); });
  reg.add("test.b", [](metrics::Scrape& s) { s.family(kShared).add({"b"}, uint64_t{2}); });
  reg.add("test.a", [](metrics::Scrape& s) { s.family(kShared).add({"a"}, uint64_t{3}); });
  std::string page = reg.render();
  reg.remove("test.a");
  reg.remove("test.b");
  const std::string header = "# TYPE gatehouse_test_shared_total counter\n";
  size_t at = page.find(header);
  ASSERT_NE(at, std::string::npos) << page;
  EXPECT_EQ(page.find(header, at + 1), std::string::npos);
  EXPECT_THAT(page, HasSubstr(header + "gatehouse_test_shared_total{p=\"a\"} 3\n"
                                       "gatehouse_test_shared_total{p=\"b\"} 2\n"));
}

}  // namespace
}  // namespace gatehouse

namespace gatehouse {
namespace {

runtime::Task<void> offloadOnce(runtime::EventLoop* loop, std::thread::id* ran_on, int* result) {
  std::function<int()> job = [ran_on] {
    *ran_on = std::this_thread::get_id();
    return 42;
  };
  runtime::Task<std::optional<int>> t = policies::offload::run<int>(std::move(job));
  std::optional<int> v = co_await std::move(t);
  *result = v.value_or(-1);
  // Back on the loop's thread: the result was posted here.
  if (runtime::EventLoop::current() != loop) *result = -2;
  loop->stop();
}

runtime::Task<void> offloadWhenFull(runtime::EventLoop* loop, std::optional<int>* out) {
  std::function<int()> job = [] { return 1; };
  runtime::Task<std::optional<int>> t = policies::offload::run<int>(std::move(job));
  *out = co_await std::move(t);
  loop->stop();
}

TEST(Offload, ASaturatedPoolAnswersAtOnceWithNoValue) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  size_t blocked = 0;
  while (policies::offload::queued() < policies::offload::kMaxQueued) {
    ASSERT_TRUE(policies::offload::detail::submit([&] {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return release; });
    }));
    ++blocked;
  }
  runtime::EventLoop loop;
  std::optional<int> out = 7;
  loop.post([&] { runtime::spawn(offloadWhenFull(&loop, &out)); });
  loop.run();
  EXPECT_FALSE(out.has_value());
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (int i = 0; i < 1000 && policies::offload::queued() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // bounded: jobs end at once
  }
  EXPECT_EQ(policies::offload::queued(), 0u);
  EXPECT_GT(blocked, 0u);
}

TEST(Offload, RunsOnThePoolAndResumesOnTheCallersLoop) {
  runtime::EventLoop loop;
  std::thread::id ran_on;
  int result = 0;
  loop.post([&] { runtime::spawn(offloadOnce(&loop, &ran_on, &result)); });
  loop.run();
  EXPECT_EQ(result, 42);
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_NE(ran_on, std::thread::id{});
}

}  // namespace
}  // namespace gatehouse

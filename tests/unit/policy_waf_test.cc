// Policy `waf`: options, rule loading errors (file:line), the rule-set cache, and the ModSecurity
// adapter on small rule files (and on the Core Rule Set when Debian's package is installed).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "http/filter.h"
#include "policies/waf/inspect.h"
#include "policies/waf/rules.h"
#include "policies/waf/waf.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

using policies::waf::Decision;
using policies::waf::Exclusions;
using policies::waf::Inspection;
using policies::waf::RequestHead;
using policies::waf::RuleSet;
using policies::waf::RulesSpec;

std::string tempFile(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("gh_waf_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = dir / name;
  std::ofstream(path) << text;
  return path.string();
}

constexpr const char* kOwnRules =
    "SecRule ARGS \"@contains evil\" \"id:1000001,phase:2,deny,status:403,log,msg:'evil arg',"
    "tag:'test/evil'\"\n"
    "SecRule REQUEST_HEADERS:x-block \"@streq yes\" \"id:1000002,phase:1,deny,status:403,log,"
    "msg:'blocked header'\"\n";

RulesSpec ownRulesOnly(const std::string& file) {
  RulesSpec spec;
  spec.crs_dir.clear();
  spec.rule_files = {file};
  return spec;
}

Decision run(const RuleSet& rules, const Exclusions& ex, std::string_view query,
             std::string_view content_type = {}, std::string_view body = {},
             std::vector<http::HeaderField> extra = {}) {
  Inspection insp(rules, ex, "req-1");
  std::vector<http::HeaderField> headers = {{"host", "api.test"}, {"user-agent", "unit/1"}};
  if (!content_type.empty()) headers.push_back({"content-type", content_type});
  headers.insert(headers.end(), extra.begin(), extra.end());
  RequestHead head{"POST", "/items", query, "1.1", "api.test", "10.0.0.1", headers};
  Decision d = insp.requestHead(head);
  if (d.interrupt) return d;
  return insp.requestBody(body);
}

TEST(WafOptions, RejectsBadValues) {
  std::string err;
  EXPECT_EQ(testutil::buildPolicy("waf", "{paranoia_level: 5}", &err), nullptr);
  EXPECT_NE(err.find("paranoia_level"), std::string::npos) << err;
  EXPECT_EQ(testutil::buildPolicy("waf", "{exclude_rules: [942100-9]}", &err), nullptr);
  EXPECT_NE(err.find("exclude_rules[0]"), std::string::npos) << err;
  EXPECT_EQ(testutil::buildPolicy("waf", "{over_limit: drop}", &err), nullptr);
  EXPECT_NE(err.find("over_limit"), std::string::npos) << err;
  EXPECT_EQ(testutil::buildPolicy("waf", "{mode: audit}", &err), nullptr);
  EXPECT_NE(err.find("mode"), std::string::npos) << err;
  EXPECT_EQ(testutil::buildPolicy("waf", "{crs: false}", &err), nullptr);
  EXPECT_NE(err.find("rule_files"), std::string::npos) << err;
  EXPECT_EQ(testutil::buildPolicy("waf", "{crs_dir: /nonexistent/crs}", &err), nullptr);
  EXPECT_NE(err.find("/nonexistent/crs"), std::string::npos) << err;
  EXPECT_EQ(testutil::buildPolicy("waf", "{paranoia: 1}", &err), nullptr);
  EXPECT_NE(err.find("unknown option 'paranoia'"), std::string::npos) << err;
}

TEST(WafOptions, ReadsExclusionsAndBounds) {
  auto o = policies::waf::parseOptions(
      YAML::Load("{exclude_rules: [942100, '920000-920999'], exclude_tags: [attack-xss], "
                 "max_body_size: 4KiB, over_limit: skip, mode: detect, paranoia_level: 2}"));
  ASSERT_TRUE(o.ok()) << o.error().message;
  ASSERT_EQ(o->exclusions.id_ranges.size(), 2u);
  EXPECT_EQ(o->exclusions.id_ranges[0], std::make_pair(942100, 942100));
  EXPECT_EQ(o->exclusions.id_ranges[1], std::make_pair(920000, 920999));
  EXPECT_EQ(o->exclusions.tags, std::vector<std::string>{"attack-xss"});
  EXPECT_EQ(o->rules.max_body_size, 4096u);
  EXPECT_EQ(o->over_limit, policies::waf::OverLimit::kSkip);
  EXPECT_FALSE(o->rules.block);
  const std::string text = policies::waf::settingsText(o->rules);
  EXPECT_NE(text.find("SecRuleEngine DetectionOnly"), std::string::npos);
  EXPECT_NE(text.find("tx.paranoia_level=2"), std::string::npos);
  EXPECT_NE(text.find("SecRequestBodyLimit 4096"), std::string::npos);
}

TEST(WafRules, ParserErrorNamesFileAndLine) {
  EXPECT_EQ(policies::waf::formatParserError(
                "Rules error. File: /etc/x.conf. Line: 3. Column: 44. Expecting an action"),
            "/etc/x.conf:3:44: Expecting an action");
  EXPECT_EQ(policies::waf::formatParserError("something else"), "something else");
  const std::string bad = tempFile(
      "bad.conf", std::string(kOwnRules) + "\nSecRule ARGS \"@rx x\" \"id:7,phase:2,denyy\"\n");
  auto r = RuleSet::load(ownRulesOnly(bad));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(bad + ":4:"), std::string::npos) << r.error().message;
  const std::string dup = tempFile("dup.conf", std::string(kOwnRules) + kOwnRules);
  r = RuleSet::load(ownRulesOnly(dup));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find(dup), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("1000001"), std::string::npos) << r.error().message;
}

TEST(WafRules, IdenticalSettingsShareOneRuleSetUntilAFileChanges) {
  const std::string file = tempFile("cache.conf", kOwnRules);
  auto a = RuleSet::load(ownRulesOnly(file));
  auto b = RuleSet::load(ownRulesOnly(file));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  RulesSpec other = ownRulesOnly(file);
  other.paranoia_level = 3;
  auto c = RuleSet::load(other);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(a->get(), c->get());
  std::ofstream(file, std::ios::app) << "# edited\n";
  auto d = RuleSet::load(ownRulesOnly(file));
  ASSERT_TRUE(d.ok());
  EXPECT_NE(a->get(), d->get());
}

TEST(WafInspection, OwnRulesOnQueryFormJsonAndHeaders) {
  auto rules = RuleSet::load(ownRulesOnly(tempFile("own.conf", kOwnRules)));
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  const Exclusions none;
  EXPECT_FALSE(run(**rules, none, "q=fine").interrupt);
  Decision d = run(**rules, none, "q=evil");
  EXPECT_TRUE(d.interrupt);
  EXPECT_EQ(d.status, 403);
  EXPECT_TRUE(run(**rules, none, "", "application/x-www-form-urlencoded", "a=1&b=evil").interrupt);
  EXPECT_TRUE(run(**rules, none, "", "application/json", R"({"a":{"b":["evil"]}})").interrupt);
  EXPECT_FALSE(run(**rules, none, "", "application/json", R"({"a":"O'Brien"})").interrupt);
  EXPECT_TRUE(run(**rules, none, "", {}, {}, {{"x-block", "yes"}}).interrupt);
  // Unparsable JSON is refused, not passed uninspected (rule 200002).
  d = run(**rules, none, "", "application/json", R"({"a": "evil)");
  EXPECT_TRUE(d.interrupt);
  EXPECT_EQ(d.status, 400);
}

TEST(WafInspection, ExclusionsByIdRangeAndTag) {
  auto rules = RuleSet::load(ownRulesOnly(tempFile("ex.conf", kOwnRules)));
  ASSERT_TRUE(rules.ok());
  Exclusions by_id;
  by_id.id_ranges = {{1000001, 1000001}};
  EXPECT_FALSE(run(**rules, by_id, "q=evil").interrupt);
  EXPECT_TRUE(run(**rules, by_id, "", {}, {}, {{"x-block", "yes"}}).interrupt);
  Exclusions by_range;
  by_range.id_ranges = {{1000000, 1000009}};
  EXPECT_FALSE(run(**rules, by_range, "q=evil", {}, {}, {{"x-block", "yes"}}).interrupt);
  Exclusions by_tag;
  by_tag.tags = {"test/evil"};
  EXPECT_FALSE(run(**rules, by_tag, "q=evil").interrupt);
}

// The filter's body decisions, on rules of our own (no CRS: fast).
std::string ownPolicyYaml(const std::string& extra) {
  return "{crs: false, rule_files: [" + tempFile("filter.conf", kOwnRules) + "], " + extra + "}";
}

TEST(WafFilter, BuffersBodiesUpToTheBoundAndRejectsOrSkipsBeyond) {
  auto reject = testutil::buildPolicy("waf", ownPolicyYaml("max_body_size: 1KiB"));
  auto skip = testutil::buildPolicy("waf", ownPolicyYaml("max_body_size: 1KiB, over_limit: skip"));
  ASSERT_TRUE(reject && skip);
  auto request = [](http::RequestContext& ctx, uint64_t length, const char* type) {
    ctx.request.method = "POST";
    ctx.request.path = "/items";
    ctx.request.has_body = true;
    ctx.request.content_length = length;
    ctx.request.content_length_present = true;
    ctx.request.headers.add("content-type", type);
  };
  {  // within the bound: buffered, then inspected
    http::RequestContext ctx;
    request(ctx, 100, "application/x-www-form-urlencoded");
    auto f = reject->create();
    EXPECT_EQ(f.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
    EXPECT_EQ(ctx.buffer_request_body, 1024u);
    std::string body = "a=1&b=evil";
    EXPECT_EQ(f.filter->onRequestBody(ctx, body, true), http::Verdict::kRespond);
    EXPECT_EQ(ctx.local_reply.status, 403);
  }
  {  // declared beyond the bound: 413 before the body is read
    http::RequestContext ctx;
    request(ctx, 4096, "application/json");
    auto f = reject->create();
    EXPECT_EQ(f.filter->onRequestHeaders(ctx), http::Verdict::kRespond);
    EXPECT_EQ(ctx.local_reply.status, 413);
  }
  {  // skip: not buffered, passes
    http::RequestContext ctx;
    request(ctx, 4096, "application/json");
    auto f = skip->create();
    EXPECT_EQ(f.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
    EXPECT_EQ(ctx.buffer_request_body, 0u);
  }
  {  // gRPC: head only, never buffered
    http::RequestContext ctx;
    request(ctx, 100, "application/grpc+proto");
    auto f = reject->create();
    EXPECT_EQ(f.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
    EXPECT_EQ(ctx.buffer_request_body, 0u);
  }
}

TEST(WafInspection, CoreRuleSetBlocksSqlInjectionAndLogsTheRule) {
  if (!std::filesystem::is_directory(policies::waf::kDebianCrsDir)) {
    GTEST_SKIP() << "modsecurity-crs is not installed";
  }
  auto rules = RuleSet::load(RulesSpec{});
  ASSERT_TRUE(rules.ok()) << rules.error().message;
  Inspection insp(**rules, {}, "req-2");
  std::vector<http::HeaderField> headers = {
      {"host", "api.test"}, {"user-agent", "unit/1"}, {"accept", "*/*"}};
  RequestHead head{"GET", "/users", "id=1' OR '1'='1", "1.1", "api.test", "10.0.0.1", headers};
  EXPECT_FALSE(insp.requestHead(head).interrupt);  // CRS decides in phase 2
  Decision d = insp.requestBody({});
  EXPECT_TRUE(d.interrupt);
  EXPECT_EQ(d.status, 403);
  bool sqli = false;
  for (const auto& m : insp.matches())
    sqli |= m.id == 942100;
  EXPECT_TRUE(sqli);
  EXPECT_GE(insp.inboundScore(), 5);
}

}  // namespace
}  // namespace gatehouse

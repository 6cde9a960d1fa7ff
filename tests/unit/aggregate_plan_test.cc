// The pure parts of the aggregate policy (policies/aggregate/plan.h): templates, JSON
// pointers, the call order and its cycle errors, and the merges.
#include "policies/aggregate/plan.h"

#include <gtest/gtest.h>

namespace gatehouse::policies::aggregate {
namespace {

using Json = nlohmann::json;

TEST(AggregatePlan, TemplateSubstitutesAndEscapes) {
  auto t = parseTemplate("/users/{request.params.id}/x?q={request.query.q}&h={request.header.X-T}");
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->refs.size(), 3u);
  EXPECT_EQ(t->refs[2].name, "x-t");  // header names are lower-cased
  auto out = expand(*t, Escape::kUrl, [](const Ref& r) -> std::optional<std::string> {
    if (r.name == "id") return "a b/c";
    return std::string("v");
  });
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, "/users/a%20b%2Fc/x?q=v&h=v");
  auto raw =
      expand(*t, Escape::kNone, [](const Ref&) { return std::optional<std::string>("a/b"); });
  EXPECT_EQ(*raw, "/users/a/b/x?q=a/b&h=a/b");
  auto json = expand(*parseTemplate(R"({{"id": "{request.params.id}"}})"), Escape::kJson,
                     [](const Ref&) { return std::optional<std::string>("a\"b\\c\n"); });
  EXPECT_EQ(*json, R"({"id": "a\"b\\c\u000a"})");
  // A missing value fails the whole expansion.
  EXPECT_FALSE(expand(*t, Escape::kNone, [](const Ref&) { return std::optional<std::string>(); }));
}

TEST(AggregatePlan, TemplateBracesAndErrors) {
  auto t = parseTemplate("{{\"a\": {calls.x.body./n}}}");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->literals[0], "{\"a\": ");
  EXPECT_EQ(t->literals[1], "}");
  EXPECT_EQ(t->refs[0].kind, Ref::Kind::kCallBody);
  EXPECT_EQ(t->refs[0].name, "x");
  ASSERT_EQ(t->refs[0].pointer.tokens.size(), 1u);
  EXPECT_FALSE(parseTemplate("/{request.params.}").ok());
  EXPECT_FALSE(parseTemplate("/{request.cookie.x}").ok());
  EXPECT_FALSE(parseTemplate("/{calls.x}").ok());
  EXPECT_FALSE(parseTemplate("/{calls.x.body/a~2}").ok());
  EXPECT_FALSE(parseTemplate("/{request.params.id").ok());
  EXPECT_TRUE(parseTemplate("{consumer}").ok());
}

TEST(AggregatePlan, JsonPointerFindAndPlace) {
  auto p = parsePointer("/a/b~1c/1");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->tokens, (std::vector<std::string>{"a", "b/c", "1"}));
  Json doc = Json::parse(R"({"a": {"b/c": [10, 20]}})");
  ASSERT_NE(find(doc, *p), nullptr);
  EXPECT_EQ(*find(doc, *p), 20);
  EXPECT_EQ(find(doc, *parsePointer("/a/b~1c/2")), nullptr);
  EXPECT_EQ(find(doc, *parsePointer("/a/b~1c/01")), nullptr);  // no leading zeros
  EXPECT_EQ(find(doc, *parsePointer("/a/x/y")), nullptr);
  EXPECT_EQ(*find(doc, *parsePointer("")), doc);
  EXPECT_FALSE(parsePointer("a").ok());
  EXPECT_FALSE(parsePointer("/~").ok());

  Json out = Json::object();
  place(out, *parsePointer("/data/user"), Json{{"id", 1}});
  place(out, *parsePointer("/data/list/-"), 5);  // not an array: becomes an object member
  out["arr"] = Json::array();
  place(out, *parsePointer("/arr/0"), "x");  // past the end: appended
  EXPECT_EQ(out, Json::parse(R"({"data": {"user": {"id": 1}, "list": {"-": 5}}, "arr": ["x"]})"));
  place(out, *parsePointer("/data/user/id/deep"), true);  // a scalar on the way is replaced
  EXPECT_EQ(out["data"]["user"]["id"], Json::parse(R"({"deep": true})"));
}

TEST(AggregatePlan, DeepMerge) {
  Json a = Json::parse(R"({"a": {"x": 1, "y": [1]}, "b": 1})");
  deepMerge(a, Json::parse(R"({"a": {"y": [2], "z": 3}, "c": null})"));
  EXPECT_EQ(a, Json::parse(R"({"a": {"x": 1, "y": [2], "z": 3}, "b": 1, "c": null})"));
}

TEST(AggregatePlan, ScalarText) {
  EXPECT_EQ(scalarText(Json("s")), "s");
  EXPECT_EQ(scalarText(Json(7)), "7");
  EXPECT_EQ(scalarText(Json(true)), "true");
  EXPECT_FALSE(scalarText(Json(nullptr)));
  EXPECT_FALSE(scalarText(Json::object()));
}

std::vector<CallRefs> refsOf(std::vector<Template>& ts, std::vector<std::string> names) {
  std::vector<CallRefs> out;
  for (size_t i = 0; i < ts.size(); ++i)
    out.push_back({names[i], {&ts[i]}});
  return out;
}

TEST(AggregatePlan, OrderResolvesDependencies) {
  std::vector<Template> ts = {*parseTemplate("/u/{calls.order.body./user}"),
                              *parseTemplate("/o/{request.params.id}"),
                              *parseTemplate("/r/{calls.user.body./id}/{calls.order.body./id}")};
  auto refs = refsOf(ts, {"user", "order", "reviews"});
  auto deps = orderCalls(refs);
  ASSERT_TRUE(deps.ok()) << deps.error().message;
  EXPECT_EQ((*deps)[0], std::vector<size_t>{1});
  EXPECT_TRUE((*deps)[1].empty());
  EXPECT_EQ((*deps)[2], (std::vector<size_t>{0, 1}));
  EXPECT_EQ(ts[2].refs[1].call, 1u);
}

TEST(AggregatePlan, OrderRejectsCyclesAndUnknownCalls) {
  std::vector<Template> ts = {*parseTemplate("/{calls.b.body./x}"),
                              *parseTemplate("/{calls.c.body./x}"),
                              *parseTemplate("/{calls.a.body./x}")};
  auto refs = refsOf(ts, {"a", "b", "c"});
  auto deps = orderCalls(refs);
  ASSERT_FALSE(deps.ok());
  EXPECT_NE(deps.error().message.find("dependency cycle a -> b -> c -> a"), std::string::npos)
      << deps.error().message;

  std::vector<Template> self = {*parseTemplate("/{calls.a.body./x}")};
  auto r1 = refsOf(self, {"a"});
  EXPECT_FALSE(orderCalls(r1).ok());
  std::vector<Template> unknown = {*parseTemplate("/{calls.zz.body./x}")};
  auto r2 = refsOf(unknown, {"a"});
  auto e = orderCalls(r2);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("unknown call 'zz'"), std::string::npos);
}

}  // namespace
}  // namespace gatehouse::policies::aggregate

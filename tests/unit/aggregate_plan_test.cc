// The pure parts of the aggregate policy (policies/aggregate/plan.h): its templates (the
// template language with calls.NAME.*), escaping by where a value lands, the call order and
// its cycle errors, and the merges.
#include "policies/aggregate/plan.h"

#include <gtest/gtest.h>

#include <map>

namespace gatehouse::policies::aggregate {
namespace {

using tmpl::Field;
using tmpl::JsonPointer;
using tmpl::Template;
using tmpl::Variable;

using Values = std::map<std::string, std::string>;

// Values by variable key ("id", "q", "x-t"); calls.NAME.* by "NAME".
class MapVariables final : public tmpl::VariableSource {
 public:
  explicit MapVariables(Values v) : values_(std::move(v)) {}
  bool append(const Variable& v, std::string& out) const override {
    auto it = values_.find(v.field == Field::kRequestPath ? "path" : v.key);
    if (it == values_.end()) return false;
    out += it->second;
    return true;
  }

 private:
  Values values_;
};

Template compiled(std::string_view text) {
  auto t = compileTemplate(text);
  EXPECT_TRUE(t.ok()) << text << ": " << t.error().message;
  return t.ok() ? std::move(*t) : std::get<Template>(Template::compile(""));
}

std::string render(const Template& t, Escape e, const MapVariables& vars,
                   bool* complete = nullptr) {
  std::string out;
  const bool ok = t.render(EscapingVariables(vars, e), out);
  if (complete) *complete = ok;
  return out;
}

TEST(AggregatePlan, TemplatesEscapeForWhereTheyLand) {
  Template t = compiled(
      "/users/{{ request.params.id }}/x?q={{ request.query.q }}&h={{ request.header.x-t }}");
  MapVariables vars(Values{{"id", "a b/c"}, {"q", "v"}, {"x-t", "v"}, {"path", "/p/a b"}});
  EXPECT_EQ(render(t, Escape::kUrl, vars), "/users/a%20b%2Fc/x?q=v&h=v");
  EXPECT_EQ(render(t, Escape::kNone, vars), "/users/a b/c/x?q=v&h=v");
  // request.path is already in URL form: not encoded twice.
  EXPECT_EQ(render(compiled("{{ request.path }}"), Escape::kUrl, vars), "/p/a b");
  MapVariables quote(Values{{"id", "a\"b\\c\n"}});
  EXPECT_EQ(render(compiled(R"({"id": "{{ request.params.id }}"})"), Escape::kJson, quote),
            R"({"id": "a\"b\\c\n"})");
  // A missing value renders as nothing and says so, unless it has a default.
  bool complete = true;
  EXPECT_EQ(render(t, Escape::kUrl, MapVariables(Values{}), &complete), "/users//x?q=&h=");
  EXPECT_FALSE(complete);
  render(compiled("/{{ request.params.id | default \"0\" }}"), Escape::kUrl, MapVariables(Values{}),
         &complete);
  EXPECT_TRUE(complete);
}

TEST(AggregatePlan, CallVariablesAndErrors) {
  Template t = compiled(R"({"a": {{ calls.x.body./n }}, "s": {{ calls.x.status }}})");
  std::vector<Variable> vars;
  t.forEachVariable([&](const Variable& v) { vars.push_back(v); });
  ASSERT_EQ(vars.size(), 2u);
  EXPECT_EQ(vars[0].field, Field::kCallBody);
  EXPECT_EQ(vars[0].key, "x");
  EXPECT_EQ(vars[0].pointer.text(), "/n");
  EXPECT_EQ(vars[1].field, Field::kCallStatus);
  EXPECT_TRUE(compileTemplate("{{ calls.x.body }}").ok());  // the whole answer
  EXPECT_FALSE(compileTemplate("/{{ request.params. }}").ok());
  EXPECT_FALSE(compileTemplate("/{{ request.cookie.x }}").ok());
  EXPECT_FALSE(compileTemplate("/{{ calls.x }}").ok());
  EXPECT_FALSE(compileTemplate("/{{ calls.x.body./a~2 }}").ok());
  EXPECT_FALSE(compileTemplate("/{{ request.params.id").ok());
  EXPECT_FALSE(compileTemplate("/{{ response.status }}").ok());  // no response here
  // The old single-brace syntax is refused with its new spelling.
  auto old = compileTemplate("/users/{calls.order.body/0/id}");
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.error().message.find("write '{{ calls.order.body./0/id }}'"), std::string::npos)
      << old.error().message;
  old = compileTemplate("{consumer}");
  ASSERT_FALSE(old.ok());
  EXPECT_NE(old.error().message.find("{{ consumer.name }}"), std::string::npos);
  EXPECT_TRUE(compileTemplate(R"({"plain": "json {braces}"})").ok());
  // Outside aggregate, calls.* is no variable.
  EXPECT_TRUE(
      std::holds_alternative<tmpl::CompileError>(Template::compile("{{ calls.x.status }}")));
}

TEST(AggregatePlan, PlaceMakesTheWay) {
  Json out = Json::object();
  place(out, *JsonPointer::parse("/data/user"), Json{{"id", 1}});
  place(out, *JsonPointer::parse("/data/list/-"), 5);  // not an array: becomes a member
  out["arr"] = Json::array();
  place(out, *JsonPointer::parse("/arr/0"), "x");  // past the end: appended
  EXPECT_EQ(out, Json::parse(R"({"data": {"user": {"id": 1}, "list": {"-": 5}}, "arr": ["x"]})"));
  place(out, *JsonPointer::parse("/data/user/id/deep"), true);  // a scalar on the way: replaced
  EXPECT_EQ(out["data"]["user"]["id"], Json::parse(R"({"deep": true})"));
}

TEST(AggregatePlan, DeepMerge) {
  Json a = Json::parse(R"({"a": {"x": 1, "y": [1]}, "b": 1})");
  deepMerge(a, Json::parse(R"({"a": {"y": [2], "z": 3}, "c": null})"));
  EXPECT_EQ(a, Json::parse(R"({"a": {"x": 1, "y": [2], "z": 3}, "b": 1, "c": null})"));
}

std::vector<CallTemplates> refsOf(const std::vector<Template>& ts, std::vector<std::string> names) {
  std::vector<CallTemplates> out;
  for (size_t i = 0; i < ts.size(); ++i)
    out.push_back({names[i], {&ts[i]}});
  return out;
}

TEST(AggregatePlan, OrderResolvesDependencies) {
  std::vector<Template> ts;
  ts.push_back(compiled("/u/{{ calls.order.body./user }}"));
  ts.push_back(compiled("/o/{{ request.params.id }}"));
  ts.push_back(compiled("/r/{{ calls.user.body./id }}/{{ calls.order.status }}"));
  auto deps = orderCalls(refsOf(ts, {"user", "order", "reviews"}));
  ASSERT_TRUE(deps.ok()) << deps.error().message;
  EXPECT_EQ((*deps)[0], std::vector<size_t>{1});
  EXPECT_TRUE((*deps)[1].empty());
  EXPECT_EQ((*deps)[2], (std::vector<size_t>{0, 1}));
}

TEST(AggregatePlan, OrderRejectsCyclesAndUnknownCalls) {
  std::vector<Template> ts;
  ts.push_back(compiled("/{{ calls.b.body./x }}"));
  ts.push_back(compiled("/{{ calls.c.body./x }}"));
  ts.push_back(compiled("/{{ calls.a.body./x }}"));
  auto deps = orderCalls(refsOf(ts, {"a", "b", "c"}));
  ASSERT_FALSE(deps.ok());
  EXPECT_NE(deps.error().message.find("dependency cycle a -> b -> c -> a"), std::string::npos)
      << deps.error().message;

  std::vector<Template> self;
  self.push_back(compiled("/{{ calls.a.body./x }}"));
  EXPECT_FALSE(orderCalls(refsOf(self, {"a"})).ok());
  std::vector<Template> unknown;
  unknown.push_back(compiled("/{{ calls.zz.body./x }}"));
  auto e = orderCalls(refsOf(unknown, {"a"}));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("unknown call 'zz'"), std::string::npos);
}

}  // namespace
}  // namespace gatehouse::policies::aggregate

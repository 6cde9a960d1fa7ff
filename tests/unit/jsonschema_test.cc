// jsonschema/: the API around the suite's cases: error locations and keywords, the OpenAPI 3.0
// dialect, asserted formats, compile errors, references into a larger document.
#include <gtest/gtest.h>

#include "jsonschema/schema.h"

namespace gatehouse::jsonschema {
namespace {

using Json = nlohmann::json;

std::pair<std::shared_ptr<const Validator>, SchemaId> compile(const char* text,
                                                              Options o = Options{}) {
  auto r = compileSchema(Json::parse(text), o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::pair<std::shared_ptr<const Validator>, SchemaId>{};
}

TEST(JsonSchema, ErrorsNameThePointerAndKeyword) {
  auto [v, id] = compile(R"({"type":"object","required":["name"],
      "properties":{"tags":{"type":"array","items":{"type":"string"}},
                    "age":{"type":"integer","minimum":0}}})");
  std::vector<ValidationError> errors;
  EXPECT_FALSE(v->validate(id, Json::parse(R"({"tags":["a",3],"age":-1})"), &errors));
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].instance_location, "/name");
  EXPECT_EQ(errors[0].keyword, "required");
  EXPECT_EQ(errors[1].instance_location, "/age");
  EXPECT_EQ(errors[1].keyword, "minimum");
  EXPECT_EQ(errors[2].instance_location, "/tags/1");
  EXPECT_EQ(errors[2].keyword, "type");
}

TEST(JsonSchema, MaxErrorsBoundsTheReport) {
  auto [v, id] = compile(R"({"items":{"type":"string"}})");
  std::vector<ValidationError> errors;
  EXPECT_FALSE(v->validate(id, Json::parse("[1,2,3,4,5]"), &errors, 2));
  EXPECT_EQ(errors.size(), 2u);
}

TEST(JsonSchema, PointerTokensAreEscaped) {
  auto [v, id] = compile(R"({"properties":{"a/b~c":{"type":"string"}}})");
  std::vector<ValidationError> errors;
  EXPECT_FALSE(v->validate(id, Json::parse(R"({"a/b~c":1})"), &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].instance_location, "/a~1b~0c");
}

TEST(JsonSchema, AdditionalPropertiesFalseNamesTheProperty) {
  auto [v, id] = compile(R"({"properties":{"a":true},"additionalProperties":false})");
  std::vector<ValidationError> errors;
  EXPECT_FALSE(v->validate(id, Json::parse(R"({"a":1,"zz":2})"), &errors));
  ASSERT_FALSE(errors.empty());
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors.back().instance_location, "/zz");
  EXPECT_EQ(errors.back().keyword, "additionalProperties");
}

TEST(JsonSchema, OpenApi30Nullable) {
  Options o{Dialect::kOpenApi30, FormatMode::kAnnotate};
  auto [v, id] = compile(R"({"type":"string","nullable":true})", o);
  EXPECT_TRUE(v->validate(id, Json(nullptr)));
  EXPECT_TRUE(v->validate(id, Json("x")));
  EXPECT_FALSE(v->validate(id, Json(1)));
  // 2020-12 ignores `nullable`.
  auto [v2, id2] = compile(R"({"type":"string","nullable":true})");
  EXPECT_FALSE(v2->validate(id2, Json(nullptr)));
  // draft-04 style boolean exclusiveMaximum.
  auto [v3, id3] = compile(R"({"maximum":5,"exclusiveMaximum":true})", o);
  EXPECT_FALSE(v3->validate(id3, Json(5)));
  EXPECT_TRUE(v3->validate(id3, Json(4)));
}

TEST(JsonSchema, FormatsAnnotateByDefaultAndAssertOnRequest) {
  const char* schema = R"({"properties":{"when":{"format":"date-time"},"id":{"format":"uuid"},
      "ip":{"format":"ipv4"},"ip6":{"format":"ipv6"},"mail":{"format":"email"},
      "u":{"format":"uri"},"d":{"format":"date"}}})";
  Json bad = Json::parse(R"({"when":"2024-02-30T10:00:00Z"})");
  auto [lax, lax_id] = compile(schema);
  EXPECT_TRUE(lax->validate(lax_id, bad));
  auto [strict, id] = compile(schema, Options{Dialect::kDraft2020_12, FormatMode::kAssert});
  EXPECT_FALSE(strict->validate(id, bad));
  EXPECT_TRUE(strict->validate(
      id, Json::parse(
              R"({"when":"2024-02-29T23:59:60.5+00:00","id":"123e4567-e89b-12d3-a456-426614174000",
          "ip":"10.0.0.1","ip6":"::1","mail":"a.b@example.com","u":"https://x/y?z#w",
          "d":"2000-02-29"})")));
  for (const char* v : {R"({"id":"123e4567e89b12d3a456426614174000"})", R"({"ip":"1.2.3.04"})",
                        R"({"ip6":"1::2::3"})", R"({"mail":"a..b@x.com"})", R"({"u":"no scheme"})",
                        R"({"d":"1900-02-29"})"}) {
    std::vector<ValidationError> errors;
    EXPECT_FALSE(strict->validate(id, Json::parse(v), &errors)) << v;
    ASSERT_EQ(errors.size(), 1u) << v;
    EXPECT_EQ(errors[0].keyword, "format");
  }
}

TEST(JsonSchema, CompileErrors) {
  for (const char* s : {R"({"$ref":"#/definitions/missing"})", R"({"type":"strnig"})",
                        R"({"pattern":"(?<=a)b"})", R"({"minLength":-1})",
                        R"({"$ref":"http://elsewhere.example/schema"})", R"({"allOf":[]})"}) {
    auto r = compileSchema(Json::parse(s), Options{});
    EXPECT_FALSE(r.ok()) << s;
  }
  auto r = compileSchema(Json::parse(R"({"$ref":"#/definitions/missing"})"), Options{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("#/definitions/missing"), std::string::npos);
}

TEST(JsonSchema, EntryPointsIntoALargerDocument) {
  // An OpenAPI document: schemas under components, referenced from an operation.
  Json doc = Json::parse(R"({"openapi":"3.1.0","components":{"schemas":{
      "Pet":{"type":"object","required":["name"],"properties":{"name":{"type":"string"},
             "owner":{"$ref":"#/components/schemas/Person"}}},
      "Person":{"type":"object","properties":{"pets":{"type":"array",
             "items":{"$ref":"#/components/schemas/Pet"}}}}}}})");
  Builder b(Options{});
  ASSERT_TRUE(b.addDocument("file:///spec.yaml", doc).ok());
  auto pet = b.compile("file:///spec.yaml#/components/schemas/Pet");
  ASSERT_TRUE(pet.ok()) << pet.error().message;
  auto v = b.finish();
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE((*v)->validate(*pet, Json::parse(R"({"name":"a","owner":{"pets":[{"name":"b"}]}})")));
  std::vector<ValidationError> errors;
  EXPECT_FALSE((*v)->validate(*pet, Json::parse(R"({"name":"a","owner":{"pets":[{}]}})"), &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].instance_location, "/owner/pets/0/name");
}

TEST(JsonSchema, DeepRecursionIsBoundedByTheInstance) {
  auto [v, id] = compile(R"({"$defs":{"n":{"type":"array","items":{"$ref":"#/$defs/n"}}},
                              "$ref":"#/$defs/n"})");
  Json deep = Json::array();
  Json* at = &deep;
  for (int i = 0; i < 200; ++i) {
    at->push_back(Json::array());
    at = &(*at)[0];
  }
  EXPECT_TRUE(v->validate(id, deep));
  for (int i = 0; i < 2000; ++i) {
    at->push_back(Json::array());
    at = &(*at)[0];
  }
  std::vector<ValidationError> errors;
  EXPECT_FALSE(v->validate(id, deep, &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].keyword, "depth");
}

TEST(JsonSchema, RefCyclesThatNeverDescendAreRefused) {
  for (const char* s :
       {R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},
                           "$ref":"#/$defs/a"})",
        R"({"anyOf":[{"$ref":"#"},{"$ref":"#"}]})", R"({"allOf":[{"not":{"$ref":"#"}}]})"}) {
    auto r = compileSchema(Json::parse(s), Options{});
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_NE(r.error().message.find("cycle"), std::string::npos);
  }
  // Recursion through a property or an item is fine.
  auto [v, id] = compile(R"({"properties":{"next":{"$ref":"#"}},"anyOf":[{"required":["v"]},
                              {"required":["next"]}]})");
  EXPECT_TRUE(v->validate(id, Json::parse(R"({"next":{"next":{"v":1}}})")));
  EXPECT_FALSE(v->validate(id, Json::parse(R"({"next":{"next":{}}})")));
}

TEST(JsonSchema, WorkIsBounded) {
  // 24 nested anyOf levels whose first branch fails only at the bottom: 2^24 paths unbounded.
  Json schema = {{"$defs", {{"l0", {{"type", "string"}}}}}, {"$ref", "#/$defs/l24"}};
  for (int i = 1; i <= 24; ++i) {
    Json below = {{"$ref", "#/$defs/l" + std::to_string(i - 1)}};
    schema["$defs"]["l" + std::to_string(i)] = {
        {"anyOf",
         Json::array({Json{{"allOf", Json::array({below, Json{{"type", "null"}}})}}, below})}};
  }
  auto r = compileSchema(schema, Options{});
  ASSERT_TRUE(r.ok());
  std::vector<ValidationError> errors;
  EXPECT_FALSE(r->first->validate(r->second, Json(1), &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].keyword, "budget");
}

}  // namespace
}  // namespace gatehouse::jsonschema

// RFC 6901 JSON pointers (template/json_pointer.h): parsing with ~0/~1 escapes, lookups that
// never throw, and the checked writes the transform policy's body rules use.
#include <gtest/gtest.h>

#include "template/json_pointer.h"

namespace gatehouse::tmpl {
namespace {

using json = Json;

JsonPointer ptr(std::string_view text) {
  auto p = JsonPointer::parse(text);
  EXPECT_TRUE(p.ok()) << text;
  return p.ok() ? *p : JsonPointer();
}

// The examples of RFC 6901 §5.
TEST(JsonPointer, Rfc6901Examples) {
  const json doc = json::parse(R"({"foo": ["bar", "baz"], "": 0, "a/b": 1, "c%d": 2, "e^f": 3,
    "g|h": 4, "i\\j": 5, "k\"l": 6, " ": 7, "m~n": 8})");
  EXPECT_EQ(*ptr("").find(doc), doc);
  EXPECT_EQ(*ptr("/foo").find(doc), json::parse(R"(["bar", "baz"])"));
  EXPECT_EQ(*ptr("/foo/0").find(doc), "bar");
  EXPECT_EQ(*ptr("/").find(doc), 0);
  EXPECT_EQ(*ptr("/a~1b").find(doc), 1);
  EXPECT_EQ(*ptr("/c%d").find(doc), 2);
  EXPECT_EQ(*ptr("/e^f").find(doc), 3);
  EXPECT_EQ(*ptr("/g|h").find(doc), 4);
  EXPECT_EQ(*ptr("/i\\j").find(doc), 5);
  EXPECT_EQ(*ptr("/k\"l").find(doc), 6);
  EXPECT_EQ(*ptr("/ ").find(doc), 7);
  EXPECT_EQ(*ptr("/m~0n").find(doc), 8);
}

TEST(JsonPointer, EscapesDecodeInOrder) {
  // "~01" is "~1" (not "/"): ~0 is decoded on its own.
  EXPECT_EQ(ptr("/~01").tokens().front(), "~1");
  EXPECT_EQ(ptr("/~10").tokens().front(), "/0");
}

TEST(JsonPointer, RejectsBadSyntax) {
  for (const char* bad : {"a", "a/b", "/~", "/~2", "/a~", "/a~x/b"}) {
    auto p = JsonPointer::parse(bad);
    EXPECT_FALSE(p.ok()) << bad;
    if (!p.ok()) {
      EXPECT_EQ(p.error().code, ErrorCode::kInvalidArgument);
    }
  }
}

TEST(JsonPointer, MissingStepsGiveNullNotExceptions) {
  const json doc = json::parse(R"({"a": [1, 2], "s": "x", "n": null})");
  for (const char* p : {"/b", "/a/2", "/a/-", "/a/01", "/a/x", "/s/0", "/n/a", "/a/0/b",
                        "/a/99999999999999999999"}) {
    EXPECT_EQ(ptr(p).find(doc), nullptr) << p;
  }
}

TEST(JsonPointer, SetCreatesParentsAndAppends) {
  json doc = json::object();
  EXPECT_TRUE(ptr("/a/b/c").set(doc, 1, true, true));
  EXPECT_EQ(doc, json::parse(R"({"a": {"b": {"c": 1}}})"));
  EXPECT_FALSE(ptr("/a/b/c").set(doc, 2, true, false));  // add keeps what is there
  EXPECT_EQ(doc["a"]["b"]["c"], 1);
  doc["list"] = json::array({1});
  EXPECT_TRUE(ptr("/list/-").set(doc, 2, true, true));
  EXPECT_TRUE(ptr("/list/0").set(doc, 0, true, true));
  EXPECT_FALSE(ptr("/list/5").set(doc, 9, true, true));
  EXPECT_EQ(doc["list"], json::parse("[0, 2]"));
  EXPECT_FALSE(ptr("/x/y").set(doc, 1, false, true));  // no parent, none made
  doc["s"] = "str";
  EXPECT_FALSE(ptr("/s/y").set(doc, 1, true, true));  // cannot step into a string
}

TEST(JsonPointer, TakeRemovesFromObjectsAndArrays) {
  json doc = json::parse(R"({"a": {"b": 1}, "l": [1, 2, 3]})");
  auto v = ptr("/a/b").take(doc);
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, 1);
  EXPECT_EQ(doc["a"], json::object());
  EXPECT_EQ(*ptr("/l/1").take(doc), 2);
  EXPECT_EQ(doc["l"], json::parse("[1, 3]"));
  EXPECT_FALSE(ptr("/l/7").take(doc));
  EXPECT_FALSE(ptr("/nope/x").take(doc));
}

TEST(JsonPointer, ArrayIndexSyntax) {
  EXPECT_EQ(arrayIndex("0"), 0u);
  EXPECT_EQ(arrayIndex("17"), 17u);
  EXPECT_FALSE(arrayIndex("01"));
  EXPECT_FALSE(arrayIndex("-"));
  EXPECT_FALSE(arrayIndex(""));
  EXPECT_FALSE(arrayIndex("1a"));
}

}  // namespace
}  // namespace gatehouse::tmpl

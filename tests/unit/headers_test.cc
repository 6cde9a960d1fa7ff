#include "http/headers.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gatehouse::http {
namespace {

TEST(HeaderMap, CaseInsensitiveLookupKeepsOrderAndDuplicates) {
  HeaderMap h;
  h.addView("Accept", "*/*");
  h.add("X-Multi", "1");
  h.add("x-multi", "2");
  EXPECT_EQ(h.get("accept"), "*/*");
  EXPECT_EQ(h.count("X-MULTI"), 2u);
  h.set("x-multi", "3");
  EXPECT_EQ(h.count("x-multi"), 1u);
  EXPECT_EQ(h.get("x-multi"), "3");
  EXPECT_EQ(h.remove("ACCEPT"), 1u);
  EXPECT_FALSE(h.has("accept"));
}

TEST(HeaderMap, ArenaViewsStayValidAcrossBlocksAndReuse) {
  HeaderMap h;
  std::vector<std::string> expected;
  // Enough data to span several arena blocks, plus one string larger than a block.
  for (int i = 0; i < 200; ++i) {
    std::string v = "value-" + std::to_string(i) + std::string(static_cast<size_t>(i % 37), 'x');
    expected.push_back(v);
    h.add("h" + std::to_string(i), v);
  }
  std::string big(5000, 'b');
  h.add("big", big);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(h.get("h" + std::to_string(i)), expected[static_cast<size_t>(i)]);
  }
  EXPECT_EQ(h.get("big"), big);
  // Reuse after clear: new values are correct, and moving the map keeps the views valid.
  for (int round = 0; round < 3; ++round) {
    h.clear();
    EXPECT_EQ(h.size(), 0u);
    h.add("a", "first-" + std::to_string(round));
    h.add("b", std::string(3000, 'c'));
    HeaderMap moved = std::move(h);
    EXPECT_EQ(moved.get("a"), "first-" + std::to_string(round));
    EXPECT_EQ(moved.get("b").size(), 3000u);
    h = std::move(moved);
  }
  EXPECT_EQ(h.store(""), "");
}

TEST(Headers, IequalsFoldsAsciiLettersOnly) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("X-ABC-xyz", "x-abc-XYZ"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("abc", "abcd"));
  EXPECT_FALSE(iequals("abc", "abd"));
  // Pairs that differ only in bit 0x20 but are not letters must not compare equal.
  EXPECT_FALSE(iequals("@", "`"));
  EXPECT_FALSE(iequals("[", "{"));
  EXPECT_FALSE(iequals("-", "\r"));
  EXPECT_FALSE(iequals("\xc1", "\xe1"));
}

}  // namespace
}  // namespace gatehouse::http

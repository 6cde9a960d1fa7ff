#include <gtest/gtest.h>

#include <string>

#include "core/encoding.h"

namespace gatehouse {
namespace {

using encoding::Base64;

TEST(Encoding, Base64MatchesRfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (auto [plain, encoded] : vectors) {
    EXPECT_EQ(encoding::base64Encode(plain, Base64::kStandard, true), encoded) << plain;
    std::string unpadded(encoded);
    while (!unpadded.empty() && unpadded.back() == '=')
      unpadded.pop_back();
    EXPECT_EQ(encoding::base64Encode(plain, Base64::kUrl, false), unpadded) << plain;
    std::string back;
    EXPECT_TRUE(encoding::base64UrlDecodeStrict(unpadded, back));
    EXPECT_EQ(back, plain);
  }
  // The alphabets differ only in digits 62 and 63.
  EXPECT_EQ(encoding::base64Encode("\xfb\xff", Base64::kStandard, true), "+/8=");
  EXPECT_EQ(encoding::base64Encode("\xfb\xff", Base64::kUrl, false), "-_8");
}

TEST(Encoding, StrictUrlDecodingRefusesAnythingNonCanonical) {
  std::string out;
  EXPECT_FALSE(encoding::base64UrlDecodeStrict("Zg==", out));   // padding
  EXPECT_FALSE(encoding::base64UrlDecodeStrict("+/8", out));    // standard alphabet
  EXPECT_FALSE(encoding::base64UrlDecodeStrict("Zm9vY", out));  // 4n+1 characters
  EXPECT_FALSE(encoding::base64UrlDecodeStrict("Zh", out));     // leftover bits set
  EXPECT_TRUE(encoding::base64UrlDecodeStrict("Zg", out));
  EXPECT_EQ(out, "f");
}

TEST(Encoding, DigitsOfEachAlphabet) {
  EXPECT_EQ(encoding::base64Digit('+', Base64::kStandard), 62);
  EXPECT_EQ(encoding::base64Digit('-', Base64::kStandard), -1);
  EXPECT_EQ(encoding::base64Digit('_', Base64::kUrl), 63);
  EXPECT_EQ(encoding::base64Digit('/', Base64::kUrl), -1);
  EXPECT_EQ(encoding::base64Digit('/', Base64::kEither), 63);
  EXPECT_EQ(encoding::base64Digit('-', Base64::kEither), 62);
  EXPECT_EQ(encoding::base64Digit('=', Base64::kEither), -1);
  EXPECT_EQ(encoding::hexDigit('a'), 10);
  EXPECT_EQ(encoding::hexDigit('F'), 15);
  EXPECT_EQ(encoding::hexDigit('g'), -1);
}

std::string jsonEscaped(std::string_view s) {
  std::string out;
  encoding::appendJsonEscaped(out, s);
  return out;
}

TEST(Encoding, JsonEscapingKeepsUtf8AndEscapesInvalidBytes) {
  EXPECT_EQ(jsonEscaped("plain /path?q=1"), "plain /path?q=1");
  EXPECT_EQ(jsonEscaped("a\"b\\c\n\r\t"), "a\\\"b\\\\c\\n\\r\\t");
  EXPECT_EQ(jsonEscaped(std::string("\x01\x1f\x7f", 3)), "\\u0001\\u001f\\u007f");
  // Well-formed UTF-8 of 2, 3 and 4 bytes is written as itself.
  EXPECT_EQ(jsonEscaped("/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80"),
            "/caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80");
  // Lone continuation bytes, a truncated sequence, overlong forms, a surrogate, past U+10FFFF
  // and bytes that never occur in UTF-8 are escaped one byte at a time.
  EXPECT_EQ(jsonEscaped("\x80"), "\\\\x80");
  EXPECT_EQ(jsonEscaped("a\xc3"), "a\\\\xc3");
  EXPECT_EQ(jsonEscaped("\xc3("), "\\\\xc3(");
  EXPECT_EQ(jsonEscaped("\xc0\xaf"), "\\\\xc0\\\\xaf");
  EXPECT_EQ(jsonEscaped("\xe0\x80\xaf"), "\\\\xe0\\\\x80\\\\xaf");
  EXPECT_EQ(jsonEscaped("\xed\xa0\x80"), "\\\\xed\\\\xa0\\\\x80");
  EXPECT_EQ(jsonEscaped("\xf4\x90\x80\x80"), "\\\\xf4\\\\x90\\\\x80\\\\x80");
  EXPECT_EQ(jsonEscaped("\xff\xfe"), "\\\\xff\\\\xfe");
  // A valid sequence right after an invalid byte is still kept.
  EXPECT_EQ(jsonEscaped("\xff\xc3\xa9"), "\\\\xff\xc3\xa9");
}

TEST(Encoding, Utf8SequenceLengths) {
  EXPECT_EQ(encoding::utf8SequenceLength("a"), 1u);
  EXPECT_EQ(encoding::utf8SequenceLength("\xc3\xa9"), 2u);
  EXPECT_EQ(encoding::utf8SequenceLength("\xef\xbf\xbf"), 3u);
  EXPECT_EQ(encoding::utf8SequenceLength("\xf4\x8f\xbf\xbf"), 4u);
  EXPECT_EQ(encoding::utf8SequenceLength("\xc1\xbf"), 0u);
  EXPECT_EQ(encoding::utf8SequenceLength("\xf0\x8f\xbf\xbf"), 0u);
  EXPECT_EQ(encoding::utf8SequenceLength(""), 0u);
}

}  // namespace
}  // namespace gatehouse

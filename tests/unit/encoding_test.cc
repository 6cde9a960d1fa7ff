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

}  // namespace
}  // namespace gatehouse

// compress/: the bounded brotli and zstd request-body decoders, fed what our own encoders write:
// round trips whole and byte by byte, the bomb bound, corrupt, truncated and trailing input.
#include <gtest/gtest.h>
#include <zstd.h>

#include <string>

#include "compress/encoder.h"

namespace gatehouse::compress {
namespace {

struct Case {
  Algorithm encode;
  DecodeCoding decode;
};

std::string encoded(Algorithm a, const std::string& body) {
  auto enc = makeEncoder(a, levelRange(a).fallback);
  EXPECT_TRUE(enc.ok());
  std::string out;
  EXPECT_TRUE((*enc)->write(body, out).ok());
  EXPECT_TRUE((*enc)->finish(out).ok());
  return out;
}

std::string text(size_t n) {
  std::string s;
  for (size_t i = 0; s.size() < n; ++i)
    s += "record " + std::to_string(i * 7919 % 1000) + ";";
  s.resize(n);
  return s;
}

class DecoderRoundTrip : public ::testing::TestWithParam<Case> {};

TEST_P(DecoderRoundTrip, WholeAndByteByByte) {
  const std::string body = text(100000);
  const std::string coded = encoded(GetParam().encode, body);
  auto whole = decodeAll(GetParam().decode, coded, 1 << 20);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  EXPECT_EQ(*whole, body);

  auto d = makeDecoder(GetParam().decode, 1 << 20);
  ASSERT_TRUE(d.ok());
  std::string out;
  for (char c : coded)
    ASSERT_TRUE((*d)->write(std::string_view(&c, 1), out).ok());
  EXPECT_TRUE((*d)->finish().ok());
  EXPECT_EQ(out, body);
}

TEST_P(DecoderRoundTrip, RefusesABombAtTheBound) {
  const std::string bomb = encoded(GetParam().encode, std::string(8 << 20, '\0'));
  EXPECT_LT(bomb.size(), 64u * 1024);
  auto out = decodeAll(GetParam().decode, bomb, 1 << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ErrorCode::kTooLarge);
  EXPECT_TRUE(decodeAll(GetParam().decode, encoded(GetParam().encode, text(1000)), 1000).ok());
  auto over = decodeAll(GetParam().decode, encoded(GetParam().encode, text(1001)), 1000);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, ErrorCode::kTooLarge);
}

TEST_P(DecoderRoundTrip, CorruptTruncatedAndTrailing) {
  const std::string good = encoded(GetParam().encode, text(5000));
  auto truncated = decodeAll(GetParam().decode, good.substr(0, good.size() / 2), 1 << 20);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().code, ErrorCode::kProtocol);
  auto garbage = decodeAll(GetParam().decode, "\xff\xff\xff not a compressed body", 1 << 20);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::kProtocol);
  auto trailing = decodeAll(GetParam().decode, good + "junk", 1 << 20);
  ASSERT_FALSE(trailing.ok());
  EXPECT_EQ(trailing.error().code, ErrorCode::kProtocol);
  EXPECT_FALSE(decodeAll(GetParam().decode, "", 1 << 20).ok());
}

INSTANTIATE_TEST_SUITE_P(BrotliAndZstd, DecoderRoundTrip,
                         ::testing::Values(Case{Algorithm::kBrotli, DecodeCoding::kBrotli},
                                           Case{Algorithm::kZstd, DecodeCoding::kZstd}),
                         [](const auto& p) { return std::string(tokenOf(p.param.encode)); });

TEST(ZstdDecoder, ConcatenatedFramesAreOneBody) {
  const std::string coded = encoded(Algorithm::kZstd, "abc") + encoded(Algorithm::kZstd, "def");
  auto out = decodeAll(DecodeCoding::kZstd, coded, 1 << 20);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "abcdef");
}

// A frame whose window is over 8 MiB would make the decoder allocate it: refused as corrupt,
// whatever the output bound.
TEST(ZstdDecoder, RefusesAWindowOver8MiB) {
  const std::string body = text(16 << 20);
  std::string coded(ZSTD_compressBound(body.size()), '\0');
  ZSTD_CCtx* c = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 24);
  const size_t n = ZSTD_compress2(c, coded.data(), coded.size(), body.data(), body.size());
  ZSTD_freeCCtx(c);
  ASSERT_FALSE(ZSTD_isError(n));
  coded.resize(n);
  auto out = decodeAll(DecodeCoding::kZstd, coded, 1ull << 30);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ErrorCode::kProtocol);
}

}  // namespace
}  // namespace gatehouse::compress

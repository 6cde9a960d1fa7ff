// compress/: Accept-Encoding parsing and negotiation, and round trips through every encoder
// (decoded by the libraries' own decoders) and the bounded gzip/deflate decoder.
#include <brotli/decode.h>
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <string>
#include <vector>

#include "compress/accept_encoding.h"
#include "compress/encoder.h"

namespace gatehouse::compress {
namespace {

constexpr Algorithm kServerOrder[] = {Algorithm::kBrotli, Algorithm::kZstd, Algorithm::kGzip};

std::optional<Algorithm> pick(std::string_view header) {
  return negotiate(header, kServerOrder);
}

TEST(AcceptEncoding, QValues) {
  EXPECT_EQ(parseQValue("1"), 1000);
  EXPECT_EQ(parseQValue("1.000"), 1000);
  EXPECT_EQ(parseQValue("0"), 0);
  EXPECT_EQ(parseQValue("0.5"), 500);
  EXPECT_EQ(parseQValue("0.125"), 125);
  EXPECT_EQ(parseQValue("0.05"), 50);
  EXPECT_FALSE(parseQValue("1.5"));
  EXPECT_FALSE(parseQValue("1.001"));
  EXPECT_FALSE(parseQValue("0.1234"));
  EXPECT_FALSE(parseQValue("2"));
  EXPECT_FALSE(parseQValue(".5"));
  EXPECT_FALSE(parseQValue(""));
  EXPECT_FALSE(parseQValue("0.x"));
}

TEST(AcceptEncoding, ParsesElements) {
  std::vector<std::pair<std::string, int>> got;
  forEachAcceptedCoding(" gzip;q=0.8 , ,BR; Q=0.9;foo=bar, zstd;q=7, *;q=0 ",
                        [&](const AcceptedCoding& c) { got.emplace_back(c.coding, c.q_milli); });
  const std::vector<std::pair<std::string, int>> want = {{"gzip", 800}, {"BR", 900}, {"*", 0}};
  EXPECT_EQ(got, want);  // zstd's malformed weight drops the element
}

TEST(AcceptEncoding, ServerOrderBreaksTies) {
  EXPECT_EQ(pick("gzip, deflate, br, zstd"), Algorithm::kBrotli);
  EXPECT_EQ(pick("gzip, zstd"), Algorithm::kZstd);
  EXPECT_EQ(pick("gzip"), Algorithm::kGzip);
  EXPECT_EQ(pick("x-gzip"), Algorithm::kGzip);
  EXPECT_EQ(pick("GZIP"), Algorithm::kGzip);
  const Algorithm gzip_first[] = {Algorithm::kGzip, Algorithm::kBrotli};
  EXPECT_EQ(negotiate("br, gzip", gzip_first), Algorithm::kGzip);
}

TEST(AcceptEncoding, ClientWeightsWin) {
  EXPECT_EQ(pick("br;q=0.5, gzip;q=0.9"), Algorithm::kGzip);
  EXPECT_EQ(pick("br;q=0.5, zstd;q=0.6, gzip;q=0.1"), Algorithm::kZstd);
  EXPECT_EQ(pick("br;q=0, gzip"), Algorithm::kGzip);
  EXPECT_EQ(pick("br;q=0, gzip;q=0, zstd;q=0"), std::nullopt);
  EXPECT_EQ(pick("br;q=0.001"), Algorithm::kBrotli);
}

TEST(AcceptEncoding, StarAndIdentity) {
  EXPECT_EQ(pick("*"), Algorithm::kBrotli);
  EXPECT_EQ(pick("*;q=0.5, br;q=0"), Algorithm::kZstd);
  EXPECT_EQ(pick("*;q=0"), std::nullopt);
  EXPECT_EQ(pick("identity"), std::nullopt);
  EXPECT_EQ(pick("gzip;q=0.5, identity"), std::nullopt);  // plain weighs more
  EXPECT_EQ(pick("gzip, identity;q=0.5"), Algorithm::kGzip);
  EXPECT_EQ(pick("gzip, identity"), Algorithm::kGzip);  // equal: we prefer to code
  EXPECT_EQ(pick("gzip;q=0.5"), Algorithm::kGzip);      // identity unlisted: lowest
  EXPECT_EQ(pick(""), std::nullopt);
  EXPECT_EQ(pick("deflate, compress"), std::nullopt);
  EXPECT_EQ(pick("gzip;q=0, gzip"), std::nullopt);  // the first listing counts
}

std::string inflateGzip(const std::string& in) {
  auto out = decodeAll(DecodeCoding::kGzip, in, 1ull << 30);
  EXPECT_TRUE(out.ok());
  return out.ok() ? *out : std::string();
}

std::string decodeBrotli(const std::string& in) {
  BrotliDecoderState* s = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
  std::string out;
  size_t avail_in = in.size();
  const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
  BrotliDecoderResult r;
  do {
    uint8_t buf[4096];
    size_t avail_out = sizeof buf;
    uint8_t* next_out = buf;
    r = BrotliDecoderDecompressStream(s, &avail_in, &next_in, &avail_out, &next_out, nullptr);
    out.append(reinterpret_cast<char*>(buf), sizeof buf - avail_out);
  } while (r == BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT);
  EXPECT_EQ(r, BROTLI_DECODER_RESULT_SUCCESS);
  BrotliDecoderDestroyInstance(s);
  return out;
}

std::string decodeZstd(const std::string& in) {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  std::string out;
  ZSTD_inBuffer input{in.data(), in.size(), 0};
  size_t rc = 0;
  while (input.pos < input.size) {
    char buf[4096];
    ZSTD_outBuffer output{buf, sizeof buf, 0};
    rc = ZSTD_decompressStream(d, &output, &input);
    EXPECT_FALSE(ZSTD_isError(rc));
    if (ZSTD_isError(rc)) break;
    out.append(buf, output.pos);
  }
  EXPECT_EQ(rc, 0u);  // the frame ended
  ZSTD_freeDCtx(d);
  return out;
}

std::string decode(Algorithm a, const std::string& in) {
  switch (a) {
    case Algorithm::kGzip:
      return inflateGzip(in);
    case Algorithm::kBrotli:
      return decodeBrotli(in);
    case Algorithm::kZstd:
      return decodeZstd(in);
  }
  return {};
}

std::string jsonLike(size_t records) {
  std::string s = "[";
  for (size_t i = 0; i < records; ++i) {
    s += R"({"id":)" + std::to_string(i) + R"(,"name":"user)" + std::to_string(i * 7919 % 1000) +
         R"(","active":true,"tags":["a","b"]},)";
  }
  s.back() = ']';
  return s;
}

class EncoderRoundTrip : public ::testing::TestWithParam<Algorithm> {};

TEST_P(EncoderRoundTrip, WholeBodyShrinksAndDecodes) {
  const std::string body = jsonLike(2000);
  for (int level :
       {levelRange(GetParam()).min, levelRange(GetParam()).fallback, levelRange(GetParam()).max}) {
    auto enc = makeEncoder(GetParam(), level);
    ASSERT_TRUE(enc.ok());
    std::string out;
    ASSERT_TRUE((*enc)->write(body, out).ok());
    ASSERT_TRUE((*enc)->finish(out).ok());
    EXPECT_LT(out.size(), body.size() / 4) << tokenOf(GetParam()) << " level " << level;
    EXPECT_EQ(decode(GetParam(), out), body);
  }
}

// Each write flushes: the bytes out so far decode to every byte written so far.
TEST_P(EncoderRoundTrip, EveryChunkDecodesAsItComes) {
  auto enc = makeEncoder(GetParam(), levelRange(GetParam()).fallback);
  ASSERT_TRUE(enc.ok());
  std::string out;
  std::string written;
  for (int i = 0; i < 5; ++i) {
    const std::string chunk = "data: event " + std::to_string(i) + "\n\n";
    ASSERT_TRUE((*enc)->write(chunk, out).ok());
    written += chunk;
    if (GetParam() == Algorithm::kGzip) {
      // zlib can decode an unfinished stream; check the prefix directly.
      z_stream zs{};
      ASSERT_EQ(inflateInit2(&zs, 15 + 16), Z_OK);
      std::string plain(written.size() + 64, '\0');
      zs.next_in = reinterpret_cast<Bytef*>(out.data());
      zs.avail_in = static_cast<uInt>(out.size());
      zs.next_out = reinterpret_cast<Bytef*>(plain.data());
      zs.avail_out = static_cast<uInt>(plain.size());
      inflate(&zs, Z_SYNC_FLUSH);
      plain.resize(plain.size() - zs.avail_out);
      inflateEnd(&zs);
      EXPECT_EQ(plain, written);
    }
  }
  ASSERT_TRUE((*enc)->write("", out).ok());  // nothing written: nothing to flush
  ASSERT_TRUE((*enc)->finish(out).ok());
  EXPECT_EQ(decode(GetParam(), out), written);
}

TEST_P(EncoderRoundTrip, EmptyBody) {
  auto enc = makeEncoder(GetParam(), 1);
  ASSERT_TRUE(enc.ok());
  std::string out;
  ASSERT_TRUE((*enc)->finish(out).ok());
  EXPECT_FALSE(out.empty());
  EXPECT_EQ(decode(GetParam(), out), "");
}

INSTANTIATE_TEST_SUITE_P(All, EncoderRoundTrip, ::testing::ValuesIn(kAllAlgorithms),
                         [](const auto& p) { return std::string(tokenOf(p.param)); });

TEST(Tokens, RoundTrip) {
  for (Algorithm a : kAllAlgorithms)
    EXPECT_EQ(algorithmOf(tokenOf(a)), a);
  EXPECT_FALSE(algorithmOf("deflate"));
  EXPECT_EQ(decodeCodingOf("X-GZIP"), DecodeCoding::kGzip);
  EXPECT_EQ(decodeCodingOf("deflate"), DecodeCoding::kDeflate);
  EXPECT_EQ(decodeCodingOf("br"), DecodeCoding::kBrotli);
  EXPECT_EQ(decodeCodingOf("ZSTD"), DecodeCoding::kZstd);
  EXPECT_FALSE(decodeCodingOf("compress"));
}

std::string zlibCompress(const std::string& in, int window_bits) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  return out;
}

TEST(Decoder, GzipDeflateAndConcatenatedMembers) {
  const std::string body = jsonLike(300);
  EXPECT_EQ(inflateGzip(zlibCompress(body, 31)), body);
  auto deflated = decodeAll(DecodeCoding::kDeflate, zlibCompress(body, 15), 1 << 20);
  ASSERT_TRUE(deflated.ok());
  EXPECT_EQ(*deflated, body);
  EXPECT_EQ(inflateGzip(zlibCompress("abc", 31) + zlibCompress("def", 31)), "abcdef");
}

TEST(Decoder, RefusesABombAtTheBound) {
  const std::string zeros(10 << 20, '\0');
  const std::string bomb = zlibCompress(zeros, 31);
  EXPECT_LT(bomb.size(), 20u * 1024);
  auto out = decodeAll(DecodeCoding::kGzip, bomb, 1 << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, ErrorCode::kTooLarge);
  auto exact = decodeAll(DecodeCoding::kGzip, zlibCompress(std::string(1000, 'x'), 31), 1000);
  EXPECT_TRUE(exact.ok());  // the bound itself is allowed
  auto over = decodeAll(DecodeCoding::kGzip, zlibCompress(std::string(1001, 'x'), 31), 1000);
  EXPECT_FALSE(over.ok());
}

TEST(Decoder, CorruptAndTruncated) {
  const std::string good = zlibCompress(jsonLike(50), 31);
  auto truncated = decodeAll(DecodeCoding::kGzip, good.substr(0, good.size() / 2), 1 << 20);
  ASSERT_FALSE(truncated.ok());
  EXPECT_EQ(truncated.error().code, ErrorCode::kProtocol);
  auto garbage = decodeAll(DecodeCoding::kGzip, "not gzip at all", 1 << 20);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, ErrorCode::kProtocol);
  auto trailing = decodeAll(DecodeCoding::kGzip, good + "junk", 1 << 20);
  EXPECT_FALSE(trailing.ok());
  auto deflate_trailing =
      decodeAll(DecodeCoding::kDeflate, zlibCompress("abc", 15) + zlibCompress("d", 15), 1 << 20);
  EXPECT_FALSE(deflate_trailing.ok());
}

}  // namespace
}  // namespace gatehouse::compress

// xxh64 against the published test vectors, and hash-key extraction from requests.
#include <gtest/gtest.h>

#include <string>

#include "config/model.h"
#include "http/message.h"
#include "lb/hash.h"
#include "lb/hash_key.h"

namespace gatehouse::lb {
namespace {

// xxHash's own sanity buffer (xxhsum's fillTestBuffer): bytes from a multiplicative generator.
std::string sanityBuffer(size_t len) {
  constexpr uint64_t kPrime32 = 2654435761U;
  constexpr uint64_t kPrime64 = 11400714785074694797ULL;
  std::string out;
  uint64_t gen = kPrime32;
  for (size_t i = 0; i < len; ++i) {
    out.push_back(static_cast<char>(static_cast<uint8_t>(gen >> 56)));
    gen *= kPrime64;
  }
  return out;
}

TEST(LbHash, Xxh64SanityVectors) {
  // From xxHash's sanity check (cli/xsum_sanity_check.c), seeds 0 and PRIME32.
  constexpr uint64_t kPrime32 = 2654435761U;
  struct Case {
    size_t len;
    uint64_t seed;
    uint64_t want;
  };
  const Case cases[] = {
      {0, 0, 0xEF46DB3751D8E999ULL},          {0, kPrime32, 0xAC75FDA2929B17EFULL},
      {1, 0, 0xE934A84ADB052768ULL},          {1, kPrime32, 0x5014607643A9B4C3ULL},
      {4, 0, 0x9136A0DCA57457EEULL},          {14, 0, 0x8282DCC4994E35C8ULL},
      {14, kPrime32, 0xC3BD6BF63DEB6DF0ULL},  {222, 0, 0xB641AE8CB691C174ULL},
      {222, kPrime32, 0x20CB8AB7AE10C14AULL},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(xxh64(sanityBuffer(c.len), c.seed), c.want) << "len " << c.len << " seed " << c.seed;
  }
}

TEST(LbHash, Xxh64StringVectors) {
  EXPECT_EQ(xxh64(""), 0xEF46DB3751D8E999ULL);
  EXPECT_EQ(xxh64("a"), 0xD24EC4F1A98C6E5BULL);
  EXPECT_EQ(xxh64("abc"), 0x44BC2CF5AD770999ULL);
  // python-xxhash's README examples; 39 bytes covers the 32-byte stripe loop and every tail.
  EXPECT_EQ(xxh64("Nobody inspects the spammish repetition"), 0xFBCEA83C8A378BF1ULL);
  EXPECT_EQ(xxh64("xxhash"), 0x32DD38952C4BC720ULL);
  EXPECT_EQ(xxh64("xxhash", 20141025), 0xB559B98D844E0635ULL);
}

TEST(LbHash, Xxh64DoesNotReadPastTheView) {
  std::string s = "abcdef";
  EXPECT_EQ(xxh64(std::string_view(s).substr(0, 3)), xxh64("abc"));
}

class LbHashKey : public ::testing::Test {
 protected:
  std::optional<std::string> extract(config::HashKey::Source source, std::string name = {}) {
    config::HashKey key{source, std::move(name)};
    PickContext ctx{&request_, client_ip_};
    auto v = extractHashKey(key, ctx);
    if (!v) return std::nullopt;
    return std::string(*v);
  }
  http::Request request_;
  std::string client_ip_ = "192.0.2.7";
};

TEST_F(LbHashKey, SourceIp) {
  using S = config::HashKey::Source;
  EXPECT_EQ(extract(S::kSourceIp), "192.0.2.7");
  client_ip_.clear();
  EXPECT_EQ(extract(S::kSourceIp), std::nullopt);
  // The IP needs no request.
  config::HashKey key;
  EXPECT_EQ(extractHashKey(key, PickContext{nullptr, "::1"}), "::1");
}

TEST_F(LbHashKey, Header) {
  using S = config::HashKey::Source;
  request_.headers.add("X-User", "alice");
  request_.headers.add("x-user", "bob");
  request_.headers.add("x-empty", "");
  EXPECT_EQ(extract(S::kHeader, "x-user"), "alice");  // the first, any case
  EXPECT_EQ(extract(S::kHeader, "x-missing"), std::nullopt);
  EXPECT_EQ(extract(S::kHeader, "x-empty"), std::nullopt);
}

TEST_F(LbHashKey, Cookie) {
  using S = config::HashKey::Source;
  request_.headers.add("cookie", "theme=dark; session=abc123 ;lang=en");
  request_.headers.add("Cookie", "cart=7; empty=");
  EXPECT_EQ(extract(S::kCookie, "session"), "abc123");
  EXPECT_EQ(extract(S::kCookie, "theme"), "dark");
  EXPECT_EQ(extract(S::kCookie, "lang"), "en");
  EXPECT_EQ(extract(S::kCookie, "cart"), "7");              // in a second Cookie field
  EXPECT_EQ(extract(S::kCookie, "Session"), std::nullopt);  // names are case-sensitive
  EXPECT_EQ(extract(S::kCookie, "sess"), std::nullopt);
  EXPECT_EQ(extract(S::kCookie, "empty"), std::nullopt);
  EXPECT_EQ(findCookie(request_.headers, "empty"), std::string_view{});
}

TEST_F(LbHashKey, Query) {
  using S = config::HashKey::Source;
  request_.query = "a=1&user=42&user=43&flag&b=&c=%20x";
  EXPECT_EQ(extract(S::kQuery, "user"), "42");
  EXPECT_EQ(extract(S::kQuery, "a"), "1");
  EXPECT_EQ(extract(S::kQuery, "c"), "%20x");  // as written
  EXPECT_EQ(extract(S::kQuery, "flag"), std::nullopt);
  EXPECT_EQ(extract(S::kQuery, "b"), std::nullopt);
  EXPECT_EQ(extract(S::kQuery, "us"), std::nullopt);
  EXPECT_EQ(findQueryParam("", "a"), std::nullopt);
  EXPECT_EQ(findQueryParam("x=1", "x"), "1");
}

TEST_F(LbHashKey, Path) {
  using S = config::HashKey::Source;
  request_.path = "/users/42";
  EXPECT_EQ(extract(S::kPath), "/users/42");
  // Without a request, only the source IP can be had.
  config::HashKey key{S::kPath, {}};
  EXPECT_EQ(extractHashKey(key, PickContext{nullptr, "10.0.0.1"}), std::nullopt);
}

}  // namespace
}  // namespace gatehouse::lb

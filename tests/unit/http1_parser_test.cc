#include "http/http1_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::http1 {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

constexpr std::string_view kBrowserGet =
    "GET /api/v1/items?page=2&sort=desc HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=abc123def456; theme=dark\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "\r\n";

struct ReqResult {
  ParseStatus status;
  RequestHead head;
  ParseError err;
};

ReqResult parseReq(std::string_view in, const ParseLimits& limits = {}) {
  ReqResult r;
  r.status = parseRequestHead(in, limits, r.head, r.err);
  return r;
}

bool within(std::string_view view, std::string_view buf) {
  return view.data() >= buf.data() && view.data() + view.size() <= buf.data() + buf.size();
}

// ---------------------------------------------------------------------------------------------
// Valid requests

TEST(Http1Request, BrowserGet) {
  const ReqResult r = parseReq(kBrowserGet);
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.err.reason;
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.target, "/api/v1/items?page=2&sort=desc");
  EXPECT_EQ(r.head.version_minor, 1);
  EXPECT_EQ(r.head.host, "shop.example.com");
  EXPECT_EQ(r.head.headers.size(), 8u);
  EXPECT_EQ(r.head.headers.get("accept-encoding"), "gzip, deflate, br");
  EXPECT_EQ(r.head.body, BodyKind::kNone);
  EXPECT_TRUE(r.head.keep_alive);
  EXPECT_FALSE(r.head.upgrade);
  EXPECT_FALSE(r.head.expect_continue);
  EXPECT_EQ(r.head.head_size, kBrowserGet.size());
  // Zero-copy: every view points into the input buffer.
  EXPECT_TRUE(within(r.head.method, kBrowserGet));
  EXPECT_TRUE(within(r.head.target, kBrowserGet));
  EXPECT_TRUE(within(r.head.host, kBrowserGet));
  for (const auto& f : r.head.headers.fields()) {
    EXPECT_TRUE(within(f.name, kBrowserGet));
    EXPECT_TRUE(within(f.value, kBrowserGet));
  }
}

TEST(Http1Request, PostWithContentLength) {
  const std::string in = "POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello";
  const ReqResult r = parseReq(in);
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.err.reason;
  EXPECT_EQ(r.head.body, BodyKind::kContentLength);
  EXPECT_EQ(r.head.content_length, 5u);
  EXPECT_EQ(in.substr(r.head.head_size), "hello");
}

TEST(Http1Request, ContentLengthZeroAndMax) {
  ReqResult r = parseReq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.body, BodyKind::kContentLength);
  EXPECT_EQ(r.head.content_length, 0u);
  r = parseReq("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551615\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.content_length, 18446744073709551615ULL);
}

TEST(Http1Request, IdenticalContentLengthsAreOne) {
  for (std::string_view cl :
       {"Content-Length: 7, 7\r\n"sv, "Content-Length: 7\r\ncontent-length: 7\r\n"sv,
        "Content-Length: 7 ,7 , 7\r\n"sv, "Content-Length: 007\r\n"sv}) {
    const std::string in = "POST / HTTP/1.1\r\nHost: a\r\n"s + std::string(cl) + "\r\n";
    const ReqResult r = parseReq(in);
    ASSERT_EQ(r.status, ParseStatus::kComplete) << cl << r.err.reason;
    EXPECT_EQ(r.head.body, BodyKind::kContentLength);
    EXPECT_EQ(r.head.content_length, 7u);
  }
}

TEST(Http1Request, Chunked) {
  for (std::string_view te : {"chunked"sv, "Chunked"sv, "CHUNKED"sv, " chunked \t"sv}) {
    const std::string in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:" + std::string(te) +
                           "\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    const ReqResult r = parseReq(in);
    ASSERT_EQ(r.status, ParseStatus::kComplete) << te << r.err.reason;
    EXPECT_EQ(r.head.body, BodyKind::kChunked);
    EXPECT_EQ(r.head.content_length, 0u);
  }
}

TEST(Http1Request, PipelinedRequests) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "POST /two HTTP/1.1\r\nHost: b\r\nContent-Length: 2\r\n\r\nhi";
  const std::string buf = first + second;
  ReqResult r = parseReq(buf);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.target, "/one");
  ASSERT_EQ(r.head.head_size, first.size());
  r = parseReq(std::string_view(buf).substr(first.size()));
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.target, "/two");
  EXPECT_EQ(r.head.host, "b");
  EXPECT_EQ(r.head.content_length, 2u);
}

TEST(Http1Request, LeadingEmptyLinesSkipped) {
  const std::string in = "\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const ReqResult r = parseReq(in);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.method, "GET");
  EXPECT_EQ(r.head.head_size, in.size());
  EXPECT_EQ(parseReq("\r\n").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parseReq("\r").status, ParseStatus::kIncomplete);
  EXPECT_EQ(parseReq("").status, ParseStatus::kIncomplete);
}

TEST(Http1Request, OtherForms) {
  ReqResult r = parseReq("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.target, "*");
  r = parseReq("CONNECT db.internal:5432 HTTP/1.1\r\nHost: db.internal:5432\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.target, "db.internal:5432");
  r = parseReq("GET http://Example.com:8080/x?y HTTP/1.1\r\nHost: example.com:8080\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.err.reason;
  EXPECT_EQ(r.head.host, "Example.com:8080");  // the target's authority wins (RFC 9112 §3.2.2)
  r = parseReq("GET https://example.com HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.err.reason;
  EXPECT_EQ(r.head.host, "example.com");
}

TEST(Http1Request, Http10Defaults) {
  ReqResult r = parseReq("GET / HTTP/1.0\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.version_minor, 0);
  EXPECT_FALSE(r.head.keep_alive);
  EXPECT_EQ(r.head.host, "");
  r = parseReq("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: a\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_TRUE(r.head.keep_alive);
  EXPECT_EQ(r.head.host, "a");
  // Upgrade and Expect are HTTP/1.1 features.
  r = parseReq(
      "GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\nExpect: "
      "100-continue\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_FALSE(r.head.upgrade);
  EXPECT_FALSE(r.head.expect_continue);
}

TEST(Http1Request, ConnectionTokens) {
  struct Case {
    std::string_view fields;
    bool keep_alive;
    bool upgrade;
  };
  const Case cases[] = {
      {"", true, false},
      {"Connection: close\r\n", false, false},
      {"Connection: CLOSE\r\n", false, false},
      {"Connection: keep-alive, close\r\n", false, false},
      {"Connection: foo\r\nConnection: close\r\n", false, false},
      {"Connection: Upgrade\r\nUpgrade: websocket\r\n", true, true},
      {"Connection: keep-alive,  upgrade ,\r\nUpgrade: h2c\r\n", true, true},
      {"Connection: upgrade\r\n", true, false},
      {"Upgrade: websocket\r\n", true, false},
      {"Connection: upgraded\r\nUpgrade: websocket\r\n", true, false},
  };
  for (const Case& c : cases) {
    const std::string in = "GET / HTTP/1.1\r\nHost: a\r\n" + std::string(c.fields) + "\r\n";
    const ReqResult r = parseReq(in);
    ASSERT_EQ(r.status, ParseStatus::kComplete) << c.fields;
    EXPECT_EQ(r.head.keep_alive, c.keep_alive) << c.fields;
    EXPECT_EQ(r.head.upgrade, c.upgrade) << c.fields;
  }
}

TEST(Http1Request, ExpectContinue) {
  ReqResult r =
      parseReq("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_TRUE(r.head.expect_continue);
  r = parseReq("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_FALSE(r.head.expect_continue);
}

TEST(Http1Request, FieldValuesTrimmedAndObsTextAllowed) {
  const std::string in =
      "GET / HTTP/1.1\r\nHost:a\r\nX-A: \t v a l \t \r\nX-Empty:\r\nX-Sp:   \r\nX-Utf8: "
      "caf\xc3\xa9\r\n\r\n";
  const ReqResult r = parseReq(in);
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.err.reason;
  EXPECT_EQ(r.head.host, "a");
  EXPECT_EQ(r.head.headers.get("x-a"), "v a l");
  EXPECT_TRUE(r.head.headers.has("X-Empty"));
  EXPECT_EQ(r.head.headers.get("x-empty"), "");
  EXPECT_EQ(r.head.headers.get("x-sp"), "");
  EXPECT_EQ(r.head.headers.get("x-utf8"), "caf\xc3\xa9");
}

TEST(Http1Request, ValidHosts) {
  for (std::string_view host :
       {"example.com"sv, "example.com:8080"sv, "127.0.0.1:1"sv, "[::1]"sv, "[2001:db8::1]:443"sv,
        "xn--bcher-kva.example"sv, "a-b_c~d"sv, "caf%C3%A9.example"sv, ""sv, "h:65535"sv}) {
    const std::string in = "GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n";
    const ReqResult r = parseReq(in);
    ASSERT_EQ(r.status, ParseStatus::kComplete) << host << ": " << r.err.reason;
    EXPECT_EQ(r.head.host, host);
  }
}

TEST(Http1Request, HeadReusedAcrossCalls) {
  RequestHead head;
  ParseError err;
  ASSERT_EQ(parseRequestHead(
                "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close\r\n\r\n", {},
                head, err),
            ParseStatus::kComplete);
  ASSERT_EQ(parseRequestHead("GET / HTTP/1.1\r\nHost: b\r\n\r\n", {}, head, err),
            ParseStatus::kComplete);
  EXPECT_EQ(head.headers.size(), 1u);
  EXPECT_EQ(head.body, BodyKind::kNone);
  EXPECT_EQ(head.content_length, 0u);
  EXPECT_TRUE(head.keep_alive);
}

// ---------------------------------------------------------------------------------------------
// Rejections: every case with its exact status.

struct Reject {
  std::string in;
  int status;
};

void expectRejects(const std::vector<Reject>& cases) {
  for (const Reject& c : cases) {
    const ReqResult r = parseReq(c.in);
    EXPECT_EQ(r.status, ParseStatus::kError) << testing::PrintToString(c.in);
    EXPECT_EQ(r.err.status, c.status) << testing::PrintToString(c.in) << " " << r.err.reason;
    EXPECT_FALSE(r.err.reason.empty());
  }
}

std::string withHost(std::string_view line, std::string_view fields = "") {
  return std::string(line) + "\r\nHost: a\r\n" + std::string(fields) + "\r\n";
}

TEST(Http1Request, RejectsBadRequestLine) {
  expectRejects({
      {withHost("GET  / HTTP/1.1"), 400},
      {withHost("GET /  HTTP/1.1"), 400},
      {withHost("GET / HTTP/1.1 "), 400},
      {withHost(" GET / HTTP/1.1"), 400},
      {withHost("GET\t/ HTTP/1.1"), 400},
      {withHost("GET /\tx HTTP/1.1"), 400},
      {withHost("G(T / HTTP/1.1"), 400},
      {withHost("G\xc3\x89T / HTTP/1.1"), 400},
      {withHost("GET  HTTP/1.1"), 400},
      {withHost("GET /a\x01 HTTP/1.1"), 400},
      {withHost("GET /a\x7f HTTP/1.1"), 400},
      {withHost("GET /caf\xc3\xa9 HTTP/1.1"), 400},
      {withHost("GET /a#frag HTTP/1.1"), 400},
      {withHost("GE\0T / HTTP/1.1"s), 400},
      {withHost("GET /\0 HTTP/1.1"s), 400},
      {withHost("GET / HTTP/1.1\0"s), 400},
      {withHost("GET /"), 400},
      {withHost("GET / HTTP/1.1/"), 400},
      {withHost("GET / http/1.1"), 400},
      {withHost("GET / HTTP/11"), 400},
      {withHost("GET / HTTP/1.10"), 400},
      {withHost("GET / HTTP/1."), 400},
      {withHost("GET / HTTP/a.b"), 400},
      {withHost("GET / HTTPS/1.1"), 400},
      {withHost("GET / HTTP/2.0"), 505},
      {withHost("GET / HTTP/1.2"), 505},
      {withHost("GET / HTTP/0.9"), 505},
      {withHost("GET / HTTP/3.0"), 505},
      {withHost("GET * HTTP/1.1"), 400},
      {withHost("GET example.com HTTP/1.1"), 400},
      {withHost("GET http://user@example.com/ HTTP/1.1"), 400},
      {withHost("GET http:///x HTTP/1.1"), 400},
      {withHost("GET 1http://a/ HTTP/1.1"), 400},
      {withHost("CONNECT /x HTTP/1.1"), 400},
      {withHost("CONNECT example.com HTTP/1.1"), 400},
      {"GET http://b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
  });
}

TEST(Http1Request, RejectsBadLineEndings) {
  expectRejects({
      {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\rHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\n\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\n\rX", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX\n: 1\r\n\r\n", 400},
      {"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\n\n", 400},
  });
}

TEST(Http1Request, RejectsBadFields) {
  expectRejects({
      {withHost("GET / HTTP/1.1", "X-A : 1\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X-A\t: 1\r\n"), 400},
      {withHost("GET / HTTP/1.1", ": 1\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X A: 1\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X@A: 1\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X\xc3\xa9: 1\r\n"), 400},
      {withHost("GET / HTTP/1.1", "NoColon\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X-A: 1\r\n folded\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X-A: 1\r\n\tfolded\r\n"), 400},
      {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},
      {withHost("GET / HTTP/1.1", "X-A: a\0b\r\n"s), 400},
      {withHost("GET / HTTP/1.1", "X-A: a\x01\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X-A: a\x1f\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X-A: a\x7f\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X-A: 0123456789abcdef\x0b long value\r\n"), 400},
      {withHost("GET / HTTP/1.1", "X\0A: 1\r\n"s), 400},
  });
}

TEST(Http1Request, RejectsAmbiguousFraming) {
  const std::string post = "POST / HTTP/1.1";
  expectRejects({
      {withHost(post, "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked\r\nContent-Length: x\r\n"), 400},
      {withHost(post, "Transfer-Encoding: gzip\r\n"), 400},
      {withHost(post, "Transfer-Encoding: identity\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked, gzip\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked, chunked\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked,\r\n"), 400},
      {withHost(post, "Transfer-Encoding: ,chunked\r\n"), 400},
      {withHost(post, "Transfer-Encoding:\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked;q=1\r\n"), 400},
      {withHost(post, "Transfer-Encoding: \"chunked\"\r\n"), 400},
      {withHost(post, "Transfer-Encoding: chunked x\r\n"), 400},
      {withHost(post, "Transfer-Encoding: xchunked\r\n"), 400},
      {withHost(post, "Transfer-Encoding: gzip, chunked\r\n"), 501},
      {withHost(post, "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 501},
      {withHost(post, "Transfer-Encoding: x-custom;a=b, chunked\r\n"), 501},
      {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
      {withHost(post, "Content-Length: 5, 6\r\n"), 400},
      {withHost(post, "Content-Length: 5\r\nContent-Length: 6\r\n"), 400},
      {withHost(post, "Content-Length: 5\r\nContent-Length: 5, 6\r\n"), 400},
      {withHost(post, "Content-Length:\r\n"), 400},
      {withHost(post, "Content-Length: 5,\r\n"), 400},
      {withHost(post, "Content-Length: ,5\r\n"), 400},
      {withHost(post, "Content-Length: -1\r\n"), 400},
      {withHost(post, "Content-Length: +1\r\n"), 400},
      {withHost(post, "Content-Length: 0x10\r\n"), 400},
      {withHost(post, "Content-Length: 1.0\r\n"), 400},
      {withHost(post, "Content-Length: 1 0\r\n"), 400},
      {withHost(post, "Content-Length: abc\r\n"), 400},
      {withHost(post, "Content-Length: 18446744073709551616\r\n"), 400},
      {withHost(post, "Content-Length: 99999999999999999999999\r\n"), 400},
      {withHost(post, "Content-Length: \"5\"\r\n"), 400},
  });
}

TEST(Http1Request, RejectsBadHost) {
  expectRejects({
      {"GET / HTTP/1.1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nX-Host: a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
      {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a,b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a\\b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a?b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a#b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a:b\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a:65536\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a:1:2\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: []\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: [::1]x\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", 400},
      {"GET / HTTP/1.1\r\nHost: caf\xc3\xa9\r\n\r\n", 400},
  });
}

// The scanners check 8 bytes at a time; a bad byte must be caught at every offset of a word.
TEST(Http1Request, EveryOffsetOfLongTargetAndValue) {
  const std::string long_path = "/" + std::string(40, 'p');
  for (size_t at = 1; at < long_path.size(); ++at) {
    for (char bad : {'\0', '\x01', '\t', ' ', '#', '\x7f', '\x80', '\xff'}) {
      std::string target = long_path;
      target[at] = bad;
      const ReqResult r = parseReq("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n");
      ASSERT_EQ(r.status, ParseStatus::kError) << at << " " << int{bad};
      ASSERT_EQ(r.err.status, 400);
    }
    for (char good : {'!', '~', '%', '[', '{', '|', '"'}) {
      std::string target = long_path;
      target[at] = good;
      const std::string in = "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n";
      const ReqResult r = parseReq(in);
      ASSERT_EQ(r.status, ParseStatus::kComplete) << at << " " << int{good};
      ASSERT_EQ(r.head.target, target);
    }
  }
  const std::string long_value = std::string(40, 'v');
  for (size_t at = 1; at + 1 < long_value.size(); ++at) {
    for (char bad : {'\0', '\x01', '\x08', '\n', '\r', '\x1f', '\x7f'}) {
      std::string value = long_value;
      value[at] = bad;
      const ReqResult r = parseReq("GET / HTTP/1.1\r\nHost: a\r\nX: " + value + "\r\n\r\n");
      ASSERT_EQ(r.status, ParseStatus::kError) << at << " " << int{bad};
      ASSERT_EQ(r.err.status, 400);
    }
    for (char good : {'\t', ' ', '~', '\x80', '\xff', '"'}) {
      std::string value = long_value;
      value[at] = good;
      const std::string in = "GET / HTTP/1.1\r\nHost: a\r\nX: " + value + "\r\n\r\n";
      const ReqResult r = parseReq(in);
      ASSERT_EQ(r.status, ParseStatus::kComplete) << at << " " << int{good};
      ASSERT_EQ(r.head.headers.get("x"), value);
    }
  }
}

// Above the pre-scan threshold an unfinished head is not validated until its end arrives (or a
// limit is hit); the verdict is the same once it is complete.
TEST(Http1Request, LargeHeadErrorsReportedWhenComplete) {
  const std::string bad = "GET / HTTP/1.1\r\nHost: a\r\nX: 1\nCookie: " + std::string(4000, 'c');
  EXPECT_EQ(parseReq(bad).status, ParseStatus::kIncomplete);
  const ReqResult r = parseReq(bad + "\r\n\r\n");
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 400);
  // A bare-LF terminated head counts as finished, so it is refused at once.
  const ReqResult lf =
      parseReq("GET / HTTP/1.1\nHost: a\nX: " + std::string(4000, 'x') + "\n\nbody");
  EXPECT_EQ(lf.status, ParseStatus::kError);
  EXPECT_EQ(lf.err.status, 400);
}

// ---------------------------------------------------------------------------------------------
// Incremental input and limits

// Every strict prefix is kIncomplete and the whole head is kComplete with the same result.
void expectIncompleteUntilEnd(std::string_view msg, const ParseLimits& limits = {}) {
  const ReqResult full = parseReq(msg, limits);
  ASSERT_EQ(full.status, ParseStatus::kComplete) << full.err.reason;
  for (size_t k = 0; k < full.head.head_size; ++k) {
    const std::string prefix(msg.substr(0, k));  // a copy, so reads past k would be caught by ASan
    const ReqResult r = parseReq(prefix, limits);
    ASSERT_EQ(r.status, ParseStatus::kIncomplete) << "prefix " << k << ": " << r.err.reason;
  }
  const std::string exact(msg.substr(0, full.head.head_size));
  const ReqResult r = parseReq(exact, limits);
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.headers.size(), full.head.headers.size());
  EXPECT_EQ(r.head.body, full.head.body);
}

TEST(Http1Request, IncompleteAtEverySplit) {
  expectIncompleteUntilEnd(kBrowserGet);
  expectIncompleteUntilEnd("\r\n\r\nGET / HTTP/1.0\r\n\r\n");
  expectIncompleteUntilEnd("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc");
  expectIncompleteUntilEnd(
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  // Large enough to take the pre-scan path on partial input.
  const std::string big = "GET / HTTP/1.1\r\nHost: a\r\nCookie: " + std::string(5000, 'c') +
                          "\r\nX-B: " + std::string(100, 'b') + "\r\n\r\nNEXT";
  expectIncompleteUntilEnd(big);
}

TEST(Http1Request, RequestLineTooLong) {
  ParseLimits limits;
  limits.max_request_line = 64;
  const std::string at_limit = "GET /" + std::string(64 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(at_limit.size(), 64u);
  EXPECT_EQ(parseReq(at_limit + "\r\nHost: a\r\n\r\n", limits).status, ParseStatus::kComplete);
  expectIncompleteUntilEnd(at_limit + "\r\nHost: a\r\n\r\n", limits);

  const std::string over = "GET /" + std::string(65 - 14, 'a') + " HTTP/1.1";
  ReqResult r = parseReq(over + "\r\nHost: a\r\n\r\n", limits);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 414);
  // Incomplete input is refused as soon as it cannot be a line within the limit.
  r = parseReq(std::string_view(over).substr(0, 66), limits);
  EXPECT_EQ(r.err.status, 414);
  EXPECT_EQ(r.status, ParseStatus::kError);
  r = parseReq("GET /" + std::string(100000, 'a'), limits);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 414);
  // Default limit, buffer big enough for the pre-scan path.
  r = parseReq("GET /" + std::string(9000, 'a'));
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 414);
  r = parseReq("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(r.err.status, 414);
}

TEST(Http1Request, HeaderSectionTooLarge) {
  ParseLimits limits;
  limits.max_header_bytes = 256;
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  head += std::string(256 - head.size() - 4, 'x') + "\r\n\r\n";
  ASSERT_EQ(head.size(), 256u);
  EXPECT_EQ(parseReq(head, limits).status, ParseStatus::kComplete);
  expectIncompleteUntilEnd(head, limits);
  head.insert(30, "y");
  ReqResult r = parseReq(head, limits);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 431);
  // An unfinished head that already exceeds the limit.
  r = parseReq("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(300, 'x'), limits);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 431);
  // Default limits through the pre-scan path.
  r = parseReq("GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(70000, 'x'));
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 431);
  std::string many_lines = "GET / HTTP/1.1\r\nHost: a\r\n";
  while (many_lines.size() < 70000)
    many_lines += "X-Abcdefgh: 0123456789\r\n";
  r = parseReq(many_lines);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 431);
}

TEST(Http1Request, TooManyHeaders) {
  ParseLimits limits;
  limits.max_headers = 10;
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 9; ++i)
    head += "X-" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(parseReq(head + "\r\n", limits).status, ParseStatus::kComplete);
  head += "X-Last: v\r\n";
  const ReqResult r = parseReq(head + "\r\n", limits);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 431);
}

TEST(Http1Request, IsTokenChar) {
  std::string tokens;
  for (int c = 0; c < 256; ++c) {
    if (isTokenChar(static_cast<unsigned char>(c))) tokens += static_cast<char>(c);
  }
  EXPECT_EQ(tokens,
            "!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz|~");
}

// ---------------------------------------------------------------------------------------------

}  // namespace
}  // namespace gatehouse::http1

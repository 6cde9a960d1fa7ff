// HTTP/1 response heads and the chunked-body decoder (request heads: http1_parser_test.cc).
#include "http/http1_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::http1 {
namespace {

using namespace std::string_literals;
using namespace std::string_view_literals;

struct RespResult {
  ParseStatus status;
  ResponseHead head;
  ParseError err;
};

RespResult parseResp(std::string_view in, bool head_request = false,
                     const ParseLimits& limits = {}) {
  RespResult r;
  r.status = parseResponseHead(in, limits, head_request, r.head, r.err);
  return r;
}

bool within(std::string_view view, std::string_view buf) {
  return view.data() >= buf.data() && view.data() + view.size() <= buf.data() + buf.size();
}
// Responses

TEST(Http1Response, ContentLength) {
  const std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nServer: x\r\n\r\nhi";
  const RespResult r = parseResp(in);
  ASSERT_EQ(r.status, ParseStatus::kComplete) << r.err.reason;
  EXPECT_EQ(r.head.status, 200);
  EXPECT_EQ(r.head.reason, "OK");
  EXPECT_EQ(r.head.version_minor, 1);
  EXPECT_EQ(r.head.body, BodyKind::kContentLength);
  EXPECT_EQ(r.head.content_length, 2u);
  EXPECT_TRUE(r.head.keep_alive);
  EXPECT_EQ(in.substr(r.head.head_size), "hi");
  EXPECT_EQ(r.head.headers.get("server"), "x");
}

TEST(Http1Response, ReasonForms) {
  RespResult r = parseResp("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.reason, "");
  r = parseResp("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.reason, "");
  r = parseResp("HTTP/1.1 404 Not \tFound \xc3\xa9\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.status, 404);
  EXPECT_EQ(r.head.reason, "Not \tFound \xc3\xa9");
  r = parseResp("HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(r.status, ParseStatus::kComplete);
  EXPECT_EQ(r.head.status, 999);
}

TEST(Http1Response, NoBodyStatusesIgnoreFraming) {
  struct Case {
    std::string_view in;
    bool head_request;
    int status;
  };
  const Case cases[] = {
      {"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", false, 204},
      {"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, 304},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", false, 304},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", true, 200},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true, 200},
      {"HTTP/1.1 100 Continue\r\n\r\n", false, 100},
      {"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n", false, 103},
      {"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
       false, 101},
  };
  for (const Case& c : cases) {
    const RespResult r = parseResp(c.in, c.head_request);
    ASSERT_EQ(r.status, ParseStatus::kComplete) << c.in << r.err.reason;
    EXPECT_EQ(r.head.status, c.status);
    EXPECT_EQ(r.head.body, BodyKind::kNone) << c.in;
    EXPECT_EQ(r.head.content_length, 0u);
    EXPECT_TRUE(r.head.keep_alive) << c.in;
  }
}

TEST(Http1Response, Framing) {
  struct Case {
    std::string_view in;
    BodyKind body;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", BodyKind::kChunked, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", BodyKind::kChunked, true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", BodyKind::kUntilClose, false},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", BodyKind::kUntilClose, false},
      {"HTTP/1.1 200 OK\r\n\r\n", BodyKind::kUntilClose, false},
      {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\n",
       BodyKind::kContentLength, false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", BodyKind::kContentLength, true},
      {"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\n", BodyKind::kContentLength, false},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\n",
       BodyKind::kContentLength, true},
      {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", BodyKind::kUntilClose, false},
  };
  for (const Case& c : cases) {
    const RespResult r = parseResp(c.in);
    ASSERT_EQ(r.status, ParseStatus::kComplete) << c.in << r.err.reason;
    EXPECT_EQ(r.head.body, c.body) << c.in;
    EXPECT_EQ(r.head.keep_alive, c.keep_alive) << c.in;
  }
}

TEST(Http1Response, Rejections) {
  const std::string_view cases[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 099 Low\r\n\r\n",
      "HTTP/1.1 000 Zero\r\n\r\n",
      "HTTP/1.1 20 OK\r\n\r\n",
      "HTTP/1.1 2000 OK\r\n\r\n",
      "HTTP/1.1 2x0 OK\r\n\r\n",
      "HTTP/1.1  200 OK\r\n\r\n",
      "HTTP/2.0 200 OK\r\n\r\n",
      "HTTP/1.2 200 OK\r\n\r\n",
      "http/1.1 200 OK\r\n\r\n",
      "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n",
      "HTTP/1.1 200 O\rK\r\n\r\n",
      "HTTP/1.1 200 O\x01K\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX : y\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: y\r\n z\r\n\r\n",
      "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n"sv,
      "HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n",
      "\nHTTP/1.1 200 OK\r\n\r\n",
  };
  for (std::string_view in : cases) {
    const RespResult r = parseResp(in);
    EXPECT_EQ(r.status, ParseStatus::kError) << testing::PrintToString(std::string(in));
    EXPECT_EQ(r.err.status, 502) << testing::PrintToString(std::string(in)) << r.err.reason;
  }
}

TEST(Http1Response, LimitsAre502) {
  ParseLimits limits;
  limits.max_header_bytes = 128;
  limits.max_request_line = 32;
  limits.max_headers = 2;
  RespResult r = parseResp("HTTP/1.1 200 " + std::string(40, 'r') + "\r\n\r\n", false, limits);
  EXPECT_EQ(r.err.status, 502);
  r = parseResp("HTTP/1.1 200 OK\r\nX: " + std::string(200, 'x'), false, limits);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 502);
  r = parseResp("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", false, limits);
  EXPECT_EQ(r.status, ParseStatus::kError);
  EXPECT_EQ(r.err.status, 502);
}

TEST(Http1Response, IncompleteAtEverySplit) {
  const std::string_view msgs[] = {
      "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 5\r\n\r\nhello",
      "HTTP/1.1 204\r\n\r\n",
      "HTTP/1.0 301 Moved\r\nLocation: /x\r\n\r\n",
  };
  for (std::string_view msg : msgs) {
    const RespResult full = parseResp(msg);
    ASSERT_EQ(full.status, ParseStatus::kComplete) << full.err.reason;
    for (size_t k = 0; k < full.head.head_size; ++k) {
      const std::string prefix(msg.substr(0, k));
      const RespResult r = parseResp(prefix);
      ASSERT_EQ(r.status, ParseStatus::kIncomplete) << msg << " prefix " << k << r.err.reason;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Chunked bodies

struct Decoded {
  ParseStatus status = ParseStatus::kIncomplete;
  std::string data;
  size_t consumed = 0;  // raw bytes consumed in total
  ParseError err;
  std::vector<std::pair<std::string, std::string>> trailers;
};

// Feeds `msg` in pieces ending at the given cut points, the way a connection would: bytes the
// decoder did not consume are kept and offered again with the next piece.
Decoded decodePieces(std::string_view msg, const std::vector<size_t>& cuts,
                     size_t max_trailer_bytes = 8192) {
  ChunkedDecoder dec(max_trailer_bytes);
  Decoded out;
  std::string pending;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(msg.size());
  for (size_t end : ends) {
    pending.append(msg.substr(from, end - from));
    from = end;
    for (;;) {
      const ChunkedDecoder::Step s = dec.feed(pending, out.err);
      out.status = s.status;
      if (s.status == ParseStatus::kError) return out;
      EXPECT_LE(s.consumed, pending.size());
      if (!s.data.empty()) {
        EXPECT_TRUE(within(s.data, pending));
        out.data.append(s.data);
      }
      out.consumed += s.consumed;
      pending.erase(0, s.consumed);
      if (s.status == ParseStatus::kComplete) {
        EXPECT_TRUE(dec.done());
        for (const auto& f : dec.trailers().fields()) {
          out.trailers.emplace_back(std::string(f.name), std::string(f.value));
        }
        return out;
      }
      if (s.consumed == 0) break;
    }
  }
  return out;
}

Decoded decodeWhole(std::string_view msg) {
  return decodePieces(msg, {});
}

const std::string_view kChunkedMessages[] = {
    "5\r\nhello\r\n0\r\n\r\n",
    "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
    "3;name=value\r\nabc\r\n2;a;b=\"q;\\\"x\"\r\nde\r\n0;last\r\n\r\n",
    "4\r\nwiki\r\n5 ;x=1\r\npedia\r\n0\r\n\r\n",
    "1\r\nx\r\n0\r\nExpires: never\r\nX-Checksum:  abc \r\n\r\n",
    "0000000000000001\r\nz\r\n0\r\n\r\n",
    "0\r\n\r\n",
};

TEST(Http1Chunked, DecodesMessages) {
  const std::string_view expected[] = {
      "hello", "hello world", "0123456789abcdefghij", "abcde", "wikipedia", "x", "z", ""};
  for (size_t m = 0; m < std::size(kChunkedMessages); ++m) {
    const Decoded d = decodeWhole(kChunkedMessages[m]);
    ASSERT_EQ(d.status, ParseStatus::kComplete) << kChunkedMessages[m] << d.err.reason;
    EXPECT_EQ(d.data, expected[m]);
    EXPECT_EQ(d.consumed, kChunkedMessages[m].size());
  }
}

TEST(Http1Chunked, Trailers) {
  const Decoded d = decodeWhole(kChunkedMessages[5]);
  ASSERT_EQ(d.status, ParseStatus::kComplete);
  ASSERT_EQ(d.trailers.size(), 2u);
  EXPECT_EQ(d.trailers[0].first, "Expires");
  EXPECT_EQ(d.trailers[0].second, "never");
  EXPECT_EQ(d.trailers[1].first, "X-Checksum");
  EXPECT_EQ(d.trailers[1].second, "abc");
}

TEST(Http1Chunked, EverySplitPoint) {
  for (std::string_view msg : kChunkedMessages) {
    const Decoded whole = decodeWhole(msg);
    ASSERT_EQ(whole.status, ParseStatus::kComplete);
    // One byte at a time.
    std::vector<size_t> cuts;
    for (size_t k = 1; k < msg.size(); ++k)
      cuts.push_back(k);
    Decoded d = decodePieces(msg, cuts);
    ASSERT_EQ(d.status, ParseStatus::kComplete) << msg;
    EXPECT_EQ(d.data, whole.data);
    EXPECT_EQ(d.trailers, whole.trailers);
    // Every pair of cut points (covers every single split too).
    for (size_t a = 0; a <= msg.size(); ++a) {
      for (size_t b = a; b <= msg.size(); ++b) {
        d = decodePieces(msg, {a, b});
        ASSERT_EQ(d.status, ParseStatus::kComplete) << msg << " cuts " << a << "," << b;
        ASSERT_EQ(d.data, whole.data);
        ASSERT_EQ(d.consumed, msg.size());
        ASSERT_EQ(d.trailers, whole.trailers);
      }
    }
  }
}

TEST(Http1Chunked, StopsAtEndOfMessage) {
  const std::string msg = "3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n";
  const Decoded d = decodeWhole(msg);
  ASSERT_EQ(d.status, ParseStatus::kComplete);
  EXPECT_EQ(d.data, "abc");
  EXPECT_EQ(msg.substr(d.consumed), "GET / HTTP/1.1\r\n");
}

TEST(Http1Chunked, LargeSizeWithinLimit) {
  ChunkedDecoder dec;
  ParseError err;
  const ChunkedDecoder::Step s = dec.feed("ffffffffffffffff\r\nabc", err);
  EXPECT_EQ(s.status, ParseStatus::kIncomplete);
  EXPECT_EQ(s.data, "abc");
  EXPECT_EQ(s.consumed, 21u);
}

TEST(Http1Chunked, Rejections) {
  struct Case {
    std::string in;
    int status;
  };
  const Case cases[] = {
      {"\r\n", 400},
      {"x\r\n", 400},
      {"-1\r\n", 400},
      {"+1\r\n", 400},
      {" 1\r\nx\r\n0\r\n\r\n", 400},
      {"0x5\r\nhello\r\n0\r\n\r\n", 400},
      {"10000000000000000\r\n", 400},
      {"00000000000000000\r\n", 400},
      {"5\nhello\r\n0\r\n\r\n", 400},
      {"5\rhello\r\n0\r\n\r\n", 400},
      {"5\r\nhello\n0\r\n\r\n", 400},
      {"5\r\nhelloX\r\n0\r\n\r\n", 400},
      {"5\r\nhello\r0\r\n\r\n", 400},
      {"5\r\nhello0\r\n\r\n", 400},
      {"5 x\r\nhello\r\n0\r\n\r\n", 400},
      {"5 \r\nhello\r\n0\r\n\r\n", 400},  // BWS only before ';'
      {"5\t\r\nhello\r\n0\r\n\r\n", 400},
      {"5;a\nhello\r\n0\r\n\r\n", 400},
      {"5;a\x01\r\nhello\r\n0\r\n\r\n", 400},
      {"5;a\0\r\nhello\r\n0\r\n\r\n"s, 400},
      {"5;a\rb\r\nhello\r\n0\r\n\r\n", 400},
      {"5;" + std::string(5000, 'e') + "\r\nhello\r\n0\r\n\r\n", 400},
      {"5" + std::string(5000, ' ') + "\r\nhello\r\n0\r\n\r\n", 400},
      {"0\r\nX: 1\n\r\n", 400},
      {"0\r\n\n", 400},
      {"0\r\nX : 1\r\n\r\n", 400},
      {"0\r\n: 1\r\n\r\n", 400},
      {"0\r\nX: 1\r\n folded\r\n\r\n", 400},
      {"0\r\n Leading: 1\r\n\r\n", 400},
      {"0\r\nNoColon\r\n\r\n", 400},
      {"0\r\nX: a\x01\r\n\r\n", 400},
      {"0\r\nX: a\rb\r\n\r\n", 400},
      {"0\r\nX: " + std::string(9000, 'v') + "\r\n\r\n", 431},
  };
  for (const Case& c : cases) {
    const Decoded d = decodeWhole(c.in);
    EXPECT_EQ(d.status, ParseStatus::kError) << testing::PrintToString(c.in);
    EXPECT_EQ(d.err.status, c.status) << testing::PrintToString(c.in) << d.err.reason;
    // Same verdict when the bytes trickle in.
    std::vector<size_t> cuts;
    for (size_t k = 1; k < c.in.size(); ++k)
      cuts.push_back(k);
    const Decoded slow = decodePieces(c.in, cuts);
    EXPECT_EQ(slow.status, ParseStatus::kError) << testing::PrintToString(c.in);
    EXPECT_EQ(slow.err.status, c.status) << testing::PrintToString(c.in);
  }
}

TEST(Http1Chunked, WhitespaceBeforeAnExtensionIsAllowed) {
  const Decoded d = decodeWhole("5 ;a=b\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(d.status, ParseStatus::kComplete) << d.err.reason;
  EXPECT_EQ(d.data, "hello");
}

TEST(Http1Chunked, SizeOverTheBodyLimitFailsBeforeItsData) {
  ChunkedDecoder dec;
  ParseError err;
  dec.reset(1000);
  // 0x3e9 = 1001: refused on its last digit, before the line or any data arrives.
  EXPECT_EQ(dec.feed("3e", err).status, ParseStatus::kIncomplete);
  EXPECT_EQ(dec.feed("9", err).status, ParseStatus::kError);
  EXPECT_EQ(err.status, 413);
  // The sizes add up: 1000 in two chunks passes, one byte more does not.
  dec.reset(1000);
  std::string ok =
      "1f4\r\n" + std::string(500, 'a') + "\r\n1f4\r\n" + std::string(500, 'b') + "\r\n0\r\n\r\n";
  size_t off = 0;
  ChunkedDecoder::Step s{};
  do {
    s = dec.feed(std::string_view(ok).substr(off), err);
    off += s.consumed;
  } while (s.status == ParseStatus::kIncomplete && s.consumed > 0);
  EXPECT_EQ(s.status, ParseStatus::kComplete);
  dec.reset(1000);
  const std::string over = "1f4\r\n" + std::string(500, 'a') + "\r\n1f5\r\n";
  off = 0;
  do {
    s = dec.feed(std::string_view(over).substr(off), err);
    off += s.consumed;
  } while (s.status == ParseStatus::kIncomplete && s.consumed > 0);
  EXPECT_EQ(s.status, ParseStatus::kError);
  EXPECT_EQ(err.status, 413);
  // A size no 64-bit number holds is a 400 whatever the limit.
  dec.reset(0);
  EXPECT_EQ(dec.feed("10000000000000000\r\n", err).status, ParseStatus::kError);
  EXPECT_EQ(err.status, 400);
}

TEST(Http1Chunked, TrailerLimitCountsWholeSection) {
  std::string msg = "0\r\n";
  for (int i = 0; i < 20; ++i)
    msg += "X-" + std::to_string(i) + ": 0123456789\r\n";
  msg += "\r\n";
  const size_t section = msg.size() - 3;  // everything after "0\r\n"
  const Decoded over = decodePieces(msg, {}, section - 1);
  EXPECT_EQ(over.status, ParseStatus::kError);
  EXPECT_EQ(over.err.status, 431);
  EXPECT_EQ(decodePieces(msg, {}, section).status, ParseStatus::kComplete);
}

TEST(Http1Chunked, ErrorIsStickyUntilReset) {
  ChunkedDecoder dec;
  ParseError err;
  EXPECT_EQ(dec.feed("z", err).status, ParseStatus::kError);
  ParseError again;
  EXPECT_EQ(dec.feed("5\r\n", again).status, ParseStatus::kError);
  EXPECT_EQ(again.reason, err.reason);
  dec.reset();
  const ChunkedDecoder::Step s = dec.feed("0\r\n\r\n", err);
  EXPECT_EQ(s.status, ParseStatus::kComplete);
  EXPECT_EQ(s.consumed, 5u);
  EXPECT_EQ(dec.feed("more", err).status, ParseStatus::kComplete);
  EXPECT_EQ(dec.feed("more", err).consumed, 0u);
}

}  // namespace
}  // namespace gatehouse::http1

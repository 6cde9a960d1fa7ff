// Http2FrameGuard: frame splitting, the useless-frame budget (and what refills it), rapid
// reset on open streams, and HEADERS on a stream id the client skipped.
#include "proxy/http2_guard.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>

namespace gatehouse::proxy {
namespace {

using Verdict = Http2FrameGuard::Verdict;
using namespace std::chrono_literals;

const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string frame(uint8_t type, uint8_t flags, uint32_t sid, const std::string& payload = "") {
  std::string f;
  const auto n = static_cast<uint32_t>(payload.size());
  f.push_back(static_cast<char>(n >> 16));
  f.push_back(static_cast<char>(n >> 8));
  f.push_back(static_cast<char>(n));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8)
    f.push_back(static_cast<char>(sid >> shift));
  return f + payload;
}
std::string u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
std::string windowUpdate(uint32_t sid, uint32_t inc) {
  return frame(0x8, 0, sid, u32(inc));
}

struct FakeStreams : Http2FrameGuard::Streams {
  std::set<int32_t> open;
  bool isOpen(int32_t id) const override { return open.count(id) > 0; }
};

// Feeds `bytes` through the guard the way the connection does; returns the first verdict
// other than kOk (or kOk) and how many bytes were passed on.
struct Feeder {
  Http2FrameGuard guard;
  FakeStreams streams;
  runtime::TimePoint now;
  size_t passed = 0;
  std::string pending;

  explicit Feeder(Http2FrameGuard::Limits l = {}, runtime::TimePoint t = runtime::Clock::now())
      : guard(l, t), now(t) {
    EXPECT_EQ(feed(kPreface), Verdict::kOk);
  }
  Verdict feed(const std::string& bytes) {
    pending += bytes;
    for (;;) {
      auto step = guard.next(pending, streams, now);
      if (step.verdict != Verdict::kOk) return step.verdict;
      if (step.bytes == 0) return Verdict::kOk;
      passed += step.bytes;
      pending.erase(0, step.bytes);
    }
  }
  // Sends `f` n times; returns the index of the first frame judged a flood, or -1.
  int floodAt(const std::string& f, int n) {
    for (int i = 0; i < n; ++i) {
      if (feed(f) != Verdict::kOk) return i;
    }
    return -1;
  }
};

TEST(Http2FrameGuard, SplitsFramesAcrossReads) {
  Feeder fd;
  const std::string data = frame(0x0, 0x1, 1, std::string(100, 'x'));
  // Byte by byte: nothing is passed on before a whole frame header is there.
  for (char c : data.substr(0, 8))
    EXPECT_EQ(fd.feed(std::string(1, c)), Verdict::kOk);
  EXPECT_EQ(fd.passed, kPreface.size());
  EXPECT_EQ(fd.feed(data.substr(8, 20)), Verdict::kOk);
  EXPECT_EQ(fd.passed, kPreface.size() + 28);
  EXPECT_EQ(fd.feed(data.substr(28)), Verdict::kOk);
  EXPECT_EQ(fd.passed, kPreface.size() + data.size());
  // A WINDOW_UPDATE waits for its increment before it is judged.
  std::string wu = windowUpdate(0, 65536);
  EXPECT_EQ(fd.feed(wu.substr(0, 11)), Verdict::kOk);
  EXPECT_EQ(fd.passed, kPreface.size() + data.size());
  EXPECT_EQ(fd.feed(wu.substr(11)), Verdict::kOk);
  EXPECT_EQ(fd.passed, kPreface.size() + data.size() + wu.size());
  EXPECT_EQ(fd.guard.budgetLeft(), 1000);  // nothing useless so far
}

TEST(Http2FrameGuard, EachUselessKindSpendsTheBudget) {
  struct Case {
    FloodKind kind;
    std::string frame;
  };
  const Case cases[] = {
      {FloodKind::kEmptyData, frame(0x0, 0, 1)},
      {FloodKind::kEmptyData, frame(0x0, 0x8, 1, std::string(1, '\x04') + "pppp")},  // padding only
      {FloodKind::kWindowUpdate, windowUpdate(0, 1)},
      {FloodKind::kWindowUpdate, windowUpdate(1, 0)},
      {FloodKind::kWindowUpdate, windowUpdate(3, 1 << 20)},  // stream 3 is not open
      {FloodKind::kPriority, frame(0x2, 0, 1, u32(0) + "\x10")},
      {FloodKind::kRstStream, frame(0x3, 0, 3, u32(8))},  // not open
      {FloodKind::kSettings, frame(0x4, 0, 0)},
      {FloodKind::kPing, frame(0x6, 0, 0, "12345678")},
      {FloodKind::kPing, frame(0x6, 0x1, 0, "12345678")},  // acknowledgements nobody asked for
      {FloodKind::kUnknown, frame(0x10, 0, 1, "xx")},
  };
  for (const auto& c : cases) {
    Feeder fd({.budget = 20, .refill_per_second = 1, .max_resets_per_second = 100});
    fd.streams.open = {1};
    EXPECT_EQ(fd.floodAt(c.frame, 100), 20) << floodKindName(c.kind);
    EXPECT_EQ(fd.guard.kind(), c.kind) << floodKindName(c.kind);
  }
}

TEST(Http2FrameGuard, UsefulFramesAreFree) {
  Feeder fd({.budget = 10, .refill_per_second = 1, .max_resets_per_second = 100});
  fd.streams.open = {1};
  const std::string useful[] = {
      frame(0x0, 0, 1, "body"),  // DATA with payload
      frame(0x0, 0x1, 1),        // empty DATA ending the stream
      windowUpdate(0, 65536),
      windowUpdate(1, 1024),              // real acknowledgements
      frame(0x4, 0x1, 0),                 // SETTINGS ACK
      frame(0x1, 0x5, 3, "h"),            // a request
      frame(0x7, 0, 0, u32(0) + u32(0)),  // GOAWAY
  };
  for (int round = 0; round < 50; ++round) {
    for (const auto& f : useful)
      ASSERT_EQ(fd.feed(f), Verdict::kOk);
  }
  EXPECT_EQ(fd.guard.budgetLeft(), 10);
}

TEST(Http2FrameGuard, BudgetRefillsOverTimeAndWithResponses) {
  auto t0 = runtime::Clock::now();
  Feeder fd({.budget = 10, .refill_per_second = 100, .max_resets_per_second = 100}, t0);
  const std::string ping = frame(0x6, 0, 0, "12345678");
  EXPECT_EQ(fd.floodAt(ping, 10), -1);
  EXPECT_EQ(fd.guard.budgetLeft(), 0);
  // 50 ms at 100/s: 5 more.
  fd.now = t0 + 50ms;
  EXPECT_EQ(fd.floodAt(ping, 5), -1);
  // Time in slivers of less than one token still adds up.
  for (int i = 1; i <= 10; ++i) {
    fd.now += 3ms;
  }
  EXPECT_EQ(fd.floodAt(ping, 3), -1);  // 30 ms: 3 tokens
  EXPECT_EQ(fd.feed(ping), Verdict::kFlood);
  // Response frames the gateway sends give the budget back, never above the burst.
  Feeder fd2({.budget = 10, .refill_per_second = 1, .max_resets_per_second = 100}, t0);
  EXPECT_EQ(fd2.floodAt(ping, 10), -1);
  fd2.guard.credit(4);
  EXPECT_EQ(fd2.floodAt(ping, 10), 4);
  fd2.guard.credit(1000);
  EXPECT_EQ(fd2.guard.budgetLeft(), 10);
}

TEST(Http2FrameGuard, RapidResetCountsResetsOfOpenStreamsPerSecond) {
  auto t0 = runtime::Clock::now();
  Feeder fd({.budget = 1000, .refill_per_second = 100, .max_resets_per_second = 5}, t0);
  for (int i = 0; i < 5; ++i) {
    const auto sid = static_cast<int32_t>(1 + 2 * i);
    fd.streams.open.insert(sid);
    ASSERT_EQ(fd.feed(frame(0x3, 0, static_cast<uint32_t>(sid), u32(8))), Verdict::kOk);
    fd.streams.open.erase(sid);
  }
  EXPECT_EQ(fd.guard.budgetLeft(), 1000);  // not the useless-frame budget
  fd.streams.open.insert(11);
  // A new second: the count starts again.
  fd.now = t0 + 1s;
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(fd.feed(frame(0x3, 0, 11, u32(8))), Verdict::kOk);
  EXPECT_EQ(fd.feed(frame(0x3, 0, 11, u32(8))), Verdict::kRapidReset);
}

TEST(Http2FrameGuard, HeadersOnASkippedStreamIdIsAConnectionError) {
  Feeder fd;
  const size_t before = fd.passed;
  EXPECT_EQ(fd.feed(frame(0x1, 0x5, 5, "h")), Verdict::kOk);  // 1 and 3 skipped
  fd.streams.open = {5};
  const size_t after5 = fd.passed;
  EXPECT_GT(after5, before);
  EXPECT_EQ(fd.feed(frame(0x1, 0x5, 3, "h")), Verdict::kStreamIdRegression);
  EXPECT_EQ(fd.passed, after5);  // the offending frame is never passed on
  // Trailers on an open lower stream, and a closed (not skipped) stream, are not errors.
  Feeder ok;
  EXPECT_EQ(ok.feed(frame(0x1, 0x4, 1, "h")), Verdict::kOk);
  EXPECT_EQ(ok.feed(frame(0x1, 0x5, 3, "h")), Verdict::kOk);
  ok.streams.open = {1};
  EXPECT_EQ(ok.feed(frame(0x1, 0x5, 1, "t")), Verdict::kOk);  // trailers of stream 1
  ok.streams.open = {};
  EXPECT_EQ(ok.feed(frame(0x1, 0x5, 1, "t")), Verdict::kOk);  // nghttp2's: STREAM_CLOSED
  EXPECT_EQ(ok.feed(frame(0x1, 0x5, 9, "h")), Verdict::kOk);  // skips 5 and 7
  EXPECT_EQ(ok.feed(frame(0x1, 0x5, 7, "h")), Verdict::kStreamIdRegression);
}

}  // namespace
}  // namespace gatehouse::proxy

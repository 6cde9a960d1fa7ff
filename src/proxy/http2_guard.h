#pragma once
// Judges every frame a downstream HTTP/2 client sends before nghttp2 sees it. nghttp2 checks
// the protocol, but some frames it silently ignores (DATA or WINDOW_UPDATE on a closed stream,
// PING acknowledgements nobody asked for, unknown frame types), others it accepts as legal
// however many come (empty DATA, 1-byte WINDOW_UPDATEs, PRIORITY, RST_STREAM on closed
// streams, SETTINGS, PING), and one connection error it does not detect at all: HEADERS that
// open a stream id lower than one the client already opened (RFC 9113 §5.1.1).
//
// The guard splits the client's byte stream into frames: the connection feeds nghttp2 one
// judged frame at a time, so a frame that breaks a rule never reaches the codec and every
// stream's state is nghttp2's own, up to date, when the next frame is judged.
//
// Frames that do no useful work draw from a per-connection budget: a burst of `budget`
// frames, refilled at `refill_per_second` and by the gateway's own useful work (each
// response HEADERS or DATA frame it sends gives one back: a client's WINDOW_UPDATEs and
// gRPC's bandwidth-probing PINGs follow the data it receives). Spending past the budget is a
// flood: the connection gets GOAWAY(ENHANCE_YOUR_CALM).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "runtime/timer_wheel.h"

namespace gatehouse::proxy {

// What a flood was made of (the label of gatehouse_http2_floods_total).
enum class FloodKind : uint8_t {
  kEmptyData,     // DATA without payload and without END_STREAM
  kWindowUpdate,  // increment below kTinyWindowIncrement, or on a stream that is not open
  kPriority,      // PRIORITY (RFC 9113 deprecates the scheme; nothing here acts on it)
  kRstStream,     // RST_STREAM on a stream that is not open (closed or idle)
  kSettings,      // SETTINGS (not acknowledgements)
  kPing,          // PING, acknowledgements included (the gateway sends none)
  kUnknown,       // frame types nghttp2 ignores (extensions)
  kCount
};
const char* floodKindName(FloodKind k);

class Http2FrameGuard {
 public:
  // A WINDOW_UPDATE smaller than this does no useful work. HTTP/2 stacks acknowledge in
  // batches of at least a few KiB (nghttp2, Go, browsers: half a window or more).
  static constexpr uint32_t kTinyWindowIncrement = 1024;

  struct Limits {
    uint32_t budget = 1000;                // burst of useless frames
    uint32_t refill_per_second = 100;      // budget regained per second
    uint32_t max_resets_per_second = 100;  // RST_STREAM on open streams (rapid reset)
  };
  // nghttp2's view of the streams, as of the frames fed so far.
  class Streams {
   public:
    virtual ~Streams() = default;
    virtual bool isOpen(int32_t stream_id) const = 0;
  };

  enum class Verdict : uint8_t {
    kOk,
    kFlood,               // GOAWAY(ENHANCE_YOUR_CALM); kind() says of what
    kRapidReset,          // GOAWAY(ENHANCE_YOUR_CALM)
    kStreamIdRegression,  // GOAWAY(PROTOCOL_ERROR)
  };
  struct Step {
    size_t bytes = 0;  // may go to the codec now (0 with kOk: wait for more input)
    Verdict verdict = Verdict::kOk;
  };

  Http2FrameGuard(const Limits& limits, runtime::TimePoint now);

  // The next piece of `input` (the client's unconsumed bytes, starting where the previous
  // step ended) that may be fed to the codec: the connection preface, the rest of a frame
  // already judged, or a newly judged frame (its header and what of its payload is there).
  // After a verdict other than kOk, nothing more may be fed.
  Step next(std::string_view input, const Streams& streams, runtime::TimePoint now);

  // The gateway did useful work for the client (sent a response HEADERS or DATA frame).
  void credit(uint32_t frames);
  FloodKind kind() const { return kind_; }
  int64_t budgetLeft() const { return tokens_; }

 private:
  Verdict judge(uint8_t type, uint8_t flags, int32_t stream_id, uint32_t length,
                std::string_view payload, const Streams& streams, runtime::TimePoint now);
  bool spend(FloodKind kind, runtime::TimePoint now);
  void refill(runtime::TimePoint now);
  bool skipped(int32_t stream_id) const;

  Limits limits_;
  size_t preface_left_ = 24;
  size_t payload_left_ = 0;  // of the frame being fed
  int64_t tokens_;
  runtime::TimePoint refilled_at_;
  FloodKind kind_ = FloodKind::kCount;
  // Rapid reset: resets of open streams in the current one-second window.
  runtime::TimePoint reset_window_{};
  uint32_t resets_ = 0;
  // Client stream ids: the highest opened, and the ids it skipped (never opened; a later
  // HEADERS on one is a connection error). The oldest gaps are forgotten past kMaxGaps.
  static constexpr size_t kMaxGaps = 32;
  struct Gap {
    int32_t first, last;
  };
  int32_t max_opened_ = 0;
  std::vector<Gap> gaps_;
};

}  // namespace gatehouse::proxy

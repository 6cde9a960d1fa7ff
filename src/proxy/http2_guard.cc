#include "proxy/http2_guard.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <string_view>

#include "core/enum_names.h"

namespace gatehouse::proxy {

namespace {
constexpr size_t kFrameHeader = 9;
constexpr uint8_t kData = 0x0, kHeaders = 0x1, kPriority = 0x2, kRstStream = 0x3, kSettings = 0x4,
                  kPushPromise = 0x5, kPing = 0x6, kGoaway = 0x7, kWindowUpdate = 0x8,
                  kContinuation = 0x9;
constexpr uint8_t kEndStream = 0x1, kAck = 0x1, kPadded = 0x8;

uint32_t be24(std::string_view b) {
  return (uint32_t{static_cast<uint8_t>(b[0])} << 16) |
         (uint32_t{static_cast<uint8_t>(b[1])} << 8) | uint32_t{static_cast<uint8_t>(b[2])};
}
uint32_t be32(std::string_view b) {
  return (uint32_t{static_cast<uint8_t>(b[0])} << 24) | (be24(b.substr(1)));
}

constexpr std::string_view kFloodKindNames[] = {
    "empty_data", "window_update", "priority", "rst_stream", "settings", "ping", "unknown_frame",
};
static_assert(std::size(kFloodKindNames) == static_cast<size_t>(FloodKind::kCount));
}  // namespace

const char* floodKindName(FloodKind k) {
  // Every entry is a literal, so the view is NUL-terminated.
  return enumName(k, kFloodKindNames, "unknown_frame").data();
}

Http2FrameGuard::Http2FrameGuard(const Limits& limits, runtime::TimePoint now)
    : limits_(limits), tokens_(limits.budget), refilled_at_(now), reset_window_(now) {}

Http2FrameGuard::Step Http2FrameGuard::next(std::string_view input, const Streams& streams,
                                            runtime::TimePoint now) {
  if (preface_left_ > 0) {  // nghttp2 checks it
    size_t n = std::min(input.size(), preface_left_);
    preface_left_ -= n;
    return {n, Verdict::kOk};
  }
  if (payload_left_ > 0) {
    size_t n = std::min(input.size(), payload_left_);
    payload_left_ -= n;
    return {n, Verdict::kOk};
  }
  if (input.size() < kFrameHeader) return {};
  const uint32_t length = be24(input);
  const auto type = static_cast<uint8_t>(input[3]);
  const auto flags = static_cast<uint8_t>(input[4]);
  const auto stream_id = static_cast<int32_t>(be32(input.substr(5)) & 0x7fffffffu);
  // The part of the payload a judgement needs: a WINDOW_UPDATE's increment, a padded DATA
  // frame's pad length (a frame too short for it is nghttp2's to reject).
  size_t need = 0;
  if (type == kWindowUpdate) need = 4;
  if (type == kData && (flags & kPadded)) need = 1;
  need = std::min<size_t>(need, length);
  if (input.size() < kFrameHeader + need) return {};
  Verdict v = judge(type, flags, stream_id, length, input.substr(kFrameHeader, need), streams, now);
  if (v != Verdict::kOk) return {0, v};
  const size_t total = kFrameHeader + size_t{length};
  const size_t n = std::min(input.size(), total);
  payload_left_ = total - n;
  return {n, Verdict::kOk};
}

Http2FrameGuard::Verdict Http2FrameGuard::judge(uint8_t type, uint8_t flags, int32_t stream_id,
                                                uint32_t length, std::string_view payload,
                                                const Streams& streams, runtime::TimePoint now) {
  auto charge = [&](FloodKind k) { return spend(k, now) ? Verdict::kOk : Verdict::kFlood; };
  switch (type) {
    case kData: {
      if (flags & kEndStream) return Verdict::kOk;
      uint32_t data = length;
      if ((flags & kPadded) && !payload.empty()) {
        const uint32_t pad = 1 + static_cast<uint8_t>(payload[0]);
        data = length > pad ? length - pad : 0;
      }
      return data == 0 ? charge(FloodKind::kEmptyData) : Verdict::kOk;
    }
    case kHeaders: {
      if (stream_id <= 0 || (stream_id & 1) == 0) return Verdict::kOk;  // nghttp2 rejects it
      if (stream_id > max_opened_) {
        if (int64_t{stream_id} - max_opened_ > 2) {
          if (gaps_.size() == kMaxGaps) gaps_.erase(gaps_.begin());
          gaps_.push_back({max_opened_ + 2, stream_id - 2});
        }
        max_opened_ = stream_id;
        return Verdict::kOk;
      }
      // Trailers of an open stream are fine; a stream id the client skipped is not (nghttp2
      // would ignore the block). Closed streams are nghttp2's (STREAM_CLOSED, or ignored).
      if (!streams.isOpen(stream_id) && skipped(stream_id)) return Verdict::kStreamIdRegression;
      return Verdict::kOk;
    }
    case kPriority:
      return charge(FloodKind::kPriority);
    case kRstStream:
      if (stream_id != 0 && streams.isOpen(stream_id)) {
        // CVE-2023-44487: opening and resetting streams costs the gateway work and the
        // client nothing.
        if (now - reset_window_ >= std::chrono::seconds(1)) {
          reset_window_ = now;
          resets_ = 0;
        }
        return ++resets_ > limits_.max_resets_per_second ? Verdict::kRapidReset : Verdict::kOk;
      }
      return charge(FloodKind::kRstStream);
    case kSettings:
      return (flags & kAck) ? Verdict::kOk : charge(FloodKind::kSettings);
    case kPing:
      return charge(FloodKind::kPing);
    case kWindowUpdate: {
      if (payload.size() < 4) return Verdict::kOk;  // FRAME_SIZE_ERROR from nghttp2
      const uint32_t increment = be32(payload) & 0x7fffffffu;
      if (increment < kTinyWindowIncrement || (stream_id != 0 && !streams.isOpen(stream_id))) {
        return charge(FloodKind::kWindowUpdate);
      }
      return Verdict::kOk;
    }
    case kPushPromise:
    case kGoaway:
    case kContinuation:  // counted per header block by the connection
      return Verdict::kOk;
    default:
      return charge(FloodKind::kUnknown);
  }
}

void Http2FrameGuard::refill(runtime::TimePoint now) {
  const int64_t cap = limits_.budget;
  if (tokens_ >= cap || limits_.refill_per_second == 0) {
    refilled_at_ = now;
    return;
  }
  const int64_t us =
      std::chrono::duration_cast<std::chrono::microseconds>(now - refilled_at_).count();
  const int64_t add = us * limits_.refill_per_second / 1'000'000;
  if (add <= 0) return;  // less than one token yet: keep accumulating time
  tokens_ = std::min(cap, tokens_ + add);
  refilled_at_ =
      tokens_ == cap
          ? now
          : refilled_at_ + std::chrono::microseconds(add * 1'000'000 / limits_.refill_per_second);
}

bool Http2FrameGuard::spend(FloodKind kind, runtime::TimePoint now) {
  refill(now);
  if (tokens_ <= 0) {
    kind_ = kind;
    return false;
  }
  --tokens_;
  return true;
}

void Http2FrameGuard::credit(uint32_t frames) {
  tokens_ = std::min<int64_t>(limits_.budget, tokens_ + frames);
}

bool Http2FrameGuard::skipped(int32_t stream_id) const {
  return std::any_of(gaps_.begin(), gaps_.end(),
                     [&](const Gap& g) { return stream_id >= g.first && stream_id <= g.last; });
}

}  // namespace gatehouse::proxy

#pragma once
// Trace context: the ids that tie a request's spans together, and their propagation headers.
//  - W3C Trace Context: `traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`
//    and `tracestate` (opaque here, passed on unchanged).
//  - B3 (Zipkin): the single `b3: <trace>-<span>-<sampled>[-<parent>]` header, or the
//    X-B3-TraceId / X-B3-SpanId / X-B3-Sampled headers.
// A malformed header is never an error: the parser returns nothing and the request starts a
// new trace. Plain functions on caller-owned data; any thread.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gatehouse::trace {

struct TraceId {
  std::array<uint8_t, 16> bytes{};
  bool valid() const;  // not all zero
  bool operator==(const TraceId&) const = default;
};

struct SpanId {
  std::array<uint8_t, 8> bytes{};
  bool valid() const;
  bool operator==(const SpanId&) const = default;
};

// What arrives from the caller (or what a new trace starts with).
struct Incoming {
  TraceId trace;
  SpanId parent;
  bool sampled = false;
  // B3 may omit the sampling decision ("defer"); W3C always carries it.
  bool sampled_known = true;
};

// Which headers a gateway reads and writes. Reading accepts every format this option knows
// (W3C; B3 single or multi); writing uses the one named.
enum class Propagation : uint8_t { kW3c, kB3Single, kB3Multi };

std::optional<Incoming> parseTraceparent(std::string_view value);
std::optional<Incoming> parseB3Single(std::string_view value);
// X-B3-TraceId (16 or 32 hex; 16 is left-padded with zeros), X-B3-SpanId, X-B3-Sampled
// ("1"/"0"/"true"/"false"; empty: not known), X-B3-Flags ("1": debug, sampled).
std::optional<Incoming> parseB3Multi(std::string_view trace_id, std::string_view span_id,
                                     std::string_view sampled, std::string_view flags);

inline constexpr size_t kTraceparentSize = 55;
// "00-<trace>-<span>-0x" into out (kTraceparentSize chars).
void formatTraceparent(const TraceId& t, const SpanId& s, bool sampled, char* out);
void appendHex(std::string& out, const uint8_t* bytes, size_t n);
std::string toHex(const TraceId& t);
std::string toHex(const SpanId& s);
// Hex (lower or upper) of exactly 2*n digits into bytes; false when malformed.
bool fromHex(std::string_view hex, uint8_t* bytes, size_t n);

// Random ids from two 64-bit random values (never all zero).
TraceId makeTraceId(uint64_t hi, uint64_t lo);
SpanId makeSpanId(uint64_t v);

}  // namespace gatehouse::trace

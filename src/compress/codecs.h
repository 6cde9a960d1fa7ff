#pragma once
// Internal to compress/: one constructor per library (gzip.cc, brotli.cc, zstd.cc), called by
// the registry in encoder.cc, and the output-growing helper they share. Any thread.
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "compress/encoder.h"

namespace gatehouse::compress::detail {

Result<std::unique_ptr<Encoder>> makeGzipEncoder(int level);
Result<std::unique_ptr<Encoder>> makeBrotliEncoder(int level);
Result<std::unique_ptr<Encoder>> makeZstdEncoder(int level);
Result<std::unique_ptr<Decoder>> makeZlibDecoder(DecodeCoding c, uint64_t max_output);
Result<std::unique_ptr<Decoder>> makeBrotliDecoder(uint64_t max_output);
Result<std::unique_ptr<Decoder>> makeZstdDecoder(uint64_t max_output);

// The output room for a decoder's next step: `step` bytes, or one byte past what is left under
// the bound (enough to tell that the body passes it).
inline size_t decodeRoom(uint64_t max_output, uint64_t total, size_t step) {
  const uint64_t left = max_output - total;
  return left < step ? static_cast<size_t>(left) + 1 : step;
}

// Grows `out` by at least `want` bytes of spare room after its first `used` bytes and returns
// where the room starts; the codec writes there, then the caller trims `out` to what it used.
inline char* spareRoom(std::string& out, size_t used, size_t want) {
  if (out.size() < used + want) out.resize(used + want);
  return out.data() + used;
}

// A decoder's failures; `out` keeps the `used` bytes it had decoded.
inline Status corruptBody(std::string& out, size_t used) {
  out.resize(used);
  return codecError(ErrorCode::kProtocol, "corrupt compressed body");
}
inline Status bodyOverLimit(std::string& out, size_t used) {
  out.resize(used);
  return codecError(ErrorCode::kTooLarge, "decoded body over the limit");
}
// finish(): fine once the stream (or its last frame) ended.
inline Status endedOrTruncated(bool ended) {
  if (ended) return {};
  return codecError(ErrorCode::kProtocol, "truncated compressed body");
}

// `codec` (a new Encoder or Decoder) once its init(args...) succeeded, or init's error.
template <class Base, class Codec, class... Args>
Result<std::unique_ptr<Base>> initialized(std::unique_ptr<Codec> codec, Args... args) {
  if (auto st = codec->init(args...); !st.ok()) return st.error();
  return std::unique_ptr<Base>(std::move(codec));
}

}  // namespace gatehouse::compress::detail

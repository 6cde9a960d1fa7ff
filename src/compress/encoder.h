#pragma once
// Content codings (RFC 9110 §8.4.1) as streaming encoders and decoders, over Debian's zlib,
// libbrotli and libzstd. A lower layer: the `compress` policy uses it, and so can anything else
// that stores or serves one entry per coding (a response cache). An Encoder or Decoder belongs
// to one request on one thread; the free functions are pure and any thread may call them.
// Errors are values (never exceptions); a codec library's allocation failure is an error too.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gatehouse::compress {

// The codings we produce, in no particular order (preference is the caller's).
enum class Algorithm : uint8_t { kGzip, kBrotli, kZstd };
inline constexpr Algorithm kAllAlgorithms[] = {Algorithm::kGzip, Algorithm::kBrotli,
                                               Algorithm::kZstd};
inline constexpr size_t kAlgorithmCount = std::size(kAllAlgorithms);

// The Content-Encoding token: "gzip", "br", "zstd".
std::string_view tokenOf(Algorithm a);
// The algorithm of a token (case-insensitive; "x-gzip" is gzip), or nullopt.
std::optional<Algorithm> algorithmOf(std::string_view token);

struct LevelRange {
  int min;
  int max;
  int fallback;  // the default we ship (see docs/config.md, `compress`)
};
LevelRange levelRange(Algorithm a);

// One compressed stream. write() compresses `in` and flushes, so everything written so far can
// be decoded from the bytes appended to `out` (a client sees each chunk as it comes); finish()
// appends the stream's end. Neither may be called after finish().
class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual Status write(std::string_view in, std::string& out) = 0;
  virtual Status finish(std::string& out) = 0;
};

// A new encoder at `level` (clamped into levelRange(a)), or why the library refused.
Result<std::unique_ptr<Encoder>> makeEncoder(Algorithm a, int level);

// The codings we decode (request bodies): gzip, deflate (the zlib format of RFC 9110), brotli
// and zstd.
enum class DecodeCoding : uint8_t { kGzip, kDeflate, kBrotli, kZstd };
// The coding of a Content-Encoding value ("gzip", "x-gzip", "deflate", "br", "zstd"), or nullopt.
std::optional<DecodeCoding> decodeCodingOf(std::string_view token);

// One decompressed stream, with a bound on its output against decompression bombs: write()
// appends what `in` decodes to and fails with kTooLarge as soon as the total would pass
// `max_output`, or with kProtocol on corrupt input; finish() fails with kProtocol when the
// stream is truncated. Concatenated gzip members (RFC 1952) and zstd frames (RFC 8878) decode as
// one body. A zstd frame that asks for a window over 8 MiB is corrupt (RFC 8878 §3.1.1.1.2 lets a
// decoder refuse it; HTTP's zstd coding caps it there), which bounds a decoder's memory.
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual Status write(std::string_view in, std::string& out) = 0;
  virtual Status finish() = 0;
};

Result<std::unique_ptr<Decoder>> makeDecoder(DecodeCoding c, uint64_t max_output);

// The whole of `in` decoded, with the same bound and errors.
Result<std::string> decodeAll(DecodeCoding c, std::string_view in, uint64_t max_output);

// The error a codec reports (kProtocol, kTooLarge or kIo), from the downstream side.
Error codecError(ErrorCode code, std::string_view what);

}  // namespace gatehouse::compress

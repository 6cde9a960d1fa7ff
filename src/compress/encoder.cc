// The registry of codings: tokens, level ranges and the constructor of each library's codec.
#include "compress/encoder.h"

#include <algorithm>

#include "compress/codecs.h"
#include "http/headers.h"

namespace gatehouse::compress {

std::string_view tokenOf(Algorithm a) {
  switch (a) {
    case Algorithm::kGzip:
      return "gzip";
    case Algorithm::kBrotli:
      return "br";
    case Algorithm::kZstd:
      return "zstd";
  }
  return "identity";
}

std::optional<Algorithm> algorithmOf(std::string_view token) {
  for (Algorithm a : kAllAlgorithms) {
    if (http::iequals(token, tokenOf(a))) return a;
  }
  if (http::iequals(token, "x-gzip")) return Algorithm::kGzip;
  return std::nullopt;
}

LevelRange levelRange(Algorithm a) {
  // Defaults measured with bench/micro/compress_bench.cc (docs/config.md, `compress`).
  switch (a) {
    case Algorithm::kGzip:
      return {1, 9, 6};
    case Algorithm::kBrotli:
      return {0, 11, 5};
    case Algorithm::kZstd:
      return {1, 19, 3};
  }
  return {0, 0, 0};
}

Result<std::unique_ptr<Encoder>> makeEncoder(Algorithm a, int level) {
  const LevelRange r = levelRange(a);
  level = std::clamp(level, r.min, r.max);
  switch (a) {
    case Algorithm::kGzip:
      return detail::makeGzipEncoder(level);
    case Algorithm::kBrotli:
      return detail::makeBrotliEncoder(level);
    case Algorithm::kZstd:
      return detail::makeZstdEncoder(level);
  }
  return codecError(ErrorCode::kInvalidArgument, "unknown coding");
}

std::optional<DecodeCoding> decodeCodingOf(std::string_view token) {
  if (algorithmOf(token) == Algorithm::kGzip) return DecodeCoding::kGzip;
  if (http::iequals(token, "deflate")) return DecodeCoding::kDeflate;
  if (http::iequals(token, "br")) return DecodeCoding::kBrotli;
  if (http::iequals(token, "zstd")) return DecodeCoding::kZstd;
  return std::nullopt;
}

Result<std::unique_ptr<Decoder>> makeDecoder(DecodeCoding c, uint64_t max_output) {
  switch (c) {
    case DecodeCoding::kGzip:
    case DecodeCoding::kDeflate:
      return detail::makeZlibDecoder(c, max_output);
    case DecodeCoding::kBrotli:
      return detail::makeBrotliDecoder(max_output);
    case DecodeCoding::kZstd:
      return detail::makeZstdDecoder(max_output);
  }
  return codecError(ErrorCode::kInvalidArgument, "unknown coding");
}

Result<std::string> decodeAll(DecodeCoding c, std::string_view in, uint64_t max_output) {
  auto d = makeDecoder(c, max_output);
  if (!d.ok()) return d.error();
  std::string out;
  if (auto st = (*d)->write(in, out); !st.ok()) return st.error();
  if (auto st = (*d)->finish(); !st.ok()) return st.error();
  return out;
}

Error codecError(ErrorCode code, std::string_view what) {
  return Error::make(code, ErrorSource::kDownstream, std::string(what));
}

}  // namespace gatehouse::compress

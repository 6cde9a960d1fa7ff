// The bounded request-body decoders (compress/encoder.h: gzip, deflate, brotli, zstd). The first
// byte picks the coding and the piece size the body is fed in; the rest is the coded body.
// Invariants: the output never passes the bound (4 KiB, so bombs are found quickly); a body fed
// whole and fed in pieces decodes to the same bytes with the same verdict.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "compress/encoder.h"
#include "fuzz_util.h"

namespace {

using gatehouse::compress::DecodeCoding;

constexpr uint64_t kBound = 4096;

struct Outcome {
  bool ok = false;
  std::string out;
};

Outcome decodeInPieces(DecodeCoding c, std::string_view in, size_t piece) {
  Outcome r;
  auto d = gatehouse::compress::makeDecoder(c, kBound);
  FUZZ_CHECK(d.ok());
  for (size_t at = 0; at < in.size(); at += piece) {
    if (!(*d)->write(in.substr(at, piece), r.out).ok()) return r;
    FUZZ_CHECK(r.out.size() <= kBound);
  }
  r.ok = (*d)->finish().ok();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto coding = static_cast<DecodeCoding>(data[0] % 4);
  const size_t piece = 1 + (data[0] >> 2);  // 1..64 bytes
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto whole = gatehouse::compress::decodeAll(coding, body, kBound);
  if (whole.ok()) FUZZ_CHECK(whole->size() <= kBound);
  const Outcome pieces = decodeInPieces(coding, body, piece);
  FUZZ_CHECK(pieces.ok == whole.ok());
  if (pieces.ok) FUZZ_CHECK(pieces.out == *whole);
  return 0;
}

// PROXY protocol headers from untrusted peers: must never crash; a complete header parses the
// same from exactly its own bytes and needs more one byte earlier; an error stays the same error
// when more bytes arrive; parsed addresses survive a write/parse round trip.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "net/proxy_protocol.h"

using namespace gatehouse::net::proxy_protocol;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  ParseOptions options;
  options.max_v2_size = 1024;
  Header h;
  ParseError err = ParseError::kNone;
  const ParseStatus st = parse(in, options, h, err);
  if (st == ParseStatus::kError) {
    FUZZ_CHECK(err != ParseError::kNone);
    Header again;
    ParseError err2 = ParseError::kNone;
    FUZZ_CHECK(parse(in + "more", options, again, err2) == ParseStatus::kError && err2 == err);
    return 0;
  }
  if (st == ParseStatus::kNeedMore) {
    FUZZ_CHECK(in.size() < kV1MaxLine || in[0] == '\r');
    return 0;
  }
  FUZZ_CHECK(h.size > 0 && h.size <= in.size());
  FUZZ_CHECK(h.version == Version::kV1 ? h.size <= kV1MaxLine : h.size <= options.max_v2_size);
  FUZZ_CHECK(h.unique_id.size() <= kMaxUniqueId);
  Header exact;
  FUZZ_CHECK(parse(in.substr(0, h.size), options, exact, err) == ParseStatus::kComplete);
  FUZZ_CHECK(exact.size == h.size && exact.alpn == h.alpn && exact.authority == h.authority);
  FUZZ_CHECK(parse(in.substr(0, h.size - 1), options, exact, err) == ParseStatus::kNeedMore);
  if (h.hasAddresses()) {
    FUZZ_CHECK(h.source.family() == h.destination.family());
    WriteParams p;
    p.source = h.source;
    p.destination = h.destination;
    p.alpn = h.alpn;
    p.authority = h.authority;
    p.unique_id = h.unique_id;
    auto wire = writeV2(p);
    FUZZ_CHECK(wire.ok());
    Header back;
    ParseOptions big;
    big.max_v2_size = 16 + 65535;
    FUZZ_CHECK(parse(*wire, big, back, err) == ParseStatus::kComplete);
    FUZZ_CHECK(back.source.toString() == h.source.toString());
    FUZZ_CHECK(back.destination.toString() == h.destination.toString());
    FUZZ_CHECK(back.alpn == h.alpn && back.unique_id == h.unique_id);
    FUZZ_CHECK(parse(writeV1(p), options, back, err) == ParseStatus::kComplete);
    FUZZ_CHECK(back.source.toString() == h.source.toString());
  }
  return 0;
}

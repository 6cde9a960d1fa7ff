#pragma once
// PROXY protocol v1 (text) and v2 (binary), per haproxy's doc/proxy-protocol.txt: a parser for
// the header a trusted proxy puts in front of a connection, and a writer for the header we send
// to upstreams. Pure functions on bytes, any thread, no I/O.
//
// The parser is incremental the way a peeking reader needs: hand it every byte received so far
// (from the start of the connection) and it answers kNeedMore, kComplete (the header is exactly
// `Header::size` bytes; the rest is the application's), or kError with a typed reason. It
// decides as early as it can: a prefix that can no longer become a header is an error at once.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "net/address.h"

namespace gatehouse::net::proxy_protocol {

// Longest v1 line the spec allows, CRLF included ("PROXY UNKNOWN <ipv6> <ipv6> 65535 65535").
inline constexpr size_t kV1MaxLine = 107;
// The fixed part of a v2 header: signature (12), version/command, family/transport, length (2).
inline constexpr size_t kV2FixedSize = 16;
inline constexpr std::string_view kV2Signature{"\r\n\r\n\0\r\nQUIT\n", 12};
// TLV types (section 2.2).
inline constexpr uint8_t kTlvAlpn = 0x01;
inline constexpr uint8_t kTlvAuthority = 0x02;
inline constexpr uint8_t kTlvCrc32c = 0x03;
inline constexpr uint8_t kTlvNoop = 0x04;
inline constexpr uint8_t kTlvUniqueId = 0x05;
inline constexpr size_t kMaxUniqueId = 128;

enum class Version : uint8_t { kV1 = 1, kV2 = 2 };
// kLocal: the proxy's own connection (health check); use the real socket addresses.
enum class Command : uint8_t { kLocal, kProxy };
// kUnspec: v1 "UNKNOWN" or v2 AF_UNSPEC (addresses absent or ignored); kUnix is v2 only.
enum class Family : uint8_t { kUnspec, kInet, kInet6, kUnix };
enum class Transport : uint8_t { kUnspec, kStream, kDgram };

enum class ParseError : uint8_t {
  kNone,
  kNotProxyProtocol,   // the first bytes match neither signature
  kVersionNotAllowed,  // a v1 (or v2) header where the caller accepts only the other
  kV1LineTooLong,      // no CRLF within kV1MaxLine bytes
  kV1BadSyntax,        // not "PROXY <proto> <src> <dst> <sport> <dport>\r\n" exactly
  kV1BadAddress,       // not a canonical address of the announced family
  kV1BadPort,          // not a decimal 0..65535 without leading zeros
  kV2BadVersion,       // high nibble of byte 13 is not 2
  kV2BadCommand,       // neither LOCAL nor PROXY
  kV2BadFamily,        // unassigned family or transport nibble
  kV2AddressTooShort,  // the length does not cover the announced addresses
  kV2TooLarge,         // the length is beyond the caller's limit
  kV2BadTlv,           // a TLV overruns the header, or a known TLV has an invalid value
};
std::string_view toString(ParseError e);

struct Tlv {
  uint8_t type = 0;
  std::string value;
};

struct Header {
  Version version = Version::kV1;
  Command command = Command::kProxy;
  Family family = Family::kUnspec;
  Transport transport = Transport::kUnspec;
  // Set for kProxy with kInet/kInet6 only; otherwise `len == 0`.
  SocketAddress source;
  SocketAddress destination;
  size_t size = 0;  // bytes the header occupies at the start of the input
  // v2 TLVs: the registered ones we use, then every other (except NOOP) kept raw, in order.
  std::string alpn;
  std::string authority;  // SNI or Host as the proxy saw it
  std::string unique_id;
  std::vector<Tlv> other_tlvs;

  // Whether the addresses replace the socket's (PROXY command with an IP family).
  bool hasAddresses() const { return source.len != 0; }
};

enum class ParseStatus : uint8_t { kNeedMore, kComplete, kError };

struct ParseOptions {
  bool accept_v1 = true;
  bool accept_v2 = true;
  // Largest v2 header (16 + length) accepted; the wire format allows 16 + 65535.
  size_t max_v2_size = 4096;
};

// Parses the header at the start of `input`. On kComplete fills `out` (out.size <= input.size());
// on kError sets `err`. `out` is reset first.
ParseStatus parse(std::string_view input, const ParseOptions& options, Header& out,
                  ParseError& err);

// What the first bytes of a connection look like, for a listener that must refuse a header
// from an untrusted source: kUndecided until enough bytes arrived to tell.
enum class Detection : uint8_t { kUndecided, kV1, kV2, kNeither };
Detection detect(std::string_view prefix);

// What to write in front of an upstream connection.
struct WriteParams {
  Command command = Command::kProxy;
  SocketAddress source;       // the downstream client
  SocketAddress destination;  // the address the client connected to
  // v2 only, each written when not empty.
  std::string_view alpn;
  std::string_view authority;
  std::string_view unique_id;  // at most kMaxUniqueId bytes
};

// "PROXY TCP4|TCP6 ..." or, when the families differ or are not IP, "PROXY UNKNOWN\r\n".
std::string writeV1(const WriteParams& params);
// Binary header with the TLVs; kInvalidArgument if a TLV does not fit (unique id over 128
// bytes, any value over 65535).
Result<std::string> writeV2(const WriteParams& params);

}  // namespace gatehouse::net::proxy_protocol

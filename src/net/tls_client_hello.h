#pragma once
// TLS ClientHello inspection without terminating TLS (passthrough routing by SNI and ALPN), and
// a small SNI router (exact, one-label wildcard, default). Pure functions on bytes, any thread;
// the router is built once (control thread) and then only read.
//
// The inspector is incremental the way a peeking reader needs: hand it every byte the client
// sent so far (from the start of the connection, not consumed) and it answers kNeedMore,
// kNotTls (the first bytes are not a TLS handshake record), kError with a typed reason, or
// kComplete. A ClientHello split over TCP segments and over several TLS records works. Every
// nested length must fit its parent exactly; the total is bounded by the caller's limit.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gatehouse::net::tls_hello {

enum class HelloStatus : uint8_t { kNeedMore, kComplete, kNotTls, kError };

enum class HelloError : uint8_t {
  kNone,
  kTooLarge,            // the ClientHello (or the records carrying it) exceed the limit
  kBadRecord,           // a record of another type, a bad version byte or an empty record
  kNotClientHello,      // the first handshake message is not a ClientHello
  kBadLength,           // a nested length does not fit its parent (or leaves bytes over)
  kBadSessionId,        // legacy_session_id longer than 32
  kBadCipherSuites,     // empty or odd-length cipher_suites
  kBadCompression,      // empty compression_methods
  kDuplicateExtension,  // an extension type appears twice
  kBadServerName,       // malformed server_name extension, or a host_name that is not a DNS name
  kBadAlpn,             // malformed ALPN extension (empty list or empty protocol name)
  kBadSupportedVersions,
};
std::string_view toString(HelloError e);

struct ClientHello {
  uint16_t legacy_version = 0;               // e.g. 0x0303
  std::vector<uint16_t> supported_versions;  // extension 43, in client order; empty if absent
  std::string server_name;                   // lowercased host_name; empty if no SNI
  std::vector<std::string> alpn;             // protocol names in client order; empty if absent
  // Input bytes up to the ClientHello's last byte, record headers included.
  size_t record_bytes = 0;
};

struct Limits {
  // Largest number of bytes (record headers included) read to find the whole ClientHello.
  size_t max_bytes = 16 * 1024;
};

// Inspects the start of a connection. `out` is reset first; filled on kComplete. `err` is set on
// kError only.
HelloStatus inspect(std::string_view input, const Limits& limits, ClientHello& out,
                    HelloError& err);

// A DNS host name as SNI carries it: 1..253 bytes, labels of 1..63 letters, digits, '-' or '_'
// (not starting or ending with '-'), no trailing dot. Case is not checked.
bool isValidHostName(std::string_view name);

// Chooses a target (an index the caller defines) for an SNI: exact name, then a wildcard
// "*.example.com" (matches exactly one more label, as in certificates), then the default.
class SniRouter {
 public:
  // `pattern` is a host name or "*." + a host name; case-insensitive. kInvalidArgument on a
  // malformed pattern or one already added.
  Status add(std::string_view pattern, size_t target);
  void setDefault(size_t target) { default_ = target; }
  // The target for `server_name` (any case; empty: no SNI), or nullopt without a default.
  std::optional<size_t> match(std::string_view server_name) const;

 private:
  std::map<std::string, size_t, std::less<>> exact_;
  std::map<std::string, size_t, std::less<>> wildcard_;  // keyed by the part after "*."
  std::optional<size_t> default_;
};

}  // namespace gatehouse::net::tls_hello

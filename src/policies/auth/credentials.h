#pragma once
// Credential primitives shared by the consumer registry, the config loader and the auth
// policies: digests, hex and base64, password hashes (bcrypt via libxcrypt, salted SHA-256),
// HMAC and constant-time comparison. Pure functions, callable on any thread.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gatehouse::policies {

using Sha256Digest = std::array<uint8_t, 32>;

Sha256Digest sha256(std::string_view data);
bool parseHexDigest(std::string_view hex, Sha256Digest& out);

// Constant time in the length of `a` (lengths are not secret here: MACs and digests).
bool constantTimeEquals(std::string_view a, std::string_view b);

// Standard base64 (RFC 4648 §4) with padding; decoding is strict (no whitespace).
std::string base64Encode(std::string_view data);
std::optional<std::string> base64Decode(std::string_view text);

// A stored password hash, as written in config:
//   bcrypt:  "$2b$<cost>$<53 chars>" (also $2a$ and $2y$), verified with libxcrypt;
//   salted:  "sha256:<salt>:<64 hex>" where the hex is SHA-256(salt + password);
//   plain:   "sha256:<64 hex>" (no salt; accepted, but a salt is recommended).
struct PasswordHash {
  enum class Kind { kBcrypt, kSha256 };
  Kind kind = Kind::kSha256;
  std::string text;       // the hash as written (bcrypt: the full crypt string)
  std::string salt;       // kSha256
  Sha256Digest digest{};  // kSha256
  int bcrypt_cost = 0;
};

inline constexpr int kMaxBcryptCost = 14;  // ~1.5 s per verification; more stalls the pool

// Parses and checks the format; the error says what was expected.
Result<PasswordHash> parsePasswordHash(std::string_view text);

// Verifies synchronously. bcrypt takes ~50-100 ms at cost 10-12: call it off the worker loop.
bool verifyPassword(const PasswordHash& hash, std::string_view password);

enum class HmacAlgorithm { kSha256, kSha384, kSha512 };
std::optional<HmacAlgorithm> parseHmacAlgorithm(std::string_view name);  // "hmac-sha256", ...
std::string_view hmacAlgorithmName(HmacAlgorithm a);
// The raw MAC bytes.
std::string hmac(HmacAlgorithm alg, std::string_view key, std::string_view data);

// Wipes a string's bytes (passwords copied for a verification).
void cleanse(std::string& s);

}  // namespace gatehouse::policies

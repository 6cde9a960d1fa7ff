#pragma once
// The credential formats a config may hold: SHA-256 digests in hex, and stored password hashes
// (bcrypt, salted SHA-256). Parsed by the config loader, so that a bad hash is an error with
// its file and line, and used by the auth policies (policies/credentials.h). Pure functions,
// any thread.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gatehouse::config {

using Sha256Digest = std::array<uint8_t, 32>;

bool parseHexDigest(std::string_view hex, Sha256Digest& out);

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

}  // namespace gatehouse::config

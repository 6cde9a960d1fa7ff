#pragma once
// Credential primitives shared by the consumer registry and the auth policies: digests, hex and
// base64, password hashes (bcrypt via libxcrypt, salted SHA-256), HMAC and constant-time
// comparison. Pure functions, callable on any thread.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/credential_formats.h"
#include "core/result.h"

namespace gatehouse::policies {

// The formats written in config are parsed by the config layer; policies use them by these names.
using config::kMaxBcryptCost;
using config::parseHexDigest;
using config::parsePasswordHash;
using config::PasswordHash;
using config::Sha256Digest;

Sha256Digest sha256(std::string_view data);

// Constant time in the length of `a` (lengths are not secret here: MACs and digests).
bool constantTimeEquals(std::string_view a, std::string_view b);

// Standard base64 (RFC 4648 §4) with padding; decoding is strict (no whitespace).
std::string base64Encode(std::string_view data);
std::optional<std::string> base64Decode(std::string_view text);

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

#pragma once
// JSON Web Tokens (RFC 7519) signed with JWS compact serialisation (RFC 7515): base64url, JWK
// and PEM key loading, and signature verification for HS/RS/PS/ES/EdDSA with OpenSSL 3 EVP.
// Pure functions and immutable keys: safe to call from any worker concurrently.
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

struct evp_pkey_st;

namespace gatehouse::policies::jwt {

enum class Alg {
  kHS256,
  kHS384,
  kHS512,
  kRS256,
  kRS384,
  kRS512,
  kPS256,
  kPS384,
  kPS512,
  kES256,
  kES384,
  kEdDSA,
};
inline constexpr int kAlgCount = 12;

std::optional<Alg> parseAlg(std::string_view name);  // "none" and unknown names: nullopt
std::string_view algName(Alg alg);

// Strict base64url without padding (RFC 7515 §2): any other byte, or a length of 4n+1, fails.
bool base64UrlDecode(std::string_view in, std::string& out);
std::string base64UrlEncode(std::string_view in);

enum class KeyType { kOct, kRsa, kEc, kOkp };

struct PkeyDeleter {
  void operator()(evp_pkey_st* k) const;
};

// One verification key. An HMAC key (kOct) holds only `secret`; the others only `pkey`.
struct Key {
  std::string kid;  // empty: matches tokens without a kid, or any kid when it is the only key
  KeyType type = KeyType::kOct;
  std::optional<Alg> alg;  // a JWK's "alg" (or configured): the key verifies only that alg
  std::string secret;
  std::shared_ptr<evp_pkey_st> pkey;
  int ec_bits = 0;  // EC: 256 (P-256) or 384 (P-384)

  // Whether this key may verify a token signed with `a`: the key type and curve must fit the
  // algorithm family (an RSA key never verifies HS*, an HMAC secret never verifies RS*), and a
  // key pinned to an alg verifies only that alg.
  bool usableFor(Alg a) const;
};

// Parses one JWK (RFC 7517/7518/8037). RSA keys under 2048 bits are refused (RFC 7518 §3.3).
Result<Key> parseJwk(const nlohmann::json& jwk);
// Parses a JWK Set {"keys": [...]}: keys with "use" other than "sig" or an unsupported kty/crv
// are skipped (counted in `skipped`); a malformed supported key is an error.
Result<std::vector<Key>> parseJwks(std::string_view json, size_t* skipped = nullptr);
// A PEM public key ("BEGIN PUBLIC KEY") or certificate ("BEGIN CERTIFICATE").
Result<Key> parsePemKey(std::string_view pem);

// Verifies `sig` (raw bytes, base64url-decoded) over `signing_input` ("header.payload").
// The caller has checked key.usableFor(alg).
bool verifySignature(Alg alg, const Key& key, std::string_view signing_input, std::string_view sig);

// A token split and decoded. Views point into the token text.
struct Token {
  std::string_view signing_input;  // "header.payload" as sent
  nlohmann::json header;
  nlohmann::json payload;
  std::string signature;
  Alg alg = Alg::kHS256;
  std::string kid;
};

enum class DecodeError { kNone, kMalformed, kAlgorithm, kDuplicateMember };
// Splits and decodes a compact JWS. kAlgorithm: alg missing, "none", or unsupported; also
// tokens with a "crit" header (we understand no extensions, RFC 7515 §4.1.11).
// kDuplicateMember: the header, or an object at any depth of the claims, repeats a member name.
DecodeError decodeToken(std::string_view text, Token& out);

}  // namespace gatehouse::policies::jwt

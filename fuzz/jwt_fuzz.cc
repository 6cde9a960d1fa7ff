// Fuzzes the JWT decoder (compact JWS: three base64url parts, JSON header and claims) and the
// JWK Set parser with the same bytes. Neither may crash, and a decoded token's parts must be
// consistent: a base64url round trip of the signature gives back the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "policies/jwt_auth/jwt.h"

namespace jwt = gatehouse::policies::jwt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  jwt::Token token;
  if (jwt::decodeToken(in, token) == jwt::DecodeError::kNone) {
    if (jwt::algName(token.alg).empty()) std::abort();
    std::string again;
    if (!jwt::base64UrlDecode(jwt::base64UrlEncode(token.signature), again) ||
        again != token.signature) {
      std::abort();
    }
  }
  (void)jwt::parseJwks(in);
  std::string out;
  (void)jwt::base64UrlDecode(in, out);
  return 0;
}

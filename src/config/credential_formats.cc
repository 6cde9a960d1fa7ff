#include "config/credential_formats.h"

#include "core/encoding.h"

namespace gatehouse::config {
namespace {

bool isBcryptChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '/';
}

}  // namespace

bool parseHexDigest(std::string_view hex, Sha256Digest& out) {
  if (hex.size() != out.size() * 2) return false;
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = encoding::hexDigit(hex[2 * i]);
    int lo = encoding::hexDigit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

Result<PasswordHash> parsePasswordHash(std::string_view text) {
  auto fail = [](std::string msg) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
  };
  PasswordHash h;
  h.text = std::string(text);
  if (text.starts_with("$2")) {
    // $2b$10$ + 22 chars of salt + 31 chars of hash = 60 characters.
    bool prefix = text.size() == 60 && (text[2] == 'a' || text[2] == 'b' || text[2] == 'y') &&
                  text[3] == '$' && text[6] == '$' && encoding::hexDigit(text[4]) >= 0 &&
                  encoding::hexDigit(text[4]) <= 9 && encoding::hexDigit(text[5]) >= 0 &&
                  encoding::hexDigit(text[5]) <= 9;
    bool body = prefix;
    for (size_t i = 7; body && i < text.size(); ++i)
      body = isBcryptChar(text[i]);
    if (!body) {
      return fail("expected a bcrypt hash like $2b$10$ followed by 53 characters of [./A-Za-z0-9]");
    }
    h.kind = PasswordHash::Kind::kBcrypt;
    h.bcrypt_cost = (text[4] - '0') * 10 + (text[5] - '0');
    if (h.bcrypt_cost < 4 || h.bcrypt_cost > kMaxBcryptCost) {
      return fail("bcrypt cost " + std::to_string(h.bcrypt_cost) +
                  " is out of range; expected 4 to " + std::to_string(kMaxBcryptCost) +
                  " (each step doubles the CPU per login)");
    }
    return h;
  }
  if (text.starts_with("sha256:")) {
    std::string_view rest = text.substr(7);
    size_t colon = rest.rfind(':');
    std::string_view hex = colon == std::string_view::npos ? rest : rest.substr(colon + 1);
    if (colon != std::string_view::npos) {
      h.salt = std::string(rest.substr(0, colon));
      if (h.salt.empty()) return fail("empty salt in sha256:<salt>:<hex>");
    }
    if (!parseHexDigest(hex, h.digest) || h.digest == Sha256Digest{}) {
      return fail("expected sha256:<salt>:<64 hex digits of SHA-256(salt + password)>");
    }
    h.kind = PasswordHash::Kind::kSha256;
    return h;
  }
  return fail(
      "expected a password hash: bcrypt ($2b$...) or sha256:<salt>:<hex of SHA-256(salt + "
      "password)>; plaintext passwords are not accepted");
}

}  // namespace gatehouse::config

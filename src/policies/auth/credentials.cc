#include "policies/auth/credentials.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <memory>

#include "core/encoding.h"

namespace gatehouse::policies {
namespace {

const EVP_MD* mdOf(HmacAlgorithm a) {
  switch (a) {
    case HmacAlgorithm::kSha256:
      return EVP_sha256();
    case HmacAlgorithm::kSha384:
      return EVP_sha384();
    case HmacAlgorithm::kSha512:
      return EVP_sha512();
  }
  return EVP_sha256();
}

bool verifyBcrypt(const std::string& hash, std::string_view password) {
  // bcrypt reads a C string: a password with a NUL byte could only match a truncated one.
  if (password.find('\0') != std::string_view::npos) return false;
  // struct crypt_data is ~32 KiB: one per thread, zeroed once (libxcrypt's "initialized").
  thread_local std::unique_ptr<crypt_data> data = std::make_unique<crypt_data>();
  std::string pw(password);
  const char* out = crypt_rn(pw.c_str(), hash.c_str(), data.get(), sizeof(crypt_data));
  cleanse(pw);
  if (!out || out[0] == '*') return false;  // '*...' is libxcrypt's failure token
  return constantTimeEquals(std::string_view(out, std::strlen(out)), hash);
}

}  // namespace

Sha256Digest sha256(std::string_view data) {
  Sha256Digest d{};
  unsigned int len = 0;
  // EVP_Digest with a fetched-by-default SHA-256 cannot fail for in-memory input; zeros on
  // failure would only ever mismatch, never match, since no config digest may be all zeros.
  // Fetched once: EVP_sha256() makes every call look the algorithm up again (OpenSSL 3).
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_Digest(data.data(), data.size(), d.data(), &len, kSha256, nullptr);
  return d;
}

bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base64Encode(std::string_view data) {
  return encoding::base64Encode(data, encoding::Base64::kStandard, true);
}

std::optional<std::string> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = text[i + static_cast<size_t>(k)];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        v[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0) return std::nullopt;  // data after padding
      v[k] = encoding::base64Digit(c, encoding::Base64::kStandard);
      if (v[k] < 0) return std::nullopt;
    }
    uint32_t n = static_cast<uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    out.push_back(static_cast<char>(n >> 16 & 0xff));
    if (pad < 2) out.push_back(static_cast<char>(n >> 8 & 0xff));
    if (pad < 1) out.push_back(static_cast<char>(n & 0xff));
  }
  return out;
}

bool verifyPassword(const PasswordHash& hash, std::string_view password) {
  if (hash.kind == PasswordHash::Kind::kBcrypt) return verifyBcrypt(hash.text, password);
  std::string salted = hash.salt;
  salted.append(password);
  Sha256Digest d = sha256(salted);
  cleanse(salted);
  return CRYPTO_memcmp(d.data(), hash.digest.data(), d.size()) == 0;
}

namespace {

// Indexed by HmacAlgorithm.
constexpr std::string_view kHmacNames[] = {"hmac-sha256", "hmac-sha384", "hmac-sha512"};

}  // namespace

std::optional<HmacAlgorithm> parseHmacAlgorithm(std::string_view name) {
  for (size_t i = 0; i < std::size(kHmacNames); ++i) {
    if (name == kHmacNames[i]) return static_cast<HmacAlgorithm>(i);
  }
  return std::nullopt;
}

std::string_view hmacAlgorithmName(HmacAlgorithm a) {
  const auto i = static_cast<size_t>(a);
  return i < std::size(kHmacNames) ? kHmacNames[i] : kHmacNames[0];
}

std::string hmac(HmacAlgorithm alg, std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(mdOf(alg), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len)) {
    return {};  // never equal to a received signature: an empty MAC is rejected first
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

void cleanse(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
}

}  // namespace gatehouse::policies

#include "policies/jwt_auth/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <vector>

#include "core/encoding.h"

namespace gatehouse::policies::jwt {
namespace {

constexpr std::array<std::string_view, kAlgCount> kAlgNames = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
    "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
};

Error keyError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

int algIndex(Alg a) {
  return static_cast<int>(a);
}
bool isHmac(Alg a) {
  return a <= Alg::kHS512;
}
bool isRsa(Alg a) {
  return a >= Alg::kRS256 && a <= Alg::kPS512;
}
bool isPss(Alg a) {
  return a >= Alg::kPS256 && a <= Alg::kPS512;
}
bool isEc(Alg a) {
  return a == Alg::kES256 || a == Alg::kES384;
}

// Digests are fetched once: an implicit fetch per call costs a lookup under a lock in 3.0.
const EVP_MD* digestFor(Alg a) {
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  static EVP_MD* const kSha384 = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  static EVP_MD* const kSha512 = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  switch (a) {
    case Alg::kHS256:
    case Alg::kRS256:
    case Alg::kPS256:
    case Alg::kES256:
      return kSha256;
    case Alg::kHS384:
    case Alg::kRS384:
    case Alg::kPS384:
    case Alg::kES384:
      return kSha384;
    case Alg::kHS512:
    case Alg::kRS512:
    case Alg::kPS512:
      return kSha512;
    case Alg::kEdDSA:
      return nullptr;
  }
  return nullptr;
}

struct BnDeleter {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using BnPtr = std::unique_ptr<BIGNUM, BnDeleter>;
struct BldDeleter {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct EcSigDeleter {
  void operator()(ECDSA_SIG* s) const { ECDSA_SIG_free(s); }
};

std::shared_ptr<EVP_PKEY> adopt(EVP_PKEY* k) {
  return std::shared_ptr<EVP_PKEY>(k, PkeyDeleter{});
}

// Builds a public key from OSSL_PARAMs ("RSA" or "EC") and checks it.
Result<std::shared_ptr<EVP_PKEY>> fromParams(const char* type, OSSL_PARAM_BLD* bld) {
  std::unique_ptr<OSSL_PARAM, ParamDeleter> params(OSSL_PARAM_BLD_to_param(bld));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || !raw) {
    return keyError(std::string("invalid ") + type + " public key");
  }
  auto key = adopt(raw);
  PkeyCtxPtr check(EVP_PKEY_CTX_new_from_pkey(nullptr, raw, nullptr));
  if (!check || EVP_PKEY_public_check(check.get()) != 1) {
    return keyError(std::string("invalid ") + type + " public key (failed the public key check)");
  }
  return key;
}

Result<std::string> b64Member(const nlohmann::json& jwk, const char* name) {
  auto it = jwk.find(name);
  if (it == jwk.end() || !it->is_string()) {
    return keyError(std::string("JWK member '") + name + "' is missing or not a string");
  }
  std::string out;
  if (!base64UrlDecode(it->get_ref<const std::string&>(), out) || out.empty()) {
    return keyError(std::string("JWK member '") + name + "' is not base64url");
  }
  return out;
}

// Fills ec_bits / checks RSA size for a key loaded from PEM or JWK.
Status classify(Key& k) {
  EVP_PKEY* p = k.pkey.get();
  switch (EVP_PKEY_get_base_id(p)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
      k.type = KeyType::kRsa;
      if (EVP_PKEY_get_bits(p) < 2048) return keyError("RSA keys must have at least 2048 bits");
      return {};
    case EVP_PKEY_EC: {
      k.type = KeyType::kEc;
      char group[64] = {0};
      size_t len = 0;
      if (EVP_PKEY_get_utf8_string_param(p, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                         &len) != 1) {
        return keyError("EC key without a named curve");
      }
      std::string_view g(group, len);
      if (g == "prime256v1" || g == "P-256") {
        k.ec_bits = 256;
      } else if (g == "secp384r1" || g == "P-384") {
        k.ec_bits = 384;
      } else {
        return keyError("unsupported EC curve '" + std::string(g) + "' (P-256 or P-384)");
      }
      return {};
    }
    case EVP_PKEY_ED25519:
      k.type = KeyType::kOkp;
      return {};
    default:
      return keyError("unsupported key type (RSA, EC P-256/P-384 or Ed25519)");
  }
}

bool verifyEvp(Alg alg, EVP_PKEY* pkey, std::string_view input, const unsigned char* sig,
               size_t sig_len) {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> md(EVP_MD_CTX_new());
  if (!md) return false;
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(md.get(), &pctx, digestFor(alg), nullptr, pkey) != 1) return false;
  if (isPss(alg)) {
    // JWA §3.5: MGF1 with the same hash, salt length = hash length.
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, digestFor(alg)) != 1) {
      return false;
    }
  } else if (isRsa(alg)) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) return false;
  }
  return EVP_DigestVerify(md.get(), sig, sig_len,
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
}

}  // namespace

void PkeyDeleter::operator()(evp_pkey_st* k) const {
  EVP_PKEY_free(k);
}

std::optional<Alg> parseAlg(std::string_view name) {
  for (int i = 0; i < kAlgCount; ++i) {
    if (kAlgNames[static_cast<size_t>(i)] == name) return static_cast<Alg>(i);
  }
  return std::nullopt;
}

std::string_view algName(Alg alg) {
  return kAlgNames[static_cast<size_t>(algIndex(alg))];
}

bool base64UrlDecode(std::string_view in, std::string& out) {
  return encoding::base64UrlDecodeStrict(in, out);
}

std::string base64UrlEncode(std::string_view in) {
  return encoding::base64Encode(in, encoding::Base64::kUrl, false);
}

bool Key::usableFor(Alg a) const {
  if (alg && *alg != a) return false;
  switch (type) {
    case KeyType::kOct:
      return isHmac(a);
    case KeyType::kRsa:
      return isRsa(a);
    case KeyType::kEc:
      return (a == Alg::kES256 && ec_bits == 256) || (a == Alg::kES384 && ec_bits == 384);
    case KeyType::kOkp:
      return a == Alg::kEdDSA;
  }
  return false;
}

Result<Key> parseJwk(const nlohmann::json& jwk) {
  if (!jwk.is_object()) return keyError("a JWK must be a JSON object");
  auto kty_it = jwk.find("kty");
  if (kty_it == jwk.end() || !kty_it->is_string()) return keyError("JWK without a 'kty'");
  const std::string& kty = kty_it->get_ref<const std::string&>();
  Key k;
  if (auto it = jwk.find("kid"); it != jwk.end()) {
    if (!it->is_string()) return keyError("JWK 'kid' must be a string");
    k.kid = it->get<std::string>();
  }
  if (auto it = jwk.find("alg"); it != jwk.end()) {
    if (!it->is_string()) return keyError("JWK 'alg' must be a string");
    auto a = parseAlg(it->get_ref<const std::string&>());
    if (!a) return keyError("JWK 'alg' '" + it->get<std::string>() + "' is not supported");
    k.alg = *a;
  }
  if (kty == "oct") {
    auto secret = b64Member(jwk, "k");
    if (!secret.ok()) return secret.error();
    if (secret->size() < 32) return keyError("HMAC keys must have at least 32 bytes");
    k.type = KeyType::kOct;
    k.secret = std::move(*secret);
  } else if (kty == "RSA") {
    auto n = b64Member(jwk, "n");
    if (!n.ok()) return n.error();
    auto e = b64Member(jwk, "e");
    if (!e.ok()) return e.error();
    BnPtr bn_n(BN_bin2bn(reinterpret_cast<const unsigned char*>(n->data()),
                         static_cast<int>(n->size()), nullptr));
    BnPtr bn_e(BN_bin2bn(reinterpret_cast<const unsigned char*>(e->data()),
                         static_cast<int>(e->size()), nullptr));
    std::unique_ptr<OSSL_PARAM_BLD, BldDeleter> bld(OSSL_PARAM_BLD_new());
    if (!bn_n || !bn_e || !bld || OSSL_PARAM_BLD_push_BN(bld.get(), "n", bn_n.get()) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), "e", bn_e.get()) != 1) {
      return keyError("invalid RSA JWK");
    }
    auto pkey = fromParams("RSA", bld.get());
    if (!pkey.ok()) return pkey.error();
    k.pkey = std::move(*pkey);
  } else if (kty == "EC") {
    auto crv = jwk.find("crv");
    if (crv == jwk.end() || !crv->is_string()) return keyError("EC JWK without a 'crv'");
    const std::string& c = crv->get_ref<const std::string&>();
    size_t len = c == "P-256" ? 32 : c == "P-384" ? 48 : 0;
    if (len == 0) return keyError("unsupported EC curve '" + c + "' (P-256 or P-384)");
    auto x = b64Member(jwk, "x");
    if (!x.ok()) return x.error();
    auto y = b64Member(jwk, "y");
    if (!y.ok()) return y.error();
    // RFC 7518 wants full-size coordinates, but some issuers (PyJWT before 2.8, among others)
    // drop leading zero bytes; a shorter coordinate is the same number, so pad it back.
    if (x->empty() || y->empty() || x->size() > len || y->size() > len) {
      return keyError("EC JWK coordinates of wrong size");
    }
    std::string point = "\x04";
    point.append(len - x->size(), '\0').append(*x).append(len - y->size(), '\0').append(*y);
    std::unique_ptr<OSSL_PARAM_BLD, BldDeleter> bld(OSSL_PARAM_BLD_new());
    if (!bld ||
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                        len == 32 ? "prime256v1" : "secp384r1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size()) != 1) {
      return keyError("invalid EC JWK");
    }
    auto pkey = fromParams("EC", bld.get());
    if (!pkey.ok()) return pkey.error();
    k.pkey = std::move(*pkey);
  } else if (kty == "OKP") {
    auto crv = jwk.find("crv");
    if (crv == jwk.end() || !crv->is_string() || crv->get_ref<const std::string&>() != "Ed25519") {
      return keyError("unsupported OKP curve (Ed25519)");
    }
    auto x = b64Member(jwk, "x");
    if (!x.ok()) return x.error();
    if (x->size() != 32) return keyError("Ed25519 JWK 'x' must be 32 bytes");
    EVP_PKEY* raw = EVP_PKEY_new_raw_public_key(
        EVP_PKEY_ED25519, nullptr, reinterpret_cast<const unsigned char*>(x->data()), x->size());
    if (!raw) return keyError("invalid Ed25519 JWK");
    k.pkey = adopt(raw);
  } else {
    return keyError("unsupported JWK kty '" + kty + "'");
  }
  if (k.pkey) {
    if (auto st = classify(k); !st.ok()) return st.error();
  }
  if (k.alg && !k.usableFor(*k.alg)) {
    return keyError("JWK 'alg' " + std::string(algName(*k.alg)) + " does not fit its kty '" + kty +
                    "'");
  }
  return k;
}

Result<std::vector<Key>> parseJwks(std::string_view json, size_t* skipped) {
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) return keyError("JWKS is not a JSON object");
  auto keys = doc.find("keys");
  if (keys == doc.end() || !keys->is_array()) return keyError("JWKS has no 'keys' array");
  std::vector<Key> out;
  size_t skip = 0;
  for (const auto& jwk : *keys) {
    if (!jwk.is_object()) return keyError("JWKS 'keys' entries must be objects");
    if (auto use = jwk.find("use"); use != jwk.end() && *use != "sig") {
      ++skip;
      continue;
    }
    auto kty = jwk.find("kty");
    bool supported = kty != jwk.end() && kty->is_string() &&
                     (*kty == "RSA" || *kty == "EC" || *kty == "oct" || *kty == "OKP");
    if (supported && (*kty == "EC" || *kty == "OKP")) {
      auto crv = jwk.find("crv");
      supported = crv != jwk.end() && (*crv == "P-256" || *crv == "P-384" || *crv == "Ed25519");
    }
    if (supported) {
      if (auto alg = jwk.find("alg"); alg != jwk.end()) {
        supported = alg->is_string() && parseAlg(alg->get_ref<const std::string&>()).has_value();
      }
    }
    if (!supported) {
      ++skip;
      continue;
    }
    auto k = parseJwk(jwk);
    if (!k.ok()) {
      std::string kid;
      if (auto it = jwk.find("kid"); it != jwk.end() && it->is_string())
        kid = it->get<std::string>();
      return keyError("JWKS key '" + kid + "': " + k.error().message);
    }
    out.push_back(std::move(*k));
  }
  if (skipped) *skipped = skip;
  return out;
}

Result<Key> parsePemKey(std::string_view pem) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return keyError("cannot read PEM");
  Key k;
  if (pem.find("BEGIN CERTIFICATE") != std::string_view::npos) {
    std::unique_ptr<X509, X509Deleter> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) return keyError("invalid PEM certificate");
    EVP_PKEY* raw = X509_get_pubkey(cert.get());
    if (!raw) return keyError("certificate without a usable public key");
    k.pkey = adopt(raw);
  } else {
    EVP_PKEY* raw = PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr);
    if (!raw) return keyError("invalid PEM public key (expected BEGIN PUBLIC KEY or CERTIFICATE)");
    k.pkey = adopt(raw);
  }
  if (auto st = classify(k); !st.ok()) return st.error();
  return k;
}

bool verifySignature(Alg alg, const Key& key, std::string_view input, std::string_view sig) {
  const auto* s = reinterpret_cast<const unsigned char*>(sig.data());
  if (isHmac(alg)) {
    if (key.type != KeyType::kOct) return false;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(digestFor(alg), key.secret.data(), static_cast<int>(key.secret.size()),
              reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &mac_len)) {
      return false;
    }
    return mac_len == sig.size() && CRYPTO_memcmp(mac, s, mac_len) == 0;
  }
  if (!key.pkey) return false;
  if (isEc(alg)) {
    // JWS carries R || S (fixed width); EVP wants a DER ECDSA-Sig-Value.
    const size_t half = alg == Alg::kES256 ? 32 : 48;
    if (sig.size() != 2 * half) return false;
    std::unique_ptr<ECDSA_SIG, EcSigDeleter> es(ECDSA_SIG_new());
    BIGNUM* r = BN_bin2bn(s, static_cast<int>(half), nullptr);
    BIGNUM* ss = BN_bin2bn(s + half, static_cast<int>(half), nullptr);
    if (!es || !r || !ss || ECDSA_SIG_set0(es.get(), r, ss) != 1) {
      BN_free(r);
      BN_free(ss);
      return false;
    }
    unsigned char der[160];
    unsigned char* p = der;
    int der_len = i2d_ECDSA_SIG(es.get(), nullptr);
    if (der_len <= 0 || static_cast<size_t>(der_len) > sizeof der) return false;
    der_len = i2d_ECDSA_SIG(es.get(), &p);
    return verifyEvp(alg, key.pkey.get(), input, der, static_cast<size_t>(der_len));
  }
  return verifyEvp(alg, key.pkey.get(), input, s, sig.size());
}

namespace {

// Parses a JOSE header or claims set; `duplicate` is set when an object at any depth repeats a
// member name. RFC 7519 lets a parser take the last one, but a back-end that takes the first
// would read a different token than the one we checked.
nlohmann::json parseUniqueMembers(const std::string& text, bool& duplicate) {
  std::vector<std::vector<std::string>> open;  // member names of each enclosing object
  duplicate = false;
  auto track = [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    if (event == Event::object_start) {
      open.emplace_back();
    } else if (event == Event::object_end && !open.empty()) {
      open.pop_back();
    } else if (event == Event::key && !open.empty()) {
      auto& names = open.back();
      const auto& name = parsed.get_ref<const std::string&>();
      if (std::find(names.begin(), names.end(), name) != names.end()) duplicate = true;
      names.push_back(name);
    }
    return true;
  };
  return nlohmann::json::parse(text, track, false);
}

}  // namespace

DecodeError decodeToken(std::string_view text, Token& out) {
  size_t d1 = text.find('.');
  if (d1 == std::string_view::npos) return DecodeError::kMalformed;
  size_t d2 = text.find('.', d1 + 1);
  if (d2 == std::string_view::npos || text.find('.', d2 + 1) != std::string_view::npos) {
    return DecodeError::kMalformed;
  }
  std::string_view h = text.substr(0, d1);
  std::string_view p = text.substr(d1 + 1, d2 - d1 - 1);
  std::string_view s = text.substr(d2 + 1);
  if (h.empty() || p.empty()) return DecodeError::kMalformed;
  std::string buf;
  if (!base64UrlDecode(h, buf)) return DecodeError::kMalformed;
  bool duplicate = false;
  out.header = parseUniqueMembers(buf, duplicate);
  if (out.header.is_discarded() || !out.header.is_object()) return DecodeError::kMalformed;
  if (duplicate) return DecodeError::kDuplicateMember;
  auto alg = out.header.find("alg");
  if (alg == out.header.end() || !alg->is_string()) return DecodeError::kAlgorithm;
  auto a = parseAlg(alg->get_ref<const std::string&>());
  if (!a) return DecodeError::kAlgorithm;  // includes "none"
  if (out.header.contains("crit")) return DecodeError::kAlgorithm;
  out.alg = *a;
  out.kid.clear();
  if (auto kid = out.header.find("kid"); kid != out.header.end()) {
    if (!kid->is_string()) return DecodeError::kMalformed;
    out.kid = kid->get<std::string>();
  }
  if (s.empty() || !base64UrlDecode(s, out.signature)) return DecodeError::kMalformed;
  if (!base64UrlDecode(p, buf)) return DecodeError::kMalformed;
  out.payload = parseUniqueMembers(buf, duplicate);
  if (out.payload.is_discarded() || !out.payload.is_object()) return DecodeError::kMalformed;
  if (duplicate) return DecodeError::kDuplicateMember;
  out.signing_input = text.substr(0, d2);
  return DecodeError::kNone;
}

}  // namespace gatehouse::policies::jwt

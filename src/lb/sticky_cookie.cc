#include "lb/sticky_cookie.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <atomic>
#include <chrono>
#include <cstring>

#include "config/model.h"
#include "core/encoding.h"

namespace gatehouse::lb {
namespace {

constexpr unsigned char kVersion = 1;
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;
constexpr size_t kStamp = 8;
constexpr size_t kMaxHost = 512;

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

const unsigned char* bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::atomic<uint64_t> g_next_id{1};

// AES key setup costs more than sealing a cookie: each thread keeps a few contexts with the key
// schedule done, and each operation only sets its nonce. Keyed by a process-unique id, never by
// an address that a later StickyCookie could reuse.
struct KeyedContexts {
  uint64_t id = 0;
  CipherCtx enc;
  CipherCtx dec;
};

EVP_CIPHER_CTX* contextFor(uint64_t id, const unsigned char* key, bool encrypt) {
  thread_local std::array<KeyedContexts, 4> cache;
  thread_local size_t victim = 0;
  KeyedContexts* slot = nullptr;
  for (auto& c : cache) {
    if (c.id == id) slot = &c;
  }
  if (!slot) {
    slot = &cache[victim++ % cache.size()];
    slot->id = 0;
    slot->enc.reset(EVP_CIPHER_CTX_new());
    slot->dec.reset(EVP_CIPHER_CTX_new());
    if (!slot->enc || !slot->dec ||
        EVP_EncryptInit_ex(slot->enc.get(), EVP_aes_256_gcm(), nullptr, key, nullptr) != 1 ||
        EVP_DecryptInit_ex(slot->dec.get(), EVP_aes_256_gcm(), nullptr, key, nullptr) != 1) {
      return nullptr;
    }
    slot->id = id;
  }
  return encrypt ? slot->enc.get() : slot->dec.get();
}

}  // namespace

const std::array<unsigned char, 32>& processStickyKey() {
  static const std::array<unsigned char, 32> key = [] {
    std::array<unsigned char, 32> k{};
    if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1) {
      // No entropy source: fall back to something unpredictable enough to not be constant.
      const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
      std::memcpy(k.data(), &t, sizeof t);
    }
    return k;
  }();
  return key;
}

Result<std::shared_ptr<const StickyCookie>> StickyCookie::create(const config::StickySession& cfg,
                                                                 std::string cluster) {
  auto s = std::make_shared<StickyCookie>();
  s->name_ = cfg.cookie;
  s->id_ = g_next_id.fetch_add(1, std::memory_order_relaxed);
  s->cluster_ = std::move(cluster);
  s->ttl_s_ = std::chrono::duration_cast<std::chrono::seconds>(cfg.ttl).count();
  if (cfg.key.empty()) {
    s->key_ = processStickyKey();
  } else {
    // Any length of secret becomes a 256-bit key; the label keeps it apart from other uses.
    std::string material = "gatehouse sticky cookie v1|" + cfg.key;
    SHA256(bytes(material), material.size(), s->key_.data());
  }
  std::string& a = s->attributes_;
  a = "; Path=" + cfg.path;
  if (s->ttl_s_ > 0) a += "; Max-Age=" + std::to_string(s->ttl_s_);
  if (cfg.http_only) a += "; HttpOnly";
  if (cfg.secure) a += "; Secure";
  if (cfg.same_site == "lax") a += "; SameSite=Lax";
  if (cfg.same_site == "strict") a += "; SameSite=Strict";
  if (cfg.same_site == "none") a += "; SameSite=None";
  return std::shared_ptr<const StickyCookie>(std::move(s));
}

std::string StickyCookie::seal(std::string_view host, int64_t now_s) const {
  host = host.substr(0, kMaxHost);
  std::string plain(kStamp, '\0');
  for (size_t i = 0; i < kStamp; ++i)
    plain[i] = static_cast<char>((static_cast<uint64_t>(now_s) >> (56 - 8 * i)) & 0xff);
  plain.append(host);
  std::string out(1 + kNonce + plain.size() + kTag, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  o[0] = kVersion;
  if (RAND_bytes(o + 1, static_cast<int>(kNonce)) != 1) return {};
  EVP_CIPHER_CTX* ctx = contextFor(id_, key_.data(), true);
  int len = 0;
  if (!ctx || EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, o + 1) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &len, bytes(cluster_), static_cast<int>(cluster_.size())) !=
          1 ||
      EVP_EncryptUpdate(ctx, o + 1 + kNonce, &len, bytes(plain), static_cast<int>(plain.size())) !=
          1 ||
      EVP_EncryptFinal_ex(ctx, o + 1 + kNonce + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTag),
                          o + 1 + kNonce + plain.size()) != 1) {
    return {};
  }
  return encoding::base64Encode(out, encoding::Base64::kUrl, false);
}

std::optional<StickyCookie::Opened> StickyCookie::open(std::string_view value,
                                                       int64_t now_s) const {
  if (value.size() > 4 * (kMaxHost + 64) / 3) return std::nullopt;
  std::string raw;
  if (!encoding::base64UrlDecodeStrict(value, raw)) return std::nullopt;
  if (raw.size() < 1 + kNonce + kStamp + kTag) return std::nullopt;
  const auto* r = bytes(raw);
  if (r[0] != kVersion) return std::nullopt;
  const size_t n = raw.size() - 1 - kNonce - kTag;
  std::string plain(n, '\0');
  auto* p = reinterpret_cast<unsigned char*>(plain.data());
  EVP_CIPHER_CTX* ctx = contextFor(id_, key_.data(), false);
  int len = 0;
  unsigned char tag[kTag];
  std::memcpy(tag, r + 1 + kNonce + n, kTag);
  if (!ctx || EVP_DecryptInit_ex(ctx, nullptr, nullptr, nullptr, r + 1) != 1 ||
      EVP_DecryptUpdate(ctx, nullptr, &len, bytes(cluster_), static_cast<int>(cluster_.size())) !=
          1 ||
      EVP_DecryptUpdate(ctx, p, &len, r + 1 + kNonce, static_cast<int>(n)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTag), tag) != 1 ||
      EVP_DecryptFinal_ex(ctx, p + len, &len) != 1) {
    return std::nullopt;  // the tag did not verify: altered, forged or another key
  }
  uint64_t stamp = 0;
  for (size_t i = 0; i < kStamp; ++i)
    stamp = (stamp << 8) | p[i];
  Opened o;
  o.issued_s = static_cast<int64_t>(stamp);
  o.host.assign(plain, kStamp);
  if (ttl_s_ > 0 && (now_s - o.issued_s >= ttl_s_ || o.issued_s > now_s + 300)) {
    return std::nullopt;
  }
  return o;
}

bool StickyCookie::wantsRefresh(const Opened& o, int64_t now_s) const {
  return ttl_s_ > 0 && now_s - o.issued_s >= ttl_s_ / 2;
}

std::string StickyCookie::setCookie(std::string_view host, int64_t now_s) const {
  std::string v = seal(host, now_s);
  if (v.empty()) return {};
  std::string out;
  out.reserve(name_.size() + 1 + v.size() + attributes_.size());
  out.append(name_).append("=").append(v).append(attributes_);
  return out;
}

}  // namespace gatehouse::lb

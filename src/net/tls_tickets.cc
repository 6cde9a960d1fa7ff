#include "net/tls_tickets.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

namespace gatehouse::net::tickets {
namespace {

struct Key {
  std::array<unsigned char, 16> name;
  std::array<unsigned char, 32> aes;
  std::array<unsigned char, 32> hmac;
};
using KeySet = std::vector<Key>;  // newest first

std::mutex g_mu;
std::shared_ptr<const KeySet> g_keys;
std::atomic<uint64_t> g_generation{0};

struct Cached {
  uint64_t generation = UINT64_MAX;
  std::shared_ptr<const KeySet> keys;
};
thread_local Cached t_cached;

const KeySet* current() {
  uint64_t gen = g_generation.load(std::memory_order_acquire);
  if (t_cached.generation != gen) {
    std::lock_guard lock(g_mu);
    t_cached.keys = g_keys;
    t_cached.generation = gen;
  }
  return t_cached.keys.get();
}

int onTicket(SSL* /*ssl*/, unsigned char key_name[16], unsigned char iv[16], EVP_CIPHER_CTX* cipher,
             EVP_MAC_CTX* mac, int enc) {
  const KeySet* keys = current();
  if (!keys || keys->empty()) return -1;
  const Key* key = nullptr;
  if (enc) {
    key = &keys->front();
    std::memcpy(key_name, key->name.data(), 16);
    if (RAND_bytes(iv, 16) != 1) return -1;
  } else {
    for (const auto& k : *keys) {
      if (std::memcmp(key_name, k.name.data(), 16) == 0) key = &k;
    }
    if (!key) return 0;  // unknown (expired) key: full handshake
  }
  OSSL_PARAM params[2];
  params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                                const_cast<unsigned char*>(key->hmac.data()), 32);
  params[1] = OSSL_PARAM_construct_end();
  static char kDigest[] = "SHA256";
  OSSL_PARAM dparams[2] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, kDigest, 0),
                           OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, dparams) != 1 || EVP_MAC_CTX_set_params(mac, params) != 1) {
    return -1;
  }
  int ok = enc ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv)
               : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key->aes.data(), iv);
  if (ok != 1) return -1;
  // 2 = accepted, but an older key: the client gets a fresh ticket under the current key.
  return (!enc && key != &keys->front()) ? 2 : 1;
}

}  // namespace

void rotate() {
  Key k{};
  if (RAND_bytes(k.name.data(), 16) != 1 || RAND_bytes(k.aes.data(), 32) != 1 ||
      RAND_bytes(k.hmac.data(), 32) != 1) {
    return;  // keep the old keys rather than install weak ones
  }
  std::lock_guard lock(g_mu);
  auto next = std::make_shared<KeySet>();
  next->push_back(k);
  if (g_keys) {
    for (const auto& old : *g_keys) {
      if (next->size() >= static_cast<size_t>(kKeep)) break;
      next->push_back(old);
    }
  }
  g_keys = std::move(next);
  g_generation.fetch_add(1, std::memory_order_release);
}

void install(SSL_CTX* ctx) {
  if (g_generation.load() == 0) rotate();
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &onTicket);
}

uint64_t generation() {
  return g_generation.load();
}

}  // namespace gatehouse::net::tickets

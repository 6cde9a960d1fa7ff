#include "policies/consumers.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <set>
#include <utility>

#include "policies/policy_yaml.h"

namespace gatehouse::policies {

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

bool parseHexDigest(std::string_view hex, Sha256Digest& out) {
  if (hex.size() != out.size() * 2) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = nibble(hex[2 * i]);
    int lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

Result<ConsumerKeys> ConsumerKeys::parse(const YAML::Node& list, std::string_view what) {
  std::string w(what);
  if (!list || !list.IsSequence() || list.size() == 0) {
    return configError(w + ": expected a non-empty list of consumers");
  }
  ConsumerKeys out;
  std::set<std::string> names;
  std::set<Sha256Digest> digests;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& item = list[i];
    std::string at = w + "[" + std::to_string(i) + "]";
    if (!item.IsMap()) return configError(at + ": expected a map with name, groups, keys");
    if (auto st = checkKeys(item, {"name", "groups", "keys"}); !st.ok()) {
      return configError(at + ": " + st.error().message);
    }
    Consumer c;
    if (!item["name"]) return configError(at + ": 'name' is required");
    auto name = readString(item["name"], at + ".name");
    if (!name.ok()) return name.error();
    if (name->empty()) return configError(at + ".name: must not be empty");
    if (!names.insert(*name).second) {
      return configError(at + ".name: duplicate consumer '" + *name + "'");
    }
    c.name = std::move(*name);
    if (const auto& g = item["groups"]) {
      if (!g.IsSequence()) return configError(at + ".groups: expected a list of group names");
      for (size_t j = 0; j < g.size(); ++j) {
        auto group = readString(g[j], at + ".groups[" + std::to_string(j) + "]");
        if (!group.ok()) return group.error();
        if (group->empty()) return configError(at + ".groups: empty group name");
        c.groups.push_back(std::move(*group));
      }
    }
    const auto& keys = item["keys"];
    if (!keys || !keys.IsSequence() || keys.size() == 0) {
      return configError(at + ".keys: expected a non-empty list of {sha256: <hex digest>}");
    }
    for (size_t j = 0; j < keys.size(); ++j) {
      std::string kat = at + ".keys[" + std::to_string(j) + "]";
      const YAML::Node& k = keys[j];
      if (!k.IsMap()) {
        return configError(kat +
                           ": expected {sha256: <hex digest>}; plaintext keys are not "
                           "accepted (store the SHA-256 of the key)");
      }
      if (auto st = checkKeys(k, {"sha256"}); !st.ok()) {
        return configError(kat + ": " + st.error().message);
      }
      if (!k["sha256"]) return configError(kat + ": 'sha256' is required");
      auto hex = readString(k["sha256"], kat + ".sha256");
      if (!hex.ok()) return hex.error();
      Sha256Digest d{};
      if (!parseHexDigest(*hex, d) || d == Sha256Digest{}) {
        return configError(kat + ".sha256: expected 64 hex digits (the SHA-256 of the key)");
      }
      if (!digests.insert(d).second) {
        return configError(kat + ".sha256: the same key is configured more than once");
      }
      c.key_digests.push_back(d);
    }
    out.consumers_.push_back(std::move(c));
  }
  return out;
}

const Consumer* ConsumerKeys::find(std::string_view key) const {
  const Sha256Digest d = sha256(key);
  const Consumer* found = nullptr;
  for (const auto& c : consumers_) {
    for (const auto& k : c.key_digests) {
      bool eq = CRYPTO_memcmp(d.data(), k.data(), d.size()) == 0;
      if (eq) found = &c;
    }
  }
  return found;
}

}  // namespace gatehouse::policies

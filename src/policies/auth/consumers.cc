#include "policies/auth/consumers.h"

#include <openssl/crypto.h>

#include <set>
#include <utility>

#include "policies/policy_yaml.h"

namespace gatehouse::policies {

Result<std::shared_ptr<const ConsumerRegistry>> ConsumerRegistry::create(
    std::vector<Consumer> consumers) {
  auto r = std::make_shared<ConsumerRegistry>();
  r->consumers_ = std::move(consumers);
  std::set<Sha256Digest> digests;
  for (const Consumer& c : r->consumers_) {
    if (!r->by_name_.emplace(c.name, &c).second) {
      return configError("duplicate consumer '" + c.name + "'");
    }
    for (const auto& d : c.key_digests) {
      if (!digests.insert(d).second) {
        return configError("consumer '" + c.name +
                           "': the same API key is configured more than once");
      }
    }
    for (const auto& b : c.basic) {
      if (!r->basic_.emplace(b.username, BasicEntry{&c, &b}).second) {
        return configError("consumer '" + c.name + "': duplicate basic-auth username '" +
                           b.username + "'");
      }
    }
    for (const auto& h : c.hmac) {
      if (!r->hmac_.emplace(h.key_id, HmacEntry{&c, &h}).second) {
        return configError("consumer '" + c.name + "': duplicate HMAC key id '" + h.key_id + "'");
      }
    }
    for (const auto& cert : c.certificates) {
      if (!r->certificates_[static_cast<size_t>(cert.kind)].emplace(cert.value, &c).second) {
        return configError("consumer '" + c.name + "': certificate '" + cert.value +
                           "' is configured more than once");
      }
    }
  }
  return std::shared_ptr<const ConsumerRegistry>(std::move(r));
}

const std::shared_ptr<const ConsumerRegistry>& ConsumerRegistry::empty() {
  static const std::shared_ptr<const ConsumerRegistry> kEmpty =
      std::make_shared<const ConsumerRegistry>();
  return kEmpty;
}

const Consumer* ConsumerRegistry::byName(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const ConsumerRegistry::BasicEntry* ConsumerRegistry::findBasic(std::string_view username) const {
  auto it = basic_.find(username);
  return it == basic_.end() ? nullptr : &it->second;
}

const ConsumerRegistry::HmacEntry* ConsumerRegistry::findHmac(std::string_view key_id) const {
  auto it = hmac_.find(key_id);
  return it == hmac_.end() ? nullptr : &it->second;
}

const Consumer* ConsumerRegistry::findCertificate(CertificateCredential::Kind kind,
                                                  std::string_view value) const {
  const auto& index = certificates_[static_cast<size_t>(kind)];
  auto it = index.find(value);
  return it == index.end() ? nullptr : it->second;
}

Status readGroups(const YAML::Node& g, const std::string& what, std::vector<std::string>& out) {
  if (!g.IsSequence()) return configError(what + ": expected a list of group names");
  for (size_t j = 0; j < g.size(); ++j) {
    auto group = readString(g[j], what + "[" + std::to_string(j) + "]");
    if (!group.ok()) return group.error();
    if (group->empty()) return configError(what + ": empty group name");
    out.push_back(std::move(*group));
  }
  return {};
}

Result<ConsumerKeys> ConsumerKeys::parse(const YAML::Node& list, std::string_view what) {
  std::string w(what);
  if (!list || !list.IsSequence() || list.size() == 0) {
    return configError(w + ": expected a non-empty list of consumers");
  }
  std::vector<Consumer> consumers;
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
      if (auto st = readGroups(g, at + ".groups", c.groups); !st.ok()) return st.error();
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
    consumers.push_back(std::move(c));
  }
  auto registry = ConsumerRegistry::create(std::move(consumers));
  if (!registry.ok()) return configError(w + ": " + registry.error().message);
  std::vector<const Consumer*> all;
  for (const auto& c : (*registry)->consumers())
    all.push_back(&c);
  return ConsumerKeys(std::move(*registry), std::move(all));
}

const Consumer* ConsumerKeys::find(std::string_view key) const {
  const Sha256Digest d = sha256(key);
  const Consumer* found = nullptr;
  for (const Consumer* c : consumers_) {
    for (const auto& k : c->key_digests) {
      bool eq = CRYPTO_memcmp(d.data(), k.data(), d.size()) == 0;
      if (eq) found = c;
    }
  }
  return found;
}

}  // namespace gatehouse::policies

#pragma once
// Consumers (API clients) and their credentials. A ConsumerRegistry is built once per config
// snapshot on the control thread, from the top-level `consumers:` section (config/loader.cc)
// or from a policy's inline list, and is immutable afterwards: workers read it without locks.
// Auth policies reach the snapshot's registry through http::PolicyContext::consumers.
#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/model.h"
#include "core/result.h"
#include "policies/auth/credentials.h"

namespace gatehouse::policies {

struct BasicCredential {
  std::string username;
  PasswordHash password;
};

struct HmacCredential {
  std::string key_id;
  std::string secret;
};

// A TLS client certificate that identifies a consumer (policy cert_auth).
using CertificateCredential = config::ConsumerSpec::Certificate;

struct Consumer {
  std::string name;
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, std::string>> metadata;  // in config order
  std::vector<Sha256Digest> key_digests;  // SHA-256 of each API key; plaintext is never stored
  std::vector<BasicCredential> basic;
  std::vector<HmacCredential> hmac;
  std::vector<CertificateCredential> certificates;
};

class ConsumerRegistry {
 public:
  // Indexes `consumers`; fails on a duplicate name, API key digest, username or HMAC key id.
  static Result<std::shared_ptr<const ConsumerRegistry>> create(std::vector<Consumer> consumers);
  // The shared empty registry (a config without `consumers:`).
  static const std::shared_ptr<const ConsumerRegistry>& empty();

  const std::vector<Consumer>& consumers() const { return consumers_; }
  bool isEmpty() const { return consumers_.empty(); }
  const Consumer* byName(std::string_view name) const;

  struct BasicEntry {
    const Consumer* consumer = nullptr;
    const BasicCredential* credential = nullptr;
  };
  // By username (not a secret: a plain map lookup).
  const BasicEntry* findBasic(std::string_view username) const;

  struct HmacEntry {
    const Consumer* consumer = nullptr;
    const HmacCredential* credential = nullptr;
  };
  const HmacEntry* findHmac(std::string_view key_id) const;

  // The consumer a certificate credential of this kind and value names, or nullptr.
  const Consumer* findCertificate(CertificateCredential::Kind kind, std::string_view value) const;

 private:
  std::vector<Consumer> consumers_;  // never resized after create(): entries point into it
  std::map<std::string, const Consumer*, std::less<>> by_name_;
  std::map<std::string, BasicEntry, std::less<>> basic_;
  std::map<std::string, HmacEntry, std::less<>> hmac_;
  // Indexed by CertificateCredential::Kind.
  std::map<std::string, const Consumer*, std::less<>> certificates_[3];
};

// API-key lookup over a chosen set of consumers (a whole registry, a named subset, or a
// policy's inline list). Keeps the registry alive.
class ConsumerKeys {
 public:
  ConsumerKeys() = default;
  ConsumerKeys(std::shared_ptr<const ConsumerRegistry> registry,
               std::vector<const Consumer*> consumers)
      : registry_(std::move(registry)), consumers_(std::move(consumers)) {}

  // Inline form: `- {name: x, groups: [..], keys: [{sha256: <64 hex>}]}`; `what` prefixes errors.
  static Result<ConsumerKeys> parse(const YAML::Node& list, std::string_view what);

  // The consumer owning `key`, or nullptr. Every stored digest is compared in constant time,
  // with no early exit, so timing reveals neither the digest nor which consumer matched.
  const Consumer* find(std::string_view key) const;

  const std::vector<const Consumer*>& consumers() const { return consumers_; }
  const ConsumerRegistry* registry() const { return registry_.get(); }

 private:
  std::shared_ptr<const ConsumerRegistry> registry_;
  std::vector<const Consumer*> consumers_;
};

// Reads a consumer's `groups` list (shared by the inline parsers).
Status readGroups(const YAML::Node& node, const std::string& what, std::vector<std::string>& out);

}  // namespace gatehouse::policies

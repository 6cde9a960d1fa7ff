#pragma once
// Consumers (API clients) and their credentials, as read from YAML. Kept separate from the
// `key_auth` policy so a future top-level `consumers:` registry can reuse the same parser and
// lookup without changing the policy.
#include <yaml-cpp/yaml.h>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gatehouse::policies {

using Sha256Digest = std::array<uint8_t, 32>;

struct Consumer {
  std::string name;
  std::vector<std::string> groups;
  std::vector<Sha256Digest> key_digests;  // SHA-256 of each API key; plaintext is never stored
};

// Looks API keys up by digest over a fixed set of consumers.
class ConsumerKeys {
 public:
  // Reads `- {name: x, groups: [..], keys: [{sha256: <64 hex>}]}` items; `what` prefixes errors.
  static Result<ConsumerKeys> parse(const YAML::Node& list, std::string_view what);

  // The consumer owning `key`, or nullptr. Every stored digest is compared in constant time,
  // with no early exit, so timing reveals neither the digest nor which consumer matched.
  const Consumer* find(std::string_view key) const;

  const std::vector<Consumer>& consumers() const { return consumers_; }

 private:
  std::vector<Consumer> consumers_;
};

Sha256Digest sha256(std::string_view data);
bool parseHexDigest(std::string_view hex, Sha256Digest& out);

}  // namespace gatehouse::policies

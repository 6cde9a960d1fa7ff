#pragma once
// A config file as a plain JSON tree, with secrets redacted, and a readable diff of two such
// trees: what `gatehouse validate FILE --diff-with http://ADMIN` prints, comparing a file with
// the config a running gateway serves (GET /config). Pure functions, any thread.
//
// Scalars stay strings as written (YAML does not say "8080" is a number until the loader reads
// it), so both sides compare alike. Values under secret-bearing keys (password, secret,
// secret_base64url, client_secret, token, and a sticky session's key) become
// "<redacted sha256:12345678>": a change still shows, the value does not.
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace gatehouse::config {

// Parses `yaml` (one document) into the redacted tree; an error for YAML that does not parse.
Result<nlohmann::json> configTree(std::string_view yaml);

// Redacts an already converted tree in place (for a tree that came from elsewhere).
void redactTree(nlohmann::json& tree);

struct TreeChange {
  enum class Kind { kAdded, kRemoved, kChanged } kind = Kind::kChanged;
  std::string
      path;  // "clusters[users].endpoints[0].port": list items by `name` where they have one
  nlohmann::json before;  // null for kAdded
  nlohmann::json after;   // null for kRemoved
};

// What changed from `before` to `after`, in document order. Lists of maps that all have a
// `name` are matched by name (so a reordered or inserted item is not a change of every later
// one); other lists by position.
std::vector<TreeChange> diffTrees(const nlohmann::json& before, const nlohmann::json& after);

// One line per change: "+ path: value", "- path: value", "~ path: old -> new".
std::string formatChanges(const std::vector<TreeChange>& changes);

}  // namespace gatehouse::config

#pragma once
// The `waf` policy's compiled rules: ModSecurity v3 running the OWASP Core Rule Set (Debian's
// modsecurity-crs) with the settings a policy asks for (paranoia level, anomaly thresholds,
// detection-only, body bounds) and its own rule files. Loaded on the control thread while a
// snapshot is built (ModSecurity's rule parser keeps global state: loads are serialised), then
// read-only: every worker runs its Transactions against the one shared RuleSet, which
// ModSecurity supports once loading is over. Identical settings over unchanged files share one
// RuleSet across routes and reloads.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"

namespace modsecurity {
class RulesSet;
}

namespace gatehouse::policies::waf {

// Debian's modsecurity-crs rules directory.
inline constexpr const char* kDebianCrsDir = "/usr/share/modsecurity-crs/rules";

struct RulesSpec {
  bool block = true;  // false: detection only (rules run and log, nothing is refused)
  int paranoia_level = 1;
  int inbound_threshold = 5;            // CRS inbound anomaly score that blocks a request
  int outbound_threshold = 4;           // CRS outbound anomaly score that blocks a response
  std::string crs_dir = kDebianCrsDir;  // empty: no Core Rule Set, only rule_files
  std::vector<std::string> rule_files;  // loaded after the CRS, in order
  // Methods CRS rule 911100 lets through (an API's verbs, not CRS's web-site default).
  std::string allowed_methods = "GET HEAD POST OPTIONS PUT PATCH DELETE";
  // Request content types CRS rule 920420 lets through: CRS's own list plus an API's usual
  // JSON variants, plain text and binary uploads. Space-separated.
  std::string allowed_content_types =
      "application/x-www-form-urlencoded multipart/form-data multipart/related text/xml "
      "application/xml application/soap+xml application/json application/cloudevents+json "
      "application/cloudevents-batch+json application/merge-patch+json "
      "application/json-patch+json application/problem+json application/x-ndjson text/plain "
      "application/octet-stream";
  uint64_t max_body_size = 128 * 1024;
  uint64_t max_response_body_size = 128 * 1024;
  bool inspect_response = false;
};

class RuleSet {
 public:
  // Loads (or reuses) the rules of `spec`. The error names the failing file and line
  // ("/etc/waf/mine.conf:3:44: Expecting an action, got: y").
  static Result<std::shared_ptr<const RuleSet>> load(const RulesSpec& spec);

  explicit RuleSet(std::unique_ptr<modsecurity::RulesSet> rules);
  ~RuleSet();
  RuleSet(const RuleSet&) = delete;
  RuleSet& operator=(const RuleSet&) = delete;

  // ModSecurity's Transaction takes a non-const pointer but only reads the rules.
  modsecurity::RulesSet* raw() const { return rules_.get(); }

 private:
  std::unique_ptr<modsecurity::RulesSet> rules_;
};

// The SecLang settings that come before the rules (exposed for tests).
std::string settingsText(const RulesSpec& spec);
// "File: F. Line: N. Column: C. msg" (ModSecurity's parser error) as "F:N:C: msg"; other
// text unchanged.
std::string formatParserError(const std::string& text);

}  // namespace gatehouse::policies::waf

// The waf policy's body handling (policies/waf/inspect.h): a request head plus a fuzzed body
// through a ModSecurity Transaction, the way the policy feeds it, with ModSecurity's body
// processors picked by the content type (JSON, urlencoded, multipart, none). The first byte picks
// the content type (and, for multipart, whether the boundary parameter is quoted); the rest is
// the body. The rules read every body-derived collection (ARGS, ARGS_NAMES, FILES, the raw body,
// the processors' error flags). WAF_FUZZ_CRS=1 runs the Core Rule Set at paranoia level 4 instead
// (slower, far more code). Invariants: no crash or sanitizer report; a decision is a 4xx/5xx;
// every reported match has a rule id.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "policies/waf/inspect.h"
#include "policies/waf/rules.h"

namespace {

using gatehouse::policies::waf::Exclusions;
using gatehouse::policies::waf::Inspection;
using gatehouse::policies::waf::RequestHead;
using gatehouse::policies::waf::RuleSet;
using gatehouse::policies::waf::RulesSpec;

constexpr const char* kRules = R"(
SecRule ARGS|ARGS_NAMES "@rx (?i)union\s+select" "id:1000001,phase:2,deny,status:403,log,msg:'sqli'"
SecRule ARGS "@contains <script" "id:1000002,phase:2,block,log,msg:'xss',t:urlDecodeUni,t:lowercase"
SecRule FILES|FILES_NAMES|MULTIPART_FILENAME "@rx \.php$" "id:1000003,phase:2,deny,log,msg:'upload'"
SecRule REQUEST_BODY "@pm passwd shadow" "id:1000004,phase:2,pass,log,msg:'body words'"
SecRule MULTIPART_UNMATCHED_BOUNDARY|MULTIPART_INVALID_QUOTING "!@eq 0" "id:1000005,phase:2,pass,log,msg:'multipart'"
SecRule &ARGS "@gt 200" "id:1000006,phase:2,deny,status:400,log,msg:'too many args'"
)";

const RuleSet* rules() {
  static std::shared_ptr<const RuleSet> loaded = [] {
    RulesSpec spec;
    spec.max_body_size = 1 << 16;
    if (const char* crs = std::getenv("WAF_FUZZ_CRS"); crs && *crs == '1') {
      spec.paranoia_level = 4;
    } else {
      const auto path = std::filesystem::temp_directory_path() / "gh_waf_fuzz_rules.conf";
      std::ofstream(path) << kRules;
      spec.crs_dir.clear();
      spec.rule_files = {path.string()};
    }
    auto r = RuleSet::load(spec);
    FUZZ_CHECK(r.ok());
    return *r;
  }();
  return loaded.get();
}

constexpr std::string_view kTypes[] = {
    "application/json",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=XyZ",
    "multipart/form-data; boundary=\"XyZ\"",
    "application/vnd.api+json; charset=utf-8",
    "text/plain",
    "",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view type = kTypes[data[0] % std::size(kTypes)];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string length = std::to_string(body.size());
  std::vector<gatehouse::http::HeaderField> headers = {{"host", "fuzz.test"},
                                                       {"user-agent", "fuzz/1"},
                                                       {"accept", "*/*"},
                                                       {"content-length", length}};
  if (!type.empty()) headers.push_back({"content-type", type});
  Inspection insp(*rules(), Exclusions{}, "fuzz");
  RequestHead head{"POST", "/upload", "a=1&b=2", "1.1", "fuzz.test", "10.0.0.1", headers};
  auto d = insp.requestHead(head);
  if (!d.interrupt) d = insp.requestBody(body);
  FUZZ_CHECK(!d.interrupt || (d.status >= 400 && d.status < 600));
  for (const auto& m : insp.matches())
    FUZZ_CHECK(m.id > 0);
  return 0;
}

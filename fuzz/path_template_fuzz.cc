// google.api.http path templates (policy grpc_transcode): any template text and any request
// path, split at the first newline. Parsing and matching never crash; a parsed template is well
// formed; a match yields one capture per variable; a template of literals matches its own
// text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "policies/grpc_transcode/path_template.h"

namespace gt = gatehouse::policies::grpc_transcode;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view text = in.substr(0, nl);
  const std::string_view path = nl == std::string_view::npos ? text : in.substr(nl + 1);

  std::string decoded;
  if (gt::percentDecode(path, decoded, true, false)) FUZZ_CHECK(decoded.size() <= path.size());

  auto t = gt::parsePathTemplate(text);
  if (!t.ok()) return 0;
  FUZZ_CHECK(!t->segments.empty());
  bool literal_only = true;
  for (size_t i = 0; i < t->segments.size(); ++i) {
    if (t->segments[i].kind == gt::PathTemplate::Kind::kMulti) {
      FUZZ_CHECK(i + 1 == t->segments.size());
    }
    literal_only = literal_only && t->segments[i].kind == gt::PathTemplate::Kind::kLiteral;
  }
  for (const auto& v : t->variables)
    FUZZ_CHECK(v.begin < v.end && v.end <= t->segments.size());

  std::vector<gt::Capture> caps;
  if (gt::matchPath(*t, path, caps)) FUZZ_CHECK(caps.size() == t->variables.size());
  // (Paths of more than 64 segments never match: a bound on per-request work.)
  if (literal_only && t->variables.empty() && t->segments.size() <= 64) {
    FUZZ_CHECK(gt::matchPath(*t, text, caps));
  }
  FUZZ_CHECK(!t->moreSpecificThan(*t));
  return 0;
}

#include "proxy/rewrite.h"

#include <re2/re2.h>

namespace gatehouse::proxy {

std::string rewritePath(const config::Rewrite& rw, const re2::RE2* regex, std::string_view path) {
  if (rw.strip_prefix && path.starts_with(*rw.strip_prefix)) {
    path.remove_prefix(rw.strip_prefix->size());
  }
  std::string out;
  out.reserve(path.size() + 1);
  // Stripping "/api" from "/api" or "/apix" must still leave an origin-form path.
  if (path.empty() || path[0] != '/') out.push_back('/');
  out.append(path);
  if (regex != nullptr && rw.regex_replace) {
    RE2::GlobalReplace(&out, *regex, *rw.regex_replace);
    if (out.empty() || out[0] != '/') out.insert(out.begin(), '/');
  }
  return out;
}

}  // namespace gatehouse::proxy

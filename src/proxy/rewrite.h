#pragma once
// Path rewrites applied to a matched request before it goes upstream. Pure; runs on a worker
// after routing, reading only the immutable route config.
#include <string>
#include <string_view>

#include "config/model.h"

namespace re2 {
class RE2;
}

namespace gatehouse::proxy {

// Rewrites the normalised request path `path` per `rw`:
//   1. strip_prefix: removed when `path` starts with it. Like path_prefix it is a plain string
//      prefix ("/api" turns "/apix" into "/x").
//   2. regex + regex_replace: every non-overlapping match is replaced (RE2::GlobalReplace, like
//      Envoy's regex_rewrite); "\1".."\9" insert groups and "\0" the whole match. Anchor the
//      pattern ("^/v1/(.*)") to replace once.
// `regex` is the route's compiled Rewrite::regex (Router::rewriteRegex), nullptr for none.
// A result that is empty or lacks the leading '/' gets one, so it is always a valid
// origin-form path. Returns `path` unchanged when `rw` asks for nothing.
std::string rewritePath(const config::Rewrite& rw, const re2::RE2* regex, std::string_view path);

}  // namespace gatehouse::proxy

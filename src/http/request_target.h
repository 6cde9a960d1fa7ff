#pragma once
// Request-target parsing and path normalisation (RFC 9112 §3.2, RFC 3986 §6.2.2). Runs on a
// worker for every request, before routing; pure functions, no I/O. Routing, route-level auth and
// the upstream all see the normalised path, so "/public/../admin", "/public/%2e%2e/admin" and
// "//admin" cannot reach an "/admin" route while looking like something else.
//
// Canonical form produced (and required of config path literals, see normalizePath):
//   - escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded when decode_unreserved;
//     "%2E" is always decoded so a dot segment cannot hide behind an escape;
//   - every remaining escape has uppercase hex; raw " < > [ ] ^ ` { | } are escaped, because
//     RFC 3986 does not allow them raw and the upstream would decode "%7C" and "|" alike;
//   - "." and ".." segments are removed (RFC 3986 §5.2.4); ".." above the root is rejected;
//   - "//" is merged into "/" when merge_slashes (empty segments are dropped before dot removal,
//     as nginx does: "/a//../b" -> "/b"); otherwise empty segments are kept and ".." pops them;
//   - a back-end that decodes twice, or strips ";params", must not reach what routing denies:
//     "%25" followed by two characters that decode to hex digits is refused when
//     reject_double_encoding; ';' and "%3B" are refused (path_parameters: reject), or ";..." is
//     cut from each segment before dot removal (strip), or ';' is kept (keep).
// A path with no '%' and no ';' that needs no dot or slash work is copied without decoding.
// The result is idempotent: normalizePath(normalizePath(x)) == normalizePath(x).
#include <string>
#include <string_view>

#include "config/model.h"

namespace gatehouse::http {

// Why a target was refused. `status` is the response the gateway sends (400, or 405 for
// CONNECT); `reason` is a static string, safe to log and to count by.
struct TargetError {
  int status = 400;
  std::string_view reason;
};

enum class TargetForm { kOrigin, kAbsolute, kAsterisk };

struct Target {
  TargetForm form = TargetForm::kOrigin;
  std::string path;            // normalised, starts with '/'; "*" for asterisk-form
  std::string_view query;      // raw, without '?'; a view into the raw target
  bool has_query = false;      // "/p?" has an empty query, "/p" has none
  std::string_view scheme;     // absolute-form only ("http"/"https", as written)
  std::string_view authority;  // absolute-form only; per RFC 9112 §3.2.2 it replaces Host
};

// Parses `raw` (the request-target as received; must outlive `out`, which keeps views into it)
// for `method`. Returns true and fills `out` on success. `out.path`'s capacity is reused, so a
// Target kept per connection costs no allocation per request in steady state. Returns false and
// fills `err` on rejection; `out` is then unspecified.
//   origin-form   "/p?q"
//   absolute-form "http://host:port/p?q" (http and https only; userinfo is rejected)
//   asterisk-form "*" (OPTIONS only)
//   CONNECT       405: authority-form tunnels are not supported yet
// A fragment ('#') anywhere is a 400. The query is not normalised, only checked for CTLs,
// space and '#'; bytes >= 0x80 are let through there because clients send raw UTF-8.
bool parseTarget(std::string_view raw, std::string_view method,
                 const config::PathNormalization& norm, Target& out, TargetError& err);

// Normalises an absolute path (no query) into `out` (cleared first). Same rules and errors as
// the path of parseTarget. Also used to check that route literals in config are canonical.
bool normalizePath(std::string_view path, const config::PathNormalization& norm, std::string& out,
                   TargetError& err);

}  // namespace gatehouse::http

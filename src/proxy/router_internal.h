#pragma once
// Internal to proxy/router*.cc: the compiled form of routes, domains and matchers, shared by
// the request path (router.cc: build and match) and the explain walk (router_explain.cc), so
// that both judge a request with the same code. Nothing outside proxy/router*.cc includes it.
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/router.h"

namespace gatehouse::proxy::detail {

// Longer names are not DNS names; such a Host can only reach the "*" vhost.

constexpr size_t kMaxHostLength = 255;

enum class PathKind : uint8_t { kAny, kExact, kPrefix, kRegex, kTemplate };
enum class ValueKind : uint8_t { kPresent, kAbsent, kExact, kRegex };

struct TemplateSegment {
  std::string text;  // literal, or the variable name
  bool is_param = false;
};

// A compiled header or query-parameter matcher.
struct ValueMatcher {
  std::string name;
  ValueKind kind = ValueKind::kPresent;
  std::string exact;
  std::unique_ptr<RE2> regex;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

using DomainMap = std::unordered_map<std::string, size_t, StringHash, std::equal_to<>>;

// Which domain of a listener's table took a Host (explain() only).
struct DomainHit {
  enum Kind { kNone, kExact, kWildcard, kAny } kind = kNone;
  std::string host;    // the lookup form: no port, no trailing dot, lower case
  std::string suffix;  // kWildcard: ".example.com"
};

inline int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Returns the byte at raw[i], decoding %XX, and advances `i`; an invalid escape is a literal
// '%'.
inline char decodeAt(std::string_view raw, size_t& i) {
  if (raw[i] == '%' && i + 2 < raw.size()) {
    const int hi = hexValue(raw[i + 1]);
    const int lo = hexValue(raw[i + 2]);
    if (hi >= 0 && lo >= 0) {
      i += 3;
      return static_cast<char>(hi * 16 + lo);
    }
  }
  return raw[i++];
}

// Compares percent-decoded `raw` with `want` without materialising the decoded string.
inline bool decodedEquals(std::string_view raw, std::string_view want) {
  size_t i = 0;
  size_t j = 0;
  while (i < raw.size()) {
    if (j == want.size() || decodeAt(raw, i) != want[j]) return false;
    ++j;
  }
  return j == want.size();
}

inline std::string decode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size();) {
    out.push_back(decodeAt(raw, i));
  }
  return out;
}

inline bool valueMatches(const ValueMatcher& m, std::string_view value, bool encoded) {
  if (m.kind == ValueKind::kExact) {
    return encoded ? decodedEquals(value, m.exact) : value == m.exact;
  }
  if (!encoded || value.find('%') == std::string_view::npos) {
    return RE2::FullMatch(value, *m.regex);
  }
  return RE2::FullMatch(decode(value), *m.regex);  // the one allocating case
}

inline bool headerMatches(const ValueMatcher& m, const http::HeaderMap* headers) {
  bool found = false;
  if (headers != nullptr) {
    for (const auto& f : headers->fields()) {
      if (!http::iequals(f.name, m.name)) continue;
      found = true;
      if (m.kind == ValueKind::kPresent) return true;
      if (m.kind == ValueKind::kAbsent) return false;
      if (valueMatches(m, f.value, /*encoded=*/false)) return true;
    }
  }
  return !found && m.kind == ValueKind::kAbsent;
}

inline bool queryMatches(const ValueMatcher& m, std::string_view query) {
  bool found = false;
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    const std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    const std::string_view name = pair.substr(0, eq);
    if (!decodedEquals(name, m.name)) continue;
    found = true;
    if (m.kind == ValueKind::kPresent) return true;
    if (m.kind == ValueKind::kAbsent) return false;
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
    if (valueMatches(m, value, /*encoded=*/true)) return true;
  }
  return !found && m.kind == ValueKind::kAbsent;
}

// Walks the path one segment per template segment; captures point into `path`.
inline bool matchTemplate(const std::vector<TemplateSegment>& segments, std::string_view path,
                          RouteResult& out) {
  size_t pos = 1;  // normalised paths start with '/'
  for (size_t k = 0; k < segments.size(); ++k) {
    if (pos > path.size()) return false;
    size_t end = path.find('/', pos);
    const bool last_in_path = end == std::string_view::npos;
    if (last_in_path) end = path.size();
    const std::string_view piece = path.substr(pos, end - pos);
    const TemplateSegment& seg = segments[k];
    if (seg.is_param) {
      if (piece.empty()) return false;
      out.param_storage[out.param_count++] = PathParam{seg.text, piece};
    } else if (piece != seg.text) {
      return false;
    }
    const bool last_in_template = k + 1 == segments.size();
    if (last_in_path != last_in_template) return false;
    pos = end + 1;
  }
  return true;
}

struct CompiledRoute {
  std::string name;
  size_t vhost_index = 0;
  PathKind path_kind = PathKind::kAny;
  std::string path;  // path_exact or path_prefix
  std::unique_ptr<RE2> path_regex;
  std::vector<TemplateSegment> segments;
  std::vector<std::string> methods;
  std::vector<ValueMatcher> headers;
  std::vector<ValueMatcher> query;
  std::unique_ptr<RE2> rewrite_regex;
};

struct DomainTable {
  DomainMap exact;     // "example.com" -> vhost
  DomainMap wildcard;  // ".example.com" (from "*.example.com") -> vhost
  std::optional<size_t> any;

  // The listener's view: the vhosts it serves, in config order (explain() lists them).
  std::vector<size_t> view;

  std::optional<size_t> select(std::string_view host) const { return lookup(host, nullptr); }

  // select(), telling in `how` (when not null) which domain took the host. Inlined into
  // select() with a null `how`, so the request path pays nothing for the explain walk.
  std::optional<size_t> lookup(std::string_view host, DomainHit* how) const {
    if (host.empty() || host[0] != '[') {
      const size_t colon = host.rfind(':');
      if (colon != std::string_view::npos) host = host.substr(0, colon);
    } else if (const size_t close = host.find(']'); close != std::string_view::npos) {
      host = host.substr(0, close + 1);
    }
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    if (host.empty() || host.size() > kMaxHostLength) {
      if (how) how->kind = DomainHit::kAny;
      return any;
    }
    // Lower-case on the stack: this runs for every request and must not allocate.
    std::array<char, kMaxHostLength> buf;
    for (size_t i = 0; i < host.size(); ++i) {
      const char c = host[i];
      buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
    const std::string_view lower(buf.data(), host.size());
    if (how) how->host.assign(lower);
    if (auto it = exact.find(lower); it != exact.end()) {
      if (how) how->kind = DomainHit::kExact;
      return it->second;
    }
    if (!wildcard.empty()) {
      // Earliest dot first = longest suffix first; a dot at 0 would leave an empty label.
      for (size_t dot = lower.find('.', 1); dot != std::string_view::npos;
           dot = lower.find('.', dot + 1)) {
        if (auto it = wildcard.find(lower.substr(dot)); it != wildcard.end()) {
          if (how) {
            how->kind = DomainHit::kWildcard;
            how->suffix.assign(lower.substr(dot));
          }
          return it->second;
        }
      }
    }
    if (how) how->kind = DomainHit::kAny;
    return any;
  }
};

// A vhost's routes indexed by the first path segment they require. Candidates for a path are
// the keyed list for its first segment merged with `unkeyed` by route id, which is exactly the
// written order restricted to routes that could match; routes skipped cannot match.
struct VhostRoutes {
  std::unordered_map<std::string, std::vector<uint32_t>, StringHash, std::equal_to<>> keyed;
  std::vector<uint32_t> unkeyed;  // regex, any path, template starting with {var}, "/api"-style
  // For explain() only: the vhost's name, its domains as written and its route ids in order.
  std::string name;
  std::vector<std::string> domains;
  std::vector<uint32_t> route_ids;
};

inline std::string_view firstSegment(std::string_view path) {
  if (path.size() < 2) return {};
  const size_t slash = path.find('/', 1);
  return path.substr(1, slash == std::string_view::npos ? slash : slash - 1);
}

inline bool matchRoute(const CompiledRoute& r, const RouteRequest& req, RouteResult& out) {
  if (!r.methods.empty() &&
      std::find(r.methods.begin(), r.methods.end(), req.method) == r.methods.end()) {
    return false;
  }
  switch (r.path_kind) {
    case PathKind::kAny:
      break;
    case PathKind::kExact:
      if (req.path != r.path) return false;
      break;
    case PathKind::kPrefix:
      if (!req.path.starts_with(r.path)) return false;
      break;
    case PathKind::kRegex:
      if (!RE2::FullMatch(req.path, *r.path_regex)) return false;
      break;
    case PathKind::kTemplate:
      if (!matchTemplate(r.segments, req.path, out)) return false;
      break;
  }
  for (const ValueMatcher& h : r.headers) {
    if (!headerMatches(h, req.headers)) return false;
  }
  for (const ValueMatcher& q : r.query) {
    if (!queryMatches(q, req.query)) return false;
  }
  return true;
}

}  // namespace gatehouse::proxy::detail

#include "http/request_target.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/encoding.h"
#include "http/headers.h"

namespace gatehouse::http {

namespace {

// What a raw path byte means. One table lookup per byte keeps the common scan branch-light.
enum Cls : uint8_t {
  kOk,         // pchar with no special meaning: copied as is
  kDot,        // '.': only interesting at the start of a segment
  kSlash,      // '/'
  kPct,        // '%'
  kSemicolon,  // ';': starts a segment parameter for back-ends that strip them
  kEscape,     // allowed by clients in practice but not by RFC 3986: escaped in the output
  kQuery,      // '?': ends the path
  kFragment,   // '#'
  kBackslash,  // '\': some upstreams treat it as '/', so it is never ambiguous here
  kBad,        // CTL, space, DEL, non-ASCII
};

constexpr std::array<Cls, 256> makeClassTable() {
  std::array<Cls, 256> t{};
  for (auto& c : t)
    c = kBad;
  for (int c = 'a'; c <= 'z'; ++c)
    t[c] = kOk;
  for (int c = 'A'; c <= 'Z'; ++c)
    t[c] = kOk;
  for (int c = '0'; c <= '9'; ++c)
    t[c] = kOk;
  for (char c : std::string_view("-_~!$&'()*+,=:@"))
    t[static_cast<unsigned char>(c)] = kOk;
  for (char c : std::string_view("\"<>[]^`{|}"))
    t[static_cast<unsigned char>(c)] = kEscape;
  t['.'] = kDot;
  t['/'] = kSlash;
  t['%'] = kPct;
  t[';'] = kSemicolon;
  t['?'] = kQuery;
  t['#'] = kFragment;
  t['\\'] = kBackslash;
  return t;
}

constexpr std::array<Cls, 256> kClass = makeClassTable();
constexpr char kHex[] = "0123456789ABCDEF";

constexpr TargetError kErrFragment{400, "fragment in request-target"};
constexpr TargetError kErrBackslash{400, "backslash in path"};
constexpr TargetError kErrBadPathChar{400, "invalid character in path"};
constexpr TargetError kErrBadEscape{400, "invalid percent-encoding in path"};
constexpr TargetError kErrEncodedNul{400, "encoded NUL in path"};
constexpr TargetError kErrEncodedSlash{400, "encoded slash or backslash in path"};
constexpr TargetError kErrAboveRoot{400, "'..' above the root in path"};
constexpr TargetError kErrDotParams{400, "dot segment with parameters in path"};
constexpr TargetError kErrPathParams{400, "';' parameter in path"};
constexpr TargetError kErrEncodedSemicolon{400, "encoded ';' in path"};
constexpr TargetError kErrDoubleEncoding{400, "double percent-encoding in path"};
constexpr TargetError kErrQueryInPath{400, "'?' in path"};
constexpr TargetError kErrNotAbsolutePath{400, "path must start with '/'"};
constexpr TargetError kErrBadQueryChar{400, "invalid character in query"};
constexpr TargetError kErrEmpty{400, "empty request-target"};
constexpr TargetError kErrAsterisk{400, "asterisk-form is only allowed for OPTIONS"};
constexpr TargetError kErrForm{400, "unsupported request-target form"};
constexpr TargetError kErrScheme{400, "unsupported scheme in request-target"};
constexpr TargetError kErrUserinfo{400, "userinfo in request-target"};
constexpr TargetError kErrAuthority{400, "invalid authority in request-target"};
constexpr TargetError kErrConnect{405, "CONNECT is not supported"};

// The error for a byte that may not stand in a path at all.
constexpr TargetError rejectedByteError(Cls c) {
  return c == kFragment ? kErrFragment : c == kBackslash ? kErrBackslash : kErrBadPathChar;
}

inline bool isUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

inline void appendEscape(std::string& out, unsigned char c) {
  out.push_back('%');
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0xF]);
}

// The single pass every request takes: validates the path bytes, finds where the path ends
// ('?' or the end) and says whether anything needs rewriting. Only a '.' right after '/' can
// start a dot segment, so "/app.js" stays on the fast path; a path without '%' or ';' that
// needs no dot or slash work is copied as is.
bool scanPath(std::string_view pq, const config::PathNormalization& norm, size_t& end, bool& slow,
              TargetError& err) {
  const bool merge_slashes = norm.merge_slashes;
  const size_t n = pq.size();
  slow = false;
  for (size_t i = 0; i < n; ++i) {
    // Looking back only on '.' and '/' keeps the common byte free of a loop-carried `prev`.
    const Cls cls = kClass[static_cast<unsigned char>(pq[i])];
    switch (cls) {
      case kOk:
        break;
      case kDot:
        slow |= i > 0 && pq[i - 1] == '/';
        break;
      case kSlash:
        slow |= merge_slashes && i > 0 && pq[i - 1] == '/';
        break;
      case kPct:
      case kEscape:
        slow = true;
        break;
      case kSemicolon:
        if (norm.path_parameters == config::PathParameters::kReject) {
          err = kErrPathParams;
          return false;
        }
        slow |= norm.path_parameters == config::PathParameters::kStrip;
        break;
      case kQuery:
        end = i;
        return true;
      case kFragment:
      case kBackslash:
      case kBad:
        err = rejectedByteError(cls);
        return false;
    }
  }
  end = n;
  return true;
}

// Tomcat and friends strip ";params" before resolving dots, so "/..;/admin" climbs there.
inline bool isDotSegmentWithParams(std::string_view seg) {
  if (seg.size() < 2 || seg[0] != '.') return false;
  return seg[1] == ';' || (seg[1] == '.' && seg.size() > 2 && seg[2] == ';');
}

// One character of `path` at `j` as a back-end decoding once sees it: a valid "%XX" escape is
// its byte, anything else itself. Advances `j`; -1 at the end.
int decodedAt(std::string_view path, size_t& j) {
  const size_t n = path.size();
  if (j >= n) return -1;
  if (path[j] == '%' && j + 2 < n) {
    const int hi = encoding::hexDigit(path[j + 1]);
    const int lo = encoding::hexDigit(path[j + 2]);
    if (hi >= 0 && lo >= 0) {
      j += 3;
      return hi * 16 + lo;
    }
  }
  return static_cast<unsigned char>(path[j++]);
}

// "%25" at `i` starts a second escape when the next two characters, once decoded, are hex
// digits: "%252e", "%2561", "%25%32%65" all become "%2E" or "%61" after one decode, which a
// back-end that decodes again turns into '.' or 'a' after routing saw something else.
bool startsDoubleEscape(std::string_view path, size_t i) {
  size_t j = i + 3;
  const int hi = decodedAt(path, j);
  const int lo = decodedAt(path, j);
  return hi >= 0 && lo >= 0 && encoding::hexDigit(static_cast<char>(hi)) >= 0 &&
         encoding::hexDigit(static_cast<char>(lo)) >= 0;
}

// The byte an escape at `i` decodes to, or an error for escapes that are never let through.
bool decodeEscape(std::string_view path, size_t i, const config::PathNormalization& norm,
                  unsigned char& v, TargetError& err) {
  const size_t n = path.size();
  const int hi = i + 2 < n ? encoding::hexDigit(path[i + 1]) : -1;
  const int lo = i + 2 < n ? encoding::hexDigit(path[i + 2]) : -1;
  if (hi < 0 || lo < 0) {
    err = kErrBadEscape;
    return false;
  }
  v = static_cast<unsigned char>(hi * 16 + lo);
  if (v == 0) {
    err = kErrEncodedNul;
  } else if ((v == '/' || v == '\\') && norm.reject_encoded_slash) {
    err = kErrEncodedSlash;
  } else if (v == ';' && norm.path_parameters != config::PathParameters::kKeep) {
    // A back-end that decodes before it strips parameters would strip here too.
    err = kErrEncodedSemicolon;
  } else if (v == '%' && norm.reject_double_encoding && startsDoubleEscape(path, i)) {
    err = kErrDoubleEncoding;
  } else {
    return true;
  }
  return false;
}

// Full normalisation of a path that starts with '/' and contains no '?'. Segments are written to
// `out` as they are decoded; a dot segment or a merged empty segment is then cut back off, so
// the work is one pass plus the occasional truncation.
bool normalizeSlow(std::string_view path, const config::PathNormalization& norm, std::string& out,
                   TargetError& err) {
  const size_t n = path.size();
  out.clear();
  out.reserve(n + 8);
  bool trailing_slash = false;
  size_t i = 0;  // path[i] == '/' at the top of each iteration
  while (true) {
    ++i;
    const size_t seg_start = out.size();
    out.push_back('/');
    while (i < n && path[i] != '/') {
      const auto c = static_cast<unsigned char>(path[i]);
      switch (kClass[c]) {
        case kOk:
        case kDot:
          out.push_back(static_cast<char>(c));
          ++i;
          break;
        case kEscape:
          appendEscape(out, c);
          ++i;
          break;
        case kPct: {
          unsigned char v = 0;
          if (!decodeEscape(path, i, norm, v, err)) return false;
          if (v == '.' || (norm.decode_unreserved && isUnreserved(v))) {
            out.push_back(static_cast<char>(v));
          } else {
            appendEscape(out, v);
          }
          i += 3;
          break;
        }
        case kSemicolon:
          if (norm.path_parameters == config::PathParameters::kStrip) {
            // The parameter runs to the end of the segment; "..;x" is then "..", as there.
            i = std::min(path.find('/', i), n);
          } else if (norm.path_parameters == config::PathParameters::kKeep) {
            out.push_back(';');
            ++i;
          } else {
            err = kErrPathParams;
            return false;
          }
          break;
        case kSlash:  // unreachable: the loop stops at '/'
        case kQuery:
          err = kErrQueryInPath;
          return false;
        case kFragment:
        case kBackslash:
        case kBad:
          err = rejectedByteError(kClass[c]);
          return false;
      }
    }
    const bool last = i >= n;
    const std::string_view seg(out.data() + seg_start + 1, out.size() - seg_start - 1);
    if (seg == ".") {
      out.resize(seg_start);
      trailing_slash = last;
    } else if (seg == "..") {
      out.resize(seg_start);
      const size_t cut = out.rfind('/');
      if (cut == std::string::npos) {
        err = kErrAboveRoot;
        return false;
      }
      out.resize(cut);
      trailing_slash = last;
    } else if (seg.empty()) {
      // A final empty segment is the trailing slash and always stays.
      if (norm.merge_slashes && !last) out.resize(seg_start);
    } else if (isDotSegmentWithParams(seg)) {
      err = kErrDotParams;
      return false;
    }
    if (last) break;
  }
  if (trailing_slash || out.empty()) out.push_back('/');
  return true;
}

bool validateQuery(std::string_view q, TargetError& err) {
  for (const char ch : q) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) {
      err = kErrBadQueryChar;
      return false;
    }
    if (c == '#') {
      err = kErrFragment;
      return false;
    }
  }
  return true;
}

// `pq` starts with '/': path, then optionally '?' and the query.
bool parsePathAndQuery(std::string_view pq, const config::PathNormalization& norm, Target& out,
                       TargetError& err) {
  size_t end = 0;
  bool slow = false;
  if (!scanPath(pq, norm, end, slow, err)) return false;
  if (end < pq.size()) {
    out.has_query = true;
    out.query = pq.substr(end + 1);
    if (!validateQuery(out.query, err)) return false;
  }
  if (!slow) {
    out.path.assign(pq.data(), end);
    return true;
  }
  return normalizeSlow(pq.substr(0, end), norm, out.path, err);
}

// Not assign("/"): GCC 12 at -O3 reports a bogus -Wrestrict for it (GCC PR105651).
inline void setPath(std::string& path, char c) {
  path.clear();
  path.push_back(c);
}

bool isAuthorityChar(unsigned char c) {
  return isUnreserved(c) ||
         std::string_view("!$&'()*+,;=:[]%").find(static_cast<char>(c)) != std::string_view::npos;
}

bool parseAbsoluteForm(std::string_view raw, const config::PathNormalization& norm, Target& out,
                       TargetError& err) {
  const size_t colon = raw.find(':');
  if (colon == std::string_view::npos || raw.substr(colon, 3) != "://") {
    err = kErrForm;
    return false;
  }
  out.scheme = raw.substr(0, colon);
  if (!iequals(out.scheme, "http") && !iequals(out.scheme, "https")) {
    err = kErrScheme;
    return false;
  }
  const std::string_view rest = raw.substr(colon + 3);
  const size_t auth_end = std::min(rest.find_first_of("/?#"), rest.size());
  out.authority = rest.substr(0, auth_end);
  if (out.authority.empty()) {
    err = kErrAuthority;
    return false;
  }
  for (const char ch : out.authority) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '@') {
      err = kErrUserinfo;
      return false;
    }
    if (!isAuthorityChar(c)) {
      err = kErrAuthority;
      return false;
    }
  }
  out.form = TargetForm::kAbsolute;
  const std::string_view pq = rest.substr(auth_end);
  if (pq.empty()) {
    setPath(out.path, '/');
    return true;
  }
  if (pq[0] == '#') {
    err = kErrFragment;
    return false;
  }
  if (pq[0] == '?') {
    out.has_query = true;
    out.query = pq.substr(1);
    if (!validateQuery(out.query, err)) return false;
    setPath(out.path, '/');
    return true;
  }
  return parsePathAndQuery(pq, norm, out, err);
}

}  // namespace

bool parseTarget(std::string_view raw, std::string_view method,
                 const config::PathNormalization& norm, Target& out, TargetError& err) {
  out.form = TargetForm::kOrigin;
  out.query = {};
  out.has_query = false;
  out.scheme = {};
  out.authority = {};
  if (method == "CONNECT") {
    err = kErrConnect;
    return false;
  }
  if (raw.empty()) {
    err = kErrEmpty;
    return false;
  }
  if (raw[0] == '/') return parsePathAndQuery(raw, norm, out, err);
  if (raw == "*") {
    if (method != "OPTIONS") {
      err = kErrAsterisk;
      return false;
    }
    out.form = TargetForm::kAsterisk;
    setPath(out.path, '*');
    return true;
  }
  return parseAbsoluteForm(raw, norm, out, err);
}

bool normalizePath(std::string_view path, const config::PathNormalization& norm, std::string& out,
                   TargetError& err) {
  if (path.empty() || path[0] != '/') {
    err = kErrNotAbsolutePath;
    return false;
  }
  size_t end = 0;
  bool slow = false;
  if (!scanPath(path, norm, end, slow, err)) return false;
  if (end != path.size()) {
    err = kErrQueryInPath;
    return false;
  }
  if (!slow) {
    out.assign(path);
    return true;
  }
  return normalizeSlow(path, norm, out, err);
}

}  // namespace gatehouse::http

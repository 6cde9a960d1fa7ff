#include "http/http1_parser.h"

#include <cstring>
#include <limits>

#include "http/http1_scan.h"

namespace gatehouse::http1 {

bool isTokenChar(unsigned char c) {
  return (scan::kClasses[c] & scan::kToken) != 0;
}

namespace {

using scan::equalsLower;
using scan::isOws;

// RFC 9112 §2.2 allows skipping "at least one" empty line; more than a few is noise or abuse.
constexpr size_t kMaxLeadingEmptyLines = 4;
// Heads are re-parsed from the start on every kIncomplete. Below this size that is cheaper than
// any bookkeeping; above it a memchr pass first checks whether an empty line has arrived, so a
// client trickling a 64 KiB head byte by byte costs O(n) memchr per read, not a full parse.
constexpr size_t kPrescanThreshold = 2048;

ParseStatus fail(ParseError& err, int status, std::string_view reason) {
  err.status = status;
  err.reason = reason;
  return ParseStatus::kError;
}

// Facts about framing and routing fields, gathered in one pass over the field lines and judged
// afterwards, because the verdict depends on the start line (version, status, HEAD).
struct FieldFacts {
  bool cl_seen = false;
  bool cl_invalid = false;
  bool cl_conflict = false;
  uint64_t content_length = 0;
  size_t te_fields = 0;
  size_t te_chunked = 0;         // how many codings were "chunked"
  bool te_last_chunked = false;  // the final coding so far is chunked
  bool te_other = false;         // some coding besides chunked
  bool te_invalid = false;       // empty element, non-token coding, parameters on chunked
  size_t host_fields = 0;
  std::string_view host;
  bool underscore_name = false;  // some field name has '_'
  bool conn_close = false;
  bool conn_keep_alive = false;
  bool conn_upgrade = false;
  bool has_upgrade = false;
  bool expect_continue = false;
};

// Calls fn(element) for each comma-separated element, OWS-trimmed (empty elements included).
template <typename Fn>
void forEachListElement(std::string_view value, Fn&& fn) {
  for (;;) {
    const size_t comma = value.find(',');
    fn(scan::trimOws(value.substr(0, comma)));
    if (comma == std::string_view::npos) return;
    value.remove_prefix(comma + 1);
  }
}

// RFC 9110 §8.6: Content-Length may arrive as a list of identical values; anything else is
// ambiguous framing.
void noteContentLength(std::string_view value, FieldFacts& f) {
  forEachListElement(value, [&f](std::string_view e) {
    if (e.empty()) {
      f.cl_invalid = true;
      return;
    }
    uint64_t v = 0;
    for (char c : e) {
      if (c < '0' || c > '9') {
        f.cl_invalid = true;
        return;
      }
      const auto d = static_cast<uint64_t>(c - '0');
      if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) {
        f.cl_invalid = true;
        return;
      }
      v = v * 10 + d;
    }
    if (f.cl_seen && v != f.content_length) f.cl_conflict = true;
    f.cl_seen = true;
    f.content_length = v;
  });
}

// Multiple Transfer-Encoding fields form one list (RFC 9110 §5.3). Empty elements are legal in
// lists, but a backend that rejects "chunked," would fall back to no body and desync, so they
// are refused here.
void noteTransferEncoding(std::string_view value, FieldFacts& f) {
  ++f.te_fields;
  forEachListElement(value, [&f](std::string_view e) {
    const size_t tok = scan::scanToken(e.data(), 0, e.size());
    std::string_view params = scan::trimOws(e.substr(tok));
    if (tok == 0 || (!params.empty() && params.front() != ';')) {
      f.te_invalid = true;
      return;
    }
    if (equalsLower(e.substr(0, tok), "chunked")) {
      if (!params.empty()) f.te_invalid = true;
      ++f.te_chunked;
      f.te_last_chunked = true;
    } else {
      f.te_other = true;
      f.te_last_chunked = false;
    }
  });
}

void noteConnection(std::string_view value, FieldFacts& f) {
  forEachListElement(value, [&f](std::string_view e) {
    if (equalsLower(e, "close")) {
      f.conn_close = true;
    } else if (equalsLower(e, "keep-alive")) {
      f.conn_keep_alive = true;
    } else if (equalsLower(e, "upgrade")) {
      f.conn_upgrade = true;
    }
  });
}

// Dispatch on length first: most fields are none of these and fail on one compare.
void noteField(std::string_view name, std::string_view value, FieldFacts& f) {
  switch (name.size()) {
    case 4:
      if (equalsLower(name, "host")) {
        ++f.host_fields;
        f.host = value;
      }
      break;
    case 6:
      if (equalsLower(name, "expect") && equalsLower(value, "100-continue")) {
        f.expect_continue = true;
      }
      break;
    case 7:
      if (equalsLower(name, "upgrade")) f.has_upgrade = true;
      break;
    case 10:
      if (equalsLower(name, "connection")) noteConnection(value, f);
      break;
    case 14:
      if (equalsLower(name, "content-length")) noteContentLength(value, f);
      break;
    case 17:
      if (equalsLower(name, "transfer-encoding")) noteTransferEncoding(value, f);
      break;
    default:
      break;
  }
}

// uri-host [ ":" port ] (RFC 3986 §3.2.2). IP literals accept hex, ':' and '.' only (no
// IPvFuture, no zone ids). `require_port` is for CONNECT's authority-form.
bool validAuthority(std::string_view h, bool require_port) {
  const size_t n = h.size();
  if (n == 0) return !require_port;
  size_t i = 0;
  if (h[0] == '[') {
    i = 1;
    while (i < n && (scan::is(h[i], scan::kHex) || h[i] == ':' || h[i] == '.'))
      ++i;
    if (i == 1 || i == n || h[i] != ']') return false;
    ++i;
  } else {
    while (i < n && scan::is(h[i], scan::kHostChar)) {
      if (h[i] == '%') {
        if (i + 2 >= n || !scan::is(h[i + 1], scan::kHex) || !scan::is(h[i + 2], scan::kHex)) {
          return false;
        }
        i += 2;
      }
      ++i;
    }
    if (i == 0) return false;
  }
  if (i == n) return !require_port;
  if (h[i] != ':') return false;
  const std::string_view port = h.substr(i + 1);
  if (port.empty() || port.size() > 5) return false;
  uint32_t v = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v <= 65535;
}

// Where scanning stops: `cap` is min(input end, head start + max_header_bytes); `truncated`
// says the input continues past it, so running out of bytes means the head is too large.
struct Window {
  const char* p;
  size_t cap;
  bool truncated;
};

ParseStatus needMoreHead(const Window& w, ParseError& err) {
  if (w.truncated) return fail(err, 431, "header section too large");
  return ParseStatus::kIncomplete;
}

// Parses field lines from `i` through the empty line that ends the head; `head_end` is set past
// its CRLF. Names and values are views into the input (HeaderMap::addView).
ParseStatus parseFields(const Window& w, size_t i, size_t max_headers, http::HeaderMap& headers,
                        FieldFacts& facts, size_t& head_end, ParseError& err) {
  const char* p = w.p;
  const size_t cap = w.cap;
  for (;;) {
    if (i >= cap) return needMoreHead(w, err);
    const char c = p[i];
    if (c == '\r') {
      if (i + 1 >= cap) return needMoreHead(w, err);
      if (p[i + 1] != '\n') return fail(err, 400, "bare cr in header section");
      head_end = i + 2;
      return ParseStatus::kComplete;
    }
    if (c == '\n') return fail(err, 400, "bare lf in header section");
    // RFC 9112 §5.2: obs-fold, and whitespace before the first field, are rejected.
    if (isOws(c)) return fail(err, 400, "obs-fold or leading whitespace in header");

    const size_t name_start = i;
    i = scan::scanNameChars(p, i, cap);
    if (i >= cap) return needMoreHead(w, err);
    if (p[i] != ':') {
      // Off the common path: a name with '_' (noted: a CGI back-end reads it as '-').
      if (p[i] != '_') return fail(err, 400, "invalid header name");
      facts.underscore_name = true;
      i = scan::scanToken(p, i, cap);
      if (i >= cap) return needMoreHead(w, err);
      if (p[i] != ':') return fail(err, 400, "invalid header name");
    }
    if (i == name_start) return fail(err, 400, "invalid header name");
    const std::string_view name(p + name_start, i - name_start);
    ++i;
    while (i < cap && isOws(p[i])) {
      ++i;
    }
    const size_t value_start = i;
    i = scan::scanFieldValue(p, i, cap);
    if (i >= cap) return needMoreHead(w, err);
    if (p[i] != '\r') {
      if (p[i] == '\n') return fail(err, 400, "bare lf in header section");
      return fail(err, 400, "invalid character in header value");
    }
    if (i + 1 >= cap) return needMoreHead(w, err);
    if (p[i + 1] != '\n') return fail(err, 400, "bare cr in header section");
    size_t value_end = i;
    while (value_end > value_start && isOws(p[value_end - 1])) {
      --value_end;
    }
    i += 2;

    if (headers.size() >= max_headers) return fail(err, 431, "too many header fields");
    const std::string_view value(p + value_start, value_end - value_start);
    headers.addView(name, value);
    noteField(name, value, facts);
  }
}

// Result of the cheap pre-scan for the empty line that ends a head.
struct Prescan {
  bool may_be_complete;
  size_t first_lf;  // npos if none within the window
};

// Looks for LF followed by CRLF (or by LF, CR+other: malformed, let the full parse say why).
// Gives up, answering "maybe", after `max_lines` lines so the full parse reports 431.
Prescan prescanHeadEnd(const char* p, size_t start, size_t cap, size_t max_lines) {
  Prescan r{false, std::string_view::npos};
  size_t i = start;
  for (size_t lines = 0; i < cap; ++lines) {
    const void* hit = std::memchr(p + i, '\n', cap - i);
    if (hit == nullptr) return r;
    const size_t lf = static_cast<size_t>(static_cast<const char*>(hit) - p);
    if (lines == 0) r.first_lf = lf;
    if (lines > max_lines) break;
    if (lf + 1 < cap && p[lf + 1] == '\n') break;
    if (lf + 2 < cap && p[lf + 1] == '\r') break;
    i = lf + 1;
  }
  r.may_be_complete = true;
  return r;
}

bool endsWithEmptyLine(std::string_view in, size_t start) {
  return in.size() - start >= 4 && std::memcmp(in.data() + in.size() - 4, "\r\n\r\n", 4) == 0;
}

// Parses "HTTP/1.x" at p[0..8). Returns 0 or 1 (minor version), -1 for another well-formed
// version (505), -2 for garbage.
int parseVersion(const char* p) {
  if (std::memcmp(p, "HTTP/", 5) != 0 || p[6] != '.') return -2;
  const char major = p[5];
  const char minor = p[7];
  if (major < '0' || major > '9' || minor < '0' || minor > '9') return -2;
  if (major == '1' && (minor == '0' || minor == '1')) return minor - '0';
  return -1;
}

// Skips up to kMaxLeadingEmptyLines CRLFs. Returns kComplete with `start` set, or
// kIncomplete/kError.
ParseStatus skipLeadingEmptyLines(std::string_view in, size_t& start, ParseError& err) {
  const char* p = in.data();
  const size_t n = in.size();
  size_t i = 0;
  for (size_t lines = 0;; ++lines) {
    if (i >= n) return ParseStatus::kIncomplete;
    if (p[i] == '\n') return fail(err, 400, "bare lf before start line");
    if (p[i] != '\r') break;
    if (i + 1 >= n) return ParseStatus::kIncomplete;
    if (p[i + 1] != '\n') return fail(err, 400, "bare cr before start line");
    if (lines == kMaxLeadingEmptyLines) return fail(err, 400, "too many empty lines before start");
    i += 2;
  }
  start = i;
  return ParseStatus::kComplete;
}

// Common prologue for both directions: leading empty lines, window, pre-scan verdict.
struct HeadSetup {
  size_t start = 0;
  size_t line_cap = 0;  // scanning bound for the start line
  Window window{};
};

ParseStatus setupHead(std::string_view in, const ParseLimits& limits, HeadSetup& s,
                      ParseError& err) {
  const ParseStatus st = skipLeadingEmptyLines(in, s.start, err);
  if (st != ParseStatus::kComplete) return st;
  const size_t avail = in.size() - s.start;
  const bool truncated = avail > limits.max_header_bytes;
  const size_t cap = truncated ? s.start + limits.max_header_bytes : in.size();
  s.window = Window{in.data(), cap, truncated};
  const size_t line_limit = limits.max_request_line + 2;  // + CRLF
  s.line_cap = (cap - s.start > line_limit) ? s.start + line_limit : cap;

  if (avail > kPrescanThreshold && !endsWithEmptyLine(in, s.start)) {
    const Prescan pre = prescanHeadEnd(in.data(), s.start, cap, limits.max_headers + 2);
    if (!pre.may_be_complete) {
      // Line length seen so far; a CR right before the LF or at the end is not part of it.
      const size_t line_seen = pre.first_lf == std::string_view::npos
                                   ? avail - (in.back() == '\r' ? 1 : 0)
                                   : pre.first_lf - s.start - 1;
      if (line_seen > limits.max_request_line) return fail(err, 414, "start line too long");
      return needMoreHead(s.window, err);
    }
  }
  return ParseStatus::kComplete;
}

// Out of bytes inside the start line: refuse as soon as the bytes seen cannot be a line within
// the limit (a final CR may still be the start of the CRLF).
ParseStatus needMoreLine(std::string_view in, const HeadSetup& s, const ParseLimits& limits,
                         ParseError& err) {
  const size_t seen = in.size() - s.start - (in.back() == '\r' ? 1 : 0);
  if (seen > limits.max_request_line) return fail(err, 414, "start line too long");
  return needMoreHead(s.window, err);
}

// Clears what request and response heads share (version, headers, framing) for a new parse;
// the header vector keeps its capacity.
template <typename Head>
inline void resetFraming(Head& out) {
  out.version_minor = 1;
  out.headers.clear();
  out.body = BodyKind::kNone;
  out.content_length = 0;
  out.keep_alive = true;
  out.head_size = 0;
}

// Request-target forms (RFC 9112 §3.2). Sets `authority` for absolute-form.
bool validTarget(std::string_view method, std::string_view target, std::string_view& authority) {
  if (method == "CONNECT") return validAuthority(target, /*require_port=*/true);
  if (target.front() == '/') return true;
  if (target == "*") return method == "OPTIONS";
  // absolute-form: scheme "://" authority [path-abempty] [ "?" query ]
  const auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!alpha(target[0])) return false;
  size_t i = 1;
  while (i < target.size() && (alpha(target[i]) || (target[i] >= '0' && target[i] <= '9') ||
                               target[i] == '+' || target[i] == '-' || target[i] == '.')) {
    ++i;
  }
  if (target.substr(i, 3) != "://") return false;
  const std::string_view rest = target.substr(i + 3);
  authority = rest.substr(0, rest.find_first_of("/?"));
  // userinfo in an http(s) URI is deprecated and a classic routing-confusion vector.
  return !authority.empty() && validAuthority(authority, /*require_port=*/false);
}

}  // namespace

ParseStatus parseRequestHead(std::string_view in, const ParseLimits& limits, RequestHead& out,
                             ParseError& err) {
  resetFraming(out);
  out.method = {};
  out.target = {};
  out.expect_continue = false;
  out.upgrade = false;
  out.underscore_in_names = false;
  out.host = {};

  HeadSetup s;
  if (const ParseStatus st = setupHead(in, limits, s, err); st != ParseStatus::kComplete) {
    return st;
  }
  const char* p = in.data();
  const size_t cap = s.line_cap;

  // method SP request-target SP HTTP-version CRLF, exactly one SP each (RFC 9112 §3).
  size_t i = scan::scanToken(p, s.start, cap);
  if (i >= cap) return needMoreLine(in, s, limits, err);
  if (i == s.start || p[i] != ' ') return fail(err, 400, "invalid method");
  out.method = std::string_view(p + s.start, i - s.start);
  const size_t target_start = ++i;
  i = scan::scanTarget(p, i, cap);
  if (i >= cap) return needMoreLine(in, s, limits, err);
  if (i == target_start || p[i] != ' ') return fail(err, 400, "invalid request-target");
  out.target = std::string_view(p + target_start, i - target_start);
  ++i;
  if (cap - i < 10) {
    // A short line that already shows a bad byte fails now rather than waiting.
    for (size_t j = i; j < cap; ++j) {
      if (p[j] == '\n' || p[j] == ' ') return fail(err, 400, "invalid http version");
    }
    return needMoreLine(in, s, limits, err);
  }
  const int minor = parseVersion(p + i);
  if (minor == -1) return fail(err, 505, "http version not supported");
  if (minor < 0) return fail(err, 400, "invalid http version");
  if (p[i + 8] != '\r' || p[i + 9] != '\n') return fail(err, 400, "invalid request line ending");
  out.version_minor = minor;

  std::string_view target_authority;
  if (!validTarget(out.method, out.target, target_authority)) {
    return fail(err, 400, "invalid request-target");
  }

  FieldFacts f;
  size_t head_end = 0;
  const ParseStatus st =
      parseFields(s.window, i + 10, limits.max_headers, out.headers, f, head_end, err);
  if (st != ParseStatus::kComplete) return st;

  // Host (RFC 9112 §3.2): exactly one on 1.1, at most one on 1.0, well-formed.
  if (f.host_fields > 1) return fail(err, 400, "multiple host headers");
  if (f.host_fields == 0 && minor == 1) return fail(err, 400, "missing host header");
  if (!validAuthority(f.host, /*require_port=*/false)) return fail(err, 400, "invalid host");
  out.host = f.host;
  if (!target_authority.empty()) {
    // RFC 9112 §3.2.2 says the target's authority wins; a differing Host would let us route on
    // one name while the backend serves another, so refuse it outright (as HAProxy does).
    if (f.host_fields != 0 && !http::iequals(f.host, target_authority)) {
      return fail(err, 400, "host does not match request-target");
    }
    out.host = target_authority;
  }

  // Framing (RFC 9112 §6.1-6.3).
  if (f.te_fields != 0) {
    if (minor == 0) return fail(err, 400, "transfer-encoding in http/1.0 request");
    if (f.cl_seen || f.cl_invalid) {
      return fail(err, 400, "content-length and transfer-encoding both present");
    }
    if (f.te_invalid) return fail(err, 400, "invalid transfer-encoding");
    if (f.te_chunked > 1) return fail(err, 400, "chunked applied more than once");
    if (!f.te_last_chunked) return fail(err, 400, "chunked is not the final transfer-coding");
    if (f.te_other) return fail(err, 501, "unsupported transfer-coding");
    out.body = BodyKind::kChunked;
  } else if (f.cl_invalid) {
    return fail(err, 400, "invalid content-length");
  } else if (f.cl_conflict) {
    return fail(err, 400, "conflicting content-length values");
  } else if (f.cl_seen) {
    out.body = BodyKind::kContentLength;
    out.content_length = f.content_length;
  }

  out.keep_alive = minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  // RFC 9110 §7.8: Upgrade in an HTTP/1.0 request is ignored.
  out.upgrade = minor == 1 && f.conn_upgrade && f.has_upgrade;
  out.expect_continue = minor == 1 && f.expect_continue;
  out.underscore_in_names = f.underscore_name;
  out.head_size = head_end;
  return ParseStatus::kComplete;
}

namespace {

ParseStatus parseResponseImpl(std::string_view in, const ParseLimits& limits,
                              bool request_method_head, ResponseHead& out, ParseError& err) {
  HeadSetup s;
  if (const ParseStatus st = setupHead(in, limits, s, err); st != ParseStatus::kComplete) {
    return st;
  }
  const char* p = in.data();
  const size_t cap = s.line_cap;
  size_t i = s.start;

  // HTTP-version SP 3DIGIT SP [reason] CRLF; a missing SP before an empty reason is tolerated.
  if (cap - i < 13) {
    for (size_t j = i; j < cap; ++j) {
      if (p[j] == '\r' || p[j] == '\n') return fail(err, 502, "invalid status line");
    }
    return needMoreLine(in, s, limits, err);
  }
  const int minor = parseVersion(p + i);
  if (minor < 0) return fail(err, 502, "invalid response version");
  if (p[i + 8] != ' ') return fail(err, 502, "invalid status line");
  i += 9;
  int status = 0;
  for (size_t k = 0; k < 3; ++k) {
    const char c = p[i + k];
    if (c < '0' || c > '9') return fail(err, 502, "invalid status code");
    status = status * 10 + (c - '0');
  }
  if (status < 100) return fail(err, 502, "invalid status code");
  i += 3;
  size_t reason_start = i;
  if (p[i] == ' ') {
    reason_start = ++i;
    i = scan::scanFieldValue(p, i, cap);
    if (i >= cap) return needMoreLine(in, s, limits, err);
  }
  if (p[i] != '\r') return fail(err, 502, "invalid status line");
  if (i + 1 >= cap) return needMoreLine(in, s, limits, err);
  if (p[i + 1] != '\n') return fail(err, 502, "bare cr in status line");
  out.status = status;
  out.version_minor = minor;
  out.reason = std::string_view(p + reason_start, i - reason_start);

  FieldFacts f;
  size_t head_end = 0;
  const ParseStatus st =
      parseFields(s.window, i + 2, limits.max_headers, out.headers, f, head_end, err);
  if (st != ParseStatus::kComplete) return st;

  out.keep_alive = minor == 1 ? !f.conn_close : (f.conn_keep_alive && !f.conn_close);
  out.head_size = head_end;
  // RFC 9112 §6.3 rule 1: these never have content, whatever the fields say.
  if (request_method_head || status < 200 || status == 204 || status == 304) {
    return ParseStatus::kComplete;
  }
  if (f.te_fields != 0) {
    // §6.1: TE in a 1.0 message means the framing is faulty.
    if (minor == 0) return fail(err, 502, "transfer-encoding in http/1.0 response");
    if (f.cl_seen || f.cl_invalid) {
      return fail(err, 502, "content-length and transfer-encoding both present");
    }
    if (f.te_invalid || f.te_chunked > 1) return fail(err, 502, "invalid transfer-encoding");
    if (f.te_last_chunked) {
      out.body = BodyKind::kChunked;
    } else {
      out.body = BodyKind::kUntilClose;
      out.keep_alive = false;
    }
  } else if (f.cl_invalid || f.cl_conflict) {
    return fail(err, 502, "invalid content-length");
  } else if (f.cl_seen) {
    out.body = BodyKind::kContentLength;
    out.content_length = f.content_length;
  } else {
    out.body = BodyKind::kUntilClose;
    out.keep_alive = false;
  }
  return ParseStatus::kComplete;
}

}  // namespace

ParseStatus parseResponseHead(std::string_view in, const ParseLimits& limits,
                              bool request_method_head, ResponseHead& out, ParseError& err) {
  resetFraming(out);
  out.status = 0;
  out.reason = {};
  const ParseStatus st = parseResponseImpl(in, limits, request_method_head, out, err);
  // The shared helpers speak request statuses; an upstream's malformed head is always a 502.
  if (st == ParseStatus::kError) err.status = 502;
  return st;
}

}  // namespace gatehouse::http1

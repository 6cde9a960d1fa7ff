#include "policies/grpc_transcode/path_template.h"

#include <algorithm>

#include "core/encoding.h"

namespace gatehouse::policies::grpc_transcode {
namespace {

Error templateError(std::string_view text, std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                     "path template '" + std::string(text) + "': " + std::move(msg));
}

bool identChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool validFieldPath(std::string_view p) {
  if (p.empty() || p.front() == '.' || p.back() == '.') return false;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '.' ? p[i - 1] == '.' : !identChar(p[i])) return false;
    const bool starts_name = i == 0 || p[i - 1] == '.';
    if (starts_name && p[i] >= '0' && p[i] <= '9') return false;  // identifiers: no digit first
  }
  return true;
}

int rank(PathTemplate::Kind k) {
  return k == PathTemplate::Kind::kLiteral ? 0 : k == PathTemplate::Kind::kSingle ? 1 : 2;
}

}  // namespace

bool PathTemplate::moreSpecificThan(const PathTemplate& other) const {
  if (verb.empty() != other.verb.empty()) return !verb.empty();
  const size_t n = std::min(segments.size(), other.segments.size());
  for (size_t i = 0; i < n; ++i) {
    int a = rank(segments[i].kind);
    int b = rank(other.segments[i].kind);
    if (a != b) return a < b;
  }
  return segments.size() > other.segments.size();
}

Result<PathTemplate> parsePathTemplate(std::string_view text) {
  if (text.empty() || text.front() != '/') return templateError(text, "must start with '/'");
  PathTemplate t;
  size_t pos = 1;
  bool in_var = false;
  // One segment (literal, '*' or '**') ending at '/', '}' (inside a variable), ':' or the end.
  auto segment = [&]() -> Status {
    size_t start = pos;
    while (pos < text.size() && text[pos] != '/' && !(in_var && text[pos] == '}') &&
           !(!in_var && text[pos] == ':')) {
      if (text[pos] == '{' || text[pos] == '}') {
        return templateError(text, "unexpected '" + std::string(1, text[pos]) + "'");
      }
      ++pos;
    }
    std::string_view s = text.substr(start, pos - start);
    if (s.empty()) return templateError(text, "empty segment");
    PathTemplate::Segment seg;
    if (s == "*") {
      seg.kind = PathTemplate::Kind::kSingle;
    } else if (s == "**") {
      seg.kind = PathTemplate::Kind::kMulti;
    } else if (s.find('*') != std::string_view::npos) {
      return templateError(text, "'*' must be a whole segment");
    } else {
      seg.literal.assign(s);
    }
    t.segments.push_back(std::move(seg));
    return {};
  };
  for (;;) {
    if (pos < text.size() && text[pos] == '{') {
      size_t close = text.find('}', pos);
      if (close == std::string_view::npos) return templateError(text, "unclosed '{'");
      size_t eq = text.find('=', pos);
      size_t name_end = eq < close ? eq : close;
      PathTemplate::Variable var;
      var.field_path.assign(text.substr(pos + 1, name_end - pos - 1));
      if (!validFieldPath(var.field_path)) {
        return templateError(text, "bad field path '" + var.field_path + "'");
      }
      for (const auto& v : t.variables) {
        if (v.field_path == var.field_path) {
          return templateError(text, "field '" + var.field_path + "' bound twice");
        }
      }
      var.begin = t.segments.size();
      if (eq < close) {
        pos = eq + 1;
        in_var = true;
        for (;;) {
          if (auto st = segment(); !st.ok()) return st.error();
          if (text[pos] == '}') break;
          ++pos;  // '/'
          if (pos < text.size() && text[pos] == '{') {
            return templateError(text, "variables cannot nest");
          }
        }
        in_var = false;
      } else {
        t.segments.push_back({PathTemplate::Kind::kSingle, {}});
      }
      pos = close + 1;
      var.end = t.segments.size();
      t.variables.push_back(std::move(var));
    } else {
      if (auto st = segment(); !st.ok()) return st.error();
    }
    if (pos == text.size()) break;
    if (text[pos] == ':') {
      t.verb.assign(text.substr(pos + 1));
      if (t.verb.empty() || t.verb.find_first_of("/{}*:") != std::string::npos) {
        return templateError(text, "bad verb after ':'");
      }
      break;
    }
    if (text[pos] != '/')
      return templateError(text, "expected '/' at offset " + std::to_string(pos));
    ++pos;
  }
  for (size_t i = 0; i + 1 < t.segments.size(); ++i) {
    if (t.segments[i].kind == PathTemplate::Kind::kMulti) {
      return templateError(text, "'**' must be the last segment");
    }
  }
  return t;
}

bool percentDecode(std::string_view in, std::string& out, bool plus_is_space, bool keep_slash) {
  out.clear();
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = encoding::hexDigit(in[i + 1]);
      int lo = encoding::hexDigit(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      char d = static_cast<char>(hi * 16 + lo);
      if (d == '/' && keep_slash) {
        out.append(in.substr(i, 3));
      } else {
        out.push_back(d);
      }
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return true;
}

bool matchPath(const PathTemplate& tmpl, std::string_view path, std::vector<Capture>& out) {
  out.clear();
  if (path.empty() || path.front() != '/') return false;
  path.remove_prefix(1);
  if (!tmpl.verb.empty()) {
    if (path.size() <= tmpl.verb.size() + 1 || path[path.size() - tmpl.verb.size() - 1] != ':' ||
        path.substr(path.size() - tmpl.verb.size()) != tmpl.verb) {
      return false;
    }
    path.remove_suffix(tmpl.verb.size() + 1);
  }
  // Segment boundaries of the request path (a small fixed array covers real APIs).
  constexpr size_t kMaxSegments = 64;
  std::string_view segs[kMaxSegments];
  size_t n = 0;
  for (size_t start = 0;;) {
    size_t slash = path.find('/', start);
    if (n == kMaxSegments) return false;
    segs[n++] = path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  const size_t t = tmpl.segments.size();
  const bool multi = t > 0 && tmpl.segments[t - 1].kind == PathTemplate::Kind::kMulti;
  if (multi ? n + 1 < t : n != t) return false;
  for (size_t i = 0; i < t; ++i) {
    const auto& seg = tmpl.segments[i];
    if (seg.kind == PathTemplate::Kind::kLiteral) {
      if (segs[i] != seg.literal) return false;
    } else if (seg.kind == PathTemplate::Kind::kSingle) {
      if (segs[i].empty()) return false;
    }
  }
  // Request segment index after template segment `k` (the '**' takes the rest).
  auto pathIndex = [&](size_t k) { return multi && k == t ? n : k; };
  for (const auto& var : tmpl.variables) {
    size_t from = var.begin;
    size_t to = pathIndex(var.end);
    Capture cap;
    cap.variable = &var;
    if (from < to) {
      const char* begin = segs[from].data();
      const char* end = segs[to - 1].data() + segs[to - 1].size();
      std::string_view raw(begin, static_cast<size_t>(end - begin));
      const bool single = var.end - var.begin == 1 && !(multi && var.end == t);
      if (!percentDecode(raw, cap.value, false, !single)) return false;
    }
    out.push_back(std::move(cap));
  }
  return true;
}

}  // namespace gatehouse::policies::grpc_transcode

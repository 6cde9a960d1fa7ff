#include "admin/config_doc.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <regex>

#include <yaml-cpp/yaml.h>

#include "config/yaml_document.h"

namespace gatehouse::admin {

namespace {

bool isYamlBool(std::string_view s, bool& value) {
  static constexpr std::string_view kTrue[] = {"true", "True", "TRUE", "yes", "Yes",
                                               "YES",  "on",   "On",   "ON"};
  static constexpr std::string_view kFalse[] = {"false", "False", "FALSE", "no", "No",
                                                "NO",    "off",   "Off",   "OFF"};
  for (auto t : kTrue) {
    if (s == t) return value = true;
  }
  for (auto f : kFalse) {
    if (s == f) {
      value = false;
      return true;
    }
  }
  return false;
}

bool isYamlNull(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<int64_t> plainInt(std::string_view s) {
  std::string_view digits = s.starts_with('-') ? s.substr(1) : s;
  if (digits.empty() || digits.size() > 18) return std::nullopt;
  if (digits.size() > 1 && digits[0] == '0') return std::nullopt;  // octal-looking: keep text
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::optional<double> plainFloat(std::string_view s) {
  static const std::regex kFloat(R"(-?(0|[1-9][0-9]*)\.[0-9]+([eE][-+]?[0-9]+)?)");
  if (!std::regex_match(s.begin(), s.end(), kFloat)) return std::nullopt;
  double d = std::strtod(std::string(s).c_str(), nullptr);
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

Json scalarToJson(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: a string whatever it looks like
  bool b = false;
  if (isYamlBool(s, b)) return b;
  if (isYamlNull(s)) return nullptr;
  if (auto i = plainInt(s)) return *i;
  if (auto d = plainFloat(s)) return *d;
  return s;
}

Json nodeToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : n) {
        out[kv.first.IsScalar() ? kv.first.Scalar() : YAML::Dump(kv.first)] = nodeToJson(kv.second);
      }
      return out;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : n)
        out.push_back(nodeToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      return scalarToJson(n);
    default:
      return nullptr;
  }
}

// A string that reads back as the same string when written plain.
bool plainSafe(const std::string& s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ') return false;
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string_view::npos) {
    // "-x" and "?x"/":x" are plain in YAML, but keep the rule simple: quote them.
    return false;
  }
  for (unsigned char c : s) {
    if (c < 0x20 || c == 0x7f) return false;
  }
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos || s.back() == ':') {
    return false;
  }
  bool b = false;
  if (isYamlBool(s, b) || isYamlNull(s)) return false;
  // Anything number-like stays quoted so that it reads back as text.
  if ((s.front() >= '0' && s.front() <= '9') || s.front() == '.' || s.front() == '+') {
    if (plainFloat(s) || plainInt(s)) return false;
    // Two dots make no number in any YAML version (IP addresses, "127.0.0.1:8080"); other
    // digit-only shapes (1_000, 0x1F, 1e3, 1:20) might read as numbers somewhere: quote them.
    return std::count(s.begin(), s.end(), '.') >= 2 ||
           s.find_first_not_of("0123456789.+-eExXoObB_:") != std::string::npos;
  }
  return true;
}

// JSON escapes are YAML's; bytes that are not UTF-8 become U+FFFD rather than throwing.
std::string quoted(const std::string& s) {
  return Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
}

// A literal block keeps scripts and templates readable; only for text it can hold exactly.
bool literalBlockFits(const std::string& s) {
  if (s.find('\n') == std::string::npos || s.front() == ' ' || s.front() == '\n') return false;
  for (unsigned char c : s) {
    if ((c < 0x20 && c != '\n') || c == 0x7f) return false;
  }
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string::npos) end = s.size();
    if (end > pos && s[end - 1] == ' ') return false;  // trailing spaces would be invisible
    pos = end + 1;
  }
  return true;
}

void writeLiteral(std::string& out, const std::string& s, size_t indent) {
  size_t trailing = 0;
  while (trailing < s.size() && s[s.size() - 1 - trailing] == '\n')
    ++trailing;
  out += trailing == 0 ? "|-" : trailing == 1 ? "|" : "|+";
  out += '\n';
  const std::string pad(indent, ' ');
  std::string_view body(s.data(), s.size() - trailing);
  size_t pos = 0;
  for (;;) {
    size_t end = body.find('\n', pos);
    std::string_view line = body.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (!line.empty()) out += pad;
    out += line;
    out += '\n';
    if (end == std::string_view::npos) break;
    pos = end + 1;
  }
  for (size_t i = 1; i < trailing; ++i)
    out += '\n';
}

std::string scalarText(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number()) return v.dump();
  const auto& s = v.get_ref<const std::string&>();
  return plainSafe(s) ? s : quoted(s);
}

bool isCollection(const Json& v) {
  return (v.is_object() || v.is_array()) && !v.empty();
}

void writeValue(std::string& out, const Json& v, size_t indent);

// After "key:" or "- ": a scalar on the same line, a collection on the next lines.
void writeAfterIndicator(std::string& out, const Json& v, size_t indent) {
  if (v.is_string() && literalBlockFits(v.get_ref<const std::string&>())) {
    out += ' ';
    writeLiteral(out, v.get_ref<const std::string&>(), indent + 2);
  } else if (!isCollection(v)) {
    out += ' ';
    out += v.is_object() ? "{}" : v.is_array() ? "[]" : scalarText(v);
    out += '\n';
  } else {
    out += '\n';
    writeValue(out, v, indent + 2);
  }
}

void writeValue(std::string& out, const Json& v, size_t indent) {
  const std::string pad(indent, ' ');
  if (v.is_object()) {
    for (const auto& [key, value] : v.items()) {
      out += pad + (plainSafe(key) ? key : quoted(key)) + ":";
      writeAfterIndicator(out, value, indent);
    }
  } else if (v.is_array()) {
    for (const auto& item : v) {
      if (item.is_object() && !item.empty()) {
        // "- first: x" then the other keys aligned under it.
        std::string nested;
        writeValue(nested, item, indent + 2);
        out += pad + "- " + nested.substr(indent + 2);
      } else {
        out += pad + "-";
        writeAfterIndicator(out, item, indent);
      }
    }
  } else {
    out += pad + scalarText(v) + "\n";
  }
}

std::string percentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
      };
      int hi = hex(s[i + 1]);
      int lo = hex(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    if (end > pos) out.push_back(percentDecode(path.substr(pos, end - pos)));
    pos = end + 1;
  }
  return out;
}

// The element of list `a` named `seg` (or at index `seg`); npos when absent.
size_t findElement(const Json& a, const std::string& seg) {
  for (size_t i = 0; i < a.size(); ++i) {
    const Json& e = a[i];
    if (e.is_object() && e.contains("name") && e["name"].is_string() && e["name"] == seg) return i;
  }
  if (auto idx = plainInt(seg); idx && *idx >= 0 && static_cast<size_t>(*idx) < a.size()) {
    return static_cast<size_t>(*idx);
  }
  return std::string::npos;
}

DocError pathError(DocError::Kind kind, std::string msg) {
  return DocError{kind, std::move(msg)};
}

// Walks `segs` from `node`, patching the last one; returns an error message or nullopt.
std::optional<DocError> patchWalk(Json& node, const std::vector<std::string>& segs, size_t at,
                                  const Json& patch, std::string& walked) {
  if (at == segs.size()) {
    mergePatch(node, patch);
    return std::nullopt;
  }
  const std::string& seg = segs[at];
  const bool last = at + 1 == segs.size();
  if (node.is_object()) {
    walked += (walked.empty() ? "" : "/") + seg;
    if (!node.contains(seg)) {
      if (!last) return pathError(DocError::Kind::kNotFound, "no '" + walked + "' in the config");
      if (!patch.is_null()) node[seg] = Json::object();
    }
    if (last && patch.is_null()) {
      node.erase(seg);
      return std::nullopt;
    }
    return patchWalk(node[seg], segs, at + 1, patch, walked);
  }
  if (node.is_array()) {
    walked += (walked.empty() ? "" : "/") + seg;
    size_t i = findElement(node, seg);
    if (i == std::string::npos) {
      if (!last) return pathError(DocError::Kind::kNotFound, "no '" + walked + "' in the config");
      if (patch.is_null()) {
        return pathError(DocError::Kind::kNotFound, "no '" + walked + "' to remove");
      }
      if (!patch.is_object()) {
        return pathError(DocError::Kind::kBadPatch,
                         "a new element of a list needs an object patch");
      }
      Json created = Json::object();
      created["name"] = seg;
      mergePatch(created, patch);
      node.push_back(std::move(created));
      return std::nullopt;
    }
    if (last && patch.is_null()) {
      node.erase(i);
      return std::nullopt;
    }
    return patchWalk(node[i], segs, at + 1, patch, walked);
  }
  return pathError(DocError::Kind::kBadPath,
                   "'" + walked + "' is a value, not a map or list; cannot go to '" + seg + "'");
}

}  // namespace

DocResult<Json> yamlToJson(std::string_view text) {
  DocResult<Json> r;
  config::Diagnostics diag("body");
  try {
    auto root = config::parseSingleDocument(diag, std::string(text));
    if (root && !config::checkDocumentShape(diag, *root)) root.reset();
    if (!root) {
      auto errs = diag.take();
      r.error = {DocError::Kind::kSyntax, errs.empty() ? "unreadable" : errs.front().format()};
      return r;
    }
    r.value = nodeToJson(*root);
    if (r.value->is_null()) r.value = Json::object();
  } catch (const YAML::Exception& e) {
    r.error = {DocError::Kind::kSyntax, "line " + std::to_string(e.mark.line + 1) + ": " + e.msg};
  }
  return r;
}

std::string jsonToYaml(const Json& doc) {
  if (!isCollection(doc)) return doc.is_object() ? "{}\n" : scalarText(doc) + "\n";
  std::string out;
  writeValue(out, doc, 0);
  return out;
}

void mergePatch(Json& target, const Json& patch) {
  if (!patch.is_object()) {
    target = patch;
    return;
  }
  if (!target.is_object()) target = Json::object();
  for (const auto& [key, value] : patch.items()) {
    if (value.is_null()) {
      target.erase(key);
    } else {
      mergePatch(target[key], value);
    }
  }
}

DocResult<Json> patchAt(const Json& doc, std::string_view path, const Json& patch) {
  DocResult<Json> r;
  Json out = doc;
  std::vector<std::string> segs = splitPath(path);
  if (segs.empty() && patch.is_null()) {
    r.error = {DocError::Kind::kBadPatch, "a null patch at the root would remove everything"};
    return r;
  }
  // routes/NAME: the named route wherever it is defined (top level or a virtual host).
  if (segs.size() >= 2 && segs[0] == "routes" && out.is_object()) {
    bool top = out.contains("routes") && out["routes"].is_array() &&
               findElement(out["routes"], segs[1]) != std::string::npos;
    if (!top && out.contains("virtual_hosts") && out["virtual_hosts"].is_array()) {
      for (auto& vh : out["virtual_hosts"]) {
        if (!vh.is_object() || !vh.contains("routes") || !vh["routes"].is_array()) continue;
        if (findElement(vh["routes"], segs[1]) == std::string::npos) continue;
        // get_ptr rather than value(): GCC's -Wnull-dereference misfires on value() at -O1.
        std::string walked = "virtual_hosts/";
        auto name = vh.find("name");
        const std::string* s = name != vh.end() ? name->get_ptr<const std::string*>() : nullptr;
        walked += s ? *s : std::string("?");
        if (auto e = patchWalk(vh, segs, 0, patch, walked)) {
          r.error = *e;
          return r;
        }
        r.value = std::move(out);
        return r;
      }
    }
  }
  std::string walked;
  if (auto e = patchWalk(out, segs, 0, patch, walked)) {
    r.error = *e;
    return r;
  }
  r.value = std::move(out);
  return r;
}

namespace {

std::vector<std::string_view> lines(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string_view::npos) end = s.size();
    out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

struct Edit {
  char op;  // ' ', '-', '+'
  std::string_view line;
};

// Longest common subsequence over the part between the common prefix and suffix; a middle
// too large for the table is shown as all removed then all added (still a correct diff).
std::vector<Edit> editScript(const std::vector<std::string_view>& a,
                             const std::vector<std::string_view>& b) {
  size_t pre = 0;
  while (pre < a.size() && pre < b.size() && a[pre] == b[pre])
    ++pre;
  size_t suf = 0;
  while (suf < a.size() - pre && suf < b.size() - pre &&
         a[a.size() - 1 - suf] == b[b.size() - 1 - suf]) {
    ++suf;
  }
  std::vector<Edit> out;
  for (size_t i = 0; i < pre; ++i)
    out.push_back({' ', a[i]});
  const size_t n = a.size() - pre - suf;
  const size_t m = b.size() - pre - suf;
  if (n * m <= 4'000'000) {
    std::vector<uint32_t> t((n + 1) * (m + 1), 0);
    auto at = [&](size_t i, size_t j) -> uint32_t& { return t[i * (m + 1) + j]; };
    for (size_t i = n; i-- > 0;) {
      for (size_t j = m; j-- > 0;) {
        at(i, j) =
            a[pre + i] == b[pre + j] ? at(i + 1, j + 1) + 1 : std::max(at(i + 1, j), at(i, j + 1));
      }
    }
    size_t i = 0;
    size_t j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[pre + i] == b[pre + j]) {
        out.push_back({' ', a[pre + i]});
        ++i;
        ++j;
      } else if (i < n && (j == m || at(i + 1, j) >= at(i, j + 1))) {
        out.push_back({'-', a[pre + i++]});  // removals first, as diff(1) shows them
      } else {
        out.push_back({'+', b[pre + j++]});
      }
    }
  } else {
    for (size_t i = 0; i < n; ++i)
      out.push_back({'-', a[pre + i]});
    for (size_t j = 0; j < m; ++j)
      out.push_back({'+', b[pre + j]});
  }
  for (size_t i = a.size() - suf; i < a.size(); ++i)
    out.push_back({' ', a[i]});
  return out;
}

}  // namespace

TextDiff diffLines(std::string_view before, std::string_view after, std::string_view before_name,
                   std::string_view after_name) {
  TextDiff d;
  const auto a = lines(before);
  const auto b = lines(after);
  const auto edits = editScript(a, b);
  constexpr size_t kContext = 3;
  size_t k = 0;
  bool header = false;
  while (k < edits.size()) {
    if (edits[k].op == ' ') {
      ++k;
      continue;
    }
    // A hunk: from kContext lines before this change to kContext after the last change that
    // is at most 2*kContext unchanged lines away.
    size_t start = k >= kContext ? k - kContext : 0;
    size_t end = k;
    size_t quiet = 0;
    for (size_t i = k; i < edits.size(); ++i) {
      if (edits[i].op == ' ') {
        if (++quiet > 2 * kContext) break;
      } else {
        quiet = 0;
        end = i;
      }
    }
    size_t stop = std::min(edits.size(), end + 1 + kContext);
    size_t a_line = 1;
    size_t b_line = 1;
    for (size_t i = 0; i < start; ++i) {
      if (edits[i].op != '+') ++a_line;
      if (edits[i].op != '-') ++b_line;
    }
    size_t a_count = 0;
    size_t b_count = 0;
    std::string body;
    for (size_t i = start; i < stop; ++i) {
      if (edits[i].op != '+') ++a_count;
      if (edits[i].op != '-') ++b_count;
      if (edits[i].op == '+') ++d.added;
      if (edits[i].op == '-') ++d.removed;
      body += edits[i].op;
      body += edits[i].line;
      body += '\n';
    }
    if (!header) {
      d.unified += "--- " + std::string(before_name) + "\n+++ " + std::string(after_name) + "\n";
      header = true;
    }
    d.unified += "@@ -" + std::to_string(a_count ? a_line : a_line - 1) + "," +
                 std::to_string(a_count) + " +" + std::to_string(b_count ? b_line : b_line - 1) +
                 "," + std::to_string(b_count) + " @@\n" + body;
    k = stop;
  }
  return d;
}

}  // namespace gatehouse::admin

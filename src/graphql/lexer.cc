#include "graphql/lexer.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace gatehouse::graphql {
namespace {

bool isNameStart(char c) {
  return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}
bool isNameContinue(char c) {
  return isNameStart(c) || (c >= '0' && c <= '9');
}
bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void appendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A SourceCharacter other than tab, LF and CR below U+0020 is never allowed.
bool isControl(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u < 0x20 && c != '\t' && c != '\n' && c != '\r';
}

bool isBlank(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t'; });
}

}  // namespace

void Lexer::fail(Token& t, size_t at, std::string message) {
  t.kind = TokenKind::kError;
  t.offset = at;
  t.value = std::move(message);
  pos_ = src_.size();  // nothing after an error is read
}

void Lexer::position(size_t offset, size_t& line, size_t& column) const {
  line = 1;
  column = 1;
  offset = std::min(offset, src_.size());
  for (size_t i = 0; i < offset; ++i) {
    if (src_[i] == '\n' || (src_[i] == '\r' && (i + 1 >= src_.size() || src_[i + 1] != '\n'))) {
      ++line;
      column = 1;
    } else if (src_[i] != '\r') {
      ++column;
    }
  }
}

void Lexer::skipIgnored() {
  while (pos_ < src_.size()) {
    const char c = src_[pos_];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',') {
      ++pos_;
    } else if (c == '#') {
      while (pos_ < src_.size() && src_[pos_] != '\n' && src_[pos_] != '\r')
        ++pos_;
    } else if (src_.substr(pos_, 3) == "\xEF\xBB\xBF") {  // UnicodeBOM
      pos_ += 3;
    } else {
      return;
    }
  }
}

void Lexer::next(Token& t) {
  skipIgnored();
  t.value.clear();
  t.offset = pos_;
  if (pos_ >= src_.size()) {
    t.kind = TokenKind::kEof;
    t.text = {};
    return;
  }
  const char c = src_[pos_];
  if (isNameStart(c)) {
    size_t end = pos_ + 1;
    while (end < src_.size() && isNameContinue(src_[end]))
      ++end;
    t.kind = TokenKind::kName;
    t.text = src_.substr(pos_, end - pos_);
    pos_ = end;
    return;
  }
  if (c == '-' || isDigit(c)) return readNumber(t);
  if (c == '"') {
    if (src_.substr(pos_, 3) == "\"\"\"") return readBlockString(t);
    return readString(t);
  }
  if (c == '.') {
    if (src_.substr(pos_, 3) != "...") return fail(t, pos_, "unexpected '.'; did you mean '...'?");
    t.kind = TokenKind::kPunctuator;
    t.text = src_.substr(pos_, 3);
    pos_ += 3;
    return;
  }
  static constexpr std::string_view kPunct = "!$&():=@[]{|}";
  if (kPunct.find(c) != std::string_view::npos) {
    t.kind = TokenKind::kPunctuator;
    t.text = src_.substr(pos_, 1);
    ++pos_;
    return;
  }
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x20 || u >= 0x7F) return fail(t, pos_, "unexpected character");
  return fail(t, pos_, std::string("unexpected character '") + c + "'");
}

void Lexer::readNumber(Token& t) {
  const size_t start = pos_;
  size_t p = pos_;
  if (src_[p] == '-') ++p;
  if (p >= src_.size() || !isDigit(src_[p])) return fail(t, p, "expected a digit after '-'");
  if (src_[p] == '0') {
    ++p;
    if (p < src_.size() && isDigit(src_[p])) return fail(t, p, "a number cannot start with 0");
  } else {
    while (p < src_.size() && isDigit(src_[p]))
      ++p;
  }
  bool is_float = false;
  if (p < src_.size() && src_[p] == '.') {
    is_float = true;
    ++p;
    if (p >= src_.size() || !isDigit(src_[p])) return fail(t, p, "expected a digit after '.'");
    while (p < src_.size() && isDigit(src_[p]))
      ++p;
  }
  if (p < src_.size() && (src_[p] == 'e' || src_[p] == 'E')) {
    is_float = true;
    ++p;
    if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
    if (p >= src_.size() || !isDigit(src_[p])) return fail(t, p, "expected a digit in exponent");
    while (p < src_.size() && isDigit(src_[p]))
      ++p;
  }
  // A number may not be followed by '.' or a NameStart (spec 2.9.1, 2.9.2).
  if (p < src_.size() && (src_[p] == '.' || isNameStart(src_[p]))) {
    return fail(t, p, "invalid number: unexpected character after it");
  }
  t.kind = is_float ? TokenKind::kFloat : TokenKind::kInt;
  t.text = src_.substr(start, p - start);
  pos_ = p;
}

// At a backslash inside a string: appends the escaped character to t.value.
bool Lexer::readEscape(Token& t) {
  const size_t at = pos_;
  if (pos_ + 1 >= src_.size()) {
    fail(t, at, "unterminated string");
    return false;
  }
  const char e = src_[pos_ + 1];
  pos_ += 2;
  switch (e) {
    case '"':
      t.value += '"';
      return true;
    case '\\':
      t.value += '\\';
      return true;
    case '/':
      t.value += '/';
      return true;
    case 'b':
      t.value += '\b';
      return true;
    case 'f':
      t.value += '\f';
      return true;
    case 'n':
      t.value += '\n';
      return true;
    case 'r':
      t.value += '\r';
      return true;
    case 't':
      t.value += '\t';
      return true;
    case 'u':
      break;
    default:
      fail(t, at, "invalid escape sequence");
      return false;
  }
  auto readFixed = [&](uint32_t& cp) {  // \uXXXX, pos_ after the 'u'
    if (pos_ + 4 > src_.size()) return false;
    cp = 0;
    for (size_t i = 0; i < 4; ++i) {
      const int h = hexValue(src_[pos_ + i]);
      if (h < 0) return false;
      cp = cp * 16 + static_cast<uint32_t>(h);
    }
    pos_ += 4;
    return true;
  };
  uint32_t cp = 0;
  if (pos_ < src_.size() && src_[pos_] == '{') {  // \u{...}: any code point, no surrogates
    ++pos_;
    size_t digits = 0;
    while (pos_ < src_.size() && hexValue(src_[pos_]) >= 0) {
      cp = cp * 16 + static_cast<uint32_t>(hexValue(src_[pos_]));
      ++pos_;
      if (++digits > 8 || cp > 0x10FFFF) break;
    }
    if (digits == 0 || cp > 0x10FFFF || pos_ >= src_.size() || src_[pos_] != '}' ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      fail(t, at, "invalid Unicode escape");
      return false;
    }
    ++pos_;
    appendUtf8(cp, t.value);
    return true;
  }
  if (!readFixed(cp)) {
    fail(t, at, "invalid Unicode escape");
    return false;
  }
  if (cp >= 0xD800 && cp <= 0xDBFF) {  // a leading surrogate needs its trailing one
    uint32_t low = 0;
    if (src_.substr(pos_, 2) != "\\u") {
      fail(t, at, "invalid Unicode escape: lone surrogate");
      return false;
    }
    pos_ += 2;
    if (!readFixed(low) || low < 0xDC00 || low > 0xDFFF) {
      fail(t, at, "invalid Unicode escape: lone surrogate");
      return false;
    }
    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
  } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
    fail(t, at, "invalid Unicode escape: lone surrogate");
    return false;
  }
  appendUtf8(cp, t.value);
  return true;
}

void Lexer::readString(Token& t) {
  const size_t start = pos_;
  ++pos_;  // the opening quote
  while (pos_ < src_.size()) {
    const char c = src_[pos_];
    if (c == '"') {
      ++pos_;
      t.kind = TokenKind::kString;
      t.text = src_.substr(start, pos_ - start);
      t.offset = start;
      return;
    }
    if (c == '\n' || c == '\r') return fail(t, pos_, "unterminated string");
    if (isControl(c)) return fail(t, pos_, "invalid character in string");
    if (c == '\\') {
      if (!readEscape(t)) return;
      continue;
    }
    t.value += c;
    ++pos_;
  }
  fail(t, start, "unterminated string");
}

void Lexer::readBlockString(Token& t) {
  const size_t start = pos_;
  pos_ += 3;
  std::string raw;
  while (pos_ < src_.size()) {
    if (src_.substr(pos_, 3) == "\"\"\"") {
      pos_ += 3;
      t.kind = TokenKind::kBlockString;
      t.text = src_.substr(start, pos_ - start);
      t.offset = start;
      t.value = blockStringValue(raw);
      return;
    }
    if (src_.substr(pos_, 4) == "\\\"\"\"") {
      raw += "\"\"\"";
      pos_ += 4;
      continue;
    }
    if (isControl(src_[pos_])) return fail(t, pos_, "invalid character in block string");
    raw += src_[pos_++];
  }
  fail(t, start, "unterminated block string");
}

std::string blockStringValue(std::string_view raw) {
  std::vector<std::string_view> lines;
  size_t begin = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\n' || raw[i] == '\r') {
      lines.push_back(raw.substr(begin, i - begin));
      if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
      begin = i + 1;
    }
  }
  lines.push_back(raw.substr(begin));
  size_t common = std::string_view::npos;
  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view l = lines[i];
    const size_t indent = std::min(l.find_first_not_of(" \t"), l.size());
    if (indent < l.size()) common = std::min(common, indent);
  }
  if (common != std::string_view::npos) {
    for (size_t i = 1; i < lines.size(); ++i)
      lines[i].remove_prefix(std::min(common, lines[i].size()));
  }
  size_t first = 0;
  size_t last = lines.size();
  while (first < last && isBlank(lines[first]))
    ++first;
  while (last > first && isBlank(lines[last - 1]))
    --last;
  std::string out;
  for (size_t i = first; i < last; ++i) {
    if (i > first) out += '\n';
    out.append(lines[i]);
  }
  return out;
}

}  // namespace gatehouse::graphql

#include "jsonschema/formats.h"

#include <arpa/inet.h>

#include <cctype>
#include <string>

#include "jsonschema/compile_state.h"

namespace gatehouse::jsonschema {
namespace {

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}
bool isHex(char c) {
  return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// `n` digits at `s[pos]` as a number, or -1.
int digits(std::string_view s, size_t pos, size_t n) {
  if (pos + n > s.size()) return -1;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!isDigit(s[i])) return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v;
}

bool checkDate(std::string_view s) {
  if (s.size() != 10 || s[4] != '-' || s[7] != '-') return false;
  int y = digits(s, 0, 4), m = digits(s, 5, 2), d = digits(s, 8, 2);
  if (y < 0 || m < 1 || m > 12 || d < 1) return false;
  static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (d > kDays[m - 1]) return false;
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return !(m == 2 && d == 29 && !leap);
}

// RFC 3339 full-time: HH:MM:SS[.frac](Z|+HH:MM|-HH:MM).
bool checkTime(std::string_view s) {
  if (s.size() < 9 || s[2] != ':' || s[5] != ':') return false;
  int h = digits(s, 0, 2), m = digits(s, 3, 2), sec = digits(s, 6, 2);
  if (h < 0 || h > 23 || m < 0 || m > 59 || sec < 0 || sec > 60) return false;
  size_t pos = 8;
  if (pos < s.size() && s[pos] == '.') {
    size_t start = ++pos;
    while (pos < s.size() && isDigit(s[pos]))
      ++pos;
    if (pos == start) return false;
  }
  if (pos >= s.size()) return false;
  int offset_minutes = 0;
  if (s[pos] == 'Z' || s[pos] == 'z') {
    if (pos + 1 != s.size()) return false;
  } else if (s[pos] == '+' || s[pos] == '-') {
    if (s.size() != pos + 6 || s[pos + 3] != ':') return false;
    int oh = digits(s, pos + 1, 2), om = digits(s, pos + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59) return false;
    offset_minutes = (oh * 60 + om) * (s[pos] == '+' ? 1 : -1);
  } else {
    return false;
  }
  if (sec == 60) {  // a leap second happens at 23:59:60 UTC only
    int utc = ((h * 60 + m - offset_minutes) % 1440 + 1440) % 1440;
    if (utc != 23 * 60 + 59) return false;
  }
  return true;
}

bool checkDateTime(std::string_view s) {
  if (s.size() < 11 || (s[10] != 'T' && s[10] != 't')) return false;
  return checkDate(s.substr(0, 10)) && checkTime(s.substr(11));
}

bool checkIpv4(std::string_view s) {
  int parts = 0;
  size_t pos = 0;
  while (true) {
    size_t start = pos;
    int v = 0;
    while (pos < s.size() && isDigit(s[pos]) && pos - start < 3)
      v = v * 10 + (s[pos++] - '0');
    size_t len = pos - start;
    if (len == 0 || v > 255 || (len > 1 && s[start] == '0')) return false;
    if (++parts == 4) return pos == s.size();
    if (pos >= s.size() || s[pos] != '.') return false;
    ++pos;
  }
}

bool checkIpv6(std::string_view s) {
  if (s.size() > 45) return false;
  for (char c : s) {
    if (!isHex(c) && c != ':' && c != '.') return false;
  }
  std::string copy(s);
  unsigned char out[16];
  return inet_pton(AF_INET6, copy.c_str(), out) == 1;
}

bool checkHostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (label == 0 || s[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || (c == '-' && label > 0);
    if (!ok || ++label > 63) return false;
  }
  return label > 0 && s.back() != '-';
}

bool checkEmail(std::string_view s) {
  auto at = s.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size()) return false;
  std::string_view local = s.substr(0, at);
  if (local.front() == '.' || local.back() == '.' || local.find("..") != std::string_view::npos) {
    return false;
  }
  for (char c : local) {
    if (c <= ' ' || c == '@' || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' ||
        c == '<' || c == '>' || c == '[' || c == ']' || c == '\\' || c == '"') {
      return false;
    }
  }
  std::string_view domain = s.substr(at + 1);
  if (domain.front() == '[' && domain.back() == ']') {
    std::string_view literal = domain.substr(1, domain.size() - 2);
    if (literal.substr(0, 5) == "IPv6:") return checkIpv6(literal.substr(5));
    return checkIpv4(literal);
  }
  return checkHostname(domain);
}

bool uriChar(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u <= ' ' || u >= 0x7f) return false;
  return std::string_view("<>\"{}|\\^`").find(c) == std::string_view::npos;
}

bool checkUriReference(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!uriChar(s[i])) return false;
    if (s[i] == '%' && (i + 2 >= s.size() || !isHex(s[i + 1]) || !isHex(s[i + 2]))) return false;
  }
  return true;
}

bool checkUri(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      !std::isalpha(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  for (size_t i = 1; i < colon; ++i) {
    char c = s[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  return checkUriReference(s);
}

bool checkUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isHex(s[i])) return false;
  }
  return true;
}

// ISO 8601 duration as RFC 3339 appendix A has it: P[nY][nM][nD][T[nH][nM][nS]] or PnW.
bool checkDuration(std::string_view s) {
  if (s.size() < 2 || s[0] != 'P') return false;
  std::string_view order = "YMD";
  size_t pos = 1, unit = 0;
  bool in_time = false, any = false, weeks = false;
  while (pos < s.size()) {
    if (s[pos] == 'T') {
      if (in_time || pos + 1 == s.size()) return false;
      in_time = true;
      order = "HMS";
      unit = 0;
      ++pos;
      continue;
    }
    size_t start = pos;
    while (pos < s.size() && isDigit(s[pos]))
      ++pos;
    if (pos == start || pos == s.size()) return false;
    if (!in_time && s[pos] == 'W') {
      weeks = true;
    } else {
      size_t found = order.find(s[pos], unit);
      if (found == std::string_view::npos) return false;
      unit = found + 1;
    }
    any = true;
    ++pos;
  }
  return any && (!weeks || (s.back() == 'W' && !in_time && unit == 0));
}

bool checkJsonPointer(std::string_view s) {
  if (s.empty()) return true;
  if (s[0] != '/') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '~' && (i + 1 >= s.size() || (s[i + 1] != '0' && s[i + 1] != '1'))) return false;
  }
  return true;
}

}  // namespace

constexpr std::pair<std::string_view, Format> kFormatNames[] = {
    {"date-time", Format::kDateTime},
    {"date", Format::kDate},
    {"time", Format::kTime},
    {"email", Format::kEmail},
    {"hostname", Format::kHostname},
    {"ipv4", Format::kIpv4},
    {"ipv6", Format::kIpv6},
    {"uri", Format::kUri},
    {"uri-reference", Format::kUriReference},
    {"uuid", Format::kUuid},
    {"duration", Format::kDuration},
    {"json-pointer", Format::kJsonPointer},
    {"regex", Format::kRegex},
};

std::string_view formatName(Format format) {
  for (const auto& [n, f] : kFormatNames) {
    if (f == format) return n;
  }
  return "format";
}

Format formatByName(std::string_view name) {
  for (const auto& [n, f] : kFormatNames) {
    if (n == name) return f;
  }
  return Format::kNone;
}

bool checkFormat(Format format, std::string_view v) {
  switch (format) {
    case Format::kNone:
      return true;
    case Format::kDateTime:
      return checkDateTime(v);
    case Format::kDate:
      return checkDate(v);
    case Format::kTime:
      return checkTime(v);
    case Format::kEmail:
      return checkEmail(v);
    case Format::kHostname:
      return checkHostname(v);
    case Format::kIpv4:
      return checkIpv4(v);
    case Format::kIpv6:
      return checkIpv6(v);
    case Format::kUri:
      return checkUri(v);
    case Format::kUriReference:
      return checkUriReference(v);
    case Format::kUuid:
      return checkUuid(v);
    case Format::kDuration:
      return checkDuration(v);
    case Format::kJsonPointer:
      return checkJsonPointer(v);
    case Format::kRegex:
      return compilePattern(v).ok();
  }
  return true;
}

Result<std::unique_ptr<RE2>> compilePattern(std::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);
  options.set_encoding(RE2::Options::EncodingUTF8);
  auto regex = std::make_unique<RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!regex->ok()) {
    return schemaError("pattern '" + std::string(pattern) +
                       "' is not a supported regex: " + regex->error());
  }
  return regex;
}

}  // namespace gatehouse::jsonschema

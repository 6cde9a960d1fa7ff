#pragma once
// Byte classes and scanning loops shared by the HTTP/1 head parser and the chunked decoder.
// Internal to src/http; not part of the parser's API. All functions are pure and inline so the
// hot loops compile into the callers.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace gatehouse::http1::scan {

enum ByteClass : uint8_t {
  kToken = 1,       // tchar (RFC 9110 §5.6.2)
  kFieldValue = 2,  // HTAB, SP, VCHAR, obs-text: anything but CTLs other than HTAB
  kTarget = 4,      // request-target byte we accept: VCHAR except '#' (fragments are invalid)
  kHex = 8,         // HEXDIG
  kHostChar = 16,   // reg-name byte: unreserved / sub-delims (minus ',') / '%'
  kNameChar = 32,   // tchar except '_' (field names: '_' is noted, see scanNameChars)
};

constexpr std::array<uint8_t, 256> makeClasses() {
  std::array<uint8_t, 256> t{};
  for (int c = 0; c < 256; ++c) {
    uint8_t v = 0;
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    const bool digit = c >= '0' && c <= '9';
    const bool vchar = c >= 0x21 && c <= 0x7e;
    if (alpha || digit) v |= kToken;
    for (char s : std::string_view("!#$%&'*+-.^_`|~")) {
      if (c == static_cast<unsigned char>(s)) v |= kToken;
    }
    if ((v & kToken) && c != '_') v |= kNameChar;
    if (c == '\t' || c == ' ' || vchar || c >= 0x80) v |= kFieldValue;
    if (vchar && c != '#') v |= kTarget;
    if (digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')) v |= kHex;
    // ',' is a legal sub-delim but no real host has one, and list-splitting backends would
    // read "a,b" as two hosts.
    if (alpha || digit) v |= kHostChar;
    for (char s : std::string_view("-._~!$&'()*+;=%")) {
      if (c == static_cast<unsigned char>(s)) v |= kHostChar;
    }
    t[static_cast<size_t>(c)] = v;
  }
  return t;
}

inline constexpr std::array<uint8_t, 256> kClasses = makeClasses();

inline bool is(char c, ByteClass cls) {
  return (kClasses[static_cast<unsigned char>(c)] & cls) != 0;
}

inline char toLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// ASCII case-insensitive compare against a lowercase literal. Equal bytes take one compare; a
// differing byte matches only as the upper case of a letter in the literal.
inline bool equalsLower(std::string_view s, std::string_view lower_literal) {
  if (s.size() != lower_literal.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const char l = lower_literal[i];
    if (c == l) continue;
    if (l < 'a' || l > 'z' || c != static_cast<char>(l - ('a' - 'A'))) return false;
  }
  return true;
}

inline bool isOws(char c) {
  return c == ' ' || c == '\t';
}

inline std::string_view trimOws(std::string_view s) {
  while (!s.empty() && isOws(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && isOws(s.back()))
    s.remove_suffix(1);
  return s;
}

// SWAR helpers (one 64-bit word = 8 bytes). Each "maybe" test may report false positives but
// never false negatives; the byte loop that follows decides exactly.
constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

inline uint64_t load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof(w));
  return w;
}
// Some byte < n (exact for n <= 128).
inline uint64_t hasLess(uint64_t w, uint8_t n) {
  return (w - kOnes * n) & ~w & kHighs;
}
inline uint64_t hasByte(uint64_t w, uint8_t b) {
  const uint64_t x = w ^ (kOnes * b);
  return (x - kOnes) & ~x & kHighs;
}
// Some byte >= 0x7f (0x7f+1 sets the high bit; carries only add false positives).
inline uint64_t hasHighOrDel(uint64_t w) {
  return (w | (w + kOnes)) & kHighs;
}

// Returns the index of the first byte in [i, end) that is not a field-value byte, or end.
inline size_t scanFieldValue(const char* p, size_t i, size_t end) {
  for (;;) {
    while (i + 8 <= end) {
      const uint64_t w = load64(p + i);
      if (hasLess(w, 0x20) | hasByte(w, 0x7f)) break;
      i += 8;
    }
    const size_t stop = (i + 8 <= end) ? i + 8 : end;
    for (; i < stop; ++i) {
      if (!is(p[i], kFieldValue)) return i;
    }
    if (i == end) return end;
  }
}

// Returns the index of the first byte in [i, end) that is not a request-target byte, or end.
inline size_t scanTarget(const char* p, size_t i, size_t end) {
  for (;;) {
    while (i + 8 <= end) {
      const uint64_t w = load64(p + i);
      if (hasLess(w, 0x21) | hasHighOrDel(w) | hasByte(w, '#')) break;
      i += 8;
    }
    const size_t stop = (i + 8 <= end) ? i + 8 : end;
    for (; i < stop; ++i) {
      if (!is(p[i], kTarget)) return i;
    }
    if (i == end) return end;
  }
}

inline size_t scanToken(const char* p, size_t i, size_t end) {
  // Four bytes per branch: field names average ~10 bytes and this runs for every field line.
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  while (i + 4 <= end &&
         (kClasses[u[i]] & kClasses[u[i + 1]] & kClasses[u[i + 2]] & kClasses[u[i + 3]] & kToken))
    i += 4;
  while (i < end && is(p[i], kToken))
    ++i;
  return i;
}

// scanToken without '_': a field name's common case; the caller notes a name with '_' (a CGI
// back-end reads it as '-') when the scan stops there.
inline size_t scanNameChars(const char* p, size_t i, size_t end) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  while (i + 4 <= end && (kClasses[u[i]] & kClasses[u[i + 1]] & kClasses[u[i + 2]] &
                          kClasses[u[i + 3]] & kNameChar))
    i += 4;
  while (i < end && is(p[i], kNameChar))
    ++i;
  return i;
}

// A complete field line without its CRLF: token ":" OWS value OWS. Used for trailers, which are
// rare enough that this simpler path (no fused scan) is fine.
inline bool splitFieldLine(std::string_view line, std::string_view& name, std::string_view& value) {
  const size_t colon = scanToken(line.data(), 0, line.size());
  if (colon == 0 || colon == line.size() || line[colon] != ':') return false;
  const size_t end = scanFieldValue(line.data(), colon + 1, line.size());
  if (end != line.size()) return false;
  name = line.substr(0, colon);
  value = trimOws(line.substr(colon + 1));
  return true;
}

}  // namespace gatehouse::http1::scan

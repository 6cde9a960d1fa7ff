#pragma once
// Hex and base64 (RFC 4648) building blocks shared by the parsers and policies: one alphabet
// table and one digit decoder instead of one per caller.
#include <string>
#include <string_view>

namespace gatehouse::encoding {

// Value of a hex digit (either case), or -1.
inline int hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

enum class Base64 {
  kStandard,  // A-Z a-z 0-9 + /   (RFC 4648 §4)
  kUrl,       // A-Z a-z 0-9 - _   (RFC 4648 §5)
  kEither,    // decoding only: both (gRPC-Web text and proto3 JSON accept either)
};

// Value of one base64 digit in `alphabet`, or -1 (padding '=' included).
inline int base64Digit(char c, Base64 alphabet) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  const bool std_ok = alphabet != Base64::kUrl, url_ok = alphabet != Base64::kStandard;
  if ((c == '+' && std_ok) || (c == '-' && url_ok)) return 62;
  if ((c == '/' && std_ok) || (c == '_' && url_ok)) return 63;
  return -1;
}

// Encodes `data` (kStandard or kUrl), with '=' padding when `pad`.
std::string base64Encode(std::string_view data, Base64 alphabet, bool pad);

// Strict unpadded base64url (JWS, RFC 7515 §2; sealed cookies): any other byte, a length of
// 4n+1 or non-zero leftover bits fail, so each byte string has exactly one encoding.
bool base64UrlDecodeStrict(std::string_view in, std::string& out);

// Percent-decodes one path segment (admin API paths); false on a malformed escape.
bool percentDecodeSegment(std::string_view in, std::string& out);

// Length of the well-formed UTF-8 sequence at the start of `s` (RFC 3629: no overlong forms,
// no surrogates, nothing past U+10FFFF), or 0 when `s` does not start with one.
size_t utf8SequenceLength(std::string_view s);

// Appends `s` as the body of a JSON string (no quotes): well-formed UTF-8 as itself, `"` `\`
// and control characters escaped, and each byte that is not part of well-formed UTF-8 written
// so that the decoded string holds a backslash, `x` and two hex digits (NGINX's notation for
// unprintable bytes in its logs): the output is always valid JSON and no byte is lost.
void appendJsonEscaped(std::string& out, std::string_view s);

}  // namespace gatehouse::encoding

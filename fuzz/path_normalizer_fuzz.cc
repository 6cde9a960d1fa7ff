// normalizePath against back-ends that read a path differently from the router (issue 12,
// item 2): one that percent-decodes twice, strips ";params", treats '\' as '/', merges "//" and
// resolves dot segments. The first byte picks the options, the rest is the path.
//
// With the protective options on (decode_unreserved, reject_encoded_slash,
// reject_double_encoding, path_parameters != keep) an accepted path P must leave such a
// back-end nothing to reinterpret: decoding P once gives a string that a second decode,
// parameter stripping and dot resolution leave unchanged, with as many '/' as P, and P escapes
// no unreserved byte. So a canonical route prefix matches P exactly when the back-end sees it.
// In every mode the result is canonical (normalising it again changes nothing).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "http/request_target.h"

namespace {

using gatehouse::config::PathNormalization;
using gatehouse::config::PathParameters;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Lenient percent-decoding, as most servers do it: invalid escapes are kept as they are.
std::string decodeOnce(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hexValue(in[i + 1]) >= 0 && hexValue(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(in[i + 1]) * 16 + hexValue(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

bool isUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

bool hasDotSegment(std::string_view path) {
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    const std::string_view seg = path.substr(start, end - start);
    if (seg == "." || seg == "..") return true;
    start = end + 1;
  }
  return false;
}

size_t countOf(std::string_view s, char c) {
  size_t n = 0;
  for (const char x : s)
    n += x == c ? 1 : 0;
  return n;
}

void checkNothingLeftToReinterpret(const std::string& path, const PathNormalization& norm) {
  FUZZ_CHECK(path.find(';') == std::string::npos);
  for (size_t i = 0; i + 2 < path.size(); ++i) {
    if (path[i] != '%') continue;
    FUZZ_CHECK(hexValue(path[i + 1]) >= 0 && hexValue(path[i + 2]) >= 0);
    const auto v = static_cast<unsigned char>(hexValue(path[i + 1]) * 16 + hexValue(path[i + 2]));
    FUZZ_CHECK(!isUnreserved(v) && v != ';' && v != '/' && v != '\\' && v != 0);
  }
  const std::string once = decodeOnce(path);
  FUZZ_CHECK(decodeOnce(once) == once);
  FUZZ_CHECK(once.find(';') == std::string::npos && once.find('\\') == std::string::npos);
  FUZZ_CHECK(countOf(once, '/') == countOf(path, '/'));
  FUZZ_CHECK(!hasDotSegment(once));
  if (norm.merge_slashes) FUZZ_CHECK(once.find("//") == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string_view path(reinterpret_cast<const char*>(data + 1), size - 1);
  PathNormalization norm;
  norm.merge_slashes = (mode & 1) != 0;
  norm.decode_unreserved = (mode & 2) != 0;
  norm.reject_encoded_slash = (mode & 4) != 0;
  norm.reject_double_encoding = (mode & 8) != 0;
  const int params = (mode >> 4) % 3;
  norm.path_parameters = params == 0   ? PathParameters::kReject
                         : params == 1 ? PathParameters::kStrip
                                       : PathParameters::kKeep;

  std::string out;
  gatehouse::http::TargetError err;
  if (!gatehouse::http::normalizePath(path, norm, out, err)) {
    FUZZ_CHECK(err.status == 400 && !err.reason.empty());
    return 0;
  }
  FUZZ_CHECK(!out.empty() && out[0] == '/');
  FUZZ_CHECK(!hasDotSegment(out));
  std::string again;
  FUZZ_CHECK(gatehouse::http::normalizePath(out, norm, again, err));
  FUZZ_CHECK(again == out);

  // parseTarget takes the same decisions for the same path (it has no '?': that was refused).
  gatehouse::http::Target target;
  FUZZ_CHECK(gatehouse::http::parseTarget(path, "GET", norm, target, err) && target.path == out);

  if (norm.path_parameters != PathParameters::kKeep) {
    FUZZ_CHECK(out.find(';') == std::string::npos);
  }
  if (norm.decode_unreserved && norm.reject_encoded_slash && norm.reject_double_encoding &&
      norm.path_parameters != PathParameters::kKeep) {
    checkNothingLeftToReinterpret(out, norm);
  }
  return 0;
}

// Fuzzes parseTarget under every normalisation mode and checks what routing relies on: an
// accepted path is canonical (normalising it again changes nothing), starts with '/', and has
// no dot segment or escaped dot left to resolve upstream.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/request_target.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string_view raw(reinterpret_cast<const char*>(data + 1), size - 1);
  gatehouse::config::PathNormalization norm;
  norm.merge_slashes = (mode & 1) != 0;
  norm.decode_unreserved = (mode & 2) != 0;
  norm.reject_encoded_slash = (mode & 4) != 0;
  const std::string_view method = (mode & 8) != 0 ? "OPTIONS" : "GET";

  gatehouse::http::Target target;
  gatehouse::http::TargetError err;
  if (!gatehouse::http::parseTarget(raw, method, norm, target, err)) {
    check(err.status == 400 && !err.reason.empty());
    return 0;
  }
  if (target.form == gatehouse::http::TargetForm::kAsterisk) return 0;
  const std::string& path = target.path;
  check(!path.empty() && path[0] == '/');
  check(!hasDotSegment(path));
  check(path.find("%2E") == std::string::npos && path.find("%2e") == std::string::npos);
  check(path.find('\\') == std::string::npos && path.find("%00") == std::string::npos);
  if (norm.merge_slashes) check(path.find("//") == std::string::npos);
  if (norm.reject_encoded_slash) {
    check(path.find("%2F") == std::string::npos && path.find("%5C") == std::string::npos);
  }
  std::string again;
  check(gatehouse::http::normalizePath(path, norm, again, err));
  check(again == path);
  return 0;
}

#include "jsonschema/uri.h"

#include <cstdlib>
#include <string>

namespace gatehouse::jsonschema {
namespace {

struct UriParts {
  std::optional<std::string_view> scheme, authority, query, fragment;
  std::string_view path;
};

UriParts split(std::string_view uri) {
  UriParts p;
  if (auto hash = uri.find('#'); hash != std::string_view::npos) {
    p.fragment = uri.substr(hash + 1);
    uri = uri.substr(0, hash);
  }
  if (auto q = uri.find('?'); q != std::string_view::npos) {
    p.query = uri.substr(q + 1);
    uri = uri.substr(0, q);
  }
  auto colon = uri.find(':');
  auto slash = uri.find('/');
  if (colon != std::string_view::npos && colon > 0 &&
      (slash == std::string_view::npos || colon < slash)) {
    p.scheme = uri.substr(0, colon);
    uri = uri.substr(colon + 1);
  }
  if (uri.substr(0, 2) == "//") {
    uri = uri.substr(2);
    auto end = uri.find('/');
    p.authority = uri.substr(0, end);
    uri = end == std::string_view::npos ? std::string_view{} : uri.substr(end);
  }
  p.path = uri;
  return p;
}

// RFC 3986 section 5.2.4.
std::string removeDotSegments(std::string_view in) {
  std::string out;
  while (!in.empty()) {
    if (in.substr(0, 3) == "../") {
      in.remove_prefix(3);
    } else if (in.substr(0, 2) == "./") {
      in.remove_prefix(2);
    } else if (in.substr(0, 3) == "/./") {
      in.remove_prefix(2);
    } else if (in == "/.") {
      in = "/";
    } else if (in.substr(0, 4) == "/../" || in == "/..") {
      in = in.size() == 3 ? std::string_view("/") : in.substr(3);
      auto last = out.rfind('/');
      out.erase(last == std::string::npos ? 0 : last);
    } else if (in == "." || in == "..") {
      in = {};
    } else {
      size_t next = in.find('/', in[0] == '/' ? 1 : 0);
      if (next == std::string_view::npos) next = in.size();
      out.append(in.substr(0, next));
      in.remove_prefix(next);
    }
  }
  return out;
}

std::string merge(const UriParts& base, std::string_view ref_path) {
  if (base.authority && base.path.empty()) return "/" + std::string(ref_path);
  auto last = base.path.rfind('/');
  if (last == std::string_view::npos) return std::string(ref_path);
  return std::string(base.path.substr(0, last + 1)) + std::string(ref_path);
}

std::string join(const UriParts& p, const std::string& path) {
  std::string out;
  if (p.scheme) out.append(*p.scheme).push_back(':');
  if (p.authority) out.append("//").append(*p.authority);
  out.append(path);
  if (p.query) out.append("?").append(*p.query);
  if (p.fragment) out.append("#").append(*p.fragment);
  return out;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = hexValue(s[i + 1]);
      int lo = hexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

}  // namespace

std::string resolveUri(std::string_view base_uri, std::string_view reference) {
  UriParts ref = split(reference);
  UriParts base = split(base_uri);
  UriParts target;
  std::string path;
  if (ref.scheme) {
    target = ref;
    path = removeDotSegments(ref.path);
  } else if (ref.authority) {
    target = ref;
    target.scheme = base.scheme;
    path = removeDotSegments(ref.path);
  } else {
    target.scheme = base.scheme;
    target.authority = base.authority;
    if (ref.path.empty()) {
      path = std::string(base.path);
      target.query = ref.query ? ref.query : base.query;
    } else {
      path = removeDotSegments(ref.path[0] == '/' ? std::string(ref.path) : merge(base, ref.path));
      target.query = ref.query;
    }
  }
  target.fragment = ref.fragment;
  // A URN's path keeps its shape: "urn:x" + "#a" must not grow a slash.
  return join(target, path);
}

std::string withoutFragment(std::string_view uri) {
  return std::string(uri.substr(0, uri.find('#')));
}

std::string fragmentOf(std::string_view uri) {
  auto hash = uri.find('#');
  return hash == std::string_view::npos ? std::string() : percentDecode(uri.substr(hash + 1));
}

const nlohmann::json* resolvePointer(const nlohmann::json& root, std::string_view pointer) {
  const nlohmann::json* at = &root;
  if (pointer.empty()) return at;
  if (pointer[0] != '/') return nullptr;
  size_t pos = 1;
  std::string token;
  while (true) {
    size_t end = pointer.find('/', pos);
    std::string_view raw = pointer.substr(pos, end == std::string_view::npos ? end : end - pos);
    token.clear();
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token.push_back(raw[i + 1] == '0' ? '~' : '/');
        ++i;
      } else {
        token.push_back(raw[i]);
      }
    }
    if (at->is_object()) {
      auto it = at->find(token);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      if (token.empty() || (token.size() > 1 && token[0] == '0')) return nullptr;
      size_t index = 0;
      for (char c : token) {
        if (c < '0' || c > '9' || index > at->size()) return nullptr;
        index = index * 10 + static_cast<size_t>(c - '0');
      }
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      return nullptr;
    }
    if (end == std::string_view::npos) return at;
    pos = end + 1;
  }
}

void appendPointerToken(std::string& pointer, std::string_view token) {
  pointer.push_back('/');
  for (char c : token) {
    if (c == '~') {
      pointer.append("~0");
    } else if (c == '/') {
      pointer.append("~1");
    } else {
      pointer.push_back(c);
    }
  }
}

}  // namespace gatehouse::jsonschema

#include "http/url.h"

#include <algorithm>
#include <cctype>

#include "net/address.h"

namespace gatehouse::http {
namespace {

Error urlError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

Result<Url> parseUrl(std::string_view text) {
  Url u;
  std::string scheme = lower(text.substr(0, text.find("://")));
  if (text.find("://") == std::string_view::npos || (scheme != "http" && scheme != "https")) {
    return urlError("expected an http:// or https:// URL");
  }
  for (unsigned char c : text) {
    if (c <= 0x20 || c >= 0x7f) return urlError("URL contains whitespace or non-ASCII bytes");
  }
  u.https = scheme == "https";
  std::string_view rest = text.substr(scheme.size() + 3);
  if (rest.find('#') != std::string_view::npos) return urlError("URL must not have a fragment");
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.empty()) return urlError("URL has no host");
  if (authority.find('@') != std::string_view::npos) {
    return urlError("URL must not carry credentials (user@host)");
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return urlError("unterminated IPv6 literal in URL");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return urlError("unexpected bytes after IPv6 literal in URL");
      port = after.substr(1);
    }
    if (!net::SocketAddress::parse(host, 0).ok()) return urlError("invalid IPv6 literal in URL");
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    for (unsigned char c : host) {
      if (!std::isalnum(c) && c != '-' && c != '.' && c != '_') {
        return urlError("invalid character in URL host");
      }
    }
  }
  if (host.empty()) return urlError("URL has no host");
  u.port = u.https ? 443 : 80;
  if (authority.back() == ':') return urlError("URL has an empty port");
  if (!port.empty()) {
    if (port.size() > 5) return urlError("URL port must be 1-65535");
    unsigned v = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return urlError("URL port must be 1-65535");
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) return urlError("URL port must be 1-65535");
    u.port = static_cast<uint16_t>(v);
  }
  u.host = lower(host);
  u.authority = lower(authority);
  u.target = target.empty() ? "/" : std::string(target);
  if (u.target.front() == '?') u.target.insert(0, "/");
  return u;
}

std::string implicitClusterName(const Url& url, const ClientTlsOptions& tls) {
  std::string name = url.https ? "https://" : "http://";
  const bool v6 = url.host.find(':') != std::string::npos;
  name.append(v6 ? "[" : "").append(url.host).append(v6 ? "]:" : ":");
  name += std::to_string(url.port);
  // Different TLS options are different clusters (a pooled connection carries its checks).
  if (url.https && !tls.verify) name += "#noverify";
  if (url.https && tls.ca_file) name += "#ca=" + *tls.ca_file;
  return name;
}

}  // namespace gatehouse::http

#include "proxy/forwarding.h"

#include <array>

namespace gatehouse::proxy {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

constexpr std::array<std::string_view, 10> kHopByHop = {
    "connection",        "keep-alive", "proxy-connection", "te",   "trailer",
    "transfer-encoding", "upgrade",    "content-length",   "host", "proxy-authenticate"};

}  // namespace

void stripHopByHop(http::HeaderMap& h, bool keep_upgrade) {
  // Fields named by Connection are hop-by-hop too (RFC 9110 §7.6.1).
  std::string named;
  for (const auto& f : h.fields()) {
    if (http::iequals(f.name, "connection")) named.append(f.value).append(",");
  }
  std::string_view rest = named;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view tok = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (tok.empty() || http::iequals(tok, "close") || http::iequals(tok, "keep-alive")) continue;
    if (keep_upgrade && http::iequals(tok, "upgrade")) continue;
    h.remove(tok);
  }
  auto& fields = h.fields();
  size_t out = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    bool drop = false;
    for (auto name : kHopByHop) {
      if (http::iequals(fields[i].name, name)) {
        drop = !(keep_upgrade && name == "upgrade");
        break;
      }
    }
    if (!drop) fields[out++] = fields[i];
  }
  fields.resize(out);
}

bool validRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string makeRequestId(uint64_t a, uint64_t b) {
  // Version 4 and variant bits, formatted 8-4-4-4-12 (hand-rolled: this runs per request).
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  size_t pos = 0;
  auto put = [&](uint64_t v, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i)
      out[pos++] = kHex[(v >> (4 * i)) & 0xf];
  };
  put(a >> 32, 8);
  ++pos;
  put(a >> 16, 4);
  ++pos;
  put(a, 4);
  ++pos;
  put(b >> 48, 4);
  ++pos;
  put(b, 12);
  return out;
}

std::string applyForwarded(http::HeaderMap& h, std::string_view peer_ip, std::string_view scheme,
                           std::string_view authority, const net::CidrSet& trusted) {
  bool peer_trusted = trusted.contains(peer_ip);
  std::string client_ip(peer_ip);
  if (peer_trusted) {
    // Join all X-Forwarded-For fields, then walk right to left past trusted hops.
    std::string xff;
    for (const auto& f : h.fields()) {
      if (http::iequals(f.name, "x-forwarded-for")) {
        if (!xff.empty()) xff += ", ";
        xff.append(f.value);
      }
    }
    std::string_view rest = xff;
    while (!rest.empty()) {
      auto comma = rest.rfind(',');
      std::string_view hop = trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
      if (hop.empty()) continue;
      client_ip.assign(hop);
      if (!trusted.contains(hop)) break;
    }
    std::string value = xff.empty() ? std::string(peer_ip) : xff + ", " + std::string(peer_ip);
    h.set("x-forwarded-for", value);
    if (!h.has("x-forwarded-proto")) h.add("x-forwarded-proto", scheme);
    if (!h.has("x-forwarded-host")) h.add("x-forwarded-host", authority);
  } else {
    // Untrusted peers cannot choose what upstreams believe about the client.
    h.set("x-forwarded-for", peer_ip);
    h.set("x-forwarded-proto", scheme);
    h.set("x-forwarded-host", authority);
  }
  return client_ip;
}

}  // namespace gatehouse::proxy

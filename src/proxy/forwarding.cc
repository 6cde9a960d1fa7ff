#include "proxy/forwarding.h"
#include "core/strings.h"

#include <array>
#include <utility>

namespace gatehouse::proxy {
namespace {

constexpr std::array<std::string_view, 10> kHopByHop = {
    "connection",        "keep-alive", "proxy-connection", "te",   "trailer",
    "transfer-encoding", "upgrade",    "content-length",   "host", "proxy-authenticate"};

// Index in kHopByHop of a hop-by-hop field name, or -1. This runs for every field of every
// request and response, so the length picks the only candidates: most fields are rejected
// without a single character comparison.
int hopByHopIndex(std::string_view name) {
  auto is = [&](int i) { return http::iequals(name, kHopByHop[static_cast<size_t>(i)]); };
  switch (name.size()) {
    case 2:
      return is(3) ? 3 : -1;
    case 4:
      return is(8) ? 8 : -1;
    case 7:
      return is(4) ? 4 : is(6) ? 6 : -1;
    case 10:
      return is(0) ? 0 : is(1) ? 1 : -1;
    case 14:
      return is(7) ? 7 : -1;
    case 16:
      return is(2) ? 2 : -1;
    case 17:
      return is(5) ? 5 : -1;
    case 18:
      return is(9) ? 9 : -1;
    default:
      return -1;
  }
}

}  // namespace

void stripHopByHop(http::HeaderMap& h, bool keep_upgrade) {
  // One pass: drop the fixed hop-by-hop fields and collect Connection's list, whose fields are
  // hop-by-hop too (RFC 9110 §7.6.1) and are removed afterwards.
  std::string named;
  auto& fields = h.fields();
  size_t out = 0;
  for (size_t i = 0; i < fields.size(); ++i) {
    int idx = hopByHopIndex(fields[i].name);
    if (idx == 0) named.append(fields[i].value).append(",");
    bool drop = idx >= 0 && !(keep_upgrade && kHopByHop[static_cast<size_t>(idx)] == "upgrade");
    if (!drop) fields[out++] = fields[i];
  }
  fields.resize(out);
  std::string_view rest = named;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view tok = strings::trimSpaces(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (tok.empty() || http::iequals(tok, "close") || http::iequals(tok, "keep-alive")) continue;
    if (keep_upgrade && http::iequals(tok, "upgrade")) continue;
    h.remove(tok);
  }
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
  std::string out;
  makeRequestId(a, b, out);
  return out;
}

void makeRequestId(uint64_t a, uint64_t b, std::string& out) {
  // Version 4 and variant bits, formatted 8-4-4-4-12. Runs per request: written in place (the
  // caller's string keeps its capacity) two hex digits per table lookup.
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  static constexpr auto kHex2 = [] {
    std::array<char, 512> t{};
    constexpr char kHex[] = "0123456789abcdef";
    for (size_t i = 0; i < 256; ++i) {
      t[2 * i] = kHex[i >> 4];
      t[2 * i + 1] = kHex[i & 0xf];
    }
    return t;
  }();
  out.resize(36);
  char* p = out.data();
  auto put = [&](uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) {
      const char* h = &kHex2[2 * ((v >> (8 * i)) & 0xff)];
      *p++ = h[0];
      *p++ = h[1];
    }
  };
  put(a >> 32, 4);
  *p++ = '-';
  put(a >> 16, 2);
  *p++ = '-';
  put(a, 2);
  *p++ = '-';
  put(b >> 48, 2);
  *p++ = '-';
  put(b, 6);
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
      std::string_view hop =
          strings::trimSpaces(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
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
    // Untrusted peers cannot choose what upstreams believe about the client. The names are
    // literals (static storage), so only the values are copied into the map's arena.
    for (auto [name, value] :
         {std::pair<std::string_view, std::string_view>{"x-forwarded-for", peer_ip},
          {"x-forwarded-proto", scheme},
          {"x-forwarded-host", authority}}) {
      h.remove(name);
      h.addView(name, h.store(value));
    }
  }
  return client_ip;
}

}  // namespace gatehouse::proxy

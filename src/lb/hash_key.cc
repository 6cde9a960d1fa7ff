#include "lb/hash_key.h"

#include "core/strings.h"
#include "http/message.h"

namespace gatehouse::lb {
namespace {

std::optional<std::string_view> nonEmpty(std::string_view s) {
  if (s.empty()) return std::nullopt;
  return s;
}

// Splits "a=1<sep>b=2" and returns the value of the first pair whose trimmed name is `name`.
std::optional<std::string_view> findPair(std::string_view list, char sep, std::string_view name,
                                         bool trim) {
  while (!list.empty()) {
    size_t end = list.find(sep);
    std::string_view item = list.substr(0, end);
    list = end == std::string_view::npos ? std::string_view{} : list.substr(end + 1);
    if (trim) item = strings::trimSpaces(item);
    size_t eq = item.find('=');
    std::string_view item_name = item.substr(0, eq);
    if (trim) item_name = strings::trimSpaces(item_name);
    if (item_name != name) continue;
    if (eq == std::string_view::npos) return std::string_view{};
    std::string_view value = item.substr(eq + 1);
    return trim ? strings::trimSpaces(value) : value;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> findCookie(const http::HeaderMap& headers, std::string_view name) {
  // HTTP/2 may split cookies over several header fields (RFC 9113 section 8.2.3).
  for (const http::HeaderField& f : headers.fields()) {
    if (!http::iequals(f.name, "cookie")) continue;
    if (auto v = findPair(f.value, ';', name, true)) return v;
  }
  return std::nullopt;
}

std::optional<std::string_view> findQueryParam(std::string_view query, std::string_view name) {
  return findPair(query, '&', name, false);
}

std::optional<std::string_view> extractHashKey(const config::HashKey& key, const PickContext& ctx) {
  using Source = config::HashKey::Source;
  if (key.source == Source::kSourceIp) return nonEmpty(ctx.client_ip);
  if (key.source == Source::kSourceAddress) {
    return nonEmpty(ctx.client_address.empty() ? ctx.client_ip : ctx.client_address);
  }
  if (key.source == Source::kSni) return nonEmpty(ctx.sni);
  if (ctx.request == nullptr) return std::nullopt;
  const http::Request& req = *ctx.request;
  switch (key.source) {
    case Source::kHeader:
      return nonEmpty(req.headers.get(key.name));
    case Source::kCookie:
      if (auto v = findCookie(req.headers, key.name)) return nonEmpty(*v);
      return std::nullopt;
    case Source::kQuery:
      if (auto v = findQueryParam(req.query, key.name)) return nonEmpty(*v);
      return std::nullopt;
    case Source::kPath:
      return nonEmpty(req.path);
    case Source::kSourceIp:
    case Source::kSourceAddress:
    case Source::kSni:
      break;
  }
  return std::nullopt;
}

}  // namespace gatehouse::lb

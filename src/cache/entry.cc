#include "cache/entry.h"

#include <algorithm>

#include "core/strings.h"

namespace gatehouse::cache {

uint64_t Entry::bytes() const {
  uint64_t n = sizeof(Entry) + (body ? body->size() : 0) + etag.size() + last_modified.size();
  for (const auto& [k, v] : headers)
    n += k.size() + v.size() + 32;
  for (const auto& [k, v] : vary)
    n += k.size() + v.size() + 32;
  for (const auto& t : tags)
    n += t.size() + 32;
  return n;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "gzip;q=0" is a refusal: it must not share an entry with "gzip".
bool refused(std::string_view params) {
  size_t q = params.find("q=");
  if (q == std::string_view::npos) q = params.find("Q=");
  if (q == std::string_view::npos) return false;
  const std::string_view w = strings::trimSpaces(params.substr(q + 2));
  for (char c : w) {
    if (c >= '1' && c <= '9') return false;
    if (c != '0' && c != '.') break;
  }
  return true;
}

std::string normaliseAcceptEncoding(std::string_view joined) {
  std::vector<std::string> codings;
  strings::forEachListItem(joined, [&](std::string_view item) {
    const size_t semi = item.find(';');
    std::string coding = lower(strings::trimSpaces(item.substr(0, semi)));
    if (coding == "x-gzip") coding = "gzip";
    if (coding.empty() || coding == "identity") return;
    if (semi != std::string_view::npos && refused(item.substr(semi + 1))) return;
    codings.push_back(std::move(coding));
  });
  std::sort(codings.begin(), codings.end());
  codings.erase(std::unique(codings.begin(), codings.end()), codings.end());
  std::string out;
  for (const auto& c : codings) {
    if (!out.empty()) out.push_back(',');
    out.append(c);
  }
  return out;
}

}  // namespace

std::string varyValue(const http::HeaderMap& request_headers, std::string_view name) {
  std::string joined;
  for (const auto& f : request_headers.fields()) {
    if (!http::iequals(f.name, name)) continue;
    if (!joined.empty()) joined.append(", ");
    joined.append(f.value);
  }
  if (http::iequals(name, "accept-encoding")) return normaliseAcceptEncoding(joined);
  return joined;
}

bool varyMatches(const Entry& entry, const http::HeaderMap& request_headers) {
  for (const auto& [name, value] : entry.vary) {
    if (varyValue(request_headers, name) != value) return false;
  }
  return true;
}

}  // namespace gatehouse::cache

#include "config/lb_options_loader.h"

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "config/loader.h"
#include "config/syntax.h"

namespace gatehouse::config {
namespace {

constexpr std::string_view kLbOptionKeys[] = {"hash_key",          "fallback",     "ring_replicas",
                                              "maglev_table_size", "bounded_load", "ewma_decay",
                                              "choice_count"};
constexpr std::string_view kHashKeyKeys[] = {"header", "cookie", "query"};
constexpr std::string_view kHashKeyScalars[] = {"source_ip", "source_ip_port", "path", "sni"};
constexpr std::string_view kLbFallbacks[] = {"round_robin", "random"};

// Which algorithms read each lb option; giving one to another algorithm is an error, since it
// would be silently ignored.
constexpr std::string_view kHashingLbs[] = {"ring_hash", "maglev"};
constexpr std::string_view kKeyedLbs[] = {"ring_hash", "maglev", "ip_hash"};
constexpr std::string_view kRingLbs[] = {"ring_hash", "ip_hash"};
constexpr std::string_view kMaglevLbs[] = {"maglev"};
constexpr std::string_view kLeastTimeLbs[] = {"least_time"};
constexpr std::string_view kLeastLoadedLbs[] = {"least_conn", "least_time"};
struct LbOptionScope {
  std::string_view option;
  std::span<const std::string_view> algorithms;
};
constexpr LbOptionScope kLbOptionScopes[] = {
    {"hash_key", kHashingLbs},         {"fallback", kKeyedLbs},     {"ring_replicas", kRingLbs},
    {"maglev_table_size", kMaglevLbs}, {"bounded_load", kKeyedLbs}, {"ewma_decay", kLeastTimeLbs},
    {"choice_count", kLeastLoadedLbs}};

constexpr int64_t kMaxRingReplicas = 10000;
constexpr int64_t kMinMaglevTableSize = 7;
constexpr int64_t kMaxMaglevTableSize = 5000011;  // a prime; 20 MB of table
constexpr double kMaxBoundedLoad = 100;
constexpr int64_t kMaxChoiceCount = 100;

bool contains(std::span<const std::string_view> list, std::string_view s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

bool isPrime(int64_t n) {
  if (n < 2) return false;
  for (int64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

// A query parameter name as it appears in the query string: no separators, spaces or controls.
bool isQueryParamName(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    return c == '&' || c == '=' || c == '#' || c == ' ' || static_cast<unsigned char>(c) < 0x20 ||
           c == 0x7f;
  });
}

// `source_ip`, `source_ip_port`, `path`, `sni`, or a map with exactly one of header, cookie, query.
void readHashKey(Diagnostics& diag, const YAML::Node& node, const std::string& path, HashKey& out) {
  if (!node.IsMap()) {
    std::optional<std::string> text = readString(diag, node, path);
    if (!text) return;
    if (*text == "source_ip") {
      out = HashKey{HashKey::Source::kSourceIp, {}};
    } else if (*text == "source_ip_port") {
      out = HashKey{HashKey::Source::kSourceAddress, {}};
    } else if (*text == "path") {
      out = HashKey{HashKey::Source::kPath, {}};
    } else if (*text == "sni") {
      out = HashKey{HashKey::Source::kSni, {}};
    } else {
      diag.add(node, path,
               "unknown hash key '" + *text + "'; expected " + joinNames(kHashKeyScalars) +
                   ", or a map with one of: " + joinNames(kHashKeyKeys));
    }
    return;
  }
  MapReader m(diag, node, path, kHashKeyKeys);
  size_t given = 0;
  for (std::string_view k : kHashKeyKeys) {
    if (m.has(k)) ++given;
  }
  if (given != 1) {
    diag.add(node, path, "needs exactly one of: " + joinNames(kHashKeyKeys));
    return;
  }
  HashKey key;
  std::string_view option;
  if (m.has("header")) {
    key.source = HashKey::Source::kHeader;
    option = "header";
  } else if (m.has("cookie")) {
    key.source = HashKey::Source::kCookie;
    option = "cookie";
  } else {
    key.source = HashKey::Source::kQuery;
    option = "query";
  }
  const YAML::Node& value = *m.find(option);
  std::optional<std::string> name = readString(diag, value, m.path(option));
  if (!name) return;
  bool valid = key.source == HashKey::Source::kQuery ? isQueryParamName(*name) : isHttpToken(*name);
  if (!valid) {
    diag.add(value, m.path(option),
             "'" + *name + "' is not a valid " + std::string(option) + " name");
    return;
  }
  // Header lookups ignore case; cookie and parameter names are case-sensitive.
  key.name = key.source == HashKey::Source::kHeader ? toLowerAscii(*name) : std::move(*name);
  out = std::move(key);
}

}  // namespace

void readLbOptions(Diagnostics& diag, const YAML::Node& node, const std::string& path, Cluster& c) {
  MapReader m(diag, node, path, kLbOptionKeys);
  if (!m.isMap()) return;
  LbOptions& o = c.lb_options;
  if (contains(kLbAlgorithms, c.lb)) {
    for (const LbOptionScope& scope : kLbOptionScopes) {
      const YAML::Node* key = m.findKey(scope.option);
      if (!key || contains(scope.algorithms, c.lb)) continue;
      // Appended rather than "'" + std::string(...): GCC 12 at -O3 warns falsely (-Wrestrict,
      // bug 105651) on a literal plus a temporary string.
      std::string message(1, '\'');
      message.append(scope.option).append("' does not apply to lb '").append(c.lb);
      message.append("'; it is used by: ").append(joinNames(scope.algorithms));
      diag.add(*key, m.path(scope.option), std::move(message));
    }
  }
  if (const YAML::Node* v = m.find("hash_key")) {
    readHashKey(diag, *v, m.path("hash_key"), o.hash_key);
  }
  if (const YAML::Node* v = m.find("fallback")) {
    std::optional<std::string> text = readString(diag, *v, m.path("fallback"));
    if (text && *text == "random") {
      o.fallback = LbFallback::kRandom;
    } else if (text && *text == "round_robin") {
      o.fallback = LbFallback::kRoundRobin;
    } else if (text) {
      diag.add(*v, m.path("fallback"),
               "unknown fallback '" + *text + "'; expected one of: " + joinNames(kLbFallbacks));
    }
  }
  m.readInt("ring_replicas", 1, kMaxRingReplicas, o.ring_replicas);
  if (const YAML::Node* v = m.find("maglev_table_size")) {
    std::string p = m.path("maglev_table_size");
    std::optional<int64_t> size = readInt(diag, *v, p, kMinMaglevTableSize, kMaxMaglevTableSize);
    if (size && !isPrime(*size)) {
      diag.add(*v, p, "must be a prime number (like 65537 or 655373), got " + v->Scalar());
    } else if (size && static_cast<size_t>(*size) < c.endpoints.size()) {
      diag.add(*v, p,
               "must be at least the number of endpoints (" + std::to_string(c.endpoints.size()) +
                   "); 100 times that is better");
    } else if (size) {
      o.maglev_table_size = static_cast<uint32_t>(*size);
    }
  }
  if (const YAML::Node* v = m.find("bounded_load")) {
    std::optional<double> factor;
    if (v->IsScalar()) factor = parseDecimal(v->Scalar());
    if (!factor) {
      diag.add(*v, m.path("bounded_load"),
               "expected a decimal number like 1.25, got " + describe(*v));
    } else if (*factor < 1.0 || *factor > kMaxBoundedLoad) {
      diag.add(*v, m.path("bounded_load"),
               "must be between 1.0 and 100 (a host may take this many times the average "
               "load), got " +
                   v->Scalar());
    } else {
      o.bounded_load = *factor;
    }
  }
  m.readDuration("ewma_decay", Millis(1), kMaxDuration, o.ewma_decay);
  m.readInt("choice_count", 0, kMaxChoiceCount, o.choice_count);
}

}  // namespace gatehouse::config

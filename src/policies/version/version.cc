#include "policies/version/version.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "cache/freshness.h"
#include "core/calendar.h"
#include "lb/hash_key.h"
#include "metrics/per_thread.h"
#include "metrics/registry.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::version {
namespace {

enum class Source { kPath, kHeader, kMediaType, kQuery };

struct Version {
  std::string name;
  std::string cluster;                // empty: the route's own
  std::string prefix;                 // prepended to the path (after a /vN is stripped)
  std::optional<int64_t> deprecated;  // unix seconds
  std::optional<int64_t> sunset;
  std::string link;         // rel="deprecation"
  std::string sunset_link;  // rel="sunset"
  bool gone_after_sunset = false;
  // Precomputed header values.
  std::string deprecation_value, sunset_value, link_value;
};

struct Config {
  std::vector<Source> sources = {Source::kPath};
  std::string header = "accept-version";
  std::string media_param = "version";
  std::string query = "version";
  std::string path_prefix = "v";  // "/v2/..." -> "2"
  bool strip_path = true;
  std::vector<Version> versions;
  size_t default_version = 0;
  bool reject_unknown = false;
  std::string forward_header;  // the chosen version, to the upstream; empty: none
  size_t max_consumers = 100;
  std::string scope;
};

// Calls to deprecated versions, by (route, version, consumer). Each worker counts in its own
// shard, under the shard's own lock (taken by anyone else only at a scrape), so workers never
// wait for each other. At most max_consumers distinct consumers per (route, version) and shard;
// the scrape keeps the max_consumers busiest of the sums and counts the rest as "_other".
// Anonymous calls count as "-".
class DeprecatedCalls {
 public:
  static DeprecatedCalls& instance() {
    static DeprecatedCalls* d = std::make_unique<DeprecatedCalls>().release();
    return *d;
  }
  void count(const std::string& scope, const std::string& version, std::string_view consumer,
             size_t max_consumers) {
    Shard& shard = shards_.local();
    std::lock_guard lock(shard.mu);
    Series& per = shard.counts[{scope, version}];
    per.max_consumers = max_consumers;
    std::string who = consumer.empty() ? "-" : std::string(consumer);
    auto it = per.by_consumer.find(who);
    if (it == per.by_consumer.end() && per.by_consumer.size() >= max_consumers) who = "_other";
    ++per.by_consumer[who];
  }
  void collect(metrics::Scrape& scrape) {
    static constexpr metrics::Family kFamily{
        "gatehouse_deprecated_version_requests_total",
        "Requests to deprecated API versions, by route, version and consumer.",
        metrics::Type::kCounter,
        {"route", "version", "consumer"}};
    std::map<std::pair<std::string, std::string>, Series> sums;
    shards_.forEach([&](const Shard& shard) {
      std::lock_guard lock(shard.mu);
      for (const auto& [key, per] : shard.counts) {
        Series& sum = sums[key];
        sum.max_consumers = per.max_consumers;
        for (const auto& [who, n] : per.by_consumer)
          sum.by_consumer[who] += n;
      }
    });
    auto& f = scrape.family(kFamily);
    for (auto& [key, sum] : sums) {
      for (const auto& [who, n] : capped(std::move(sum)))
        f.add({key.first, key.second, who}, n);
    }
  }

 private:
  struct Series {
    size_t max_consumers = 0;
    std::map<std::string, uint64_t> by_consumer;
  };
  struct Shard {
    mutable std::mutex mu;
    std::map<std::pair<std::string, std::string>, Series> counts;
  };

  // The busiest max_consumers consumers of the sums, the others folded into "_other".
  static std::map<std::string, uint64_t> capped(Series sum) {
    uint64_t other = 0;
    if (auto it = sum.by_consumer.find("_other"); it != sum.by_consumer.end()) {
      other = it->second;
      sum.by_consumer.erase(it);
    }
    std::vector<std::pair<std::string, uint64_t>> by_count(sum.by_consumer.begin(),
                                                           sum.by_consumer.end());
    std::stable_sort(by_count.begin(), by_count.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::map<std::string, uint64_t> out;
    for (size_t i = 0; i < by_count.size(); ++i) {
      if (i < sum.max_consumers) {
        out.emplace(std::move(by_count[i].first), by_count[i].second);
      } else {
        other += by_count[i].second;
      }
    }
    if (other > 0) out["_other"] = other;
    return out;
  }

  metrics::PerThread<Shard> shards_;
};

std::string lowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

int64_t unixNow() {
  return static_cast<int64_t>(std::time(nullptr));
}

class VersionFilter final : public http::StatelessFilter {
 public:
  explicit VersionFilter(Config c) : c_(std::move(c)) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    size_t strip = 0;  // bytes of a "/v2" to remove from the path
    std::optional<std::string_view> asked;
    for (Source s : c_.sources) {
      asked = fromSource(ctx.request, s, strip);
      if (asked) break;
    }
    const Version* v = &c_.versions[c_.default_version];
    if (asked) {
      const Version* found = lookup(*asked);
      if (!found && c_.reject_unknown) {
        return ctx.respondError(400, "unknown API version '" + std::string(*asked) + "'");
      }
      if (found) {
        v = found;
      } else {
        strip = 0;  // an unknown "/v9" stays in the path for the default version
      }
    }
    if (v->deprecated) {
      if (v->gone_after_sunset && v->sunset && unixNow() >= *v->sunset) {
        ctx.respondError(410, "API version '" + v->name + "' is gone");
        addDeprecationHeaders(ctx.local_reply.headers, *v);
        return http::Verdict::kRespond;
      }
      DeprecatedCalls::instance().count(c_.scope, v->name, ctx.consumer, c_.max_consumers);
    }
    if (strip > 0 || !v->prefix.empty()) {
      std::string path = v->prefix;
      std::string_view rest = std::string_view(ctx.request.path).substr(strip);
      if (rest.empty() || rest[0] != '/') path += '/';
      path += rest;
      ctx.request.path = std::move(path);
    }
    if (!v->cluster.empty()) ctx.upstream_cluster = v->cluster;
    if (!c_.forward_header.empty()) ctx.request.headers.set(c_.forward_header, v->name);
    ctx.setVar("api_version", v->name);
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) const override {
    const std::string_view name = ctx.var("api_version");
    if (const Version* v = lookup(name); v && v->deprecated) {
      addDeprecationHeaders(ctx.response.headers, *v);
    }
    return http::Verdict::kContinue;
  }

 private:
  static void addDeprecationHeaders(http::HeaderMap& h, const Version& v) {
    h.set("deprecation", v.deprecation_value);
    if (!v.sunset_value.empty()) h.set("sunset", v.sunset_value);
    if (!v.link_value.empty()) h.add("link", v.link_value);
  }

  const Version* lookup(std::string_view name) const {
    for (const auto& v : c_.versions) {
      if (v.name == name) return &v;
    }
    // "v2" where the versions are named "2", and the other way round.
    if (!c_.path_prefix.empty() && name.substr(0, c_.path_prefix.size()) == c_.path_prefix) {
      name.remove_prefix(c_.path_prefix.size());
      for (const auto& v : c_.versions) {
        if (v.name == name) return &v;
      }
    }
    return nullptr;
  }

  std::optional<std::string_view> fromSource(const http::Request& req, Source s,
                                             size_t& strip) const {
    switch (s) {
      case Source::kPath: {
        std::string_view p = req.path;
        const std::string_view seg_prefix = c_.path_prefix;
        if (p.size() < 2 + seg_prefix.size() || p.substr(1, seg_prefix.size()) != seg_prefix) {
          return std::nullopt;
        }
        const size_t end = std::min(p.find('/', 1), p.size());
        std::string_view name = p.substr(1 + seg_prefix.size(), end - 1 - seg_prefix.size());
        if (name.empty()) return std::nullopt;
        if (c_.strip_path) strip = end;
        return name;
      }
      case Source::kHeader: {
        const http::HeaderField* f = req.headers.find(c_.header);
        if (!f || f->value.empty()) return std::nullopt;
        return std::string_view(f->value);
      }
      case Source::kMediaType: {
        const http::HeaderField* f = req.headers.find("accept");
        if (!f) return std::nullopt;
        return mediaTypeParam(f->value, c_.media_param);
      }
      case Source::kQuery:
        return lb::findQueryParam(req.query, c_.query);
    }
    return std::nullopt;
  }

  const Config c_;
};

class VersionFactory final : public http::StatelessFactory<VersionFilter> {
 public:
  VersionFactory(Config c, std::vector<std::string> clusters)
      : http::StatelessFactory<VersionFilter>(std::move(c)), clusters_(std::move(clusters)) {}
  std::vector<std::string> routableClusters() const override { return clusters_; }

 private:
  std::vector<std::string> clusters_;
};

Status readDate(const YAML::Node& n, const std::string& what, std::optional<int64_t>& out) {
  if (!n) return {};
  auto s = readString(n, what);
  if (!s.ok()) return s.error();
  out = parseDate(*s);
  if (!out) return configError(what + ": expected a date like 2026-06-30 or 2026-06-30T00:00:00Z");
  return {};
}

Status readVersion(const std::string& name, const YAML::Node& n, const http::PolicyContext& ctx,
                   Version& v) {
  const std::string what = "versions." + name;
  v.name = name;
  if (!n || n.IsNull()) return {};
  if (!n.IsMap()) return configError(what + ": expected a map");
  if (auto st = checkKeys(n, {"cluster", "prefix", "deprecated", "sunset", "link", "sunset_link",
                              "gone_after_sunset"});
      !st.ok()) {
    return prefixed(what, st.error());
  }
  if (auto st = readOptional(n, "cluster", v.cluster, what + ".cluster"); !st.ok()) return st;
  if (!v.cluster.empty() && ctx.clusters && !ctx.clusters->hasCluster(v.cluster)) {
    return configError(what + ".cluster: unknown cluster '" + v.cluster + "'");
  }
  if (auto st = readOptional(n, "prefix", v.prefix, what + ".prefix"); !st.ok()) return st;
  if (!v.prefix.empty() && (v.prefix[0] != '/' || v.prefix.back() == '/')) {
    return configError(what + ".prefix: expected a path like /api/v2 (no trailing /)");
  }
  if (auto st = readDate(n["deprecated"], what + ".deprecated", v.deprecated); !st.ok()) return st;
  if (auto st = readDate(n["sunset"], what + ".sunset", v.sunset); !st.ok()) return st;
  if (auto st = readOptional(n, "link", v.link, what + ".link"); !st.ok()) return st;
  if (auto st = readOptional(n, "sunset_link", v.sunset_link, what + ".sunset_link"); !st.ok()) {
    return st;
  }
  if (auto st = readOptional(n, "gone_after_sunset", v.gone_after_sunset); !st.ok()) return st;
  if ((v.sunset || !v.link.empty() || !v.sunset_link.empty() || v.gone_after_sunset) &&
      !v.deprecated) {
    return configError(what + ": sunset, link and gone_after_sunset need deprecated: DATE");
  }
  if (v.gone_after_sunset && !v.sunset)
    return configError(what + ".gone_after_sunset: needs sunset");
  for (const auto& l : {v.link, v.sunset_link}) {
    if (!isHeaderValue(l) || l.find_first_of("<>") != std::string::npos) {
      return configError(what + ": a link must be a plain URL");
    }
  }
  if (v.deprecated) v.deprecation_value = "@" + std::to_string(*v.deprecated);
  if (v.sunset) v.sunset_value = cache::formatHttpDate(*v.sunset);
  if (!v.link.empty()) v.link_value = "<" + v.link + ">; rel=\"deprecation\"; type=\"text/html\"";
  if (!v.sunset_link.empty()) {
    if (!v.link_value.empty()) v.link_value += ", ";
    v.link_value += "<" + v.sunset_link + ">; rel=\"sunset\"; type=\"text/html\"";
  }
  return {};
}

Status readSources(const YAML::Node& n, Config& c) {
  auto list = readStringList(n, "from");
  if (!list.ok()) return list.error();
  if (list->empty()) return configError("from: expected path, header, media_type or query");
  c.sources.clear();
  for (size_t i = 0; i < list->size(); ++i) {
    YAML::Node item((*list)[i]);
    auto s = readChoice<Source>(item, "from[" + std::to_string(i) + "]",
                                {{"path", Source::kPath},
                                 {"header", Source::kHeader},
                                 {"media_type", Source::kMediaType},
                                 {"query", Source::kQuery}},
                                "source");
    if (!s.ok()) return s.error();
    c.sources.push_back(*s);
  }
  return {};
}

}  // namespace

std::optional<int64_t> parseDate(std::string_view t) {
  auto num = [&](size_t pos, size_t len) -> std::optional<int64_t> {
    if (pos + len > t.size()) return std::nullopt;
    int64_t v = 0;
    auto [end, ec] = std::from_chars(t.data() + pos, t.data() + pos + len, v);
    if (ec != std::errc() || end != t.data() + pos + len) return std::nullopt;
    return v;
  };
  if (!t.empty() && t[0] == '@') return num(1, t.size() - 1);
  if (t.size() < 10 || t[4] != '-' || t[7] != '-') return std::nullopt;
  auto y = num(0, 4), mo = num(5, 2), d = num(8, 2);
  if (!y || !mo || !d || *mo < 1 || *mo > 12 || *d < 1 || *d > 31) return std::nullopt;
  int64_t s = cal::daysFromCivil(*y, static_cast<unsigned>(*mo), static_cast<unsigned>(*d)) * 86400;
  if (t.size() == 10) return s;
  if (t.size() < 20 || (t[10] != 'T' && t[10] != 't' && t[10] != ' ') || t[13] != ':' ||
      t[16] != ':') {
    return std::nullopt;
  }
  auto h = num(11, 2), mi = num(14, 2), se = num(17, 2);
  if (!h || !mi || !se || *h > 23 || *mi > 59 || *se > 60) return std::nullopt;
  s += *h * 3600 + *mi * 60 + *se;
  std::string_view zone = t.substr(19);
  if (zone == "Z" || zone == "z") return s;
  if (zone.size() != 6 || (zone[0] != '+' && zone[0] != '-') || zone[3] != ':') return std::nullopt;
  auto zh = num(20, 2), zm = num(23, 2);
  if (!zh || !zm) return std::nullopt;
  const int64_t off = *zh * 3600 + *zm * 60;
  return zone[0] == '+' ? s - off : s + off;
}

std::optional<std::string_view> mediaTypeParam(std::string_view accept, std::string_view name) {
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
      s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
      s.remove_suffix(1);
    return s;
  };
  while (!accept.empty()) {
    const size_t comma = accept.find(',');
    std::string_view range = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view{} : accept.substr(comma + 1);
    size_t semi = range.find(';');
    while (semi != std::string_view::npos) {
      range.remove_prefix(semi + 1);
      semi = range.find(';');
      std::string_view param = trim(range.substr(0, semi));
      const size_t eq = param.find('=');
      if (eq == std::string_view::npos) continue;
      std::string_view key = trim(param.substr(0, eq));
      if (key.size() != name.size() || lowerCase(key) != name) continue;
      std::string_view value = trim(param.substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      if (!value.empty()) return value;
    }
  }
  return std::nullopt;
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  if (!config || !config.IsMap()) return configError("expected a map with 'versions'");
  if (auto st = checkKeys(
          config, {"from", "header", "media_type_param", "query", "path_prefix", "strip_path",
                   "versions", "default", "unknown", "forward_header", "max_tracked_consumers"});
      !st.ok()) {
    return st.error();
  }
  Config c;
  c.scope = ctx.scope.empty() ? "-" : ctx.scope;
  if (config["from"]) {
    if (auto st = readSources(config["from"], c); !st.ok()) return st.error();
  }
  if (auto st = readOptional(config, "header", c.header); !st.ok()) return st.error();
  if (!isHeaderName(c.header)) return configError("header: bad header name");
  c.header = lowerCase(c.header);
  if (auto st = readOptional(config, "media_type_param", c.media_param); !st.ok())
    return st.error();
  c.media_param = lowerCase(c.media_param);
  if (auto st = readOptional(config, "query", c.query); !st.ok()) return st.error();
  if (auto st = readOptional(config, "path_prefix", c.path_prefix); !st.ok()) return st.error();
  if (auto st = readOptional(config, "strip_path", c.strip_path); !st.ok()) return st.error();
  if (auto st = readOptional(config, "forward_header", c.forward_header); !st.ok()) {
    return st.error();
  }
  if (!c.forward_header.empty() && !isHeaderName(c.forward_header)) {
    return configError("forward_header: bad header name");
  }
  const YAML::Node& versions = config["versions"];
  if (!versions || !versions.IsMap() || versions.size() == 0) {
    return configError("versions: expected a map of version name: options");
  }
  std::vector<std::string> clusters;
  for (const auto& kv : versions) {
    Version v;
    if (auto st = readVersion(kv.first.as<std::string>(), kv.second, ctx, v); !st.ok()) {
      return st.error();
    }
    if (!v.cluster.empty()) {
      clusters.push_back(v.cluster);
    } else if (ctx.clusters && ctx.route_cluster.empty()) {
      return configError("versions." + v.name + ".cluster: required (the route has no cluster)");
    }
    c.versions.push_back(std::move(v));
  }
  if (!config["default"])
    return configError("default: required (the version of a request that names none)");
  auto def = readName(config["default"], "default");
  if (!def.ok()) return def.error();
  c.default_version = c.versions.size();
  for (size_t i = 0; i < c.versions.size(); ++i) {
    if (c.versions[i].name == *def) c.default_version = i;
  }
  if (c.default_version == c.versions.size()) {
    return configError("default: '" + *def + "' is not one of the versions");
  }
  if (config["unknown"]) {
    auto u = readChoice<bool>(config["unknown"], "unknown", {{"reject", true}, {"default", false}});
    if (!u.ok()) return u.error();
    c.reject_unknown = *u;
  }
  if (config["max_tracked_consumers"]) {
    auto n = readInt(config["max_tracked_consumers"], "max_tracked_consumers", 1, 10000);
    if (!n.ok()) return n.error();
    c.max_consumers = static_cast<size_t>(*n);
  }
  static std::once_flag registered;
  std::call_once(registered, [] {
    metrics::Registry::process().add(
        "version", [](metrics::Scrape& s) { DeprecatedCalls::instance().collect(s); });
  });
  return http::FilterFactoryPtr(
      std::make_shared<VersionFactory>(std::move(c), std::move(clusters)));
}

}  // namespace gatehouse::policies::version

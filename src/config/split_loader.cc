#include "config/split_loader.h"

#include <algorithm>
#include <cctype>

#include "config/syntax.h"

namespace gatehouse::config {
namespace {

constexpr std::string_view kWeightedKeys[] = {"name", "weight"};
constexpr std::string_view kCanaryKeys[] = {"header", "cookie", "value", "cluster"};
constexpr std::string_view kMirrorKeys[] = {"cluster", "percent", "max_body_bytes"};
constexpr int64_t kMaxSplitWeight = 1000000;
constexpr size_t kMaxSplits = 64;

bool knownCluster(const MapReader& m, std::string_view key, const std::string& name,
                  const std::set<std::string, std::less<>>& clusters) {
  if (clusters.contains(name)) return true;
  m.diag().add(*m.find(key), m.path(key), "unknown cluster '" + name + "'");
  return false;
}

void readWeighted(const MapReader& route, Route& r,
                  const std::set<std::string, std::less<>>& clusters) {
  const YAML::Node& node = *route.find("clusters");
  const std::string path = route.path("clusters");
  Diagnostics& diag = route.diag();
  if (!expectList(diag, node, path)) return;
  if (node.size() == 0 || node.size() > kMaxSplits) {
    diag.add(node, path, "expected 1 to 64 weighted clusters");
    return;
  }
  uint64_t total = 0;
  size_t index = 0;
  for (const auto& item : node) {
    MapReader m(diag, item, indexPath(path, index++), kWeightedKeys);
    if (!m.isMap()) continue;
    WeightedCluster wc;
    if (!m.require("name") || !m.require("weight")) continue;
    m.read("name", wc.name);
    m.readInt("weight", 0, kMaxSplitWeight, wc.weight);
    if (!knownCluster(m, "name", wc.name, clusters)) continue;
    if (std::any_of(r.clusters.begin(), r.clusters.end(),
                    [&](const WeightedCluster& x) { return x.name == wc.name; })) {
      diag.add(*m.find("name"), m.path("name"), "cluster '" + wc.name + "' is listed twice");
      continue;
    }
    total += wc.weight;
    r.clusters.push_back(std::move(wc));
  }
  if (!r.clusters.empty() && total == 0) {
    diag.add(node, path, "the weights add up to 0: at least one must be positive");
  }
}

void readCanary(const MapReader& route, Route& r,
                const std::set<std::string, std::less<>>& clusters) {
  const YAML::Node& node = *route.find("canary");
  const std::string path = route.path("canary");
  Diagnostics& diag = route.diag();
  forEachMap(diag, node, path, kCanaryKeys, [&](const MapReader& m) {
    CanaryRule rule;
    if (m.has("header") == m.has("cookie")) {
      diag.add(m.node(), m.path(), "a canary rule needs exactly one of 'header' and 'cookie'");
      return;
    }
    if (!m.require("cluster")) return;
    m.read("cluster", rule.cluster);
    if (!knownCluster(m, "cluster", rule.cluster, clusters)) return;
    const std::string_view key = m.has("header") ? "header" : "cookie";
    std::string name;
    m.read(key, name);
    if (!isHttpToken(name)) {
      diag.add(*m.find(key), m.path(key),
               "'" + name + "' is not a valid " + std::string(key) + " name");
      return;
    }
    if (key == "header") {
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      rule.header = std::move(name);
    } else {
      rule.cookie = std::move(name);
    }
    m.read("value", rule.value, true);
    r.canary.push_back(std::move(rule));
  });
}

void readMirror(const MapReader& route, Route& r,
                const std::set<std::string, std::less<>>& clusters) {
  MapReader m(route.diag(), *route.find("mirror"), route.path("mirror"), kMirrorKeys);
  if (!m.isMap() || !m.require("cluster")) return;
  Mirror mirror;
  m.read("cluster", mirror.cluster);
  if (!knownCluster(m, "cluster", mirror.cluster, clusters)) return;
  if (const YAML::Node* v = m.find("percent")) {
    std::optional<std::string> text = readString(m.diag(), *v, m.path("percent"));
    std::optional<double> d = text ? parseDecimal(*text) : std::nullopt;
    if (text && (!d || *d > 100)) {
      m.diag().add(*v, m.path("percent"),
                   "expected a number from 0 to 100 (e.g. 12.5), got '" + *text + "'");
      return;
    }
    if (d) mirror.percent = *d;
  }
  m.readSize("max_body_bytes", 0, 16u << 20, mirror.max_body_bytes);
  r.mirror = std::move(mirror);
}

}  // namespace

void readTrafficSplit(const MapReader& m, Route& route,
                      const std::set<std::string, std::less<>>& clusters) {
  if (m.has("clusters")) readWeighted(m, route, clusters);
  if (m.has("canary")) readCanary(m, route, clusters);
  if (m.has("mirror")) readMirror(m, route, clusters);
}

}  // namespace gatehouse::config

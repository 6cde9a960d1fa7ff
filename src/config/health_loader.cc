#include "config/health_loader.h"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <optional>
#include <string_view>

#include "config/syntax.h"

namespace gatehouse::config {
namespace {

constexpr std::string_view kHealthCheckKeys[] = {"type",
                                                 "interval",
                                                 "timeout",
                                                 "jitter",
                                                 "path",
                                                 "method",
                                                 "host",
                                                 "expected_status",
                                                 "body_contains",
                                                 "healthy_threshold",
                                                 "unhealthy_threshold",
                                                 "grpc_service",
                                                 "send",
                                                 "expect"};
constexpr std::string_view kHttpOnlyKeys[] = {"path", "method", "host", "expected_status",
                                              "body_contains"};
constexpr std::string_view kHealthCheckTypes[] = {"http", "tcp", "grpc"};
constexpr std::string_view kOutlierKeys[] = {"consecutive_failures", "base_ejection_time",
                                             "max_ejection_time", "max_ejection_percent",
                                             "success_rate"};
constexpr std::string_view kSuccessRateKeys[] = {"interval", "minimum_hosts", "request_volume",
                                                 "stdev_factor"};
constexpr std::string_view kStickyKeys[] = {"cookie",    "ttl",       "path", "secure",
                                            "http_only", "same_site", "key"};
constexpr std::string_view kSameSite[] = {"lax", "strict", "none"};
constexpr std::string_view kSlowStartKeys[] = {"window", "min_weight_percent"};
constexpr std::string_view kLocalityKeys[] = {"local_zone", "min_healthy_percent"};
constexpr std::string_view kNodeKeys[] = {"zone"};

constexpr int64_t kMaxThreshold = 1000;
constexpr size_t kMaxBodyNeedle = 4096;
constexpr Millis kMinInterval{10};

// "200", 200 or "200-299"; status codes 100..599.
std::optional<std::pair<int, int>> parseStatusRange(std::string_view text) {
  auto dash = text.find('-');
  std::string_view lo_text = text.substr(0, dash);
  std::string_view hi_text = dash == std::string_view::npos ? lo_text : text.substr(dash + 1);
  std::optional<int64_t> lo = parseInt(lo_text);
  std::optional<int64_t> hi = parseInt(hi_text);
  if (!lo || !hi || *lo < 100 || *hi > 599 || *lo > *hi) return std::nullopt;
  return std::make_pair(static_cast<int>(*lo), static_cast<int>(*hi));
}

void readStatuses(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                  std::vector<std::pair<int, int>>& out) {
  std::vector<std::pair<int, int>> ranges;
  auto one = [&](const YAML::Node& item, const std::string& item_path) {
    if (!item.IsScalar()) {
      diag.add(item, item_path,
               "expected a status like 200 or a range like 200-299, got " + describe(item));
      return;
    }
    auto r = parseStatusRange(item.Scalar());
    if (!r) {
      diag.add(item, item_path,
               "expected a status (100-599) or a range like 200-299, got '" + item.Scalar() + "'");
      return;
    }
    ranges.push_back(*r);
  };
  if (node.IsSequence()) {
    if (node.size() == 0) {
      diag.add(node, path, "needs at least one status or range");
      return;
    }
    size_t index = 0;
    for (const auto& item : node)
      one(item, indexPath(path, index++));
  } else {
    one(node, path);
  }
  if (!ranges.empty()) out = std::move(ranges);
}

}  // namespace

void readHealthCheck(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                     Cluster& c) {
  MapReader m(diag, node, path, kHealthCheckKeys);
  if (!m.isMap()) return;
  HealthCheck hc;
  if (const YAML::Node* v = m.find("type")) {
    std::optional<std::string> type = readString(diag, *v, m.path("type"));
    if (type && *type == "tcp") {
      hc.kind = HealthCheck::Kind::kTcp;
    } else if (type && *type == "grpc") {
      hc.kind = HealthCheck::Kind::kGrpc;
      if (c.protocol == "http1" || c.protocol == "auto") {
        diag.add(*v, m.path("type"),
                 "grpc health checks need an HTTP/2 cluster (protocol h2 or h2c)");
      }
    } else if (type && *type != "http") {
      diag.add(*v, m.path("type"),
               "unknown health check type '" + *type +
                   "'; expected one of: " + joinNames(kHealthCheckTypes));
    }
  }
  if (hc.kind != HealthCheck::Kind::kHttp) {
    for (std::string_view k : kHttpOnlyKeys) {
      if (const YAML::Node* key = m.findKey(k)) {
        std::string message(1, '\'');
        message.append(k).append("' applies to type http only");
        diag.add(*key, m.path(k), std::move(message));
      }
    }
  }
  m.readDuration("interval", kMinInterval, kMaxDuration, hc.interval);
  m.readDuration("timeout", Millis(1), kMaxDuration, hc.timeout);
  m.readDuration("jitter", Millis(0), kMaxDuration, hc.jitter);
  if (m.has("timeout") && m.has("interval") && hc.timeout > hc.interval) {
    diag.add(*m.find("timeout"), m.path("timeout"),
             "must not exceed interval (" + formatDuration(hc.interval) + ")");
  }
  m.readInt("healthy_threshold", 1, kMaxThreshold, hc.healthy_threshold);
  if (const YAML::Node* key = m.findKey("grpc_service");
      key && hc.kind != HealthCheck::Kind::kGrpc) {
    diag.add(*key, m.path("grpc_service"), "'grpc_service' applies to type grpc only");
  }
  m.read("grpc_service", hc.grpc_service);
  m.readInt("unhealthy_threshold", 1, kMaxThreshold, hc.unhealthy_threshold);
  m.readChecked(
      "path", hc.path,
      [](const std::string& p) {
        return !p.empty() && p[0] == '/' &&
               p.find_first_of(std::string_view(" \t\r\n\0", 5)) == std::string::npos;
      },
      [](const std::string&) { return "must start with '/' and contain no spaces or controls"; });
  m.readChecked("method", hc.method, isHttpToken, [](const std::string& method) {
    return "'" + method + "' is not a valid HTTP method";
  });
  m.readChecked("host", hc.host, isHostHeaderValue, [](const std::string& host) {
    return "'" + host + "' is not a valid Host header value";
  });
  if (const YAML::Node* v = m.find("expected_status")) {
    readStatuses(diag, *v, m.path("expected_status"), hc.expected_statuses);
  }
  for (std::string_view k : {std::string_view("send"), std::string_view("expect")}) {
    if (const YAML::Node* key = m.findKey(k); key && hc.kind != HealthCheck::Kind::kTcp) {
      diag.add(*key, m.path(k), "'" + std::string(k) + "' applies to type tcp only");
    }
  }
  m.readChecked(
      "send", hc.send, [](const std::string& b) { return b.size() <= kMaxBodyNeedle; },
      [](const std::string&) { return "longer than 4096 bytes"; });
  m.readChecked(
      "expect", hc.expect, [](const std::string& b) { return b.size() <= kMaxBodyNeedle; },
      [](const std::string&) { return "longer than 4096 bytes"; });
  m.readChecked(
      "body_contains", hc.body_contains,
      [](const std::string& needle) { return needle.size() <= kMaxBodyNeedle; },
      [](const std::string&) { return "longer than 4096 bytes"; });
  c.health_check = std::move(hc);
}

void readOutlierDetection(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                          Cluster& c) {
  MapReader m(diag, node, path, kOutlierKeys);
  if (!m.isMap()) return;
  OutlierDetection od;
  if (const YAML::Node* v = m.find("success_rate")) {
    MapReader sm(diag, *v, m.path("success_rate"), kSuccessRateKeys);
    if (sm.isMap()) {
      SuccessRateOutlier sr;
      sm.readDuration("interval", Millis(100), kMaxDuration, sr.interval);
      sm.readInt("minimum_hosts", 1, 100000, sr.minimum_hosts);
      sm.readInt("request_volume", 1, 100000000, sr.request_volume);
      if (const YAML::Node* f = sm.find("stdev_factor")) {
        std::optional<std::string> text = readString(diag, *f, sm.path("stdev_factor"));
        std::optional<double> d = text ? parseDecimal(*text) : std::nullopt;
        if (text && (!d || *d > 100)) {
          diag.add(*f, sm.path("stdev_factor"),
                   "expected a decimal number from 0 to 100 (e.g. 1.9), got '" + *text + "'");
        } else if (d) {
          sr.stdev_factor = *d;
        }
      }
      od.success_rate = sr;
    }
  }
  // 0 turns consecutive-failure ejection off, which leaves something only with success_rate.
  m.readInt("consecutive_failures", od.success_rate ? 0 : 1, kMaxThreshold,
            od.consecutive_failures);
  m.readDuration("base_ejection_time", Millis(1), kMaxDuration, od.base_ejection_time);
  m.readDuration("max_ejection_time", Millis(1), kMaxDuration, od.max_ejection_time);
  if (od.max_ejection_time < od.base_ejection_time) {
    const YAML::Node* at = m.find("max_ejection_time");
    diag.add(
        at ? *at : node, m.path("max_ejection_time"),
        "must not be below base_ejection_time (" + formatDuration(od.base_ejection_time) + ")");
  }
  m.readInt("max_ejection_percent", 0, 100, od.max_ejection_percent);
  c.outlier_detection = od;
}

void readSticky(Diagnostics& diag, const YAML::Node& node, const std::string& path, Cluster& c) {
  MapReader m(diag, node, path, kStickyKeys);
  if (!m.isMap()) return;
  StickySession st;
  m.readChecked("cookie", st.cookie, isHttpToken, [](const std::string& name) {
    return "'" + name + "' is not a valid cookie name";
  });
  m.readDuration("ttl", Millis(0), Millis(400LL * 24 * 3600 * 1000), st.ttl);
  if (st.ttl.count() > 0 && st.ttl < Millis(1000)) {
    diag.add(*m.find("ttl"), m.path("ttl"), "must be 0 (a session cookie) or at least 1s");
  }
  m.readChecked(
      "path", st.path,
      [](const std::string& p) {
        return !p.empty() && p[0] == '/' && p.find_first_of("; \t\r\n") == std::string::npos;
      },
      [](const std::string&) {
        return "must start with '/' and contain no ';', spaces or controls";
      });
  m.read("secure", st.secure);
  m.read("http_only", st.http_only);
  m.readChecked(
      "same_site", st.same_site,
      [](const std::string& ss) {
        return std::find(std::begin(kSameSite), std::end(kSameSite), ss) != std::end(kSameSite);
      },
      [](const std::string& ss) {
        return "unknown value '" + ss + "'; expected one of: " + joinNames(kSameSite);
      });
  if (st.same_site == "none" && !st.secure) {
    diag.add(node, m.path("same_site"), "same_site: none needs secure: true (browsers reject it)");
  }
  m.readChecked(
      "key", st.key, [](const std::string& key) { return key.size() >= 16; },
      [](const std::string&) { return "must be at least 16 characters of secret"; });
  c.sticky = std::move(st);
}

void readSlowStart(Diagnostics& diag, const YAML::Node& node, const std::string& path, Cluster& c) {
  MapReader m(diag, node, path, kSlowStartKeys);
  if (!m.isMap()) return;
  SlowStart ss;
  if (m.require("window")) m.readDuration("window", Millis(1), kMaxDuration, ss.window);
  m.readInt("min_weight_percent", 1, 100, ss.min_weight_percent);
  if (ss.window.count() > 0) c.slow_start = ss;
}

namespace {
std::string zoneProblem(const std::string& zone) {
  return "'" + zone + "' is not a zone name (up to 64 letters, digits, '-', '_', '.')";
}
}  // namespace

bool validZoneName(std::string_view zone) {
  if (zone.empty() || zone.size() > 64) return false;
  return std::all_of(zone.begin(), zone.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
}

void readLocality(Diagnostics& diag, const YAML::Node& node, const std::string& path, Cluster& c) {
  MapReader m(diag, node, path, kLocalityKeys);
  if (!m.isMap()) return;
  Locality loc;
  m.readChecked("local_zone", loc.local_zone, validZoneName, zoneProblem);
  m.readInt("min_healthy_percent", 0, 100, loc.min_healthy_percent);
  c.locality = loc;
}

void readNode(Diagnostics& diag, const YAML::Node& node, NodeOptions& out) {
  MapReader m(diag, node, "node", kNodeKeys);
  if (!m.isMap()) return;
  m.readChecked("zone", out.zone, validZoneName, zoneProblem);
}

}  // namespace gatehouse::config

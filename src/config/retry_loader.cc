#include "config/retry_loader.h"

#include <string_view>

namespace gatehouse::config {
namespace {

constexpr std::string_view kRetryKeys[] = {"attempts", "on", "per_try_timeout", "backoff",
                                           "budget"};
constexpr std::string_view kBackoffKeys[] = {"base", "max"};
constexpr std::string_view kBudgetKeys[] = {"percent", "min_concurrency"};
constexpr std::string_view kConditions[] = {"connect-failure",
                                            "reset",
                                            "timeout",
                                            "gateway-error",
                                            "5xx",
                                            "retriable-4xx",
                                            "a status like 503 or a range like 500-504"};
constexpr int64_t kMaxAttempts = 10;
constexpr int64_t kMaxConcurrency = 100000;

// "503" or "500-504" (400..599: other statuses are not failures).
std::optional<std::pair<int, int>> parseStatuses(std::string_view text) {
  auto dash = text.find('-');
  std::optional<int64_t> lo = parseInt(text.substr(0, dash));
  std::optional<int64_t> hi = dash == std::string_view::npos ? lo : parseInt(text.substr(dash + 1));
  if (!lo || !hi || *lo < 400 || *hi > 599 || *lo > *hi) return std::nullopt;
  return std::make_pair(static_cast<int>(*lo), static_cast<int>(*hi));
}

void readConditions(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                    RetryPolicy& p) {
  if (!expectNonEmptyList(diag, node, path,
                          "needs at least one condition; use attempts: 1 to turn retries off")) {
    return;
  }
  RetryPolicy out = p;
  out.on_connect_failure = out.on_reset = out.on_timeout = false;
  out.statuses.clear();
  size_t index = 0;
  for (const auto& item : node) {
    std::string item_path = indexPath(path, index++);
    std::optional<std::string> c = readString(diag, item, item_path);
    if (!c) continue;
    if (*c == "connect-failure") {
      out.on_connect_failure = true;
    } else if (*c == "reset") {
      out.on_reset = true;
    } else if (*c == "timeout") {
      out.on_timeout = true;
    } else if (*c == "gateway-error") {
      out.on_timeout = true;
      out.statuses.emplace_back(502, 504);
    } else if (*c == "5xx") {
      out.on_connect_failure = out.on_reset = out.on_timeout = true;
      out.statuses.emplace_back(500, 599);
    } else if (*c == "retriable-4xx") {
      out.statuses.emplace_back(409, 409);
    } else if (auto r = parseStatuses(*c)) {
      out.statuses.push_back(*r);
    } else {
      diag.add(item, item_path,
               "unknown retry condition '" + *c + "'; expected one of: " + joinNames(kConditions) +
                   " (statuses 400-599)");
    }
  }
  p = std::move(out);
}

}  // namespace

RetryPolicy readRetry(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  // A written block: Envoy's usual choices.
  RetryPolicy p;
  p.attempts = 3;
  p.on_connect_failure = p.on_reset = p.on_timeout = true;
  p.statuses = {{502, 504}};
  p.backoff_base = Millis(25);
  p.backoff_max = Millis(250);
  MapReader m(diag, node, path, kRetryKeys);
  if (!m.isMap()) return p;
  m.readInt("attempts", 1, kMaxAttempts, p.attempts);
  if (const YAML::Node* v = m.find("on")) readConditions(diag, *v, m.path("on"), p);
  m.readDuration("per_try_timeout", Millis(1), kMaxDuration, p.per_try_timeout);
  if (const YAML::Node* v = m.find("backoff")) {
    MapReader b(diag, *v, m.path("backoff"), kBackoffKeys);
    if (b.isMap()) {
      b.readDuration("base", Millis(0), kMaxDuration, p.backoff_base);
      // Only `base` written: max follows it as 10x (Envoy's default ratio).
      if (b.has("base") && !b.has("max")) p.backoff_max = p.backoff_base * 10;
      b.readDuration("max", Millis(0), kMaxDuration, p.backoff_max);
      if (p.backoff_max < p.backoff_base) {
        const YAML::Node* at = b.find("max") ? b.find("max") : v;
        diag.add(*at, b.path("max"),
                 "must not be below base (" + formatDuration(p.backoff_base) + ")");
      }
    }
  }
  if (const YAML::Node* v = m.find("budget")) {
    MapReader b(diag, *v, m.path("budget"), kBudgetKeys);
    if (b.isMap()) {
      b.readInt("percent", 0, 100, p.budget_percent);
      b.readInt("min_concurrency", 0, kMaxConcurrency, p.budget_min_concurrency);
    }
  }
  return p;
}

}  // namespace gatehouse::config

#include "cache/freshness.h"

#include <algorithm>
#include <cstdio>

#include "core/calendar.h"

namespace gatehouse::cache {
namespace {

constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::string_view kDays[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};

int digits(std::string_view s) {
  if (s.empty()) return -1;
  int v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

int monthOf(std::string_view m) {
  for (int i = 0; i < 12; ++i) {
    if (m == kMonths[i]) return i + 1;
  }
  return -1;
}

std::optional<int64_t> assemble(int year, int month, int day, std::string_view hms) {
  if (hms.size() != 8 || hms[2] != ':' || hms[5] != ':') return std::nullopt;
  const int hh = digits(hms.substr(0, 2)), mm = digits(hms.substr(3, 2)),
            ss = digits(hms.substr(6, 2));
  if (year < 0 || month < 1 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 ||
      ss < 0 || ss > 60) {
    return std::nullopt;
  }
  return cal::daysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) *
             86400 +
         hh * 3600 + mm * 60 + ss;
}

}  // namespace

std::optional<int64_t> parseHttpDate(std::string_view t) {
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (t.size() == 29 && t[3] == ',' && t[4] == ' ' && t[7] == ' ' && t[11] == ' ' && t[16] == ' ' &&
      t[25] == ' ' && t.substr(26) == "GMT") {
    return assemble(digits(t.substr(12, 4)), monthOf(t.substr(8, 3)), digits(t.substr(5, 2)),
                    t.substr(17, 8));
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (t.size() == 24 && t[3] == ' ' && t[7] == ' ' && t[10] == ' ' && t[19] == ' ') {
    std::string_view day = t.substr(8, 2);
    if (day[0] == ' ') day.remove_prefix(1);
    return assemble(digits(t.substr(20, 4)), monthOf(t.substr(4, 3)), digits(day), t.substr(11, 8));
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  const size_t comma = t.find(", ");
  if (comma != std::string_view::npos && t.size() == comma + 24 && t[comma + 4] == '-' &&
      t[comma + 8] == '-' && t[comma + 11] == ' ' && t.substr(comma + 21) == "GMT") {
    int year = digits(t.substr(comma + 9, 2));
    if (year >= 0) year += year < 70 ? 2000 : 1900;
    return assemble(year, monthOf(t.substr(comma + 5, 3)), digits(t.substr(comma + 2, 2)),
                    t.substr(comma + 12, 8));
  }
  return std::nullopt;
}

std::string formatHttpDate(int64_t unix_s) {
  int64_t days = unix_s >= 0 ? unix_s / 86400 : (unix_s - 86399) / 86400;
  const int64_t secs = unix_s - days * 86400;
  int64_t y = 0;
  unsigned m = 0, d = 0;
  cal::civilFromDays(days, y, m, d);
  const int64_t weekday = ((days % 7) + 7) % 7;  // 1970-01-01 was a Thursday
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s, %02u %s %04lld %02lld:%02lld:%02lld GMT",
                kDays[weekday].data(), d, kMonths[m - 1].data(), static_cast<long long>(y),
                static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                static_cast<long long>(secs % 60));
  return buf;
}

bool heuristicallyCacheable(int status) {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501:
      return true;
    default:
      return false;
  }
}

int64_t freshnessLifetime(const CacheControl& cc, const ResponseDates& d, int status,
                          int64_t response_time, const HeuristicPolicy& heuristic,
                          int64_t fallback_s) {
  if (cc.s_maxage != CacheControl::kUnset) return cc.s_maxage;
  if (cc.max_age != CacheControl::kUnset) return cc.max_age;
  const int64_t date = d.date.value_or(response_time);
  if (d.expires) return std::max<int64_t>(0, *d.expires - date);
  if (!heuristicallyCacheable(status)) return 0;
  if (heuristic.enabled && d.last_modified && *d.last_modified < date) {
    return std::min(heuristic.max_s, (date - *d.last_modified) / 10);
  }
  return fallback_s;
}

int64_t initialAge(const ResponseDates& d, int64_t request_time, int64_t response_time) {
  const int64_t apparent = std::max<int64_t>(0, response_time - d.date.value_or(response_time));
  const int64_t response_delay = std::max<int64_t>(0, response_time - request_time);
  return std::max(apparent, d.age + response_delay);
}

}  // namespace gatehouse::cache

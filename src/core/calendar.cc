#include "core/calendar.h"

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <limits>

#include "core/enum_names.h"

namespace gatehouse::cal {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kLastRuleYear = 2200;

Error tzError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

int64_t floorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

bool isLeap(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned daysInMonth(int64_t y, unsigned m) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && isLeap(y) ? 29 : kDays[m - 1];
}

// Big-endian reads from TZif data; `p` is advanced.
struct Reader {
  std::string_view s;
  size_t p = 0;
  bool ok = true;
  int64_t be(size_t n) {
    if (p + n > s.size()) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i)
      v = (v << 8) | static_cast<unsigned char>(s[p + i]);
    p += n;
    // Sign-extend 4-byte values.
    if (n == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
    return static_cast<int64_t>(v);
  }
  void skip(size_t n) {
    if (p + n > s.size()) ok = false;
    p = std::min(s.size(), p + n);
  }
};

// POSIX TZ rule parsing ("std offset [dst [offset] [,start[/time],end[/time]]]").
struct PosixParser {
  std::string_view s;
  size_t p = 0;
  bool name() {
    if (p < s.size() && s[p] == '<') {
      size_t e = s.find('>', p);
      if (e == std::string_view::npos) return false;
      p = e + 1;
      return true;
    }
    size_t b = p;
    while (p < s.size() && ((s[p] >= 'A' && s[p] <= 'Z') || (s[p] >= 'a' && s[p] <= 'z')))
      ++p;
    return p - b >= 3;
  }
  bool num(int64_t& out) {
    size_t b = p;
    out = 0;
    while (p < s.size() && s[p] >= '0' && s[p] <= '9' && p - b < 4)
      out = out * 10 + (s[p++] - '0');
    return p > b;
  }
  // [+-]hh[:mm[:ss]] in seconds.
  bool hms(int64_t& out) {
    int64_t sign = 1;
    if (p < s.size() && (s[p] == '+' || s[p] == '-')) sign = s[p++] == '-' ? -1 : 1;
    int64_t h = 0, m = 0, sec = 0;
    if (!num(h)) return false;
    if (p < s.size() && s[p] == ':') {
      ++p;
      if (!num(m)) return false;
      if (p < s.size() && s[p] == ':') {
        ++p;
        if (!num(sec)) return false;
      }
    }
    out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }
  bool at(char c) {
    if (p < s.size() && s[p] == c) {
      ++p;
      return true;
    }
    return false;
  }
};

struct DateRule {
  char kind = 'M';  // 'M' month.week.day, 'J' 1-365 without Feb 29, 'n' 0-365 with it
  int64_t a = 0, b = 0, c = 0;
  int64_t time = 7200;
  int64_t dayOf(int64_t y) const {
    int64_t jan1 = daysFromCivil(y, 1, 1);
    if (kind == 'J') return jan1 + a - 1 + (isLeap(y) && a >= 60 ? 1 : 0);
    if (kind == 'n') return jan1 + a;
    auto m = static_cast<unsigned>(a);
    int64_t first = daysFromCivil(y, m, 1);
    const int64_t wd = ((first + 4) % 7 + 7) % 7;  // 1970-01-01 was a Thursday (Sunday = 0)
    int64_t day = 1 + (c - wd + 7) % 7 + (b - 1) * 7;
    while (day > daysInMonth(y, m))
      day -= 7;
    return first + day - 1;
  }
};

bool parseDateRule(PosixParser& pp, DateRule& r) {
  if (pp.at('M')) {
    r.kind = 'M';
    if (!pp.num(r.a) || !pp.at('.') || !pp.num(r.b) || !pp.at('.') || !pp.num(r.c)) return false;
    if (r.a < 1 || r.a > 12 || r.b < 1 || r.b > 5 || r.c < 0 || r.c > 6) return false;
  } else if (pp.at('J')) {
    r.kind = 'J';
    if (!pp.num(r.a) || r.a < 1 || r.a > 365) return false;
  } else {
    r.kind = 'n';
    if (!pp.num(r.a) || r.a > 365) return false;
  }
  if (pp.at('/')) return pp.hms(r.time);
  return true;
}

}  // namespace

int64_t daysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = floorDiv(y, 400);
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = floorDiv(z, 146097);
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
}

Result<TimeZone> TimeZone::load(std::string_view name) {
  bool valid = !name.empty() && name.size() < 128 && name.front() != '/' &&
               name.find("..") == std::string_view::npos;
  for (char c : name) {
    valid = valid && ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '/' || c == '_' || c == '-' || c == '+');
  }
  if (!valid) return tzError("'" + std::string(name) + "' is not a time zone name");
  const char* dir = std::getenv("TZDIR");
  std::string path =
      std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + std::string(name);
  std::string bytes;
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && bytes.size() < (1u << 20))
      bytes.append(buf, n);
    std::fclose(f);
  } else {
    if (name == "UTC" || name == "Etc/UTC") return TimeZone{};
    return tzError("unknown time zone '" + std::string(name) + "' (no file " + path + ")");
  }
  return fromTzif(name, bytes);
}

Result<TimeZone> TimeZone::fromTzif(std::string_view name, std::string_view bytes) {
  auto bad = [&](std::string_view why) {
    return tzError("time zone '" + std::string(name) + "': " + std::string(why));
  };
  Reader r{bytes};
  if (bytes.substr(0, 4) != "TZif" || bytes.size() < 44) return bad("not a TZif file");
  const char version = bytes[4];
  auto header = [&](int64_t* counts) {
    r.skip(20);
    for (int i = 0; i < 6; ++i)
      counts[i] = r.be(4);
  };
  // counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
  int64_t c[6];
  header(c);
  size_t tsize = 4;
  if (version >= '2') {
    // Skip the 32-bit block; the 64-bit one follows.
    r.skip(static_cast<size_t>(c[3] * 5 + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0]));
    header(c);
    tsize = 8;
  }
  if (!r.ok || c[4] < 1 || c[3] < 0 || c[3] > 100000 || c[4] > 256) return bad("corrupt header");
  std::vector<int64_t> times(static_cast<size_t>(c[3]));
  std::vector<uint8_t> idx(static_cast<size_t>(c[3]));
  std::vector<int32_t> type_off(static_cast<size_t>(c[4]));
  for (auto& t : times)
    t = r.be(tsize);
  for (auto& i : idx)
    i = static_cast<uint8_t>(r.be(1));
  for (auto& o : type_off) {
    o = static_cast<int32_t>(r.be(4));
    r.skip(2);
  }
  r.skip(static_cast<size_t>(c[5] + c[2] * (tsize + 4) + c[1] + c[0]));
  if (!r.ok) return bad("truncated");
  TimeZone tz;
  tz.name_ = std::string(name);
  tz.initial_offset_ = type_off[0];
  for (size_t i = 0; i < times.size(); ++i) {
    if (idx[i] >= type_off.size()) return bad("bad type index");
    if (!tz.transitions_.empty() && times[i] <= tz.transitions_.back()) continue;
    tz.transitions_.push_back(times[i]);
    tz.offsets_.push_back(type_off[idx[i]]);
  }
  if (version >= '2' && r.p < bytes.size() && bytes[r.p] == '\n') {
    size_t end = bytes.find('\n', r.p + 1);
    std::string_view footer =
        bytes.substr(r.p + 1, end == std::string_view::npos ? 0 : end - r.p - 1);
    if (!footer.empty()) {
      if (auto st = tz.applyPosixRule(footer); !st.ok()) return st.error();
    }
  }
  return tz;
}

Result<TimeZone> TimeZone::fromPosix(std::string_view name, std::string_view rule) {
  TimeZone tz;
  tz.name_ = std::string(name);
  if (auto st = tz.applyPosixRule(rule); !st.ok()) return st.error();
  return tz;
}

// Extends the transitions with the rule's yearly changes after the last listed transition (a
// "slim" TZif file lists none after the rule takes over; a "fat" one lists them to 2037).
Status TimeZone::applyPosixRule(std::string_view rule) {
  auto bad = [&] {
    return tzError("time zone '" + name_ + "': bad POSIX rule '" + std::string(rule) + "'");
  };
  PosixParser pp{rule};
  int64_t std_west = 0;
  if (!pp.name() || !pp.hms(std_west)) return bad();
  const auto std_off = static_cast<int32_t>(-std_west);
  if (pp.p == rule.size()) {
    if (transitions_.empty()) initial_offset_ = std_off;
    return {};
  }
  if (!pp.name()) return bad();
  int64_t dst_west = std_west - 3600;
  if (pp.p < rule.size() && pp.s[pp.p] != ',' && !pp.hms(dst_west)) return bad();
  const auto dst_off = static_cast<int32_t>(-dst_west);
  DateRule start, end;
  if (!pp.at(',') || !parseDateRule(pp, start) || !pp.at(',') || !parseDateRule(pp, end) ||
      pp.p != rule.size()) {
    return bad();
  }
  const int64_t after =
      transitions_.empty() ? std::numeric_limits<int64_t>::min() : transitions_.back();
  int64_t first_year = 1970;
  if (!transitions_.empty()) {
    int64_t y;
    unsigned m, d;
    civilFromDays(floorDiv(after, kDay), y, m, d);
    first_year = y;
  }
  if (transitions_.empty()) initial_offset_ = std_off;
  for (int64_t y = first_year; y <= kLastRuleYear; ++y) {
    // Start: local standard time; end: local daylight time.
    int64_t on = start.dayOf(y) * kDay + start.time - std_off;
    int64_t off = end.dayOf(y) * kDay + end.time - dst_off;
    std::pair<int64_t, int32_t> ev[2] = {{on, dst_off}, {off, std_off}};
    if (off < on) std::swap(ev[0], ev[1]);
    for (auto [t, o] : ev) {
      if (t <= after || (!transitions_.empty() && t <= transitions_.back())) continue;
      transitions_.push_back(t);
      offsets_.push_back(o);
    }
  }
  return {};
}

int32_t TimeZone::offsetAt(int64_t unix_s) const {
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unix_s);
  if (it == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<size_t>(it - transitions_.begin() - 1)];
}

int64_t TimeZone::toUtc(int64_t local_s) const {
  // Walk the offset segments around local_s in time order. Within one segment local time
  // rises with UTC, so the first segment whose local range reaches local_s holds the answer:
  // inside it, or at its start when local_s fell into the gap before it. Offsets stay within
  // ±26 h, so starting two days early sees every candidate.
  const int64_t from = local_s - 2 * kDay;
  auto it = std::upper_bound(transitions_.begin(), transitions_.end(), from);
  auto s = static_cast<std::ptrdiff_t>(it - transitions_.begin()) - 1;  // -1: before the first
  const auto n = static_cast<std::ptrdiff_t>(transitions_.size());
  for (; s < n; ++s) {
    const int64_t start =
        s < 0 ? std::numeric_limits<int64_t>::min() : transitions_[static_cast<size_t>(s)];
    const int64_t end =
        s + 1 < n ? transitions_[static_cast<size_t>(s + 1)] : std::numeric_limits<int64_t>::max();
    const int32_t off = s < 0 ? initial_offset_ : offsets_[static_cast<size_t>(s)];
    const int64_t u = local_s - off;
    if (u < start) return start;  // a gap skipped local_s
    if (u < end) return u;
  }
  return local_s - (n > 0 ? offsets_.back() : initial_offset_);
}

Period Calendar::at(int64_t unix_s) const {
  const int64_t day = floorDiv(unix_s + tz_.offsetAt(unix_s), kDay);
  Period p;
  switch (unit_) {
    case PeriodUnit::kDay:
      p.index = day;
      p.start_s = tz_.toUtc(day * kDay);
      p.end_s = tz_.toUtc((day + 1) * kDay);
      break;
    case PeriodUnit::kWeek: {
      // ISO weeks start on Monday; 1970-01-01 was a Thursday, three days after one.
      p.index = floorDiv(day + 3, 7);
      const int64_t monday = p.index * 7 - 3;
      p.start_s = tz_.toUtc(monday * kDay);
      p.end_s = tz_.toUtc((monday + 7) * kDay);
      break;
    }
    case PeriodUnit::kMonth: {
      int64_t y;
      unsigned m, d;
      civilFromDays(day, y, m, d);
      p.index = y * 12 + (m - 1);
      p.start_s = tz_.toUtc(daysFromCivil(y, m, 1) * kDay);
      p.end_s = tz_.toUtc(m == 12 ? daysFromCivil(y + 1, 1, 1) * kDay
                                  : daysFromCivil(y, m + 1, 1) * kDay);
      break;
    }
  }
  return p;
}

std::string_view toString(PeriodUnit u) {
  static constexpr std::string_view kNames[] = {"day", "week", "month"};
  static_assert(std::size(kNames) == static_cast<size_t>(PeriodUnit::kMonth) + 1);
  return enumName(u, kNames, "day");
}

}  // namespace gatehouse::cal

#pragma once
// Time zones and calendar periods (day, ISO week, month) for quotas.
//
// GCC 12's libstdc++ has no std::chrono tz database, and localtime_r/mktime read one global TZ
// (not usable per zone from several threads). So a TimeZone reads its TZif file
// (/usr/share/zoneinfo or $TZDIR) once, on the control thread, into an immutable sorted list of
// UTC-offset transitions; the POSIX rule in the file's footer extends that list to 2200. After
// loading, every query is a pure function: safe from any thread without a lock.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gatehouse::cal {

// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12), and back.
int64_t daysFromCivil(int64_t y, unsigned m, unsigned d);
void civilFromDays(int64_t days, int64_t& y, unsigned& m, unsigned& d);

class TimeZone {
 public:
  TimeZone() = default;  // UTC
  // An IANA name ("Europe/Berlin", "UTC"). Reads the file: control thread only.
  static Result<TimeZone> load(std::string_view name);
  // From TZif bytes (tests, or a zoneinfo elsewhere).
  static Result<TimeZone> fromTzif(std::string_view name, std::string_view bytes);
  // A zone described only by a POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3").
  static Result<TimeZone> fromPosix(std::string_view name, std::string_view rule);

  const std::string& name() const { return name_; }
  // The UTC offset in seconds (east positive) at the instant `unix_s`.
  int32_t offsetAt(int64_t unix_s) const;
  // The first instant whose local wall time is at or after `local_s` (local seconds since
  // 1970-01-01T00:00): the instant itself, or the end of a DST gap that skips it; the earlier
  // of two when the wall time repeats.
  int64_t toUtc(int64_t local_s) const;

 private:
  Status applyPosixRule(std::string_view rule);

  std::string name_ = "UTC";
  int32_t initial_offset_ = 0;
  std::vector<int64_t> transitions_;  // sorted UTC instants
  std::vector<int32_t> offsets_;      // the offset from transitions_[i] on
};

enum class PeriodUnit { kDay, kWeek, kMonth };

// One calendar period: [start_s, end_s) in UTC seconds; `index` numbers periods of the unit
// (days / ISO weeks / months since 1970 in the zone), so the same index means the same period.
struct Period {
  int64_t index = 0;
  int64_t start_s = 0;
  int64_t end_s = 0;
};

// Calendar-aligned periods in a zone. Immutable; any thread.
class Calendar {
 public:
  Calendar(PeriodUnit unit, TimeZone tz) : unit_(unit), tz_(std::move(tz)) {}
  Period at(int64_t unix_s) const;
  PeriodUnit unit() const { return unit_; }
  const TimeZone& zone() const { return tz_; }

 private:
  PeriodUnit unit_;
  TimeZone tz_;
};

std::string_view toString(PeriodUnit u);

}  // namespace gatehouse::cal

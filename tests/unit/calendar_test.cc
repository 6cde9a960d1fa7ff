// core/calendar: TZif loading, POSIX rules, and calendar periods at fixed instants, including
// DST days of 23 and 25 hours, a DST change at midnight and a skipped day.
#include "core/calendar.h"

#include <gtest/gtest.h>

namespace gatehouse::cal {
namespace {

// UTC instant of a civil date and time.
int64_t utc(int64_t y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

TimeZone zone(const char* name) {
  auto z = TimeZone::load(name);
  EXPECT_TRUE(z.ok()) << (z.ok() ? "" : z.error().message);
  return z.ok() ? *z : TimeZone{};
}

TEST(Calendar, CivilRoundTrip) {
  EXPECT_EQ(daysFromCivil(1970, 1, 1), 0);
  EXPECT_EQ(daysFromCivil(2000, 3, 1), 11017);
  for (int64_t days : {-800000, -1, 0, 59, 11016, 20000, 2932896}) {
    int64_t y;
    unsigned m, d;
    civilFromDays(days, y, m, d);
    EXPECT_EQ(daysFromCivil(y, m, d), days);
  }
  EXPECT_EQ(utc(2026, 3, 28, 23), 1774738800);
}

TEST(Calendar, UtcDaysWeeksMonths) {
  Calendar day(PeriodUnit::kDay, TimeZone{});
  Period p = day.at(utc(2026, 11, 29, 7, 30));
  EXPECT_EQ(p.start_s, utc(2026, 11, 29));
  EXPECT_EQ(p.end_s, utc(2026, 11, 30));
  EXPECT_EQ(p.index, daysFromCivil(2026, 11, 29));
  // The last second of a day belongs to it, the next to the next day.
  EXPECT_EQ(day.at(utc(2026, 11, 29, 23, 59, 59)).index, p.index);
  EXPECT_EQ(day.at(utc(2026, 11, 30)).index, p.index + 1);

  // 2026-11-29 is a Sunday: its ISO week started on Monday the 23rd.
  Calendar week(PeriodUnit::kWeek, TimeZone{});
  Period w = week.at(utc(2026, 11, 29, 12));
  EXPECT_EQ(w.start_s, utc(2026, 11, 23));
  EXPECT_EQ(w.end_s, utc(2026, 11, 30));
  EXPECT_EQ(week.at(utc(2026, 11, 30)).index, w.index + 1);

  Calendar month(PeriodUnit::kMonth, TimeZone{});
  Period m = month.at(utc(2024, 2, 29, 23, 59, 59));  // leap day
  EXPECT_EQ(m.start_s, utc(2024, 2, 1));
  EXPECT_EQ(m.end_s, utc(2024, 3, 1));
  Period dec = month.at(utc(2026, 12, 31, 12));
  EXPECT_EQ(dec.end_s, utc(2027, 1, 1));
  EXPECT_EQ(month.at(utc(2027, 1, 1)).index, dec.index + 1);
}

TEST(Calendar, BerlinDstDaysAre23And25Hours) {
  TimeZone berlin = zone("Europe/Berlin");
  EXPECT_EQ(berlin.offsetAt(utc(2026, 1, 15)), 3600);
  EXPECT_EQ(berlin.offsetAt(utc(2026, 7, 15)), 7200);
  Calendar day(PeriodUnit::kDay, berlin);
  // Spring forward on 2026-03-29 at 01:00 UTC (02:00 -> 03:00 local).
  Period spring = day.at(utc(2026, 3, 29, 12));
  EXPECT_EQ(spring.start_s, utc(2026, 3, 28, 23));
  EXPECT_EQ(spring.end_s, utc(2026, 3, 29, 22));
  EXPECT_EQ(spring.end_s - spring.start_s, 23 * 3600);
  // Just before local midnight (22:59:59 UTC, +01:00) is still the 28th.
  EXPECT_EQ(day.at(utc(2026, 3, 28, 22, 59, 59)).index, spring.index - 1);
  // Fall back on 2026-10-25 at 01:00 UTC (03:00 -> 02:00 local).
  Period fall = day.at(utc(2026, 10, 25, 12));
  EXPECT_EQ(fall.start_s, utc(2026, 10, 24, 22));
  EXPECT_EQ(fall.end_s, utc(2026, 10, 25, 23));
  EXPECT_EQ(fall.end_s - fall.start_s, 25 * 3600);

  Calendar month(PeriodUnit::kMonth, berlin);
  Period march = month.at(utc(2026, 3, 15));
  EXPECT_EQ(march.start_s, utc(2026, 2, 28, 23));  // +01:00
  EXPECT_EQ(march.end_s, utc(2026, 3, 31, 22));    // +02:00
  // 2026-02-28T23:30Z is already March in Berlin.
  EXPECT_EQ(month.at(utc(2026, 2, 28, 23, 30)).index, march.index);
  EXPECT_EQ(month.at(utc(2026, 2, 28, 22, 59, 59)).index, march.index - 1);
}

TEST(Calendar, NewYorkDay) {
  Calendar day(PeriodUnit::kDay, zone("America/New_York"));
  Period p = day.at(utc(2026, 3, 8, 12));  // spring forward at 07:00 UTC
  EXPECT_EQ(p.start_s, utc(2026, 3, 8, 5));
  EXPECT_EQ(p.end_s, utc(2026, 3, 9, 4));
}

TEST(Calendar, MidnightInADstGapStartsTheDayAtTheTransition) {
  // Sao Paulo, 2018-11-04: 00:00 local did not exist (the clock went from 23:59:59 to 01:00).
  Calendar day(PeriodUnit::kDay, zone("America/Sao_Paulo"));
  Period p = day.at(utc(2018, 11, 4, 12));
  EXPECT_EQ(p.start_s, utc(2018, 11, 4, 3));
  EXPECT_EQ(p.end_s, utc(2018, 11, 5, 2));  // the next midnight at -02:00
}

TEST(Calendar, SkippedDay) {
  // Samoa skipped 2011-12-30: 29th 23:59:59 -10:00 was followed by 31st 00:00 +14:00.
  Calendar day(PeriodUnit::kDay, zone("Pacific/Apia"));
  Period before = day.at(utc(2011, 12, 30, 9, 59, 59));
  Period after = day.at(utc(2011, 12, 30, 10));
  EXPECT_EQ(before.end_s, utc(2011, 12, 30, 10));
  EXPECT_EQ(after.start_s, utc(2011, 12, 30, 10));
  EXPECT_EQ(after.index, before.index + 2);
}

TEST(Calendar, PosixRuleExtendsBeyondTheFile) {
  // Debian's zoneinfo lists transitions to 2037; the footer rule carries on.
  TimeZone berlin = zone("Europe/Berlin");
  EXPECT_EQ(berlin.offsetAt(utc(2150, 7, 1)), 7200);
  EXPECT_EQ(berlin.offsetAt(utc(2150, 1, 1)), 3600);
  // Last Sunday of March 2150 is the 29th: the change at 01:00 UTC.
  EXPECT_EQ(berlin.offsetAt(utc(2150, 3, 29, 0, 59, 59)), 3600);
  EXPECT_EQ(berlin.offsetAt(utc(2150, 3, 29, 1)), 7200);

  auto rule = TimeZone::fromPosix("test", "CET-1CEST,M3.5.0,M10.5.0/3");
  ASSERT_TRUE(rule.ok()) << rule.error().message;
  for (int64_t t : {utc(2026, 3, 29, 0, 59, 59), utc(2026, 3, 29, 1), utc(2026, 10, 25, 0, 59, 59),
                    utc(2026, 10, 25, 1), utc(2026, 6, 1), utc(2026, 12, 1)}) {
    EXPECT_EQ(rule->offsetAt(t), berlin.offsetAt(t)) << t;
  }
  // Southern hemisphere: DST spans the new year.
  auto syd = TimeZone::fromPosix("syd", "AEST-10AEDT,M10.1.0,M4.1.0/3");
  ASSERT_TRUE(syd.ok());
  EXPECT_EQ(syd->offsetAt(utc(2030, 1, 15)), 11 * 3600);
  EXPECT_EQ(syd->offsetAt(utc(2030, 7, 15)), 10 * 3600);
  auto fixed = TimeZone::fromPosix("ist", "<+0530>-5:30");
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(fixed->offsetAt(utc(2026, 1, 1)), 5 * 3600 + 1800);
  EXPECT_FALSE(TimeZone::fromPosix("bad", "CET-1CEST,M13.5.0,M10.5.0").ok());
}

TEST(Calendar, BadNamesAreErrors) {
  EXPECT_FALSE(TimeZone::load("Mars/Olympus").ok());
  EXPECT_FALSE(TimeZone::load("../etc/passwd").ok());
  EXPECT_FALSE(TimeZone::load("/etc/localtime").ok());
  EXPECT_FALSE(TimeZone::fromTzif("x", "not a tzif file at all, not at all, no no no no").ok());
  EXPECT_TRUE(TimeZone::load("UTC").ok());
}

}  // namespace
}  // namespace gatehouse::cal

#include "core/log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

namespace gatehouse::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

Level level() {
  return g_level.load(std::memory_order_relaxed);
}
void setLevel(Level lvl) {
  g_level.store(lvl, std::memory_order_relaxed);
}

bool parseLevel(std::string_view name, Level& out) {
  for (int i = 0; i < 4; ++i) {
    if (name == kNames[i]) {
      out = static_cast<Level>(i);
      return true;
    }
  }
  return false;
}

void appendUtcNow(std::string& out) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[40];
  int n = std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        static_cast<int>(ms));
  out.append(ts, static_cast<size_t>(n));
}

void write(Level lvl, std::string_view line) {
  std::string out;
  out.reserve(line.size() + 48);
  appendUtcNow(out);
  out.append(" ").append(kNames[static_cast<int>(lvl)]).append(" ");
  out.append(line).append("\n");
  ssize_t n = ::write(STDERR_FILENO, out.data(), out.size());
  (void)n;
}

}  // namespace gatehouse::log

namespace gatehouse {
namespace {
std::atomic<std::uint64_t> g_bugs{0};
}

void reportBug(const char* expr, const char* file, int line) {
  g_bugs.fetch_add(1, std::memory_order_relaxed);
  log::error("BUG: invariant '", expr, "' broken at ", file, ":", line);
#ifndef NDEBUG
  std::abort();
#endif
}

std::uint64_t bugCount() {
  return g_bugs.load(std::memory_order_relaxed);
}

}  // namespace gatehouse

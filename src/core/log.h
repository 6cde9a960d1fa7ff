#pragma once
// Process log (not the access log): leveled lines to stderr, one write(2) per line so lines
// from different workers never interleave.
#include <atomic>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>

namespace gatehouse::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError };

Level level();
void setLevel(Level lvl);
bool parseLevel(std::string_view name, Level& out);
void write(Level lvl, std::string_view line);
// Appends the current UTC time as RFC 3339 with milliseconds ("2026-12-07T05:09:15.123Z"), the
// format of log lines and access-log records.
void appendUtcNow(std::string& out);

template <typename... Args>
void emit(Level lvl, const Args&... args) {
  if (lvl < level()) return;
  std::ostringstream os;
  (os << ... << args);
  write(lvl, os.str());
}

template <typename... Args>
void debug(const Args&... args) {
  emit(Level::kDebug, args...);
}
template <typename... Args>
void info(const Args&... args) {
  emit(Level::kInfo, args...);
}
template <typename... Args>
void warn(const Args&... args) {
  emit(Level::kWarn, args...);
}
template <typename... Args>
void error(const Args&... args) {
  emit(Level::kError, args...);
}

}  // namespace gatehouse::log

// A broken internal invariant (never bad input: that is a 4xx and a counter). Evaluates to
// whether `cond` holds, so the caller can take a safe way out:
//   if (GH_BUG_IF(slot >= slots_.size())) return;
// Release builds log and count (bugCount()); builds without NDEBUG abort.
namespace gatehouse {
void reportBug(const char* expr, const char* file, int line);
std::uint64_t bugCount();
}  // namespace gatehouse
#define GH_BUG_IF(cond)                                            \
  (__builtin_expect(static_cast<bool>(cond), 0)                    \
       ? (::gatehouse::reportBug(#cond, __FILE__, __LINE__), true) \
       : false)

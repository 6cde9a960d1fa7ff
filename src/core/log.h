#pragma once
// Process log (not the access log): leveled lines to stderr, one write(2) per line so lines
// from different workers never interleave.
#include <atomic>
#include <sstream>
#include <string_view>

namespace gatehouse::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError };

Level level();
void setLevel(Level lvl);
bool parseLevel(std::string_view name, Level& out);
void write(Level lvl, std::string_view line);

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

// A broken internal invariant: logs and counts in release builds, aborts in debug builds.
namespace gatehouse {
void reportBug(const char* expr, const char* file, int line);
std::uint64_t bugCount();
}  // namespace gatehouse
#define GH_BUG_IF(cond) ((cond) ? (::gatehouse::reportBug(#cond, __FILE__, __LINE__), true) : false)

#include "proxy/upstream_io.h"

#include <charconv>

namespace gatehouse::proxy {

double msSince(runtime::TimePoint t0) {
  return std::chrono::duration<double, std::milli>(runtime::Clock::now() - t0).count();
}

std::string& appendDecimal(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return out.append(buf, static_cast<size_t>(end - buf));
}

}  // namespace gatehouse::proxy

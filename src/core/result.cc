#include "core/result.h"

#include <iterator>

#include "core/enum_names.h"

namespace gatehouse {

namespace {
// By ErrorCode value: a new code goes at the end of the enum and here, and moves the assert.
constexpr std::string_view kErrorCodeNames[] = {
    "ok",        "timeout",   "closed",           "reset",     "connect_failed", "protocol_error",
    "too_large", "cancelled", "invalid_argument", "not_found", "io_error",       "unavailable",
};
static_assert(std::size(kErrorCodeNames) == static_cast<size_t>(ErrorCode::kUnavailable) + 1);
}  // namespace

std::string_view toString(ErrorCode code) {
  return enumName(code, kErrorCodeNames, "unknown");
}

}  // namespace gatehouse

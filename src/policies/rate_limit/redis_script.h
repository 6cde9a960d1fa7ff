#pragma once
// The one Lua script every Redis-backed limit runs (policies rate_limit and quota): all calls
// of a worker to one Redis share a connection, which loads this script once.
#include <string_view>

namespace gatehouse::policies::rate_limit {

// Limit kinds in the script's arguments.
inline constexpr std::string_view kKindBucket = "1";    // a: emission interval µs, b: burst
inline constexpr std::string_view kKindWindow = "2";    // a: period µs, b: limit
inline constexpr std::string_view kKindCalendar = "3";  // a: µs to the period's end, b: limit
inline constexpr std::string_view kKindInFlight = "4";  // a: lease µs, b: cap; needs a token

std::string_view limitScript();

}  // namespace gatehouse::policies::rate_limit

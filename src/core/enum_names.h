#pragma once
// Names of enum values from a table in declaration order, for enums numbered 0, 1, 2, ...:
// one entry per value where a switch takes two lines. Next to each table, a static_assert on
// its size against the enum's last value (or its count) catches a value added without a name.
#include <cstddef>
#include <string_view>

namespace gatehouse {

// names[e]; `fallback` for a value past the table (an integer cast to the enum).
template <typename Enum, size_t N>
constexpr std::string_view enumName(Enum e, const std::string_view (&names)[N],
                                    std::string_view fallback) {
  const auto i = static_cast<size_t>(e);
  return i < N ? names[i] : fallback;
}

}  // namespace gatehouse

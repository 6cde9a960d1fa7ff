#pragma once
// Small string_view helpers that several layers need (header lists, tokens). Pure functions,
// any thread.
#include <string_view>

namespace gatehouse::strings {

// `s` without leading and trailing spaces and tabs (HTTP's optional whitespace).
inline std::string_view trimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

}  // namespace gatehouse::strings

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

namespace gatehouse::strings {

// Calls `f(item)` for each element of an HTTP comma-separated list (RFC 9110 §5.6.1), trimmed,
// skipping empty elements ("a, ,b" has two). Quoted commas are not special: the lists this
// serves (codings, directives, field names) hold none that matter.
template <class F>
void forEachListItem(std::string_view list, F&& f) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = trimSpaces(list.substr(0, comma));
    if (!item.empty()) f(item);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

}  // namespace gatehouse::strings

#pragma once
// Internal to jsonschema/: RFC 3986 reference resolution for $id and $ref, and RFC 6901 JSON
// pointers (also in their URI-fragment form). Pure functions, any thread.
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace gatehouse::jsonschema {

// `reference` resolved against the absolute `base` (RFC 3986 section 5.2).
std::string resolveUri(std::string_view base, std::string_view reference);
// `uri` without its fragment, and the fragment (percent-decoded, without '#').
std::string withoutFragment(std::string_view uri);
std::string fragmentOf(std::string_view uri);
// The value `pointer` ("/a/0", "" for the whole) names inside `root`, or null when it names
// nothing or is malformed.
const nlohmann::json* resolvePointer(const nlohmann::json& root, std::string_view pointer);
// Appends one reference token to a pointer, escaping '~' and '/'.
void appendPointerToken(std::string& pointer, std::string_view token);

}  // namespace gatehouse::jsonschema

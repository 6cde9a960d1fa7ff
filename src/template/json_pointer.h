#pragma once
// RFC 6901 JSON pointers ("/a/b~1c/0"), parsed once when the config loads and evaluated per
// request against a JSON document (Json) without throwing. Pure functions and immutable
// values: any thread. The parse error is a typed value with the offset of the bad escape.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace gatehouse::tmpl {

// The JSON documents templates and body rules work on: nlohmann's, keeping the order of an
// object's keys as they came (a rewrite changes only what its rules name).
using Json = nlohmann::ordered_json;

class JsonPointer {
 public:
  // "" is the whole document; otherwise each token follows a '/'. "~0" is '~' and "~1" is '/';
  // any other '~' is an error (ErrorCode::kInvalidArgument, message names the offset).
  static Result<JsonPointer> parse(std::string_view text);

  bool isRoot() const { return tokens_.empty(); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::string& text() const { return text_; }

  // The value the pointer names, or nullptr when a step is missing (a key absent, an index
  // out of range or not a number, a scalar on the way).
  const Json* find(const Json& doc) const;
  Json* find(Json& doc) const;

  // Writes `value` at the pointer. Missing objects on the way are created when
  // `create_parents`; an array token must be an index in range, or "-" (appends). With
  // `overwrite` false an existing value is kept (and false returned). False also when the
  // parent is missing or a scalar, or the pointer is the root and `doc` is kept.
  bool set(Json& doc, Json value, bool create_parents, bool overwrite) const;
  // Removes and returns the value at the pointer (nullopt when absent). The root cannot be
  // removed: it is returned and `doc` becomes null.
  std::optional<Json> take(Json& doc) const;

 private:
  std::string text_;
  std::vector<std::string> tokens_;
};

// An array index token: digits without a leading zero ("0", "17"), within size_t. nullopt
// otherwise ("-", "01", "x").
std::optional<size_t> arrayIndex(std::string_view token);

}  // namespace gatehouse::tmpl

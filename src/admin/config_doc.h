#pragma once
// The config as a document the admin API edits: YAML text <-> JSON (key order kept), a
// readable block-style YAML writer, JSON merge patches (RFC 7386) at a path, and a line diff.
// Pure functions, no I/O; control thread (and tests). Comments in the YAML do not survive a
// round trip (docs/admin-api.md).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace gatehouse::admin {

using Json = nlohmann::ordered_json;  // keeps the file's key order, so rewrites stay stable

// Why a document operation failed, for a 4xx reply.
struct DocError {
  enum class Kind { kSyntax, kNotFound, kBadPath, kBadPatch };
  Kind kind = Kind::kSyntax;
  std::string message;
};

template <typename T>
struct DocResult {
  std::optional<T> value;
  DocError error;
  bool ok() const { return value.has_value(); }
};

// YAML (or JSON, a subset) text -> JSON. Plain scalars that read as integers, floats, booleans
// (true/false/yes/no/on/off) or null become those types; quoted scalars stay strings.
DocResult<Json> yamlToJson(std::string_view text);

// JSON -> block-style YAML: two-space indentation, one key per line, strings quoted only where
// a plain scalar would read differently, multi-line strings as literal blocks.
std::string jsonToYaml(const Json& doc);

// RFC 7386: `patch` merged into `target` (null members delete, objects merge, all else
// replaces).
void mergePatch(Json& target, const Json& patch);

// Applies `patch` at `path` inside `doc`: "" is the root; segments are separated by '/' and
// percent-decoded; on an object a segment is a key, on a list the element whose `name` is the
// segment (or a decimal index). "routes/NAME" also finds a route inside virtual_hosts. A
// missing last element of a named list is created (with its `name`); a null patch there
// removes the element.
DocResult<Json> patchAt(const Json& doc, std::string_view path, const Json& patch);

// A unified diff (3 lines of context, "---"/"+++" headers) from `before` to `after`; empty
// when they are equal. Lines added and removed are counted in `added`/`removed`.
struct TextDiff {
  std::string unified;
  size_t added = 0;
  size_t removed = 0;
};
TextDiff diffLines(std::string_view before, std::string_view after, std::string_view before_name,
                   std::string_view after_name);

}  // namespace gatehouse::admin

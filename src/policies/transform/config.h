#pragma once
// The parsed options of policy `transform` (docs/config.md#transform): what to change on the
// request and on the response, compiled once when the config loads (control thread) and
// immutable afterwards, shared by every worker.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "template/json_pointer.h"
#include "template/template.h"

namespace YAML {
class Node;
}

namespace gatehouse::policies::transform {

// Header or query parameter edits, applied in this order: remove, rename, set, add.
struct FieldOps {
  std::vector<std::string> remove;
  std::vector<std::pair<std::string, std::string>> rename;  // from, to
  std::vector<std::pair<std::string, tmpl::Template>> set;
  std::vector<std::pair<std::string, tmpl::Template>> add;
  bool empty() const { return remove.empty() && rename.empty() && set.empty() && add.empty(); }
};

// A JSON value to write: the YAML value as JSON, whose string leaves with `{{` are templates
// rendered per request (into strings); or, with `value_json`, a template whose output is
// parsed as JSON (a string when it is not JSON).
struct ValueSpec {
  tmpl::Json literal;
  std::vector<std::pair<tmpl::JsonPointer, tmpl::Template>> templates;  // leaves of `literal`
  std::optional<tmpl::Template> json_template;
};

struct BodyRule {
  enum class Kind : uint8_t { kSet, kAdd, kRemove, kRename, kMove, kWrap, kUnwrap, kMap };
  Kind kind = Kind::kSet;
  tmpl::JsonPointer at;         // every kind but wrap
  tmpl::JsonPointer to;         // move's target
  std::string name;             // rename's new key, wrap's key
  ValueSpec value;              // set, add
  std::vector<BodyRule> rules;  // map: applied to each element of the array at `at`
};

struct StatusRule {
  int from = 0;
  int to = 0;
  std::optional<tmpl::JsonPointer> when_exists;  // the JSON body has a value there
  std::optional<std::pair<tmpl::JsonPointer, tmpl::Json>> when_equals;
  bool needsBody() const { return when_exists || when_equals; }
};

struct Side {
  FieldOps headers;
  FieldOps query;                      // request only
  std::optional<tmpl::Template> path;  // request only
  std::string method;                  // request only; empty = unchanged
  std::vector<BodyRule> body;
  std::vector<StatusRule> status;  // response only
  bool empty() const {
    return headers.empty() && query.empty() && !path && method.empty() && body.empty() &&
           status.empty();
  }
};

enum class OnNonJson : uint8_t { kReject, kPass };
enum class EtagMode : uint8_t { kWeaken, kDrop };

struct Options {
  uint64_t max_body_size = 1024 * 1024;
  OnNonJson on_non_json = OnNonJson::kReject;
  EtagMode etag = EtagMode::kWeaken;
  Side request;
  Side response;
  // Whether the response must be read whole before its head goes out: body rules, a status
  // rule that looks at the body or empties it (to 204 or 304), a template reading the body.
  bool response_needs_body = false;
  // Whether a request body rule's template reads request.body (the body is then copied first,
  // so that templates see it as it came).
  bool request_body_templates = false;
};

Result<Options> parseOptions(const YAML::Node& config);

}  // namespace gatehouse::policies::transform

#pragma once
// Internal to jsonschema/: what a Builder knows while it compiles, on the control thread. The
// scan (scan.cc) walks each document once and records every schema position with its base URI,
// dialect and resource, every resource by URI and every anchor; compile.cc then turns schema
// positions into nodes, memoized by position so that recursive $refs make cycles, not copies.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"
#include "jsonschema/node.h"
#include "jsonschema/schema.h"

namespace gatehouse::jsonschema {

using Json = nlohmann::json;

struct Location {
  std::string base;  // absolute URI, no fragment
  Dialect dialect = Dialect::kDraft2020_12;
  uint32_t resource = 0;
};

inline bool isLegacy(Dialect d) {
  return d != Dialect::kDraft2020_12;
}  // $ref hides siblings
inline bool isDraft4(Dialect d) {
  return d == Dialect::kDraft4 || d == Dialect::kOpenApi30;
}

struct CompileState {
  Options options;
  std::vector<std::unique_ptr<Json>> documents;
  std::unordered_map<std::string, const Json*> resources;  // URI (no fragment) -> its root
  std::unordered_map<std::string, const Json*> anchors;    // "URI#name" -> schema
  std::unordered_map<const Json*, Location> locations;     // every schema position scanned
  std::unordered_map<const Json*, NodeId> compiled;
  // Per resource index: its $dynamicAnchor names and positions.
  std::vector<std::vector<std::pair<std::string, const Json*>>> dynamic_anchors;
  bool uses_dynamic_ref = false;
  std::unique_ptr<Validator> out;

  uint32_t newResource() {
    dynamic_anchors.emplace_back();
    return static_cast<uint32_t>(dynamic_anchors.size() - 1);
  }
  // scan.cc: records `schema` and everything under it at `at`.
  void scan(const Json& schema, Location at);
  // compile.cc
  Result<NodeId> compileAt(const Json& schema, const Location& fallback);
  Result<NodeId> compileReference(std::string_view reference, const Location& from);
  Status compileDynamicAnchors();
  Status checkCycles() const;
};

Error schemaError(std::string message);

}  // namespace gatehouse::jsonschema

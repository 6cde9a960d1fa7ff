// The scan: finds every schema position of a document, with its base URI, dialect and
// resource, and registers resources ($id / id) and anchors ($anchor, $dynamicAnchor, and the
// "#name" ids of draft-04 and draft-07). Only keywords that hold schemas are walked, so an
// `$id` inside `enum` or `const` data is not taken for an identifier.
#include <string_view>

#include "jsonschema/compile_state.h"
#include "jsonschema/uri.h"

namespace gatehouse::jsonschema {
namespace {

Dialect dialectOf(const Json& schema, Dialect current) {
  auto it = schema.find("$schema");
  if (it == schema.end() || !it->is_string()) return current;
  const auto& s = it->get_ref<const std::string&>();
  if (s.find("draft-04") != std::string::npos) {
    return current == Dialect::kOpenApi30 ? current : Dialect::kDraft4;
  }
  if (s.find("draft-06") != std::string::npos || s.find("draft-07") != std::string::npos) {
    return Dialect::kDraft7;
  }
  if (s.find("2020-12") != std::string::npos || s.find("2019-09") != std::string::npos) {
    return Dialect::kDraft2020_12;
  }
  return current;
}

constexpr std::string_view kSingle[] = {"additionalProperties",
                                        "not",
                                        "if",
                                        "then",
                                        "else",
                                        "contains",
                                        "propertyNames",
                                        "unevaluatedProperties",
                                        "unevaluatedItems",
                                        "additionalItems",
                                        "items"};
constexpr std::string_view kLists[] = {"allOf", "anyOf", "oneOf", "prefixItems", "items"};
constexpr std::string_view kMaps[] = {"properties", "patternProperties", "definitions",
                                      "$defs",      "dependentSchemas",  "dependencies"};

}  // namespace

void CompileState::scan(const Json& schema, Location at) {
  if (!schema.is_object()) {
    if (schema.is_boolean()) locations.emplace(&schema, at);
    return;
  }
  at.dialect = dialectOf(schema, at.dialect);
  const bool has_ref = schema.contains("$ref");
  const char* id_key = isDraft4(at.dialect) ? "id" : "$id";
  auto id = schema.find(id_key);
  if (id != schema.end() && id->is_string() && !(isLegacy(at.dialect) && has_ref)) {
    const auto& text = id->get_ref<const std::string&>();
    if (isLegacy(at.dialect) && !text.empty() && text[0] == '#') {
      anchors.emplace(at.base + text, &schema);
    } else {
      std::string resolved = resolveUri(at.base, text);
      std::string fragment = fragmentOf(resolved);
      at.base = withoutFragment(resolved);
      at.resource = newResource();
      resources.emplace(at.base, &schema);
      if (!fragment.empty()) anchors.emplace(at.base + "#" + fragment, &schema);
    }
  }
  if (!isLegacy(at.dialect)) {
    if (auto a = schema.find("$anchor"); a != schema.end() && a->is_string()) {
      anchors.emplace(at.base + "#" + a->get<std::string>(), &schema);
    }
    if (auto a = schema.find("$dynamicAnchor"); a != schema.end() && a->is_string()) {
      anchors.emplace(at.base + "#" + a->get<std::string>(), &schema);
      dynamic_anchors[at.resource].emplace_back(a->get<std::string>(), &schema);
    }
  }
  locations.emplace(&schema, at);
  if (isLegacy(at.dialect) && has_ref) {
    // Siblings of $ref are ignored, but a $ref may still point into `definitions`.
    if (auto d = schema.find("definitions"); d != schema.end() && d->is_object()) {
      for (const auto& [name, sub] : d->items())
        scan(sub, at);
    }
    return;
  }
  for (std::string_view key : kSingle) {
    auto it = schema.find(std::string(key));
    if (it != schema.end() && (it->is_object() || it->is_boolean())) scan(*it, at);
  }
  for (std::string_view key : kLists) {
    auto it = schema.find(std::string(key));
    if (it != schema.end() && it->is_array()) {
      for (const auto& sub : *it)
        scan(sub, at);
    }
  }
  for (std::string_view key : kMaps) {
    auto it = schema.find(std::string(key));
    if (it != schema.end() && it->is_object()) {
      for (const auto& [name, sub] : it->items())
        scan(sub, at);
    }
  }
}

}  // namespace gatehouse::jsonschema

#pragma once
// Internal to jsonschema/: one compiled (sub)schema. Every keyword the dialect knows is a field,
// and `has` says which are present, so validation tests a bit per keyword group instead of
// walking a list. Built by compiler.cc on the control thread, read by validate.cc on any thread.
#include <re2/re2.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace gatehouse::jsonschema {

using NodeId = uint32_t;
inline constexpr NodeId kNoNode = std::numeric_limits<NodeId>::max();

// JSON types as bits of Node::types.
enum TypeBit : uint8_t {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kInteger = 32,
  kString = 64,
};

enum class Format : uint8_t {
  kNone,
  kDateTime,
  kDate,
  kTime,
  kEmail,
  kHostname,
  kIpv4,
  kIpv6,
  kUri,
  kUriReference,
  kUuid,
  kDuration,
  kJsonPointer,
  kRegex,
};

// Which keyword groups a node has (Node::has).
enum Has : uint32_t {
  kHasType = 1u << 0,
  kHasEnum = 1u << 1,
  kHasConst = 1u << 2,
  kHasNumeric = 1u << 3,
  kHasString = 1u << 4,
  kHasArray = 1u << 5,
  kHasObject = 1u << 6,
  kHasAllOf = 1u << 7,
  kHasAnyOf = 1u << 8,
  kHasOneOf = 1u << 9,
  kHasNot = 1u << 10,
  kHasIf = 1u << 11,
  kHasRef = 1u << 12,
  kHasDynamicRef = 1u << 13,
  kHasUnevaluatedProperties = 1u << 14,
  kHasUnevaluatedItems = 1u << 15,
  kHasFormat = 1u << 16,
  kHasDependentSchemas = 1u << 17,
};

struct PatternSchema {
  std::unique_ptr<RE2> regex;
  NodeId schema = kNoNode;
};

struct DependentRequired {
  std::string property;
  std::vector<std::string> required;
};

struct DependentSchema {
  std::string property;
  NodeId schema = kNoNode;
};

struct Node {
  enum class Kind : uint8_t { kTrue, kFalse, kSchema };
  Kind kind = Kind::kSchema;
  uint32_t has = 0;
  uint32_t resource = 0;  // index of the schema resource this node belongs to ($dynamicRef)
  uint8_t types = 0;
  Format format = Format::kNone;
  // The node's own annotations are needed by an `unevaluated*` keyword above or in it.
  bool collects = false;

  // enum / const
  std::vector<nlohmann::json> enum_values;
  nlohmann::json const_value;

  // numbers
  std::optional<double> minimum, maximum, exclusive_minimum, exclusive_maximum, multiple_of;

  // strings
  std::optional<uint64_t> min_length, max_length;
  std::unique_ptr<RE2> pattern;

  // arrays; `items` applies after `prefix_items`
  std::optional<uint64_t> min_items, max_items, min_contains, max_contains;
  bool unique_items = false;
  std::vector<NodeId> prefix_items;
  NodeId items = kNoNode;
  NodeId contains = kNoNode;
  NodeId unevaluated_items = kNoNode;

  // objects; `properties` is sorted by name
  std::optional<uint64_t> min_properties, max_properties;
  std::vector<std::pair<std::string, NodeId>> properties;
  std::vector<PatternSchema> pattern_properties;
  NodeId additional_properties = kNoNode;
  std::vector<std::string> required;
  NodeId property_names = kNoNode;
  std::vector<DependentRequired> dependent_required;
  std::vector<DependentSchema> dependent_schemas;
  NodeId unevaluated_properties = kNoNode;

  // applicators
  std::vector<NodeId> all_of, any_of, one_of;
  NodeId not_ = kNoNode, if_ = kNoNode, then_ = kNoNode, else_ = kNoNode;
  NodeId ref = kNoNode;
  // $dynamicRef: the static target, and the anchor name to look up in the dynamic scope when
  // the target carries a $dynamicAnchor of that name (empty: behaves like $ref).
  NodeId dynamic_ref = kNoNode;
  std::string dynamic_anchor;
};

// Per resource: its $dynamicAnchor names and the nodes they name.
struct Resource {
  std::vector<std::pair<std::string, NodeId>> dynamic_anchors;
};

}  // namespace gatehouse::jsonschema

#pragma once
// What one operation of a parsed document costs, with fragments expanded: its depth, field and
// alias counts, a configurable cost, and whether it introspects the schema. Fragment spreads are
// resolved (an unknown fragment or a cycle is an error) and each fragment is measured once per
// request, so a document that reuses fragments costs linear time to measure even when its
// expansion would be exponential. Counts saturate instead of overflowing. Runs on the calling
// worker; the options are immutable config shared by all workers.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "graphql/document.h"

namespace gatehouse::graphql {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct CostOptions {
  uint64_t default_field_cost = 1;
  // A field's own cost by name ("search": 10), instead of default_field_cost.
  std::unordered_map<std::string, uint64_t, StringHash, std::equal_to<>> field_costs;
  // Arguments that size a list (first, last, limit): the cost of the field's selection set is
  // multiplied by the value (a literal, or a variable from the request).
  std::vector<std::string> list_arguments = {"first", "last", "limit"};
  // The multiplier when a list argument is a variable with no value and no default.
  uint64_t default_list_size = 1;
};

struct OperationStats {
  uint32_t depth = 0;    // deepest field; a top-level field is depth 1
  uint64_t fields = 0;   // fields selected, fragments expanded
  uint64_t aliases = 0;  // aliased fields, fragments expanded
  // Each field costs its own cost plus, when it has a selection set, that set's cost times
  // its list multiplier (1 without a list argument).
  uint64_t cost = 0;
  bool introspection = false;  // selects __schema or __type
};

struct AnalysisError {
  enum class Kind : uint8_t {
    kOperationNameRequired,  // several operations and no operationName
    kUnknownOperation,       // operationName names none of them
    kUnknownFragment,
    kFragmentCycle,
    kFragmentsTooDeep,  // fragment spreads nested beyond kMaxFragmentChain
  };
  Kind kind = Kind::kUnknownOperation;
  std::string message;
};

inline constexpr uint32_t kMaxFragmentChain = 100;

// The operation to run: the one named `operation_name`, or the only one when it is empty.
std::variant<const Operation*, AnalysisError> selectOperation(const Document& doc,
                                                              std::string_view operation_name);

// `variables`: the request's variables (a JSON object, or null), for list arguments.
std::variant<OperationStats, AnalysisError> analyze(const Document& doc, const Operation& op,
                                                    const CostOptions& cost,
                                                    const nlohmann::json& variables);

}  // namespace gatehouse::graphql

#pragma once
// The syntax tree of a GraphQL executable document (GraphQL spec, October 2021, section 2):
// operations and fragments with their selections, arguments, variables and directives. Built by
// graphql::parse() on a worker for one request and read by graphql::analyze(); names and number
// texts are views into the parsed source, which must outlive the document. Decoded string
// values (escapes, block strings) are owned.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::graphql {

enum class OperationType : uint8_t { kQuery, kMutation, kSubscription };
std::string_view toString(OperationType t);

struct ObjectField;

struct Value {
  enum class Kind : uint8_t {
    kVariable,
    kInt,
    kFloat,
    kString,
    kBoolean,
    kNull,
    kEnum,
    kList,
    kObject
  };
  Kind kind = Kind::kNull;
  std::string_view text;  // variable or enum name, number text, "true" / "false"
  std::string string;     // kString: the decoded value
  std::vector<Value> list;
  std::vector<ObjectField> fields;
};

struct ObjectField {
  std::string_view name;
  Value value;
};

struct Argument {
  std::string_view name;
  Value value;
};

struct Directive {
  std::string_view name;
  std::vector<Argument> arguments;
};

struct Selection {
  enum class Kind : uint8_t { kField, kFragmentSpread, kInlineFragment };
  Kind kind = Kind::kField;
  std::string_view alias;           // kField; empty without one
  std::string_view name;            // the field name, or the spread fragment's name
  std::string_view type_condition;  // kInlineFragment; empty without one
  std::vector<Argument> arguments;
  std::vector<Directive> directives;
  std::vector<Selection> selections;  // the selection set (empty for a leaf field or a spread)
  uint32_t offset = 0;                // byte offset in the source
};

struct VariableDefinition {
  std::string_view name;  // without '$'
  std::string_view type;  // the type's source text ("[ID!]!")
  bool has_default = false;
  Value default_value;
  std::vector<Directive> directives;
};

struct Operation {
  OperationType type = OperationType::kQuery;
  std::string_view name;  // empty for an anonymous operation
  std::vector<VariableDefinition> variables;
  std::vector<Directive> directives;
  std::vector<Selection> selections;
  uint32_t offset = 0;
};

struct Fragment {
  std::string_view name;
  std::string_view type_condition;
  std::vector<Directive> directives;
  std::vector<Selection> selections;
  uint32_t offset = 0;
};

struct Document {
  std::vector<Operation> operations;
  std::vector<Fragment> fragments;
};

}  // namespace gatehouse::graphql

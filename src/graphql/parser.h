#pragma once
// The GraphQL parser: source text -> graphql::Document (GraphQL spec, October 2021: the
// executable subset of the grammar, section 2, and the document-level checks of section 5 that
// need no schema: executable definitions only, unique operation and fragment names, a lone
// anonymous operation). Bounded: the source size and the nesting depth (selection sets, list
// and object values, list types) are capped, so that a hostile document costs at most linear
// time and bounded stack. Never throws (bar allocation failure); runs on the calling worker.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "graphql/document.h"

namespace gatehouse::graphql {

struct ParseLimits {
  size_t max_bytes = 1 << 20;  // source size
  uint32_t max_nesting = 128;  // selection sets, list/object values and list types, combined
};

struct ParseError {
  enum class Kind : uint8_t {
    kTooLarge,       // the source is larger than max_bytes
    kTooDeep,        // nesting deeper than max_nesting
    kSyntax,         // a bad token or a grammar error
    kNotExecutable,  // a type system definition, a duplicate name, a non-lone anonymous query
  };
  Kind kind = Kind::kSyntax;
  size_t offset = 0;  // byte offset of the problem
  size_t line = 1;
  size_t column = 1;
  std::string message;  // "Syntax Error: Expected Name, found '}'" style, with no position
};

using ParseResult = std::variant<Document, ParseError>;

// The document must not outlive `source` (names point into it).
ParseResult parse(std::string_view source, const ParseLimits& limits = {});

}  // namespace gatehouse::graphql

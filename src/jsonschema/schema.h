#pragma once
// A compiled JSON Schema validator over nlohmann::json. A Builder takes one or more documents
// (a schema file, an OpenAPI document, the remote documents a $ref may name), compiles the
// entry points it is asked for into a tree of validator nodes ($ref, $id, $anchor and
// $dynamicRef resolved once), and yields an immutable Validator that any thread may share.
// Building runs on the control thread and reports problems as error values; validate() never
// throws and allocates only to report errors or to track `unevaluated*` annotations.
// Dialects: draft-04, draft-07, the OpenAPI 3.0 schema object (draft-04 + `nullable`) and
// 2020-12 (OpenAPI 3.1's default). A resource's `$schema` picks its dialect when it names one.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/result.h"

namespace gatehouse::jsonschema {

enum class Dialect : uint8_t { kDraft4, kDraft7, kOpenApi30, kDraft2020_12 };

// `format`: an annotation only (the default, as 2020-12 says), or asserted for the formats
// listed in docs/config.md (date-time, date, time, email, hostname, ipv4, ipv6, uri, uuid, ...).
enum class FormatMode : uint8_t { kAnnotate, kAssert };

struct Options {
  Dialect dialect = Dialect::kDraft2020_12;
  FormatMode formats = FormatMode::kAnnotate;
};

// One failed check: where in the instance (a JSON pointer, "" for the root), which keyword
// failed ("required", "type", "additionalProperties", ...) and a short message.
struct ValidationError {
  std::string instance_location;
  std::string keyword;
  std::string message;
};

// A compiled entry point of a Validator.
struct SchemaId {
  uint32_t node = 0;
};

class Validator;
struct CompileState;

class Builder {
 public:
  explicit Builder(Options options);
  ~Builder();
  Builder(Builder&&) noexcept;
  Builder& operator=(Builder&&) noexcept;

  // Registers `document` under the absolute `uri` (its retrieval URI; an `$id` at its root
  // wins). Every document a $ref may reach must be added before compile().
  Status addDocument(std::string uri, nlohmann::json document);
  // Compiles the schema at `reference`, a URI with an optional fragment ("file:/spec.yaml#/
  // components/schemas/Pet", "urn:x#anchor") resolved against the documents added.
  Result<SchemaId> compile(std::string_view reference);
  // The validator for everything compiled; the builder is spent.
  Result<std::shared_ptr<const Validator>> finish();

 private:
  std::unique_ptr<CompileState> state_;
};

struct Node;
struct Resource;

class Validator {
 public:
  Validator();  // empty; a Builder fills one
  ~Validator();
  // Whether `instance` is valid against `schema`. With `errors`, up to `max_errors` failures
  // are appended (the first ones found); without, validation stops at the first failure.
  bool validate(SchemaId schema, const nlohmann::json& instance,
                std::vector<ValidationError>* errors = nullptr, size_t max_errors = 16) const;
  size_t nodeCount() const;

 private:
  friend struct CompileState;
  friend class Evaluator;
  std::vector<Node> nodes_;
  std::vector<Resource> resources_;
};

// One schema document on its own: `schema` compiled at its root under `uri`.
Result<std::pair<std::shared_ptr<const Validator>, SchemaId>> compileSchema(
    const nlohmann::json& schema, Options options, std::string uri = "urn:gatehouse:schema");

}  // namespace gatehouse::jsonschema

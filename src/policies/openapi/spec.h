#pragma once
// The `openapi_validate` policy's model of an OpenAPI 3.0 or 3.1 document: its operations
// (path template, method, parameters, request body media types, response bodies), each schema
// compiled once into one shared jsonschema::Validator. Loaded on the control thread when the
// snapshot is built (a bad document fails the config); read by workers, never changed.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "jsonschema/schema.h"

namespace gatehouse::policies::openapi {

// What a parameter's string is turned into before its schema sees it.
enum class Scalar : uint8_t { kString, kInteger, kNumber, kBoolean, kAny };

struct Parameter {
  enum class In : uint8_t { kPath, kQuery, kHeader, kCookie };
  std::string name;  // header names lowercased
  In in = In::kQuery;
  bool required = false;
  bool array = false;               // schema type array: several values (explode) or one comma list
  bool explode = true;              // style form's default
  Scalar scalar = Scalar::kString;  // the value's type, or the items' type for an array
  bool has_schema = false;
  jsonschema::SchemaId schema;
};

struct MediaType {
  std::string range;  // "application/json", "application/*", "*/*" (lowercase, no parameters)
  bool json = false;  // a JSON media type whose body is checked against `schema`
  bool has_schema = false;
  jsonschema::SchemaId schema;
};

struct ResponseSpec {
  std::string status;  // "200", "2XX" or "default"
  std::vector<MediaType> content;
};

struct Operation {
  std::string method;  // upper case
  std::string path_template;
  std::vector<std::string> segments;  // "{id}" for a parameter segment
  size_t literal_segments = 0;        // more literal segments win a tie (OpenAPI's rule)
  std::string operation_id;
  std::vector<Parameter> parameters;
  bool has_request_body = false;
  bool body_required = false;
  std::vector<MediaType> request_content;
  std::vector<ResponseSpec> responses;
};

// The operation a request matched, with its path parameters' raw (still encoded) values.
struct Match {
  const Operation* operation = nullptr;
  bool path_known = false;  // the path matched some template, but not with this method
  std::vector<std::pair<std::string_view, std::string_view>> path_params;
};

class Spec {
 public:
  Spec(std::shared_ptr<const jsonschema::Validator> v, std::vector<Operation> ops)
      : validator_(std::move(v)), operations_(std::move(ops)) {}
  // `path` is the request path with any base path already removed. Any thread.
  Match match(std::string_view method, std::string_view path) const;
  const jsonschema::Validator& validator() const { return *validator_; }
  const std::vector<Operation>& operations() const { return operations_; }

 private:
  std::shared_ptr<const jsonschema::Validator> validator_;
  std::vector<Operation> operations_;
};

struct SpecOptions {
  jsonschema::FormatMode formats = jsonschema::FormatMode::kAnnotate;
};

// Loads and compiles the document at `file` (YAML or JSON). Errors name the document and the
// place in it ("paths./pets/{id}.get.parameters[0]: ...").
Result<std::shared_ptr<const Spec>> loadSpec(const std::string& file, SpecOptions options);
// The same from text already read (tests); `name` stands for the file in errors and $refs.
Result<std::shared_ptr<const Spec>> parseSpec(std::string_view text, const std::string& name,
                                              SpecOptions options);

// The range of every media type, spelled in two literals so that no tool reads a comment opener.
inline constexpr std::string_view kAnyMedia =
    "*/"
    "*";

// The media type of a Content-Type value: lowercased, without parameters.
std::string mediaTypeOf(std::string_view content_type);
// Whether `media` falls in `range` ("application/json", "application/*", "*/*").
bool mediaInRange(std::string_view media, std::string_view range);
bool isJsonMedia(std::string_view media);

}  // namespace gatehouse::policies::openapi

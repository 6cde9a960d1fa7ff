// Fuzzes the JSON Schema compiler and validator. Input: one byte choosing the dialect (low two
// bits) and whether formats are asserted (bit 2), then a schema document, a newline, and an
// instance. Neither compile nor validate may crash, loop or exhaust the stack, and the fast
// path (no error list) must agree with the error-collecting one.
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "jsonschema/schema.h"

namespace js = gatehouse::jsonschema;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 64 * 1024) return 0;
  const js::Dialect dialects[] = {js::Dialect::kDraft4, js::Dialect::kDraft7,
                                  js::Dialect::kOpenApi30, js::Dialect::kDraft2020_12};
  js::Options options{dialects[data[0] & 3],
                      (data[0] & 4) ? js::FormatMode::kAssert : js::FormatMode::kAnnotate};
  std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nl = in.find('\n');
  std::string_view schema_text = in.substr(0, nl);
  std::string_view instance_text = nl == std::string_view::npos ? "null" : in.substr(nl + 1);
  auto schema = nlohmann::json::parse(schema_text, nullptr, false);
  auto instance = nlohmann::json::parse(instance_text, nullptr, false);
  if (schema.is_discarded() || instance.is_discarded()) return 0;
  auto compiled = js::compileSchema(schema, options, "urn:fuzz");
  if (!compiled.ok()) return 0;
  const auto& [validator, id] = *compiled;
  const bool fast = validator->validate(id, instance);
  std::vector<js::ValidationError> errors;
  const bool slow = validator->validate(id, instance, &errors, 4);
  FUZZ_CHECK(fast == slow);
  FUZZ_CHECK(slow == errors.empty());
  FUZZ_CHECK(errors.size() <= 4);
  return 0;
}

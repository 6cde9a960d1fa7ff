// Feeds arbitrary bytes to routes_from_openapi's reader of an OpenAPI document's `paths`
// (config/openapi_routes_loader.h). It must never crash, hang or let an exception escape.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config/openapi_routes_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  gatehouse::config::Diagnostics diag("fuzz.yaml");
  auto ops = gatehouse::config::readOpenApiOperations(diag, text);
  size_t total = ops.size();
  for (const auto& e : diag.take())
    total += e.format().size();
  return total == SIZE_MAX ? 1 : 0;
}

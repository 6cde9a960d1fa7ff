// Feeds arbitrary bytes to the config loader. loadConfigString must never crash, hang, leak or
// let an exception escape, whatever the input; each finding is kept in corpus/config_loader/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view yaml(reinterpret_cast<const char*>(data), size);
  gatehouse::config::LoadResult result = gatehouse::config::loadConfigString(yaml, "fuzz.yaml");
  // Touch the output so the formatting path is fuzzed too.
  size_t total = 0;
  for (const auto& e : result.errors)
    total += e.format().size();
  if (result.ok() && !result.errors.empty()) __builtin_trap();  // ok() means no errors
  return total == SIZE_MAX ? 1 : 0;
}

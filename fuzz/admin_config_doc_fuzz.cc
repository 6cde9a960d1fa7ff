// The admin API's config document tools on arbitrary bytes: YAML -> JSON must never crash or
// throw; whatever it reads, our YAML writer must write text that reads back as the same JSON
// (the round trip every PATCH makes before it is validated), and a diff of the two texts must
// be computable. Each finding is kept in corpus/admin_config_doc/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "admin/config_doc.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = gatehouse::admin::yamlToJson(text);
  if (!doc.ok()) return 0;
  const std::string written = gatehouse::admin::jsonToYaml(*doc.value);
  auto again = gatehouse::admin::yamlToJson(written);
  FUZZ_CHECK(again.ok());
  // Floats may print differently; compare the texts that the writer makes of both.
  FUZZ_CHECK(gatehouse::admin::jsonToYaml(*again.value) == written);
  auto d = gatehouse::admin::diffLines(text, written, "a", "b");
  return d.unified.size() == SIZE_MAX ? 1 : 0;
}

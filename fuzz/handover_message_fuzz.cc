// The binary-upgrade handover messages (server/handover.h): parseHandoverMessage() and
// parseReady() on arbitrary bytes. Invariants: a parsed listener or admin message has a
// non-empty key without spaces and a worker below the limit, and the text it came from starts
// with its tag; a parsed READY pid is positive.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "server/handover.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  using gatehouse::server::HandoverMessage;
  if (auto m = gatehouse::server::parseHandoverMessage(text)) {
    if (m->tag != HandoverMessage::Tag::kEnd) {
      FUZZ_CHECK(!m->key.empty());
      FUZZ_CHECK(m->key.find(' ') == std::string::npos);
    }
    if (m->tag == HandoverMessage::Tag::kListener) {
      FUZZ_CHECK(m->worker < gatehouse::server::kMaxHandoverWorkers);
      FUZZ_CHECK(text.find('L') != std::string_view::npos);
    }
  }
  const pid_t pid = gatehouse::server::parseReady(text);
  FUZZ_CHECK(pid >= 0);
  return 0;
}

// TLS ClientHellos from untrusted clients (passthrough routing): must never crash; a verdict
// other than "need more" does not change when more bytes arrive; a found server name is a
// valid lowercase host name; the SNI router answers for any name.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "net/tls_client_hello.h"

using namespace gatehouse::net::tls_hello;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const Limits limits{2048};
  ClientHello h;
  HelloError err = HelloError::kNone;
  const HelloStatus st = inspect(in, limits, h, err);
  if (st == HelloStatus::kNeedMore) {
    FUZZ_CHECK(in.size() < limits.max_bytes);
    return 0;
  }
  ClientHello again;
  HelloError err2 = HelloError::kNone;
  FUZZ_CHECK(inspect(in + std::string(64, '\x16'), limits, again, err2) == st);
  if (st == HelloStatus::kError) {
    FUZZ_CHECK(err != HelloError::kNone && err2 == err);
    return 0;
  }
  if (st == HelloStatus::kNotTls) return 0;
  FUZZ_CHECK(again.server_name == h.server_name && again.alpn == h.alpn);
  FUZZ_CHECK(h.record_bytes > 0 && h.record_bytes <= in.size());
  if (!h.server_name.empty()) {
    FUZZ_CHECK(isValidHostName(h.server_name));
    for (char c : h.server_name)
      FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
  }
  for (const auto& proto : h.alpn)
    FUZZ_CHECK(!proto.empty() && proto.size() < 256);
  SniRouter router;
  FUZZ_CHECK(router.add("*.example.com", 1).ok());
  router.setDefault(0);
  const auto target = router.match(h.server_name);
  FUZZ_CHECK(target.has_value() && *target <= 1);
  return 0;
}

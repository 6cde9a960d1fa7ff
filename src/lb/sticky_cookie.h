#pragma once
// Session persistence with a gateway-issued cookie (cluster option `sticky`). The cookie value
// seals the chosen host's name and the time it was issued with AES-256-GCM under a key from the
// config (or a random per-process key): a client can neither read which host it names nor
// forge or alter one, and a cookie sealed for another cluster does not open here (the cluster
// name is the associated data). Built on the control thread, immutable, shared by all workers;
// seal() and open() are safe on any thread.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gatehouse::config {
struct StickySession;
}

namespace gatehouse::lb {

class StickyCookie {
 public:
  struct Opened {
    std::string host;
    int64_t issued_s = 0;  // wall-clock seconds
  };

  static Result<std::shared_ptr<const StickyCookie>> create(const config::StickySession& cfg,
                                                            std::string cluster);

  const std::string& name() const { return name_; }
  // The cookie value naming `host`, issued at `now_s`.
  std::string seal(std::string_view host, int64_t now_s) const;
  // The host named by `value`, or nullopt when it is malformed, altered, sealed under another
  // key or for another cluster, or older than the ttl.
  std::optional<Opened> open(std::string_view value, int64_t now_s) const;
  // A valid cookie past half its ttl is issued again, so an active session does not expire.
  bool wantsRefresh(const Opened& o, int64_t now_s) const;
  // The Set-Cookie header value for `host`.
  std::string setCookie(std::string_view host, int64_t now_s) const;

 private:
  std::string name_;
  uint64_t id_ = 0;      // process-unique: names this key in the per-thread cipher cache
  std::string cluster_;  // associated data
  std::array<unsigned char, 32> key_{};
  int64_t ttl_s_ = 0;
  std::string attributes_;  // "; Path=/; Max-Age=...; HttpOnly; ..."
};

// The per-process key used when `sticky.key` is not set: random, made once.
const std::array<unsigned char, 32>& processStickyKey();

}  // namespace gatehouse::lb

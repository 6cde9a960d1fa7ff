#pragma once
// Policy `basic_auth` (RFC 7617): `Authorization: Basic base64(user:password)` checked against
// password hashes from the consumer registry and/or an inline `users` list. Salted SHA-256 is
// checked inline in constant time. bcrypt (50-100 ms) never runs on a worker loop: a verified
// (user, password) pair is remembered in a bounded per-worker cache for `cache_ttl`, and a
// miss is verified on the shared offload pool while the request pauses (Verdict::kPause).
#include <cstdint>

#include "http/filter.h"

namespace gatehouse::policies::basic_auth {

// Process-wide, exported on /metrics as gatehouse_basic_auth_bcrypt_total{result=...}. Each
// thread counts in its own cells; this is their sum at the time of the call.
struct BcryptCounters {
  uint64_t cache_hits = 0;
  uint64_t verified = 0;  // bcrypt ran and the password matched
  uint64_t failed = 0;    // bcrypt ran and the password did not match
  uint64_t busy = 0;      // the offload pool was full: 503
};
BcryptCounters bcryptCounters();

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx);

}  // namespace gatehouse::policies::basic_auth

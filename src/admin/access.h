#pragma once
// Who may use the admin listener (docs/admin-api.md, "Access"): bearer tokens with a role, and
// client-certificate identities (mTLS) with a role. Built from config::Admin on the control
// thread with each snapshot (a token file that cannot be read refuses the config); read by the
// admin server on the same thread.
#include <string>
#include <string_view>
#include <vector>

#include "config/admin_options.h"
#include "core/result.h"
#include "net/tls.h"

namespace gatehouse::admin {

enum class Role { kNone, kRead, kWrite };

// The caller as authenticated: its role and a name for the audit log.
struct Principal {
  Role role = Role::kNone;
  std::string who;  // "token:NAME", "cert:SUBJECT", "loopback"
};

enum class AuthFailure {
  kNone,
  kNoCredentials,  // 401: access is configured and nothing was presented
  kBadToken,       // 401: a token that matches no configured one
  kNotAllowed,     // 403: no access configured and the peer is not on loopback
};

struct AuthResult {
  Principal principal;
  AuthFailure failure = AuthFailure::kNone;
};

class AccessPolicy {
 public:
  // Reads the tokens (file and/or environment variable). Errors name the file and line.
  static Result<AccessPolicy> build(const config::AdminAccess& admin);
  // Parses "NAME ROLE TOKEN" entries, one per line or ';'-separated; '#' starts a comment.
  // `where` labels errors.
  static Status parseTokens(std::string_view text, std::string_view where, AccessPolicy& into);

  // True when tokens or certificate roles are configured.
  bool configured() const { return !tokens_.empty() || !cert_roles_.empty(); }
  // `authorization` is the raw header (may be empty); `cert` the verified client certificate
  // (null without TLS, empty subject when none was sent).
  AuthResult authenticate(std::string_view authorization, const net::PeerCertificate* cert,
                          bool peer_is_loopback) const;

 private:
  struct Token {
    std::string name;
    Role role = Role::kRead;
    std::string sha256;  // of the token; compared in constant time
  };
  std::vector<Token> tokens_;
  std::vector<config::AdminCertRole> cert_roles_;
};

}  // namespace gatehouse::admin

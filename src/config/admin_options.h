#pragma once
// Who may use the admin listener and how writes are kept (the `admin:` keys beyond enabled,
// address and port; docs/config.md, "admin"). The loader reads them with the rest of `admin:`
// and returns them through the overloads below; only the server and admin/ use them, so they
// live here rather than in Config (whose header every layer includes).
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "config/loader.h"
#include "config/model.h"

namespace gatehouse::config {

// A client-certificate identity of the admin listener's mTLS and the role it is given.
struct AdminCertRole {
  // Matched against the verified client certificate: its RFC 2253 subject, its subject's CN,
  // or one of its subjectAltName entries ("DNS:ops.example", "URI:spiffe://...").
  std::string match;
  bool write = false;  // role `write` (else `read`)
};

struct AdminAccess {
  // Bearer tokens, "NAME ROLE TOKEN" per line (file) or ';'-separated (environment variable).
  std::optional<std::string> tokens_file;
  std::optional<std::string> tokens_env;
  // TLS on the admin listener; with client_auth, client certificates map to roles.
  std::optional<ListenerTls> tls;
  std::vector<AdminCertRole> cert_roles;
  size_t generations = 10;           // config generations kept for .../generations and rollback
  std::string audit_log = "stderr";  // "stderr", "off" or a file path: one JSON line per write
};

// config/loader.h's loadConfigFile and loadConfigString that also return the `admin:` access
// options (when the text parses) and, for a file, the bytes read.
LoadResult loadConfigFile(const std::string& path, std::string* text, AdminAccess* admin);
LoadResult loadConfigString(std::string_view yaml, const std::string& file_name,
                            AdminAccess* admin);

}  // namespace gatehouse::config

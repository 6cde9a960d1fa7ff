#include "config/admin_loader.h"

#include <string>
#include <string_view>

#include "config/tls_loader.h"

namespace gatehouse::config {

namespace {
constexpr std::string_view kAdminCertRoleKeys[] = {"match", "role"};
constexpr std::string_view kAdminRoles[] = {"read", "write"};
}  // namespace

void readAdminAccess(Diagnostics& diag, const MapReader& m, AdminAccess& a) {
  m.read("tokens_file", a.tokens_file);
  m.read("tokens_env", a.tokens_env);
  m.readInt("generations", 1, 1000, a.generations);
  m.read("audit_log", a.audit_log);
  if (const YAML::Node* v = m.find("tls")) a.tls = readListenerTls(diag, *v, m.path("tls"));
  if (const YAML::Node* v = m.find("cert_roles")) {
    const std::string path = m.path("cert_roles");
    if (!expectList(diag, *v, path)) return;
    if (!a.tls || a.tls->client_auth == "none") {
      diag.add(*v, path, "cert_roles needs admin.tls with client_auth optional or require");
    }
    size_t i = 0;
    for (const auto& item : *v) {
      MapReader rm(diag, item, path + "[" + std::to_string(i++) + "]", kAdminCertRoleKeys);
      if (!rm.isMap()) continue;
      AdminCertRole r;
      if (rm.require("match")) rm.read("match", r.match);
      std::string role = "read";
      if (rm.has("role")) readOneOf(rm, "role", kAdminRoles, role);
      r.write = role == "write";
      a.cert_roles.push_back(std::move(r));
    }
  }
}

}  // namespace gatehouse::config

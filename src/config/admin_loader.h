#pragma once
// Reads the access keys of `admin:` (tokens, TLS, certificate roles, generations, audit log;
// docs/config.md, "admin"). Internal to config/, called by the loader with the rest of `admin:`.
#include "config/admin_options.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

void readAdminAccess(Diagnostics& diag, const MapReader& admin, AdminAccess& out);

}  // namespace gatehouse::config

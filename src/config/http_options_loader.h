#pragma once
// Reads the top-level `http2:` section and a listener's `https_redirect:` (docs/config.md).
// Internal to config/; the loader calls them on the control thread.
#include <string>

#include <yaml-cpp/yaml.h>

#include "config/model.h"
#include "config/yaml_helpers.h"

namespace gatehouse::config {

void readHttp2(Diagnostics& diag, const YAML::Node& node, Http2Options& h);
// `https_redirect: true` or `{port, status}`; an error on a TLS listener.
void readHttpsRedirect(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                       Listener& l);

}  // namespace gatehouse::config

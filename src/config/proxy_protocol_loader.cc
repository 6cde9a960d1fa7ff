#include "config/proxy_protocol_loader.h"

#include <algorithm>

namespace gatehouse::config {

namespace {
constexpr std::string_view kListenerKeys[] = {"trusted", "versions"};
constexpr std::string_view kVersions[] = {"v1", "v2"};
constexpr std::string_view kSendModes[] = {"off", "v1", "v2"};

void readVersions(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                  ListenerProxyProtocol& pp) {
  if (!expectNonEmptyList(diag, node, path, "list at least one of v1, v2")) return;
  pp.accept_v1 = pp.accept_v2 = false;
  forEachString(
      diag, node, path,
      [&](const YAML::Node& item, const std::string& item_path, const std::string& v) {
        if (std::find(std::begin(kVersions), std::end(kVersions), v) == std::end(kVersions)) {
          diag.add(item, item_path,
                   "unknown PROXY protocol version '" + v + "'; expected v1 or v2");
          return;
        }
        bool& accept = v == "v1" ? pp.accept_v1 : pp.accept_v2;
        if (accept) diag.add(item, item_path, "'" + v + "' listed twice");
        accept = true;
      });
}
}  // namespace

std::optional<ListenerProxyProtocol> readListenerProxyProtocol(Diagnostics& diag,
                                                               const YAML::Node& node,
                                                               const std::string& path) {
  MapReader m(diag, node, path, kListenerKeys);
  if (!m.isMap()) return std::nullopt;
  ListenerProxyProtocol pp;
  if (m.require("trusted")) {
    const YAML::Node& list = *m.find("trusted");
    readCidrList(diag, list, m.path("trusted"), pp.trusted);
    if (list.IsSequence() && list.size() == 0) {
      diag.add(list, m.path("trusted"),
               "list the sources allowed to send a PROXY header (a load balancer's addresses); "
               "a header from any other source is refused");
    }
  }
  if (const YAML::Node* v = m.find("versions")) readVersions(diag, *v, m.path("versions"), pp);
  return pp;
}

void readClusterProxyProtocol(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                              Cluster& c) {
  std::optional<std::string> mode = readString(diag, node, path);
  if (!mode) return;
  if (std::find(std::begin(kSendModes), std::end(kSendModes), *mode) == std::end(kSendModes)) {
    diag.add(node, path, "unknown PROXY protocol mode '" + *mode + "'; expected v1, v2 or off");
    return;
  }
  c.proxy_protocol = *mode == "v1"   ? ProxyProtocolSend::kV1
                     : *mode == "v2" ? ProxyProtocolSend::kV2
                                     : ProxyProtocolSend::kOff;
  if (c.proxy_protocol != ProxyProtocolSend::kOff && c.protocol != "http1") {
    // One header describes one client; HTTP/2 multiplexes many clients on a connection.
    diag.add(node, path,
             "PROXY protocol is sent on HTTP/1.1 upstream connections only (protocol: http1)");
  }
}

}  // namespace gatehouse::config

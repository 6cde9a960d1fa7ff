#include "config/tls_loader.h"

#include <algorithm>
#include <string_view>

namespace gatehouse::config {
namespace {

constexpr std::string_view kTlsKeys[] = {"certificates",
                                         "min_version",
                                         "max_version",
                                         "ciphers",
                                         "ciphersuites",
                                         "groups",
                                         "alpn",
                                         "client_auth",
                                         "client_ca",
                                         "session_tickets",
                                         "session_timeout",
                                         "forward_client_cert"};
constexpr std::string_view kCertKeys[] = {"cert", "key", "ocsp"};
constexpr std::string_view kVersions[] = {"1.2", "1.3"};
constexpr std::string_view kClientAuth[] = {"none", "optional", "require"};
constexpr std::string_view kAlpn[] = {"h2", "http/1.1"};

bool oneOf(std::span<const std::string_view> list, std::string_view v) {
  return std::find(list.begin(), list.end(), v) != list.end();
}

}  // namespace

ListenerTls readListenerTls(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  ListenerTls tls;
  tls.line = node.Mark().line + 1;
  tls.yaml_path = path;
  MapReader m(diag, node, path, kTlsKeys);
  if (!m.isMap()) return tls;
  if (m.require("certificates")) {
    const YAML::Node& certs = *m.find("certificates");
    std::string cpath = m.path("certificates");
    if (expectList(diag, certs, cpath)) {
      if (certs.size() == 0) diag.add(certs, cpath, "at least one certificate is needed");
      size_t i = 0;
      for (const auto& item : certs) {
        std::string ipath = cpath + "[" + std::to_string(i++) + "]";
        MapReader cm(diag, item, ipath, kCertKeys);
        if (!cm.isMap()) continue;
        TlsCertificate c;
        if (cm.require("cert")) cm.read("cert", c.cert_file);
        if (cm.require("key")) cm.read("key", c.key_file);
        cm.read("ocsp", c.ocsp_file);
        tls.certificates.push_back(std::move(c));
      }
    }
  }
  if (m.has("min_version")) readOneOf(m, "min_version", kVersions, tls.min_version);
  if (m.has("max_version")) readOneOf(m, "max_version", kVersions, tls.max_version);
  if (tls.min_version > tls.max_version) {
    diag.add(node, m.path("min_version"), "min_version is above max_version");
  }
  m.read("ciphers", tls.ciphers);
  m.read("ciphersuites", tls.ciphersuites);
  m.read("groups", tls.groups);
  if (const YAML::Node* v = m.find("alpn")) {
    if (expectList(diag, *v, m.path("alpn"))) {
      tls.alpn.clear();
      for (const auto& p : *v) {
        std::string proto = p.IsScalar() ? p.Scalar() : "";
        if (!oneOf(kAlpn, proto)) {
          diag.add(p, m.path("alpn"),
                   "unsupported protocol '" + proto + "'; supported: h2, http/1.1");
          continue;
        }
        tls.alpn.push_back(proto);
      }
    }
  }
  if (m.has("client_auth")) readOneOf(m, "client_auth", kClientAuth, tls.client_auth);
  m.read("client_ca", tls.client_ca_file);
  if (tls.client_auth != "none" && !tls.client_ca_file) {
    diag.add(node, m.path("client_ca"), "client_auth '" + tls.client_auth + "' needs client_ca");
  }
  m.read("session_tickets", tls.session_tickets);
  m.read("forward_client_cert", tls.forward_client_cert);
  m.readDuration("session_timeout", Millis(1000), Millis(7 * 24 * 3600 * 1000LL),
                 tls.session_timeout);
  return tls;
}

UpstreamTls readUpstreamTls(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  static constexpr std::string_view kKeys[] = {"sni", "verify", "ca", "cert", "key", "min_version"};
  UpstreamTls tls;
  tls.line = node.Mark().line + 1;
  tls.yaml_path = path;
  if (node.IsScalar() && node.Scalar() == "true") return tls;  // `tls: true`: all defaults
  MapReader m(diag, node, path, kKeys);
  if (!m.isMap()) return tls;
  m.read("sni", tls.sni);
  m.read("verify", tls.verify);
  m.read("ca", tls.ca_file);
  m.read("cert", tls.cert_file);
  m.read("key", tls.key_file);
  if (tls.cert_file.has_value() != tls.key_file.has_value()) {
    diag.add(node, path, "cert and key go together");
  }
  if (m.has("min_version")) readOneOf(m, "min_version", kVersions, tls.min_version);
  return tls;
}

}  // namespace gatehouse::config

#include "config/discovery_loader.h"

#include <algorithm>
#include <cctype>
#include <iterator>

#include <arpa/inet.h>

namespace gatehouse::config {
namespace {

constexpr std::string_view kDnsKeys[] = {"name", "type", "port", "refresh", "resolvers", "weight"};
constexpr std::string_view kDnsTypes[] = {"A", "AAAA", "SRV"};

bool ipLiteral(const std::string& s) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, s.c_str(), buf) == 1 || ::inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

bool validDnsName(std::string_view n) {
  if (n.empty() || n.size() > 253) return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char ch) {
    return std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_';
  });
}

}  // namespace

void readDnsDiscovery(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                      Cluster& c) {
  MapReader m(diag, node, path, kDnsKeys);
  if (!m.isMap()) return;
  DnsDiscovery d;
  if (m.require("name")) {
    m.read("name", d.name);
    if (!validDnsName(d.name)) {
      diag.add(*m.find("name"), m.path("name"), "'" + d.name + "' is not a valid DNS name");
    }
  }
  if (const YAML::Node* v = m.find("type")) {
    std::optional<std::string> t = readString(diag, *v, m.path("type"));
    if (t && *t == "A")
      d.type = DnsDiscovery::Type::kA;
    else if (t && *t == "AAAA")
      d.type = DnsDiscovery::Type::kAAAA;
    else if (t && *t == "SRV")
      d.type = DnsDiscovery::Type::kSrv;
    else if (t) {
      diag.add(*v, m.path("type"),
               "unknown type '" + *t + "'; expected one of: " + joinNames(kDnsTypes));
    }
  }
  m.readInt("port", 1, 65535, d.port);
  if (d.type != DnsDiscovery::Type::kSrv && !m.has("port")) {
    diag.add(node, m.path("port"),
             "missing required option 'port' (A and AAAA answers carry none)");
  }
  m.readDuration("refresh", Millis(100), Millis(24LL * 3600 * 1000), d.refresh);
  m.readInt("weight", 1, 10000, d.weight);
  if (const YAML::Node* v = m.find("resolvers")) {
    if (expectList(diag, *v, m.path("resolvers"))) {
      size_t i = 0;
      for (const auto& item : *v) {
        std::string p = indexPath(m.path("resolvers"), i++);
        std::optional<std::string> s = readString(diag, item, p);
        if (!s) continue;
        // "ip:port", "[v6]:port" or a bare IP (port 53).
        auto colon = s->rfind(':');
        bool ok = ipLiteral(*s);
        if (!ok && colon != std::string::npos) {
          std::string host = s->substr(0, colon);
          if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
            host = host.substr(1, host.size() - 2);
          }
          std::optional<int64_t> port = parseInt(std::string_view(*s).substr(colon + 1));
          ok = port && *port > 0 && *port <= 65535 && ipLiteral(host);
        }
        if (!ok) {
          diag.add(item, p, "expected an IP address with an optional port, got '" + *s + "'");
          continue;
        }
        d.resolvers.push_back(*s);
      }
    }
  }
  c.dns = std::move(d);
}

}  // namespace gatehouse::config

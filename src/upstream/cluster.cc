#include "upstream/cluster.h"

namespace gatehouse::upstream {

std::string dnsKey(const config::DnsDiscovery& d) {
  std::string k = d.name + "|" + std::to_string(static_cast<int>(d.type)) + "|" +
                  std::to_string(d.port) + "|" + std::to_string(d.weight);
  for (const auto& r : d.resolvers)
    k += "|" + r;
  return k;
}

}  // namespace gatehouse::upstream

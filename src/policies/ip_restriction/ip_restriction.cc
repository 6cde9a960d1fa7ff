#include "policies/ip_restriction/ip_restriction.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>

#include "net/cidr.h"
#include "policies/access.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::ip_restriction {
namespace {

class IpRestrictionFilter final : public http::StatelessFilter {
 public:
  IpRestrictionFilter(net::CidrSet allow, net::CidrSet deny)
      : allow_(std::move(allow)), deny_(std::move(deny)) {}
  // Deny wins; with an allow list, the address must be on it. An address that does not parse
  // matches no list: it passes a deny-only policy but never an allow list (fail closed).
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    if (deny_.contains(ctx.client_ip)) return forbid(ctx, counters_.local().denied);
    if (!allow_.empty() && !allow_.contains(ctx.client_ip)) {
      return forbid(ctx, counters_.local().not_allowed);
    }
    return allow(counters_.local().allowed);
  }

  const Counters& counters() const { return counters_; }

 private:
  const net::CidrSet allow_;
  const net::CidrSet deny_;
  Counters counters_;  // per-thread cells: every worker counts in its own
};

Result<net::CidrSet> readCidrs(const YAML::Node& node, const std::string& what) {
  net::CidrSet set;
  if (!node) return set;
  auto list = readNonEmptyList(node, what, "addresses or CIDR ranges");
  if (!list.ok()) return list.error();
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string& s = (*list)[i];
    auto c = net::Cidr::parse(s);
    if (!c.ok()) {
      return configError(what + "[" + std::to_string(i) + "]: '" + s +
                         "' is not an IP address or CIDR range");
    }
    set.add(*c);
  }
  return set;
}

}  // namespace

const Counters* countersOf(const http::FilterFactory& factory) {
  return policies::countersOf<IpRestrictionFilter>(factory);
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  if (!config || !config.IsMap()) return configError("expected a map with 'allow' and/or 'deny'");
  if (auto st = checkKeys(config, {"allow", "deny"}); !st.ok()) return st.error();
  auto allow = readCidrs(config["allow"], "allow");
  if (!allow.ok()) return allow.error();
  auto deny = readCidrs(config["deny"], "deny");
  if (!deny.ok()) return deny.error();
  if (allow->empty() && deny->empty()) return configError("expected 'allow' and/or 'deny'");
  return http::FilterFactoryPtr(std::make_shared<http::StatelessFactory<IpRestrictionFilter>>(
      std::move(*allow), std::move(*deny)));
}

}  // namespace gatehouse::policies::ip_restriction

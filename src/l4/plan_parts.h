#pragma once
// Pieces shared by the plans of TCP and UDP listeners (l4/listener_plan.h, l4/udp_plan.h): the
// compiled `ip_restriction` (the shape of the L7 ip_restriction policy) and the cluster lookup.
// Built with a listener's plan, then immutable; any thread.
#include <optional>
#include <string>
#include <string_view>

#include "config/model.h"
#include "core/result.h"
#include "net/cidr.h"
#include "proxy/snapshot.h"

namespace gatehouse::l4 {

struct IpRuleSet {
  bool has_rules = false;
  net::CidrSet allow;
  net::CidrSet deny;

  // Errors: a CIDR that does not parse (the loader validated them already).
  static Result<IpRuleSet> compile(const std::optional<config::IpRules>& rules);

  // Deny wins; with an allow list, the client must be on it; an unparsable address matches
  // no list (passes deny-only rules, fails an allow list), as the ip_restriction policy does.
  bool admits(std::string_view client_ip) const {
    if (!has_rules) return true;
    if (deny.contains(client_ip)) return false;
    return allow.empty() || allow.contains(client_ip);
  }
};

// The index in `snap` of `cluster`, named by `listener`. Errors: no such cluster (validated by
// the loader already).
Result<int> listenerClusterIndex(const config::Listener& listener, const std::string& cluster,
                                 const proxy::Snapshot& snap);

}  // namespace gatehouse::l4

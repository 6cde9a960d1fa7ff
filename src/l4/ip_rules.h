#pragma once
// The compiled `ip_restriction` of an L4 listener (TCP or UDP): the shape of the L7
// ip_restriction policy. Built with the listener's plan, then immutable; any thread.
#include <optional>
#include <string_view>

#include "config/model.h"
#include "core/result.h"
#include "net/cidr.h"

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

}  // namespace gatehouse::l4

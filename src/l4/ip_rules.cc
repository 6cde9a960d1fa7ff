#include "l4/ip_rules.h"

namespace gatehouse::l4 {

Result<IpRuleSet> IpRuleSet::compile(const std::optional<config::IpRules>& rules) {
  IpRuleSet out;
  if (!rules) return out;
  out.has_rules = true;
  for (auto [list, set] :
       {std::pair{&rules->allow, &out.allow}, std::pair{&rules->deny, &out.deny}}) {
    for (const std::string& text : *list) {
      auto c = net::Cidr::parse(text);
      if (!c.ok()) return c.error();
      set->add(*c);
    }
  }
  return out;
}

}  // namespace gatehouse::l4

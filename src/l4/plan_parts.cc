#include "l4/plan_parts.h"

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

Result<int> listenerClusterIndex(const config::Listener& listener, const std::string& cluster,
                                 const proxy::Snapshot& snap) {
  int index = snap.clusterIndex(cluster);
  if (index < 0) {
    return Error::make(ErrorCode::kNotFound, ErrorSource::kConfig,
                       "listener '" + listener.name + "': unknown cluster '" + cluster + "'");
  }
  return index;
}

}  // namespace gatehouse::l4

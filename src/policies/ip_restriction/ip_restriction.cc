#include "policies/ip_restriction/ip_restriction.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>

#include "net/cidr.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::ip_restriction {
namespace {

class IpRestrictionFilter final : public http::Filter, public http::FilterFactory {
 public:
  IpRestrictionFilter(net::CidrSet allow, net::CidrSet deny)
      : allow_(std::move(allow)), deny_(std::move(deny)) {}
  http::FilterRef create() const override { return http::FilterRef::shared(*this); }

  // Deny wins; with an allow list, the address must be on it. An address that does not parse
  // matches no list: it passes a deny-only policy but never an allow list (fail closed).
  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    if (deny_.contains(ctx.client_ip)) {
      counters_.denied.fetch_add(1, std::memory_order_relaxed);
      return ctx.respondError(403, "forbidden");
    }
    if (!allow_.empty() && !allow_.contains(ctx.client_ip)) {
      counters_.not_allowed.fetch_add(1, std::memory_order_relaxed);
      return ctx.respondError(403, "forbidden");
    }
    counters_.allowed.fetch_add(1, std::memory_order_relaxed);
    return http::Verdict::kContinue;
  }

  const Counters& counters() const { return counters_; }

 private:
  const net::CidrSet allow_;
  const net::CidrSet deny_;
  Counters counters_;
};

Result<net::CidrSet> readCidrs(const YAML::Node& node, const std::string& what) {
  net::CidrSet set;
  if (!node) return set;
  if (!node.IsSequence() || node.size() == 0) {
    return configError(what + ": expected a non-empty list of addresses or CIDR ranges");
  }
  for (size_t i = 0; i < node.size(); ++i) {
    std::string at = what + "[" + std::to_string(i) + "]";
    auto s = readString(node[i], at);
    if (!s.ok()) return s.error();
    auto c = net::Cidr::parse(*s);
    if (!c.ok()) return configError(at + ": '" + *s + "' is not an IP address or CIDR range");
    set.add(*c);
  }
  return set;
}

}  // namespace

const Counters* countersOf(const http::FilterFactory& factory) {
  const auto* f = dynamic_cast<const IpRestrictionFilter*>(&factory);
  return f ? &f->counters() : nullptr;
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  if (!config || !config.IsMap()) return configError("expected a map with 'allow' and/or 'deny'");
  if (auto st = checkKeys(config, {"allow", "deny"}); !st.ok()) return st.error();
  auto allow = readCidrs(config["allow"], "allow");
  if (!allow.ok()) return allow.error();
  auto deny = readCidrs(config["deny"], "deny");
  if (!deny.ok()) return deny.error();
  if (allow->empty() && deny->empty()) return configError("expected 'allow' and/or 'deny'");
  return http::FilterFactoryPtr(
      std::make_shared<IpRestrictionFilter>(std::move(*allow), std::move(*deny)));
}

}  // namespace gatehouse::policies::ip_restriction

#include "policies/acl/acl.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "policies/access.h"
#include "policies/auth/auth_common.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::acl {
namespace {

struct List {
  std::vector<std::string> consumers;
  std::vector<std::string> groups;

  bool empty() const { return consumers.empty() && groups.empty(); }
  bool matches(const http::RequestContext& ctx) const {
    if (ctx.consumer.empty()) return false;  // lists name identities; anonymous has none
    if (std::find(consumers.begin(), consumers.end(), ctx.consumer) != consumers.end()) {
      return true;
    }
    for (const auto& g : ctx.consumer_groups) {
      if (std::find(groups.begin(), groups.end(), g) != groups.end()) return true;
    }
    return false;
  }
};

class AclFilter final : public http::StatelessFilter {
 public:
  AclFilter(List allow, List deny, int unauthenticated_status)
      : allow_(std::move(allow)),
        deny_(std::move(deny)),
        unauthenticated_status_(unauthenticated_status) {}
  // Deny wins; then, when an allow list exists, only identities on it pass.
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    if (deny_.matches(ctx)) return forbid(ctx, counters_.local().denied);
    if (allow_.empty()) return allow(counters_.local().allowed);
    if (ctx.consumer.empty()) {
      if (unauthenticated_status_ != 401) return forbid(ctx, counters_.local().unauthenticated);
      counters_.local().unauthenticated.inc();
      // RFC 9110 §15.5.2: a 401 must carry a challenge; `key_auth` is the scheme we offer.
      http::Verdict v = ctx.respondError(401, "authentication required");
      ctx.local_reply.headers.add("www-authenticate", "ApiKey realm=\"gatehouse\"");
      return v;
    }
    if (!allow_.matches(ctx)) return forbid(ctx, counters_.local().not_allowed);
    return allow(counters_.local().allowed);
  }

  const Counters& counters() const { return counters_; }

 private:
  const List allow_;
  const List deny_;
  const int unauthenticated_status_;
  Counters counters_;  // per-thread cells: every worker counts in its own
};

Status readNames(const YAML::Node& node, const std::string& what, std::vector<std::string>& out) {
  if (!node.IsSequence()) return configError(what + ": expected a list of names");
  for (size_t i = 0; i < node.size(); ++i) {
    auto s = readString(node[i], what + "[" + std::to_string(i) + "]");
    if (!s.ok()) return s.error();
    if (s->empty()) return configError(what + "[" + std::to_string(i) + "]: empty name");
    out.push_back(std::move(*s));
  }
  return {};
}

Result<List> readList(const YAML::Node& node, const std::string& what) {
  List l;
  if (!node) return l;
  if (!node.IsMap()) return configError(what + ": expected a map with consumers and/or groups");
  if (auto st = checkKeys(node, {"consumers", "groups"}); !st.ok()) {
    return configError(what + ": " + st.error().message);
  }
  if (node["consumers"]) {
    if (auto st = readNames(node["consumers"], what + ".consumers", l.consumers); !st.ok()) {
      return st.error();
    }
  }
  if (node["groups"]) {
    if (auto st = readNames(node["groups"], what + ".groups", l.groups); !st.ok()) {
      return st.error();
    }
  }
  if (l.empty()) return configError(what + ": lists no consumers or groups");
  return l;
}

Status checkNames(const List& l, const std::string& what, const http::PolicyContext& ctx) {
  const auto& registry = auth::registryOf(ctx);
  if (registry->isEmpty()) return {};
  for (size_t i = 0; i < l.consumers.size(); ++i) {
    const std::string& name = l.consumers[i];
    if (registry->byName(name)) continue;
    bool defined = false;
    for (const auto& f : ctx.preceding) {
      const auto* a = dynamic_cast<const auth::AuthFactory*>(f.get());
      defined = defined || (a && a->definesConsumer(name));
    }
    if (!defined) {
      return configError(what + ".consumers[" + std::to_string(i) + "]: unknown consumer '" + name +
                         "' (not in the consumers registry nor set by an earlier auth "
                         "policy on this route)");
    }
  }
  return {};
}

}  // namespace

const Counters* countersOf(const http::FilterFactory& factory) {
  return policies::countersOf<AclFilter>(factory);
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  if (!config || !config.IsMap()) return configError("expected a map with 'allow' and/or 'deny'");
  if (auto st = checkKeys(config, {"allow", "deny", "unauthenticated_status"}); !st.ok()) {
    return st.error();
  }
  auto allow = readList(config["allow"], "allow");
  if (!allow.ok()) return allow.error();
  auto deny = readList(config["deny"], "deny");
  if (!deny.ok()) return deny.error();
  if (allow->empty() && deny->empty()) return configError("expected 'allow' and/or 'deny'");
  if (auto st = checkNames(*allow, "allow", ctx); !st.ok()) return st.error();
  if (auto st = checkNames(*deny, "deny", ctx); !st.ok()) return st.error();
  int status = 403;
  if (const auto& s = config["unauthenticated_status"]) {
    auto v = readInt(s, "unauthenticated_status", 401, 403);
    if (!v.ok() || (*v != 401 && *v != 403)) {
      return configError("unauthenticated_status: must be 401 or 403");
    }
    if (allow->empty()) {
      return configError("unauthenticated_status: only applies with an 'allow' list");
    }
    status = *v;
  }
  return http::FilterFactoryPtr(std::make_shared<http::StatelessFactory<AclFilter>>(
      std::move(*allow), std::move(*deny), status));
}

}  // namespace gatehouse::policies::acl

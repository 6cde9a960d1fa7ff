#include "policies/require_consumer/require_consumer.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "policies/auth/auth_common.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::require_consumer {
namespace {

class RequireConsumerFilter final : public http::StatelessFilter {
 public:
  RequireConsumerFilter(std::vector<std::string> challenges, std::vector<std::string> anonymous)
      : challenges_(std::move(challenges)), anonymous_(std::move(anonymous)) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    bool anonymous =
        std::find(anonymous_.begin(), anonymous_.end(), ctx.consumer) != anonymous_.end();
    if (!ctx.consumer.empty() && !anonymous) return http::Verdict::kContinue;
    http::Verdict v = auth::reject(ctx, "require_consumer", auth_metrics::Reason::kMissing, {},
                                   "authentication required");
    for (const auto& c : challenges_)
      ctx.local_reply.headers.add("www-authenticate", c);
    return v;
  }

 private:
  const std::vector<std::string> challenges_;
  const std::vector<std::string> anonymous_;
};

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  if (config && !config.IsNull() && !(config.IsMap() && config.size() == 0)) {
    return configError("takes no options (use `config: {}` or leave `config` out)");
  }
  std::vector<std::string> challenges;
  std::vector<std::string> anonymous;
  for (const auto& f : ctx.preceding) {
    const auto* a = dynamic_cast<const auth::AuthFactory*>(f.get());
    if (!a) continue;
    std::string c = a->challenge();
    if (!c.empty() && std::find(challenges.begin(), challenges.end(), c) == challenges.end()) {
      challenges.push_back(std::move(c));
    }
    if (!a->anonymousName().empty()) anonymous.emplace_back(a->anonymousName());
  }
  if (challenges.empty()) {
    return configError(
        "no authentication policy (key_auth, basic_auth, hmac_auth) comes before it on this "
        "route; put require_consumer after the optional auth policies it completes");
  }
  auth_metrics::ensureRegistered();
  return http::FilterFactoryPtr(std::make_shared<http::StatelessFactory<RequireConsumerFilter>>(
      std::move(challenges), std::move(anonymous)));
}

}  // namespace gatehouse::policies::require_consumer

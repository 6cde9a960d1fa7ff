#pragma once
// What every authentication policy shares: the AuthFactory interface other policies read
// from the chain at build time (require_consumer, acl), the identity options (`optional`,
// `consumer_header`, `metadata_headers`), setting the consumer on a request, and the 401.
//
// "Any of" several methods on one route: each auth policy with `optional: true` passes a
// request that carries no credential of its kind (and one an earlier policy already
// authenticated); a credential that is present but wrong is still a 401. A final
// `require_consumer` policy answers 401, with every method's challenge, when none succeeded.
#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/filter.h"
#include "policies/auth/auth_metrics.h"
#include "policies/auth/consumers.h"

namespace gatehouse::policies::auth {

struct IdentityOptions {
  bool optional = false;
  std::string consumer_header;                                        // empty: not sent
  std::vector<std::pair<std::string, std::string>> metadata_headers;  // metadata key -> header
  // Anonymous names of earlier auth policies in the chain: not an authentication.
  std::vector<std::string> anonymous_before;
  // Our identity headers that no earlier auth policy sets: removed when we skip a request an
  // earlier policy authenticated (the others carry that policy's values).
  std::vector<std::string> strip_when_skipping;
};

class AuthFactory : public http::FilterFactory {
 public:
  virtual std::string_view policyName() const = 0;
  // The WWW-Authenticate value this policy answers with.
  virtual std::string challenge() const = 0;
  virtual bool isOptional() const = 0;
  // The identity given to requests without a credential (key_auth `anonymous`); empty if none.
  virtual std::string_view anonymousName() const { return {}; }
  // True when this policy can itself set `name` (an inline consumer, or its anonymous name).
  virtual bool definesConsumer(std::string_view name) const = 0;
  virtual const IdentityOptions& identity() const = 0;
};

// The option names readIdentityOptions() accepts, for a policy's checkKeys list.
inline constexpr std::string_view kIdentityKeys[] = {"optional", "consumer_header",
                                                     "metadata_headers"};

// Fails with "unknown option ..." listing `own` and kIdentityKeys.
Status checkAuthKeys(const YAML::Node& config, std::initializer_list<std::string_view> own);
Result<IdentityOptions> readIdentityOptions(const YAML::Node& config,
                                            const http::PolicyContext& ctx);

// The registry of the snapshot being built (the empty one when there is none).
const std::shared_ptr<const ConsumerRegistry>& registryOf(const http::PolicyContext& ctx);

// Resolves a policy's `consumers:` selection against the registry: absent or "registry" means
// every consumer that `has` accepts; a list of names picks those (each must exist and pass
// `has`, else an error naming it). `what` names the credential in errors ("an API key").
Result<std::vector<const Consumer*>> selectConsumers(const YAML::Node& node,
                                                     const ConsumerRegistry& registry,
                                                     bool (*has)(const Consumer&),
                                                     std::string_view what);

// Client-sent copies of the identity headers are never trusted: removed on every request.
void stripIdentityHeaders(http::RequestContext& ctx, const IdentityOptions& o);
void setIdentity(http::RequestContext& ctx, const Consumer& c, const IdentityOptions& o);
// The "auth" span event of a traced request (ctx.trace set): a consumer admitted, or a
// credential refused by `policy` for `reason`.
void traceAuthAllowed(http::RequestContext& ctx, std::string_view consumer);
void traceAuthDenied(http::RequestContext& ctx, std::string_view policy, std::string_view reason);
// True when an earlier auth policy already set a (non-anonymous) consumer: an optional policy
// then has nothing to add. Removes the client's copies of our headers either way.
bool skipAuthenticated(http::RequestContext& ctx, const IdentityOptions& o);
// Where every auth policy's request path starts: skipAuthenticated for an optional policy, else
// stripIdentityHeaders. True when the policy has nothing to do (optional, already authenticated).
bool alreadyAuthenticated(http::RequestContext& ctx, const IdentityOptions& o);

// Removes every `name` parameter from the request's query (a credential sent in the URL must
// not reach the upstream).
void removeQueryParam(http::Request& req, std::string_view name);

// 401 (or `status`) with a JSON body carrying the request id and the challenge; clears any
// identity an earlier policy set. Counts `reason` for `policy`.
http::Verdict reject(http::RequestContext& ctx, std::string_view policy,
                     auth_metrics::Reason reason, std::string_view challenge,
                     std::string_view message, int status = 401);

}  // namespace gatehouse::policies::auth

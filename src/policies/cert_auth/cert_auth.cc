#include "policies/cert_auth/cert_auth.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "policies/auth/auth_common.h"
#include "policies/auth/consumers.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::cert_auth {
namespace {

using Kind = CertificateCredential::Kind;

// No HTTP scheme asks for a TLS client certificate; this one names what is missing, and gives
// require_consumer a challenge to list next to the others.
constexpr std::string_view kChallenge = "MutualTLS realm=\"gatehouse\"";
constexpr std::string_view kMessage = "a known client certificate is required";

struct Options {
  std::shared_ptr<const ConsumerRegistry> registry;
  std::vector<const Consumer*> consumers;  // the ones this policy accepts
  auth::IdentityOptions identity;
};

class CertAuthFilter final : public http::StatelessFilter {
 public:
  explicit CertAuthFilter(Options o) : opts_(std::move(o)) {}
  const Options& options() const { return opts_; }

  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    if (auth::alreadyAuthenticated(ctx, opts_.identity)) return http::Verdict::kContinue;
    // The TLS layer sets these only for a certificate that verified against the client CA.
    if (ctx.client_cert_sha256.empty()) {
      if (opts_.identity.optional) return http::Verdict::kContinue;
      return reject(ctx, auth_metrics::Reason::kMissing);
    }
    const Consumer* c = match(ctx);
    if (!c) return reject(ctx, auth_metrics::Reason::kBadCredentials);
    auth::setIdentity(ctx, *c, opts_.identity);
    return http::Verdict::kContinue;
  }

 private:
  // The fingerprint pins one certificate and wins. Otherwise every SAN entry and the subject
  // are looked up; they must all lead to one consumer: a certificate two consumers could claim
  // is ambiguous and refused rather than given to whichever is checked first.
  const Consumer* match(const http::RequestContext& ctx) const {
    const ConsumerRegistry& r = *opts_.registry;
    if (const Consumer* c = r.findCertificate(Kind::kSha256, ctx.client_cert_sha256)) {
      return accepted(c) ? c : nullptr;
    }
    const Consumer* found = nullptr;
    bool ambiguous = false;
    auto consider = [&](const Consumer* c) {
      if (!c || !accepted(c)) return;
      if (found && found != c) ambiguous = true;
      found = c;
    };
    for (const auto& san : ctx.client_cert_san_entries)
      consider(r.findCertificate(Kind::kSan, san));
    consider(r.findCertificate(Kind::kSubject, ctx.client_cert_subject));
    return ambiguous ? nullptr : found;
  }

  bool accepted(const Consumer* c) const {
    return std::find(opts_.consumers.begin(), opts_.consumers.end(), c) != opts_.consumers.end();
  }

  http::Verdict reject(http::RequestContext& ctx, auth_metrics::Reason reason) const {
    return auth::reject(ctx, "cert_auth", reason, kChallenge, kMessage);
  }

  const Options opts_;
};

class CertAuthFactory final : public auth::AuthFactory {
 public:
  explicit CertAuthFactory(Options o) : filter_(std::move(o)) {}
  http::FilterRef create() const override { return http::FilterRef::shared(filter_); }

  std::string_view policyName() const override { return "cert_auth"; }
  std::string challenge() const override { return std::string(kChallenge); }
  bool isOptional() const override { return opts().identity.optional; }
  bool definesConsumer(std::string_view) const override { return false; }  // registry only
  const auth::IdentityOptions& identity() const override { return opts().identity; }

 private:
  const Options& opts() const { return filter_.options(); }
  const CertAuthFilter filter_;
};

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  YAML::Node cfg = config && !config.IsNull() ? config : YAML::Node(YAML::NodeType::Map);
  if (auto st = auth::checkAuthKeys(cfg, {"consumers"}); !st.ok()) return st.error();
  Options o;
  auto identity = auth::readIdentityOptions(cfg, ctx);
  if (!identity.ok()) return identity.error();
  o.identity = std::move(*identity);
  o.registry = auth::registryOf(ctx);
  const YAML::Node& list = cfg["consumers"];
  if (list && list.IsSequence() && list.size() > 0 && !list[0].IsScalar()) {
    return configError(
        "consumers: expected \"registry\" or a list of consumer names; certificates are "
        "configured in the top-level consumers registry (credentials.certificates)");
  }
  auto picked = auth::selectConsumers(
      list, *o.registry, [](const Consumer& c) { return !c.certificates.empty(); },
      "certificate credentials");
  if (!picked.ok()) return picked.error();
  o.consumers = std::move(*picked);
  auth_metrics::ensureRegistered();
  return http::FilterFactoryPtr(std::make_shared<CertAuthFactory>(std::move(o)));
}

}  // namespace gatehouse::policies::cert_auth

#include "policies/rewrite/rewrite.h"

#include <re2/re2.h>
#include <yaml-cpp/yaml.h>

#include "policies/policy_yaml.h"
#include "proxy/rewrite.h"

namespace gatehouse::policies::rewrite {
namespace {

class RewriteFilter final : public http::StatelessFilter {
 public:
  RewriteFilter(config::Rewrite spec, std::unique_ptr<re2::RE2> re)
      : spec_(std::move(spec)), re_(std::move(re)) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    if (spec_.strip_prefix || re_) {
      ctx.request.path = proxy::rewritePath(spec_, re_.get(), ctx.request.path);
    }
    if (spec_.host) ctx.request.authority = *spec_.host;
    return http::Verdict::kContinue;
  }

 private:
  const config::Rewrite spec_;
  const std::unique_ptr<re2::RE2> re_;
};

}  // namespace

Result<http::FilterFactoryPtr> fromModel(const config::Rewrite& spec) {
  std::unique_ptr<re2::RE2> re;
  if (spec.regex) {
    if (!spec.regex_replace) return configError("regex needs regex_replace");
    re = std::make_unique<re2::RE2>(*spec.regex, re2::RE2::Quiet);
    if (!re->ok()) return configError("regex: " + re->error());
    std::string why;
    if (!re->CheckRewriteString(*spec.regex_replace, &why)) {
      return configError("regex_replace: " + why);
    }
  }
  if (spec.host && !isHeaderValue(*spec.host)) return configError("host: invalid characters");
  return http::FilterFactoryPtr(
      std::make_shared<http::StatelessFactory<RewriteFilter>>(spec, std::move(re)));
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  if (auto st = checkKeys(config, {"strip_prefix", "regex", "regex_replace", "host"}); !st.ok()) {
    return st.error();
  }
  config::Rewrite spec;
  for (auto [key, field] :
       {std::pair{"strip_prefix", &spec.strip_prefix}, std::pair{"regex", &spec.regex},
        std::pair{"regex_replace", &spec.regex_replace}, std::pair{"host", &spec.host}}) {
    if (!config[key]) continue;
    auto v = readString(config[key], key);
    if (!v.ok()) return v.error();
    *field = std::move(*v);
  }
  return fromModel(spec);
}

}  // namespace gatehouse::policies::rewrite

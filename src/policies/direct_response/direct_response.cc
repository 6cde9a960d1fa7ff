#include "policies/direct_response/direct_response.h"

#include <yaml-cpp/yaml.h>

#include "policies/policy_yaml.h"

namespace gatehouse::policies::direct_response {
namespace {

class DirectResponseFilter final : public http::StatelessFilter {
 public:
  explicit DirectResponseFilter(config::DirectResponse spec) : spec_(std::move(spec)) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    return ctx.respond(spec_.status, spec_.body, spec_.content_type);
  }

 private:
  const config::DirectResponse spec_;
};

}  // namespace

http::FilterFactoryPtr fromModel(const config::DirectResponse& spec) {
  return std::make_shared<http::StatelessFactory<DirectResponseFilter>>(spec);
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  if (auto st = checkKeys(config, {"status", "body", "content_type"}); !st.ok()) return st.error();
  config::DirectResponse spec;
  if (config["status"]) {
    auto s = readInt(config["status"], "status", 200, 599);
    if (!s.ok()) return s.error();
    spec.status = *s;
  }
  if (config["body"]) {
    auto b = readString(config["body"], "body");
    if (!b.ok()) return b.error();
    spec.body = std::move(*b);
  }
  if (config["content_type"]) {
    auto c = readString(config["content_type"], "content_type");
    if (!c.ok()) return c.error();
    if (!isHeaderValue(*c)) return configError("content_type: contains control characters");
    spec.content_type = std::move(*c);
  }
  return fromModel(spec);
}

}  // namespace gatehouse::policies::direct_response

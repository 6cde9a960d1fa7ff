#include "policies/redirect/redirect.h"

#include <yaml-cpp/yaml.h>

#include "policies/policy_yaml.h"

namespace gatehouse::policies::redirect {
namespace {

// Replaces the port of "host[:port]" ("[v6]:port" too); the scheme's default port is left out.
std::string withPort(std::string_view host, uint16_t port, std::string_view scheme) {
  std::string_view name = host;
  if (!host.empty() && host.front() == '[') {
    name = host.substr(0, host.find(']') + 1);
  } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
  }
  bool dflt = (scheme == "https" && port == 443) || (scheme == "http" && port == 80);
  std::string out(name);
  if (!dflt) out += ":" + std::to_string(port);
  return out;
}

class RedirectFilter final : public http::StatelessFilter {
 public:
  explicit RedirectFilter(config::Redirect spec) : spec_(std::move(spec)) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    std::string location;
    if (spec_.location) {
      location = *spec_.location;
    } else {
      const auto& req = ctx.request;
      std::string scheme = spec_.scheme.value_or(req.scheme);
      std::string host = spec_.host.value_or(req.authority);
      if (spec_.port) host = withPort(host, *spec_.port, scheme);
      location = scheme + "://" + host + spec_.path.value_or(req.path);
      if (!spec_.strip_query && !req.query.empty()) location += "?" + req.query;
    }
    ctx.respond(spec_.status, {}, "text/plain");
    ctx.local_reply.headers.add("location", location);
    return http::Verdict::kRespond;
  }

 private:
  const config::Redirect spec_;
};

}  // namespace

http::FilterFactoryPtr fromModel(const config::Redirect& spec) {
  return std::make_shared<http::StatelessFactory<RedirectFilter>>(spec);
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  if (auto st = checkKeys(config,
                          {"status", "location", "scheme", "host", "path", "port", "strip_query"});
      !st.ok()) {
    return st.error();
  }
  config::Redirect spec;
  if (config["status"]) {
    auto s = readInt(config["status"], "status", 300, 399);
    if (!s.ok()) return s.error();
    if (*s != 301 && *s != 302 && *s != 303 && *s != 307 && *s != 308) {
      return configError("status: must be one of 301, 302, 303, 307, 308");
    }
    spec.status = *s;
  }
  auto opt = [&](const char* key, std::optional<std::string>& out) -> Status {
    if (!config[key]) return {};
    auto v = readString(config[key], key);
    if (!v.ok()) return v.error();
    if (!isHeaderValue(*v)) return configError(std::string(key) + ": contains control characters");
    out = std::move(*v);
    return {};
  };
  for (auto [key, field] :
       {std::pair{"location", &spec.location}, std::pair{"scheme", &spec.scheme},
        std::pair{"host", &spec.host}, std::pair{"path", &spec.path}}) {
    if (auto st = opt(key, *field); !st.ok()) return st.error();
  }
  if (config["port"]) {
    auto port = readInt(config["port"], "port", 1, 65535);
    if (!port.ok()) return port.error();
    spec.port = static_cast<uint16_t>(*port);
  }
  if (config["strip_query"]) spec.strip_query = config["strip_query"].as<bool>(false);
  if (!spec.location && !spec.scheme && !spec.host && !spec.path && !spec.port) {
    return configError("give 'location' or at least one of scheme, host, path, port");
  }
  return fromModel(spec);
}

}  // namespace gatehouse::policies::redirect

#include "policies/headers/headers.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <utility>
#include <vector>

#include "http/headers.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::headers {
namespace {

struct Edits {
  std::vector<std::pair<std::string, std::string>> add;
  std::vector<std::pair<std::string, std::string>> set;
  std::vector<std::string> remove;

  bool empty() const { return add.empty() && set.empty() && remove.empty(); }
  void apply(http::HeaderMap& h) const {
    for (const auto& r : remove)
      h.remove(r);
    for (const auto& [k, v] : set)
      h.set(k, v);
    for (const auto& [k, v] : add)
      h.add(k, v);
  }
};

// Stateless: one shared instance serves every request on every worker.
class HeadersFilter final : public http::StatelessFilter {
 public:
  HeadersFilter(Edits req, Edits resp) : request_(std::move(req)), response_(std::move(resp)) {}
  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    request_.apply(ctx.request.headers);
    return http::Verdict::kContinue;
  }
  http::Verdict onResponseHeaders(http::RequestContext& ctx) const override {
    response_.apply(ctx.response.headers);
    return http::Verdict::kContinue;
  }

 private:
  const Edits request_;
  const Edits response_;
};

bool framingHeader(std::string_view name) {
  return http::iequals(name, "content-length") || http::iequals(name, "transfer-encoding") ||
         http::iequals(name, "connection") || http::iequals(name, "upgrade");
}

Status readPairs(const YAML::Node& node, std::string_view what,
                 std::vector<std::pair<std::string, std::string>>& out) {
  if (!node.IsMap()) return configError(std::string(what) + ": expected a map of header: value");
  for (const auto& kv : node) {
    std::string name = kv.first.as<std::string>("");
    if (!isHeaderName(name)) {
      return configError(std::string(what) + ": invalid header name '" + name + "'");
    }
    if (framingHeader(name)) {
      return configError(std::string(what) + ": header '" + name +
                         "' controls message framing and cannot be changed");
    }
    if (!kv.second.IsScalar()) {
      return configError(std::string(what) + "." + name + ": expected a string value");
    }
    std::string value = kv.second.Scalar();
    if (!isHeaderValue(value)) {
      return configError(std::string(what) + "." + name + ": value contains control characters");
    }
    out.emplace_back(std::move(name), std::move(value));
  }
  return {};
}

Result<Edits> readEdits(const YAML::Node& node, std::string_view what) {
  Edits e;
  if (!node) return e;
  if (auto st = checkKeys(node, {"add", "set", "remove"}); !st.ok()) {
    return configError(std::string(what) + ": " + st.error().message);
  }
  std::string w(what);
  if (node["add"]) {
    if (auto st = readPairs(node["add"], w + ".add", e.add); !st.ok()) return st.error();
  }
  if (node["set"]) {
    if (auto st = readPairs(node["set"], w + ".set", e.set); !st.ok()) return st.error();
  }
  if (const auto& r = node["remove"]) {
    if (!r.IsSequence()) return configError(w + ".remove: expected a list of header names");
    for (const auto& n : r) {
      std::string name = n.as<std::string>("");
      if (!isHeaderName(name))
        return configError(w + ".remove: invalid header name '" + name + "'");
      if (framingHeader(name)) {
        return configError(w + ".remove: header '" + name + "' controls message framing");
      }
      e.remove.push_back(std::move(name));
    }
  }
  return e;
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  if (!config || !config.IsMap()) {
    return configError("expected a map with 'request' and/or 'response'");
  }
  if (auto st = checkKeys(config, {"request", "response"}); !st.ok()) return st.error();
  auto req = readEdits(config["request"], "request");
  if (!req.ok()) return req.error();
  auto resp = readEdits(config["response"], "response");
  if (!resp.ok()) return resp.error();
  if (req->empty() && resp->empty()) return configError("no header edits given");
  return http::FilterFactoryPtr(
      std::make_shared<http::StatelessFactory<HeadersFilter>>(std::move(*req), std::move(*resp)));
}

}  // namespace gatehouse::policies::headers

#include "http/filter.h"

#include <nlohmann/json.hpp>

namespace gatehouse::http {

void RequestContext::setVar(std::string_view name, std::string_view value) {
  for (auto& [k, v] : vars) {
    if (k == name) {
      v.assign(value);
      return;
    }
  }
  vars.emplace_back(std::string(name), std::string(value));
}

void RequestContext::reset() {
  request.method.clear();
  request.path.clear();
  request.query.clear();
  request.authority.clear();
  request.scheme = "http";
  request.protocol = Protocol::kHttp11;
  request.headers.clear();
  request.has_body = false;
  request.chunked = false;
  request.content_length = 0;
  request.content_length_present = false;
  request.expect_continue = false;
  request.upgrade = false;
  request.underscore_in_names = false;
  request.head_bytes.clear();
  response.status = 0;
  response.reason.clear();
  response.headers.clear();
  response.has_body = true;
  response.chunked = false;
  response.content_length = 0;
  response.until_close = false;
  response.head_bytes.clear();
  response_started = false;
  local_response = false;
  lb_set_cookie.clear();
  vars.clear();
  cancelled.reset();
  upstream_cluster = {};
  trace = nullptr;
  trace_context = nullptr;
  local_reply.status = 200;
  local_reply.headers.clear();
  local_reply.body.clear();
  local_reply.shared_body.reset();
  has_local_reply = false;
  pending = {};
  request_id.clear();
  client_ip.clear();
  consumer.clear();
  consumer_groups.clear();
  claims.reset();
  client_cert_subject = {};
  client_cert_sans = {};
  client_cert_san_entries = {};
  client_cert_sha256 = {};
  route_name.clear();
  path_params.clear();
  buffer_request_body = 0;
  hold_response_head = false;
  response_trailers = nullptr;
  drop_response_trailers = false;
  response_body_declines = 0;
  bytes_in = 0;
  bytes_out = 0;
  final_status = 0;
}

Verdict RequestContext::respond(int status, std::string body, std::string_view content_type) {
  local_reply.status = status;
  local_reply.headers.clear();
  if (!body.empty() || status >= 200) local_reply.headers.add("content-type", content_type);
  local_reply.body = std::move(body);
  local_reply.shared_body.reset();
  has_local_reply = true;
  return Verdict::kRespond;
}

Verdict RequestContext::respondError(int status, std::string_view message) {
  nlohmann::json j;
  j["error"] = message;
  j["status"] = status;
  j["request_id"] = request_id;
  return respond(status, j.dump() + "\n", "application/json");
}

const PolicyRegistration* findPolicy(std::string_view name) {
  for (const auto& r : policyRegistry()) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

}  // namespace gatehouse::http

namespace gatehouse::http {

FilterRef FilterRef::own(std::unique_ptr<Filter> f) {
  FilterRef r;
  r.owned_ = std::move(f);
  r.filter = r.owned_.get();
  return r;
}

FilterRef FilterRef::shared(const StatelessFilter& f) {
  FilterRef r;
  r.view_.target = &f;
  r.filter = &r.view_;
  return r;
}

FilterRef& FilterRef::operator=(FilterRef&& o) noexcept {
  owned_ = std::move(o.owned_);
  view_.target = o.view_.target;
  // A view points into its own FilterRef: re-aim it at ours.
  filter = o.filter == &o.view_ ? &view_ : owned_.get();
  o.filter = nullptr;
  o.view_.target = nullptr;
  return *this;
}

}  // namespace gatehouse::http

#pragma once
// The template variables of one proxied request: a VariableSource over an http::RequestContext
// and, when a policy parsed them, its JSON request and response bodies. Built on the stack by
// the filter that renders, on the request's worker; it only borrows what it is given.
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "http/filter.h"
#include "template/template.h"

namespace gatehouse::tmpl {

class RequestVariables final : public VariableSource {
 public:
  explicit RequestVariables(const http::RequestContext& ctx) : ctx_(ctx) {}

  const Json* request_body = nullptr;
  const Json* response_body = nullptr;

  bool append(const Variable& v, std::string& out) const override;

 private:
  const http::RequestContext& ctx_;
};

// Appends a JSON value as template text: a string as its characters, null as nothing (false
// is returned), anything else as compact JSON.
bool appendJsonValue(const Json& value, std::string& out);

// The percent-decoded value of the first `name` parameter in a raw query string ('+' is a
// space), appended to `out`; false when there is none.
bool appendQueryParam(std::string_view query, std::string_view name, std::string& out);

}  // namespace gatehouse::tmpl

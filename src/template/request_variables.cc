#include "template/request_variables.h"

#include "core/encoding.h"

namespace gatehouse::tmpl {

bool appendJsonValue(const Json& value, std::string& out) {
  if (value.is_null()) return false;
  if (value.is_string()) {
    out.append(value.get_ref<const std::string&>());
  } else {
    out.append(value.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return true;
}

namespace {

void appendDecoded(std::string_view in, std::string& out) {
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < in.size() && encoding::hexDigit(in[i + 1]) >= 0 &&
               encoding::hexDigit(in[i + 2]) >= 0) {
      out.push_back(
          static_cast<char>(encoding::hexDigit(in[i + 1]) * 16 + encoding::hexDigit(in[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
}

bool appendBody(const Json* body, const JsonPointer& p, std::string& out) {
  if (!body) return false;
  const Json* v = p.find(*body);
  return v && appendJsonValue(*v, out);
}

bool appendView(std::string_view v, std::string& out) {
  if (v.empty()) return false;
  out.append(v);
  return true;
}

}  // namespace

bool appendQueryParam(std::string_view query, std::string_view name, std::string& out) {
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      if (eq != std::string_view::npos) appendDecoded(pair.substr(eq + 1), out);
      return true;
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return false;
}

bool RequestVariables::append(const Variable& v, std::string& out) const {
  const auto& req = ctx_.request;
  switch (v.field) {
    case Field::kRequestMethod:
      return appendView(req.method, out);
    case Field::kRequestPath:
      return appendView(req.path, out);
    case Field::kRequestQuery:
      return appendView(req.query, out);
    case Field::kRequestQueryParam:
      return appendQueryParam(req.query, v.key, out);
    case Field::kRequestHeader: {
      const http::HeaderField* f = req.headers.find(v.key);
      if (!f) return false;
      out.append(f->value);
      return true;
    }
    case Field::kRequestParam:
      for (const auto& p : ctx_.path_params) {
        if (p.name == v.key) return appendView(p.value, out);
      }
      return false;
    case Field::kRequestClientIp:
      return appendView(ctx_.client_ip, out);
    case Field::kRequestHost:
      return appendView(req.authority, out);
    case Field::kRequestId:
      return appendView(ctx_.request_id, out);
    case Field::kRequestBody:
      return appendBody(request_body, v.pointer, out);
    case Field::kConsumerName:
      return appendView(ctx_.consumer, out);
    case Field::kConsumerClaim:
      return ctx_.claims && appendView(ctx_.claims->get(v.key), out);
    case Field::kRouteName:
      return appendView(ctx_.route_name, out);
    case Field::kVar:
      return appendView(ctx_.var(v.key), out);
    case Field::kResponseStatus:
      if (!ctx_.response_started) return false;
      out.append(std::to_string(ctx_.response.status));
      return true;
    case Field::kResponseHeader: {
      if (!ctx_.response_started) return false;
      const http::HeaderField* f = ctx_.response.headers.find(v.key);
      if (!f) return false;
      out.append(f->value);
      return true;
    }
    case Field::kResponseBody:
      return appendBody(response_body, v.pointer, out);
    case Field::kCallBody:
    case Field::kCallStatus:
      return false;  // aggregate's own source answers these
  }
  return false;
}

}  // namespace gatehouse::tmpl

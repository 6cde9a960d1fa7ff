#include "policies/openapi/checks.h"

#include <charconv>
#include <cstdlib>

namespace gatehouse::policies::openapi {
namespace {

using Json = nlohmann::json;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding ('+' is a space); a bad escape stays as it is.
std::string formDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 &&
               hexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// A parameter's string as the JSON value its schema expects; a string that does not parse as
// that type stays a string, so that the schema reports the type error.
Json coerce(const std::string& s, Scalar scalar) {
  switch (scalar) {
    case Scalar::kInteger: {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return Json(v);
      return Json(s);
    }
    case Scalar::kNumber: {
      double v = 0;
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      if (ec == std::errc() && end == s.data() + s.size() && !s.empty()) return Json(v);
      return Json(s);
    }
    case Scalar::kBoolean:
      if (s == "true") return Json(true);
      if (s == "false") return Json(false);
      return Json(s);
    default:
      return Json(s);
  }
}

void addSchemaErrors(const std::vector<jsonschema::ValidationError>& errors, std::string_view in,
                     std::string_view name, std::vector<Violation>& out) {
  for (const auto& e : errors) {
    out.push_back({std::string(in), std::string(name), e.instance_location, e.keyword, e.message});
  }
}

// Every value of query parameter `name`, decoded.
std::vector<std::string> queryValues(std::string_view query, std::string_view name) {
  std::vector<std::string> out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    size_t eq = pair.find('=');
    std::string key = formDecode(pair.substr(0, eq), true);
    if (key != name) continue;
    out.push_back(eq == std::string_view::npos ? std::string()
                                               : formDecode(pair.substr(eq + 1), true));
  }
  return out;
}

Json parameterValue(const Parameter& p, std::vector<std::string> raw) {
  if (!p.array) return coerce(raw.front(), p.scalar);
  if (!p.explode || p.in != Parameter::In::kQuery) {
    // style form without explode, or simple (path, header): one comma-separated list.
    std::string joined = raw.front();
    raw.clear();
    size_t start = 0;
    while (start <= joined.size()) {
      size_t comma = joined.find(',', start);
      raw.push_back(joined.substr(start, comma == std::string::npos ? comma : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  Json arr = Json::array();
  for (const auto& v : raw)
    arr.push_back(coerce(v, p.scalar));
  return arr;
}

const char* inName(Parameter::In in) {
  switch (in) {
    case Parameter::In::kPath:
      return "path";
    case Parameter::In::kQuery:
      return "query";
    case Parameter::In::kHeader:
      return "header";
    case Parameter::In::kCookie:
      return "cookie";
  }
  return "query";
}

void checkParameter(const Spec& spec, const Parameter& p, const Match& match,
                    const http::Request& request, size_t max_errors, std::vector<Violation>& out) {
  std::vector<std::string> raw;
  switch (p.in) {
    case Parameter::In::kPath:
      for (const auto& [name, value] : match.path_params) {
        if (name == p.name) raw.push_back(formDecode(value, false));
      }
      break;
    case Parameter::In::kQuery:
      raw = queryValues(request.query, p.name);
      break;
    case Parameter::In::kHeader:
      if (const auto* f = request.headers.find(p.name)) raw.emplace_back(f->value);
      break;
    case Parameter::In::kCookie:
      return;  // not checked (docs/config.md)
  }
  if (raw.empty()) {
    if (p.required) out.push_back({inName(p.in), p.name, "", "required", "missing parameter"});
    return;
  }
  if (!p.has_schema) return;
  Json value = parameterValue(p, std::move(raw));
  std::vector<jsonschema::ValidationError> errors;
  if (!spec.validator().validate(p.schema, value, &errors, max_errors)) {
    addSchemaErrors(errors, inName(p.in), p.name, out);
  }
}

}  // namespace

const MediaType* checkRequestHead(const Spec& spec, const Match& match,
                                  const http::Request& request, size_t max_errors,
                                  std::vector<Violation>& out) {
  const Operation& op = *match.operation;
  for (const auto& p : op.parameters) {
    checkParameter(spec, p, match, request, max_errors, out);
  }
  const bool has_body = request.has_body && (request.chunked || request.content_length > 0);
  if (!has_body) {
    if (op.body_required) out.push_back({"body", "", "", "required", "a request body is required"});
    return nullptr;
  }
  if (!op.has_request_body || op.request_content.empty()) return nullptr;
  std::string media = mediaTypeOf(request.headers.get("content-type"));
  const MediaType* best = nullptr;
  for (const auto& m : op.request_content) {
    // The most specific range wins: an exact type over "application/*" over "*/*".
    if (mediaInRange(media, m.range) &&
        (!best || m.range.find('*') == std::string::npos || best->range == kAnyMedia)) {
      best = &m;
    }
  }
  if (!best) {
    std::string allowed;
    for (const auto& m : op.request_content)
      allowed += (allowed.empty() ? "" : ", ") + m.range;
    out.push_back({"header", "content-type", "", "content",
                   "media type '" + media + "' is not one of: " + allowed});
    return nullptr;
  }
  return best->has_schema && (best->json || isJsonMedia(media)) ? best : nullptr;
}

void checkJsonBody(const Spec& spec, const MediaType& media, std::string_view body,
                   std::string_view in, size_t max_errors, std::vector<Violation>& out) {
  Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    out.push_back({std::string(in), "", "", "json", "the body is not valid JSON"});
    return;
  }
  std::vector<jsonschema::ValidationError> errors;
  if (!spec.validator().validate(media.schema, doc, &errors, max_errors)) {
    addSchemaErrors(errors, in, "", out);
  }
}

const ResponseSpec* responseFor(const Operation& op, int status) {
  const std::string exact = std::to_string(status);
  const std::string range = exact.substr(0, 1) + "XX";
  const ResponseSpec* found = nullptr;
  for (const auto& r : op.responses) {
    if (r.status == exact) return &r;
    if (r.status == range || (r.status == "default" && !found)) found = &r;
  }
  return found;
}

std::string problemJson(int status, std::string_view title, std::string_view detail,
                        std::string_view instance, const std::vector<Violation>& violations) {
  Json errors = Json::array();
  for (const auto& v : violations) {
    Json e = {{"in", v.in}, {"pointer", v.pointer}, {"keyword", v.keyword}, {"message", v.message}};
    if (!v.name.empty()) e["name"] = v.name;
    errors.push_back(std::move(e));
  }
  Json problem = {{"type", "urn:gatehouse:problem:openapi-validation"},
                  {"title", title},
                  {"status", status},
                  {"detail", detail},
                  {"instance", instance}};
  if (!errors.empty()) problem["errors"] = std::move(errors);
  return problem.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace gatehouse::policies::openapi

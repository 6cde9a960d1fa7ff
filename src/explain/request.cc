#include "explain/request.h"

#include <nlohmann/json.hpp>

#include <string_view>

#include "policies/auth/credentials.h"

namespace gatehouse::explain {

namespace {

Error badRequest(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kDownstream, std::move(msg));
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// "Name: value" as curl and our --header take it.
Status addHeaderLine(ExplainRequest& req, std::string_view line) {
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return badRequest("header '" + std::string(line) + "' is not 'Name: value'");
  }
  req.headers.emplace_back(std::string(trimmed(line.substr(0, colon))),
                           std::string(trimmed(line.substr(colon + 1))));
  return {};
}

bool isOneOf(std::string_view a, std::initializer_list<std::string_view> names) {
  for (auto n : names) {
    if (a == n) return true;
  }
  return false;
}

}  // namespace

Result<ExplainRequest> fromFlags(std::span<const std::string> args) {
  ExplainRequest req;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (i + 1 >= args.size()) return badRequest("'" + a + "' needs a value");
    const std::string& v = args[++i];
    if (a == "--method" || a == "-X") {
      req.method = v;
    } else if (a == "--url" || a == "--path") {
      req.url = v;
    } else if (a == "--host") {
      req.host = v;
    } else if (a == "--header" || a == "-H") {
      if (auto st = addHeaderLine(req, v); !st.ok()) return st.error();
    } else if (a == "--client-ip") {
      req.client_ip = v;
    } else if (a == "--listener") {
      req.listener = v;
    } else {
      return badRequest("unknown option '" + a + "'");
    }
  }
  return req;
}

Result<ExplainRequest> fromCurl(std::span<const std::string> args) {
  ExplainRequest req;
  bool method_set = false;
  bool has_data = false;
  bool has_url = false;
  size_t i = 0;
  if (!args.empty() && args[0] == "curl") i = 1;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= args.size()) return badRequest("curl option '" + a + "' needs a value");
      return args[++i];
    };
    if (a.size() > 1 && a[0] == '-') {
      if (isOneOf(a, {"-X", "--request"})) {
        auto v = value();
        if (!v.ok()) return v.error();
        req.method = *v;
        method_set = true;
      } else if (isOneOf(a, {"-H", "--header"})) {
        auto v = value();
        if (!v.ok()) return v.error();
        if (auto st = addHeaderLine(req, *v); !st.ok()) return st.error();
      } else if (isOneOf(a, {"-I", "--head"})) {
        req.method = "HEAD";
        method_set = true;
      } else if (isOneOf(a, {"-d", "--data", "--data-raw", "--data-binary", "--data-urlencode",
                             "--json", "-F", "--form"})) {
        if (auto v = value(); !v.ok()) return v.error();
        has_data = true;
      } else if (isOneOf(a, {"-A", "--user-agent", "-e", "--referer", "-b", "--cookie", "-u",
                             "--user"})) {
        auto v = value();
        if (!v.ok()) return v.error();
        if (a == "-A" || a == "--user-agent") req.headers.emplace_back("user-agent", *v);
        if (a == "-e" || a == "--referer") req.headers.emplace_back("referer", *v);
        if (a == "-b" || a == "--cookie") req.headers.emplace_back("cookie", *v);
        if (a == "-u" || a == "--user") {
          req.headers.emplace_back("authorization", "Basic " + policies::base64Encode(*v));
        }
      } else if (isOneOf(a, {"-o", "--output", "-w", "--write-out", "-m", "--max-time",
                             "--connect-timeout", "--resolve", "--connect-to", "-x", "--proxy",
                             "--cacert", "--cert", "--key", "--retry", "--limit-rate"})) {
        if (auto v = value(); !v.ok()) return v.error();  // how curl runs, not the request
      } else if (a == "--url") {
        auto v = value();
        if (!v.ok()) return v.error();
        req.url = *v;
        has_url = true;
      } else if (a.starts_with("--")) {
        continue;  // a flag without a value: --compressed, --http2, --insecure, ...
      } else {
        continue;  // short flags without a value: -s, -v, -k, -L, -i, -sS, ...
      }
    } else {
      if (has_url) return badRequest("more than one URL: '" + req.url + "' and '" + a + "'");
      req.url = a;
      has_url = true;
    }
  }
  if (!has_url) return badRequest("the curl line has no URL");
  if (!method_set && has_data) req.method = "POST";
  if (req.url.find("://") == std::string::npos && !req.url.starts_with("/")) {
    req.url = "http://" + req.url;  // curl's default scheme
  }
  return req;
}

Result<ExplainRequest> fromJson(const nlohmann::json& j) {
  if (!j.is_object()) return badRequest("expected a JSON object");
  ExplainRequest req;
  auto str = [&](const char* key, std::string& out) -> Status {
    if (!j.contains(key)) return {};
    if (!j[key].is_string()) return badRequest(std::string("'") + key + "' must be a string");
    out = j[key].get<std::string>();
    return {};
  };
  for (const char* key : {"method", "url", "path", "host", "client_ip"}) {
    std::string* out = nullptr;
    std::string_view k = key;
    if (k == "method") out = &req.method;
    if (k == "url" || k == "path") out = &req.url;
    if (k == "host") out = &req.host;
    if (k == "client_ip") out = &req.client_ip;
    if (auto st = str(key, *out); !st.ok()) return st.error();
  }
  // A listener by name, or by its index as a number.
  if (j.contains("listener") && j["listener"].is_number_unsigned()) {
    req.listener = std::to_string(j["listener"].get<uint64_t>());
  } else if (auto st = str("listener", req.listener); !st.ok()) {
    return st.error();
  }
  if (!j.contains("url") && !j.contains("path")) return badRequest("'url' (or 'path') is required");
  if (j.contains("headers")) {
    const auto& h = j["headers"];
    if (h.is_object()) {
      for (const auto& [k, v] : h.items()) {
        if (!v.is_string()) return badRequest("headers." + k + " must be a string");
        req.headers.emplace_back(k, v.get<std::string>());
      }
    } else if (h.is_array()) {
      for (const auto& item : h) {
        if (item.is_string()) {
          if (auto st = addHeaderLine(req, item.get<std::string>()); !st.ok()) return st.error();
        } else if (item.is_array() && item.size() == 2 && item[0].is_string() &&
                   item[1].is_string()) {
          req.headers.emplace_back(item[0].get<std::string>(), item[1].get<std::string>());
        } else {
          return badRequest("each header is \"Name: value\" or [\"Name\", \"value\"]");
        }
      }
    } else {
      return badRequest("'headers' must be an object or a list");
    }
  }
  return req;
}

}  // namespace gatehouse::explain

#pragma once
// An admin API endpoint that a policy serves (quota's /quotas, metering's /usage). A policy
// declares it with its registration (http::PolicyRegistration); the admin server (admin/) is
// the one place that serves it, next to its own endpoints. Handlers run on the control thread
// and may await I/O with their own deadline; they touch worker state only through atomics or
// immutable data.
#include <string>
#include <string_view>

#include "runtime/task.h"

namespace gatehouse::http {

struct AdminReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// `path` excludes the query string; `query` is the raw text after '?'.
using AdminHandler = runtime::Task<AdminReply> (*)(std::string method, std::string path,
                                                   std::string query);

// Serves `prefix` and every path below it (at a '/' boundary).
struct AdminEndpoint {
  std::string_view prefix;
  AdminHandler handler = nullptr;
};

}  // namespace gatehouse::http

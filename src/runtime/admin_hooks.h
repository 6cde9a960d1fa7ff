#pragma once
// Extra admin API routes from components outside the runtime (for example policy quota's
// /quotas/...). A route is a path prefix and an async handler; the admin server (control
// thread) awaits it, so a handler may do I/O with a deadline without blocking the control loop.
// Handlers run on the control thread and must touch worker state only through atomics or
// immutable data. Registration takes a mutex; it never runs on the request path.
#include <string>
#include <string_view>

#include "runtime/task.h"

namespace gatehouse::runtime {

struct AdminReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// `path` excludes the query string; `query` is the raw text after '?'.
using AdminRouteHandler = Task<AdminReply> (*)(std::string method, std::string path,
                                               std::string query);

// Idempotent per `prefix` (a later registration replaces the handler). Any thread.
void registerAdminRoute(std::string_view prefix, AdminRouteHandler fn);
// The handler of the longest registered prefix of `path` that ends at a '/' boundary or the
// end of `path`; nullptr when none. Any thread.
AdminRouteHandler findAdminRoute(std::string_view path);

// Percent-decodes one path segment; false on a malformed escape.
bool decodePathSegment(std::string_view in, std::string& out);

}  // namespace gatehouse::runtime

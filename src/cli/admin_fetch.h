#pragma once
// A blocking HTTP/1.1 GET for the command line (validate --diff-with): plain TCP, one request,
// a bounded reply, a deadline. Not for the gateway's loops. Main thread.
#include <string>
#include <string_view>

#include "core/result.h"

namespace gatehouse::cli {

struct FetchReply {
  int status = 0;
  std::string content_type;
  std::string body;
};

// GET `base_url` + `path` ("http://127.0.0.1:9901" + "/config"); `token`, when not empty, is
// sent as a bearer token. Errors: a bad URL (https is not supported here), a refused or timed
// out connection, a malformed or over-large (> 16 MiB) reply.
Result<FetchReply> fetch(std::string_view base_url, std::string_view path, std::string_view token);

}  // namespace gatehouse::cli

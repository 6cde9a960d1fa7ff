#pragma once
// Cache keys: which parts of a request name its stored response. Built per request on a
// worker; the spec is immutable config.
#include <string>
#include <string_view>
#include <vector>

#include "http/message.h"

namespace gatehouse::cache {

struct KeySpec {
  enum class Query { kAll, kNone, kListed };
  bool host = true;
  Query query = Query::kAll;
  std::vector<std::string> query_params;  // for kListed
  std::vector<std::string> headers;       // lower-case names
  bool consumer = false;
};

// "<host><path>[?<params sorted by name>]" then, for each key header and the consumer, a
// "\n<name>: <value>" line. Host is lower-cased; params keep their order among equal names.
// The host/path prefix makes a purge by prefix ("api.example.com/v1/") meaningful.
void buildKey(const KeySpec& spec, const http::Request& req, std::string_view consumer,
              std::string& out);

}  // namespace gatehouse::cache

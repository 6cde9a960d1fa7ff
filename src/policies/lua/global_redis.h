#pragma once
// gh.global through Redis (the `lua` policy's `redis` option): one Redis script performs each
// dictionary call atomically on the key `<prefix>{<script name>}:<key>`, so gateways that share
// the Redis share the dictionary. Values are stored with a type tag: "n" and the number
// ("%.17g"), "s" and the bytes, "b1" / "b0"; a value without a tag (written by another tool)
// reads as a string. Runs on a worker; never blocks it.
#include <string>
#include <string_view>
#include <vector>

#include "lua/api.h"
#include "redis/client.h"
#include "runtime/task.h"

namespace gatehouse::policies::lua {

enum class OnRedisError {
  kError,     // the call returns nil and "redis: REASON"
  kFallback,  // the call runs on the process's own gh.global dictionary
};

struct GlobalRedis {
  redis::Endpoint endpoint;
  std::string endpoint_id;  // endpoint.id(), computed once
  std::string key_prefix;   // "<prefix>{<name>}:"
  OnRedisError on_error = OnRedisError::kError;
};

// The Redis script (static text).
std::string_view globalScript();
// The EVALSHA arguments of `op` (one key).
std::vector<std::string> globalArgs(const std::string& key_prefix,
                                    const gatehouse::lua::DictOp& op);
// What `op` returns to the script, from the script's reply; false when the reply is not one.
bool globalResultFromReply(const redis::CallResult& r, gatehouse::lua::DictResult& out);

// Performs `op` through Redis; when Redis cannot answer, as `g.on_error` says (`fallback` is
// the process's own dictionary for the script). `g` and `fallback` outlive the task.
runtime::Task<gatehouse::lua::DictResult> performGlobal(const GlobalRedis& g,
                                                        gatehouse::lua::GlobalDict& fallback,
                                                        gatehouse::lua::DictOp op);

}  // namespace gatehouse::policies::lua

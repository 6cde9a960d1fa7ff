#pragma once
// The `gh` table a script sees: the request being served (gh.req, gh.resp, gh.respond, who is
// calling), the request's variables (gh.vars, RequestContext::vars), sub-requests (gh.call), a
// per-worker dictionary (gh.shared), one shared by all workers (gh.global), and helpers (time,
// encodings, JSON, hashes, logging). Installed once per Vm; used on the Vm's thread.
// A hook runs as a coroutine (HookCall): gh.call suspends it with a SubRequest, which the
// caller (the policy, above proxy/) performs before it resumes the hook with the answer; this
// layer does no I/O.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "http/filter.h"
#include "lua/vm.h"

namespace gatehouse::lua {

enum class Phase { kRequestHeaders, kRequestBody, kResponseHeaders, kResponseBody, kLog };

// What gh.call(cluster, {...}) asks for.
struct SubRequest {
  using Fields = std::vector<std::pair<std::string, std::string>>;
  std::string cluster;
  std::string method = "GET";
  std::string target = "/";  // path and query
  Fields headers;            // lower-case names, checked values
  std::string body;
  uint32_t timeout_ms = 5000;
};

// Its answer: a response, or why there is none (`error` non-empty).
struct SubResponse {
  int status = 0;
  SubRequest::Fields headers;  // lower-case names
  std::string body;
  std::string error;
};

// What the API acts on during one hook call (Vm::binding points here while the hook runs).
struct Invocation {
  http::RequestContext* ctx = nullptr;
  Phase phase = Phase::kRequestHeaders;
  std::string* body = nullptr;  // body phases: this chunk (a buffered request body: all of it)
  bool last = false;            // body phases: whether `body` is the body's last chunk
  bool responded = false;       // gh.respond() filled ctx->local_reply
  // Set by gh.call before it suspends the hook.
  SubRequest sub_request;
  bool waiting = false;
  int sub_requests = 0;         // made so far in this hook call
  int max_sub_requests = 8;     // beyond: gh.call returns nil, "too many sub-requests"
  lua_State* thread = nullptr;  // the hook's coroutine (set by HookCall)
  // When set, gh.log lines go here ("LEVEL FILE:LINE: message") instead of the process log
  // (`gatehouse lua-test`).
  std::vector<std::string>* logs = nullptr;
};

// One hook call, run as a coroutine of the Vm so that gh.call can suspend it. Worker thread
// (the Vm's). The Vm must outlive it; destroying a suspended call drops the coroutine (the
// collector frees it), so a request that ends while it waits leaves nothing behind.
class HookCall {
 public:
  enum class Step { kDone, kFailed, kWaiting };

  explicit HookCall(Vm& vm) : vm_(vm) {}
  ~HookCall();
  HookCall(const HookCall&) = delete;
  HookCall& operator=(const HookCall&) = delete;

  // Runs the hook at registry reference `fn_ref` for `inv` (body hooks get inv.last as their
  // argument). kWaiting: it called gh.call; inv.sub_request says what for.
  Step start(int fn_ref, Invocation& inv);
  // Continues a kWaiting call with the sub-request's answer. `inv` is the one start() had.
  Step resume(Invocation& inv, const SubResponse& answer);
  // Why the call failed (kFailed).
  const CallFailure& failure() const { return failure_; }

 private:
  Step settle(Invocation& inv, Vm::Resumed r);
  void release(bool reusable);

  Vm& vm_;
  lua_State* co_ = nullptr;
  int co_ref_ = -1;  // the coroutine's registry reference while the call holds it
  uint64_t ticks_ = 0;
  CallFailure failure_;
};

// A string-keyed dictionary of numbers, strings and booleans behind gh.shared. One per worker
// and script name (it outlives the Vm, across reloads); single-threaded.
class SharedDict {
 public:
  using Value = std::variant<double, std::string, bool>;
  static constexpr size_t kMaxEntries = 100'000;
  static constexpr size_t kMaxValueBytes = 64 * 1024;

  const Value* get(const std::string& key) const;
  // False when the dictionary is full (a new key past kMaxEntries).
  bool set(const std::string& key, Value v);
  void erase(const std::string& key) { entries_.erase(key); }
  // The value after adding `by` (a missing key starts at `init`); null when it is not a number.
  const double* incr(const std::string& key, double by, double init);
  size_t size() const { return entries_.size(); }

 private:
  std::unordered_map<std::string, Value> entries_;
};

// The dictionary behind gh.global: one per script name for the whole process, every worker's
// states reaching it under the mutex.
struct GlobalDict {
  std::mutex mu;
  SharedDict dict;
};

// Installs the global `gh` in `vm` (call once, before Vm::load); false when it does not fit
// in the memory bound. `local` backs gh.shared and `global` gh.global; both outlive `vm`.
bool installApi(Vm& vm, SharedDict* local, GlobalDict* global);

class ScriptMetrics;
// Points gh.metric at `metrics` (declared in the policy's config; they outlive `vm`). Before
// it, gh.metric knows no metric.
bool installMetrics(Vm& vm, const ScriptMetrics* metrics);

// A global function's registry reference, or -1 (LUA_NOREF) when `name` is not a function.
int functionRef(Vm& vm, const char* name);

// Runs a hook that must not suspend (no sub-request answers it): a gh.call fails with
// "sub-requests are not available here".
CallFailure runHook(Vm& vm, int fn_ref, Invocation& inv);

}  // namespace gatehouse::lua

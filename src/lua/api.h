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
#include <optional>
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

// A string-keyed dictionary of numbers, strings and booleans behind gh.shared. One per worker
// and script name (it outlives the Vm, across reloads); single-threaded. An entry may expire
// (a ttl): it is gone for get() from then on, and its room is taken back when the dictionary
// is full.
class SharedDict {
 public:
  using Value = std::variant<double, std::string, bool>;
  static constexpr size_t kMaxEntries = 100'000;
  static constexpr size_t kMaxValueBytes = 64 * 1024;

  const Value* get(std::string_view key);
  // `ttl_ms` 0: never expires. False when the dictionary is full (a new key past kMaxEntries).
  bool set(std::string_view key, Value v, int64_t ttl_ms = 0);
  void erase(std::string_view key);
  // The value after adding `by` (a missing key starts at `init`, expiring after `ttl_ms` when
  // not 0; an existing key keeps its expiry); null when it is not a number or the dictionary is
  // full.
  const double* incr(std::string_view key, double by, double init, int64_t ttl_ms = 0);
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    Value value;
    int64_t expires_ns = 0;  // steady clock; 0: never
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, Entry, Hash, std::equal_to<>>;
  // The live entry of `key`, dropping it when expired.
  Map::iterator live(std::string_view key);
  // Room for one more key: false when full even after dropping the expired ones.
  bool room();
  Map entries_;
};

// The dictionary behind gh.global: one per script name for the whole process, every worker's
// states reaching it under the mutex.
struct GlobalDict {
  std::mutex mu;
  SharedDict dict;
};

// One call of a dictionary function (gh.shared, gh.global), as data: what a Redis-backed
// gh.global hands its policy when it suspends the hook.
struct DictOp {
  enum class Kind { kGet, kSet, kAdd, kIncr, kDelete };
  Kind kind = Kind::kGet;
  std::string key;
  SharedDict::Value value;  // kSet, kAdd
  double by = 1;            // kIncr
  double init = 0;          // kIncr
  int64_t ttl_ms = 0;       // kSet, kAdd; kIncr: of a key it creates. 0: none
};

// What it returns to the script: `value` (nil when absent), or, with `error` set, nil and the
// error (`refused`: false and the error, a refusal such as "exists" rather than a failure).
struct DictResult {
  std::optional<SharedDict::Value> value;
  std::string error;
  bool refused = false;
};

// Runs `op` on `dict` (the caller holds its lock, if any).
DictResult applyDictOp(SharedDict& dict, const DictOp& op);

// What a suspended hook waits for.
enum class Wait { kNone, kSubRequest, kGlobal };

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
  // Set by gh.call (or gh.global through Redis) before it suspends the hook.
  SubRequest sub_request;
  DictOp global_op;
  Wait waiting = Wait::kNone;
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
  // Continues a kWaiting call with the sub-request's answer (inv.waiting kSubRequest) or the
  // gh.global call's result (kGlobal). `inv` is the one start() had.
  Step resume(Invocation& inv, const SubResponse& answer);
  Step resume(Invocation& inv, const DictResult& result);
  // Why the call failed (kFailed).
  const CallFailure& failure() const { return failure_; }

 private:
  Step settle(Invocation& inv, Vm::Resumed r);
  // Resumes with the `nresults` values on top of the suspended coroutine's stack.
  Step continueWith(Invocation& inv, int nresults);
  void release(bool reusable);

  Vm& vm_;
  lua_State* co_ = nullptr;
  int co_ref_ = -1;  // the coroutine's registry reference while the call holds it
  uint64_t ticks_ = 0;
  CallFailure failure_;
};

// Installs the global `gh` in `vm` (call once, before Vm::load); false when it does not fit
// in the memory bound. `local` backs gh.shared and `global` gh.global; both outlive `vm`. With
// `global_remote`, a gh.global call in a hook that can wait suspends it (Wait::kGlobal) for the
// caller to perform (through Redis); elsewhere (the top level) it uses `global`.
bool installApi(Vm& vm, SharedDict* local, GlobalDict* global, bool global_remote = false);

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

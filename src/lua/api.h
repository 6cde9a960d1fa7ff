#pragma once
// The `gh` table a script sees: the request being served (gh.req, gh.resp, gh.respond, who is
// calling), per-request variables (gh.vars), a per-worker dictionary (gh.shared), one shared
// by all workers (gh.global), and helpers (time, encodings, JSON, hashes, logging). Installed once
// per Vm; used on the Vm's thread.
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "http/filter.h"
#include "lua/vm.h"

namespace gatehouse::lua {

enum class Phase { kRequestHeaders, kRequestBody, kResponseHeaders, kResponseBody, kLog };

// What the API acts on during one hook call (Vm::binding points here meanwhile).
struct Invocation {
  http::RequestContext* ctx = nullptr;
  Phase phase = Phase::kRequestHeaders;
  std::string* body = nullptr;  // body phases: this chunk (a buffered request body: all of it)
  bool last = false;            // body phases: whether `body` is the body's last chunk
  bool responded = false;       // gh.respond() filled ctx->local_reply
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

// A fresh per-request variables table in `vm`'s registry: its reference, or -1 (LUA_NOREF)
// when the state is out of memory.
int newVars(Vm& vm);
void releaseVars(Vm& vm, int vars_ref);
// A global function's registry reference, or -1 (LUA_NOREF) when `name` is not a function.
int functionRef(Vm& vm, const char* name);

// Calls the hook at registry reference `fn_ref` for `inv` with gh.vars = `vars_ref`; body hooks
// get `last` (whether this is the body's last chunk) as their argument.
CallFailure runHook(Vm& vm, int fn_ref, Invocation& inv, int vars_ref);

}  // namespace gatehouse::lua

#pragma once
// A sandboxed, bounded LuaJIT state (the `lua` policy's interpreter). One Vm belongs to one
// thread: a worker's (one per worker per script), or the control thread's while a config is
// validated. Bounds: an instruction budget per call (a count hook; the JIT is off so that the
// hook sees every loop) and a memory bound per state (the state's own allocator).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

struct lua_State;
struct lua_Debug;

namespace gatehouse::lua {

// Libraries a script gets only when its config lists them (`allow:`).
enum Allow : uint32_t {
  kAllowNone = 0,
  kAllowIo = 1u << 0,        // io
  kAllowOs = 1u << 1,        // all of os (os.time, os.clock and os.date are always there)
  kAllowDebug = 1u << 2,     // debug
  kAllowFfi = 1u << 3,       // ffi (as a global)
  kAllowPackage = 1u << 4,   // package, require, dofile, loadfile
  kAllowBytecode = 1u << 5,  // load/loadstring of precompiled chunks, string.dump
};

struct Limits {
  uint64_t max_instructions = 1'000'000;  // per call; 0: unbounded
  uint64_t max_memory = 16ull << 20;      // bytes per state; 0: unbounded
};

enum class Failure { kNone, kError, kBudget, kMemory };

// Why a call failed: the kind, the script position ("file:line", empty when unknown) and the
// error message.
struct CallFailure {
  Failure kind = Failure::kNone;
  std::string where;
  std::string message;
};

class Vm {
  struct Key {  // lets create() use make_unique while the constructor stays its own
    explicit Key() = default;
  };

 public:
  // A fresh state with the sandboxed standard library; null when even that does not fit in
  // `limits.max_memory`.
  static std::unique_ptr<Vm> create(const Limits& limits, uint32_t allow);
  ~Vm();
  Vm(Key, const Limits& limits) : limits_(limits) {}
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // Compiles `source` (never as bytecode) and runs its top level under the bounds. Errors read
  // "chunk:line: message"; `chunk_name` is the script's file, or a name for inline source.
  Status load(std::string_view source, std::string_view chunk_name);

  // Calls the function below `nargs` arguments on the stack, under the bounds, dropping
  // results. A failure leaves the state usable unless it was kMemory (see exhausted()).
  CallFailure call(int nargs);

  // Starts coroutine `co` (a function and `nargs` arguments on its stack) or continues it (the
  // `nargs` values its yield returns on its stack), under the bounds. `ticks` carries one
  // hook call's instruction count across its resumes (0 to start). kYielded leaves what the
  // coroutine yielded on its stack; kDone leaves it empty; kFailed fills `failure` (the
  // coroutine is dead then: drop its last reference, then call recover()).
  enum class Resumed { kDone, kYielded, kFailed };
  Resumed resume(lua_State* co, int nargs, uint64_t& ticks, CallFailure& failure);
  // After a failed resume, once the dead coroutine is unreachable: re-arms the budget and,
  // after a memory failure, collects (and marks the state exhausted when still nearly full).
  void recover(const CallFailure& f);

  // Whether a call ran out of memory: the owner should replace the state.
  bool exhausted() const { return exhausted_; }
  size_t memoryUsed() const { return used_; }
  lua_State* state() const { return L_; }

  // The Vm owning `L` (the allocator's user data).
  static Vm* of(lua_State* L);
  // Data the bindings attach to the state (the request being served); owned elsewhere.
  void* binding = nullptr;
  // A finished hook coroutine kept for the next hook call (lua/api.cc): making a thread per
  // call costs more than a small hook. Its registry reference, or -1.
  lua_State* idle_thread = nullptr;
  int idle_thread_ref = -1;

 private:
  void openLibraries(uint32_t allow);
  void armBudget();
  static void* allocate(void* ud, void* ptr, size_t osize, size_t nsize);
  static void onCount(lua_State* L, lua_Debug* ar);
  static int onError(lua_State* L);
  // The failure of a call or resume that returned `rc`, its message on top of `from`'s stack.
  CallFailure failure(lua_State* from, int rc);

  Limits limits_;
  lua_State* L_ = nullptr;
  size_t used_ = 0;
  bool refusing_ = false;   // the allocator refused a block during this call
  bool exhausted_ = false;  // a call failed for memory
  uint64_t ticks_ = 0;
  uint64_t tick_limit_ = 0;
  bool over_budget_ = false;
  int handler_ref_ = -1;    // onError, made once: a call must not allocate outside the pcall
  std::string where_;       // the failing position, set by the hooks
  std::string chunk_name_;  // the loaded script's file (or name)
};

// "file:line" of the innermost Lua function on the stack from `level` up, or "".
std::string scriptPosition(lua_State* L, int level);

}  // namespace gatehouse::lua

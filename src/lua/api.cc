// Builds the `gh` table, gh.shared over a SharedDict, per-request variables and the hook call.
// Anything that may allocate in the state runs inside a protected call: an allocation refused
// by the memory bound must become a failed call, never a panic.
#include "lua/api.h"

#include <lua.hpp>

#include <mutex>
#include <optional>

#include "lua/api_internal.h"

namespace gatehouse::lua {
namespace {

// Registry fields holding a sub-request's answer while a hook is resumed with it (made at
// install, so that reading them later allocates nothing).
constexpr const char* kAnswerHeadersKey = "gatehouse.answer_headers";
constexpr const char* kAnswerBodyKey = "gatehouse.answer_body";

// gh.shared's functions carry their dictionary (upvalue 1) and, for gh.global, the mutex that
// guards it across workers (upvalue 2; null for a worker's own). Arguments are checked before
// the lock is taken and values pushed after it is released.
SharedDict& dictOf(lua_State* L) {
  return *static_cast<SharedDict*>(lua_touserdata(L, lua_upvalueindex(1)));
}
std::unique_lock<std::mutex> lockOf(lua_State* L) {
  auto* mu = static_cast<std::mutex*>(lua_touserdata(L, lua_upvalueindex(2)));
  return mu != nullptr ? std::unique_lock<std::mutex>(*mu) : std::unique_lock<std::mutex>();
}

int sharedGet(lua_State* L) {
  const std::string key = luaL_checkstring(L, 1);
  std::optional<SharedDict::Value> v;
  {
    auto lock = lockOf(L);
    if (const SharedDict::Value* found = dictOf(L).get(key)) v = *found;
  }
  if (!v) {
    lua_pushnil(L);
  } else if (const auto* d = std::get_if<double>(&*v)) {
    lua_pushnumber(L, *d);
  } else if (const auto* s = std::get_if<std::string>(&*v)) {
    lua_pushlstring(L, s->data(), s->size());
  } else {
    lua_pushboolean(L, std::get<bool>(*v) ? 1 : 0);
  }
  return 1;
}

// gh.shared.set(key, value): value a number, string or boolean; nil removes the key. Returns
// true, or false and a reason.
int sharedSet(lua_State* L) {
  size_t n = 0;
  const char* k = luaL_checklstring(L, 1, &n);
  std::optional<SharedDict::Value> v;
  switch (lua_type(L, 2)) {
    case LUA_TNONE:
    case LUA_TNIL:
      break;
    case LUA_TNUMBER:
      v = lua_tonumber(L, 2);
      break;
    case LUA_TBOOLEAN:
      v = lua_toboolean(L, 2) != 0;
      break;
    case LUA_TSTRING: {
      size_t vn = 0;
      const char* s = lua_tolstring(L, 2, &vn);
      if (vn > SharedDict::kMaxValueBytes) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "value too large");
        return 2;
      }
      v = std::string(s, vn);
      break;
    }
    default:
      return luaL_argerror(L, 2, "a number, string, boolean or nil");
  }
  bool ok = true;
  {
    auto lock = lockOf(L);
    if (v) {
      ok = dictOf(L).set(std::string(k, n), std::move(*v));
    } else {
      dictOf(L).erase(std::string(k, n));
    }
  }
  lua_pushboolean(L, ok ? 1 : 0);
  if (ok) return 1;
  lua_pushliteral(L, "dictionary full");
  return 2;
}

// gh.shared.incr(key [, by = 1 [, init = 0]]): the new value, or nil and a reason.
int sharedIncr(lua_State* L) {
  const std::string key = luaL_checkstring(L, 1);
  const double by = luaL_optnumber(L, 2, 1);
  const double init = luaL_optnumber(L, 3, 0);
  std::optional<double> now;
  {
    auto lock = lockOf(L);
    if (const double* v = dictOf(L).incr(key, by, init)) now = *v;
  }
  if (!now) {
    lua_pushnil(L);
    lua_pushliteral(L, "not a number, or dictionary full");
    return 2;
  }
  lua_pushnumber(L, *now);
  return 1;
}

// Sets gh[name] to a table of the dictionary functions over `dict` (guarded by `mu`, or not).
void addDictionary(lua_State* L, const char* name, SharedDict* dict, std::mutex* mu) {
  lua_newtable(L);
  const luaL_Reg fns[] = {{"get", sharedGet}, {"set", sharedSet}, {"incr", sharedIncr}};
  for (const auto& fn : fns) {
    lua_pushlightuserdata(L, dict);
    lua_pushlightuserdata(L, mu);
    lua_pushcclosure(L, fn.func, 2);
    lua_setfield(L, -2, fn.name);
  }
  lua_setfield(L, -2, name);
}

struct Dictionaries {
  SharedDict* local;
  GlobalDict* global;
};

int install(lua_State* L) {
  auto* dicts = static_cast<Dictionaries*>(lua_touserdata(L, 1));
  lua_newtable(L);  // gh
  registerRequestApi(L);
  registerUtilApi(L);
  addDictionary(L, "shared", dicts->local, nullptr);
  addDictionary(L, "global", &dicts->global->dict, &dicts->global->mu);
  registerCallApi(L);
  registerMetricApi(L, nullptr);
  registerRegexApi(L);
  lua_setglobal(L, "gh");
  lua_pushboolean(L, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, kAnswerHeadersKey);
  lua_pushboolean(L, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, kAnswerBodyKey);
  return 0;
}

struct RefArgs {
  const char* name;
  int ref;
};

struct ThreadArgs {
  lua_State* thread;
  int ref;
};

int makeThread(lua_State* L) {
  auto* a = static_cast<ThreadArgs*>(lua_touserdata(L, 1));
  a->thread = lua_newthread(L);
  a->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

// Stores a sub-request's answer in the registry fields, as Lua values.
int storeAnswer(lua_State* L) {
  const auto* answer = static_cast<const SubResponse*>(lua_touserdata(L, 1));
  if (!answer->error.empty()) {
    lua_pushlstring(L, answer->error.data(), answer->error.size());
    lua_setfield(L, LUA_REGISTRYINDEX, kAnswerBodyKey);
    return 0;
  }
  lua_createtable(L, 0, static_cast<int>(answer->headers.size()));
  for (const auto& [name, value] : answer->headers) {
    lua_getfield(L, -1, name.c_str());
    if (lua_isstring(L, -1)) {  // a repeated field: values joined as a list
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, value.data(), value.size());
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, value.data(), value.size());
    }
    lua_setfield(L, -2, name.c_str());
  }
  lua_setfield(L, LUA_REGISTRYINDEX, kAnswerHeadersKey);
  lua_pushlstring(L, answer->body.data(), answer->body.size());
  lua_setfield(L, LUA_REGISTRYINDEX, kAnswerBodyKey);
  return 0;
}

int makeFunctionRef(lua_State* L) {
  auto* a = static_cast<RefArgs*>(lua_touserdata(L, 1));
  lua_getglobal(L, a->name);
  if (!lua_isfunction(L, -1)) return 0;
  a->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

}  // namespace

const SharedDict::Value* SharedDict::get(const std::string& key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

bool SharedDict::set(const std::string& key, Value v) {
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    it->second = std::move(v);
    return true;
  }
  if (entries_.size() >= kMaxEntries) return false;
  entries_.emplace(key, std::move(v));
  return true;
}

const double* SharedDict::incr(const std::string& key, double by, double init) {
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= kMaxEntries) return nullptr;
    it = entries_.emplace(key, init).first;
  }
  auto* d = std::get_if<double>(&it->second);
  if (d == nullptr) return nullptr;
  *d += by;
  return d;
}

bool installApi(Vm& vm, SharedDict* local, GlobalDict* global) {
  Dictionaries dicts{local, global};
  return lua_cpcall(vm.state(), install, &dicts) == 0;
}

int functionRef(Vm& vm, const char* name) {
  RefArgs a{name, LUA_NOREF};
  if (lua_cpcall(vm.state(), makeFunctionRef, &a) != 0) {
    lua_pop(vm.state(), 1);
    return LUA_NOREF;
  }
  return a.ref;
}

CallFailure runHook(Vm& vm, int fn_ref, Invocation& inv) {
  HookCall hook(vm);
  SubResponse refused;
  refused.error = "sub-requests are not available here";
  HookCall::Step step = hook.start(fn_ref, inv);
  while (step == HookCall::Step::kWaiting)
    step = hook.resume(inv, refused);
  return step == HookCall::Step::kFailed ? hook.failure() : CallFailure{};
}

HookCall::~HookCall() {
  release(false);
}

void HookCall::release(bool reusable) {
  if (co_ == nullptr) return;
  lua_State* L = vm_.state();
  if (reusable && vm_.idle_thread == nullptr) {
    vm_.idle_thread = co_;
    vm_.idle_thread_ref = co_ref_;
  } else {
    luaL_unref(L, LUA_REGISTRYINDEX, co_ref_);  // a suspended or dead coroutine: collected
  }
  co_ = nullptr;
  co_ref_ = LUA_NOREF;
}

HookCall::Step HookCall::start(int fn_ref, Invocation& inv) {
  release(false);
  if (vm_.idle_thread != nullptr) {
    co_ = vm_.idle_thread;
    co_ref_ = vm_.idle_thread_ref;
    vm_.idle_thread = nullptr;
    vm_.idle_thread_ref = LUA_NOREF;
  } else {
    ThreadArgs a{nullptr, LUA_NOREF};
    if (lua_cpcall(vm_.state(), makeThread, &a) != 0) {
      lua_pop(vm_.state(), 1);
      failure_ = {Failure::kMemory, "", "not enough memory for the hook's coroutine"};
      return Step::kFailed;
    }
    co_ = a.thread;
    co_ref_ = a.ref;
  }
  // A thread's stack has room for a few values: these pushes allocate nothing.
  lua_rawgeti(co_, LUA_REGISTRYINDEX, fn_ref);
  int nargs = 0;
  if (inv.phase == Phase::kRequestBody || inv.phase == Phase::kResponseBody) {
    lua_pushboolean(co_, inv.last ? 1 : 0);
    nargs = 1;
  }
  inv.thread = co_;
  inv.waiting = false;
  ticks_ = 0;
  vm_.binding = &inv;
  const Vm::Resumed r = vm_.resume(co_, nargs, ticks_, failure_);
  vm_.binding = nullptr;
  return settle(inv, r);
}

HookCall::Step HookCall::resume(Invocation& inv, const SubResponse& answer) {
  lua_State* L = vm_.state();
  if (co_ == nullptr || !inv.waiting) {
    failure_ = {Failure::kError, "", "resumed a hook that is not waiting"};
    return Step::kFailed;
  }
  inv.waiting = false;
  if (lua_cpcall(L, storeAnswer, const_cast<SubResponse*>(&answer)) != 0) {
    lua_pop(L, 1);
    failure_ = {Failure::kMemory, "", "not enough memory for the sub-request's answer"};
    release(false);
    return Step::kFailed;
  }
  // gh.call's results, pushed onto the suspended coroutine (values that exist: no allocation).
  int nresults = 3;
  if (!answer.error.empty()) {
    lua_pushnil(co_);
    lua_getfield(co_, LUA_REGISTRYINDEX, kAnswerBodyKey);
    nresults = 2;
  } else {
    lua_pushinteger(co_, answer.status);
    lua_getfield(co_, LUA_REGISTRYINDEX, kAnswerHeadersKey);
    lua_getfield(co_, LUA_REGISTRYINDEX, kAnswerBodyKey);
  }
  lua_pushboolean(L, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, kAnswerHeadersKey);
  lua_pushboolean(L, 0);
  lua_setfield(L, LUA_REGISTRYINDEX, kAnswerBodyKey);
  inv.thread = co_;
  vm_.binding = &inv;
  const Vm::Resumed r = vm_.resume(co_, nresults, ticks_, failure_);
  vm_.binding = nullptr;
  return settle(inv, r);
}

HookCall::Step HookCall::settle(Invocation& inv, Vm::Resumed r) {
  switch (r) {
    case Vm::Resumed::kDone:
      release(true);
      return Step::kDone;
    case Vm::Resumed::kFailed:
      release(false);  // what the dead coroutine holds becomes garbage
      vm_.recover(failure_);
      return Step::kFailed;
    case Vm::Resumed::kYielded:
      break;
  }
  lua_settop(co_, 0);
  if (inv.waiting) return Step::kWaiting;
  // A bare coroutine.yield in the hook itself: nothing would ever resume it.
  failure_ = {Failure::kError, scriptPosition(co_, 0),
              "coroutine.yield outside a coroutine of the script"};
  release(false);
  return Step::kFailed;
}

}  // namespace gatehouse::lua

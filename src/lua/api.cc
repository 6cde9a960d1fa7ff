// Builds the `gh` table and runs a hook as a coroutine.
// Anything that may allocate in the state runs inside a protected call: an allocation refused
// by the memory bound must become a failed call, never a panic.
#include "lua/api.h"

#include <lua.hpp>

#include "lua/api_internal.h"

namespace gatehouse::lua {
namespace {

// Registry fields holding a sub-request's answer while a hook is resumed with it (made at
// install, so that reading them later allocates nothing).
constexpr const char* kAnswerHeadersKey = "gatehouse.answer_headers";
constexpr const char* kAnswerBodyKey = "gatehouse.answer_body";

struct Dictionaries {
  SharedDict* local;
  GlobalDict* global;
  bool global_remote;
};

int install(lua_State* L) {
  auto* dicts = static_cast<Dictionaries*>(lua_touserdata(L, 1));
  lua_newtable(L);  // gh
  registerRequestApi(L);
  registerUtilApi(L);
  registerDictionaryApi(L, "shared", dicts->local, nullptr, false);
  registerDictionaryApi(L, "global", &dicts->global->dict, &dicts->global->mu,
                        dicts->global_remote);
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

struct DictAnswer {
  const DictResult* result;
  int count;  // values stored: 1 or 2
};

// Stores a gh.global call's results in the registry fields (the first, then the second).
int storeDictAnswer(lua_State* L) {
  auto* a = static_cast<DictAnswer*>(lua_touserdata(L, 1));
  a->count = pushDictResult(L, *a->result);
  if (a->count == 2) lua_setfield(L, LUA_REGISTRYINDEX, kAnswerBodyKey);
  lua_setfield(L, LUA_REGISTRYINDEX, kAnswerHeadersKey);
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

bool installApi(Vm& vm, SharedDict* local, GlobalDict* global, bool global_remote) {
  Dictionaries dicts{local, global, global_remote};
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
  DictResult unavailable;
  unavailable.error = "gh.global through redis is not available here";
  HookCall::Step step = hook.start(fn_ref, inv);
  while (step == HookCall::Step::kWaiting) {
    if (inv.waiting == Wait::kGlobal) {
      step = hook.resume(inv, unavailable);
    } else {
      step = hook.resume(inv, refused);
    }
  }
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
  inv.waiting = Wait::kNone;
  ticks_ = 0;
  vm_.binding = &inv;
  const Vm::Resumed r = vm_.resume(co_, nargs, ticks_, failure_);
  vm_.binding = nullptr;
  return settle(inv, r);
}

HookCall::Step HookCall::resume(Invocation& inv, const SubResponse& answer) {
  lua_State* L = vm_.state();
  if (co_ == nullptr || inv.waiting != Wait::kSubRequest) {
    failure_ = {Failure::kError, "", "resumed a hook that is not waiting for a sub-request"};
    return Step::kFailed;
  }
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
  return continueWith(inv, nresults);
}

HookCall::Step HookCall::resume(Invocation& inv, const DictResult& result) {
  lua_State* L = vm_.state();
  if (co_ == nullptr || inv.waiting != Wait::kGlobal) {
    failure_ = {Failure::kError, "", "resumed a hook that is not waiting for gh.global"};
    return Step::kFailed;
  }
  DictAnswer a{&result, 0};
  if (lua_cpcall(L, storeDictAnswer, &a) != 0) {
    lua_pop(L, 1);
    failure_ = {Failure::kMemory, "", "not enough memory for gh.global's answer"};
    release(false);
    return Step::kFailed;
  }
  lua_getfield(co_, LUA_REGISTRYINDEX, kAnswerHeadersKey);
  if (a.count == 2) lua_getfield(co_, LUA_REGISTRYINDEX, kAnswerBodyKey);
  return continueWith(inv, a.count);
}

HookCall::Step HookCall::continueWith(Invocation& inv, int nresults) {
  lua_State* L = vm_.state();
  inv.waiting = Wait::kNone;
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
  if (inv.waiting != Wait::kNone) return Step::kWaiting;
  // A bare coroutine.yield in the hook itself: nothing would ever resume it.
  failure_ = {Failure::kError, scriptPosition(co_, 0),
              "coroutine.yield outside a coroutine of the script"};
  release(false);
  return Step::kFailed;
}

}  // namespace gatehouse::lua

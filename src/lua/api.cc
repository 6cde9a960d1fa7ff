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

constexpr const char* kGhKey = "gatehouse.gh";
constexpr const char* kInvokeKey = "gatehouse.invoke";

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

// Calls the hook: (fn, vars, [last]) -> sets gh.vars, then fn([last]).
int invoke(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kGhKey);
  lua_pushvalue(L, 2);
  lua_setfield(L, -2, "vars");
  lua_pop(L, 1);
  lua_remove(L, 2);
  lua_call(L, lua_gettop(L) - 1, 0);
  return 0;
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
  lua_newtable(L);
  lua_setfield(L, -2, "vars");
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, kGhKey);
  lua_setglobal(L, "gh");
  lua_pushcfunction(L, invoke);
  lua_setfield(L, LUA_REGISTRYINDEX, kInvokeKey);
  return 0;
}

struct RefArgs {
  const char* name;
  int ref;
};

int makeVars(lua_State* L) {
  auto* a = static_cast<RefArgs*>(lua_touserdata(L, 1));
  lua_newtable(L);
  a->ref = luaL_ref(L, LUA_REGISTRYINDEX);
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

int newVars(Vm& vm) {
  if (!vm.spare_tables.empty()) {
    const int ref = vm.spare_tables.back();
    vm.spare_tables.pop_back();
    return ref;
  }
  RefArgs a{nullptr, LUA_NOREF};
  if (lua_cpcall(vm.state(), makeVars, &a) != 0) {
    lua_pop(vm.state(), 1);
    return LUA_NOREF;
  }
  return a.ref;
}

// Empties the table (no allocation: only existing keys are set to nil) and keeps it for the
// next request: a new table per request costs more than the rest of a small hook.
void releaseVars(Vm& vm, int vars_ref) {
  constexpr size_t kMaxSpare = 64;
  constexpr int kMaxKeysToClear = 64;
  if (vars_ref == LUA_NOREF) return;
  lua_State* L = vm.state();
  lua_rawgeti(L, LUA_REGISTRYINDEX, vars_ref);
  bool reusable = lua_istable(L, -1) && vm.spare_tables.size() < kMaxSpare;
  if (reusable) {
    int keys = 0;
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      lua_pop(L, 1);
      if (++keys > kMaxKeysToClear) {  // a big table: let the collector have it
        lua_pop(L, 1);
        reusable = false;
        break;
      }
      lua_pushvalue(L, -1);
      lua_pushnil(L);
      lua_rawset(L, -4);  // clearing a field while traversing is allowed
    }
  }
  if (reusable) {
    lua_pushnil(L);
    lua_setmetatable(L, -2);
  }
  lua_pop(L, 1);
  if (reusable) {
    vm.spare_tables.push_back(vars_ref);
  } else {
    luaL_unref(L, LUA_REGISTRYINDEX, vars_ref);
  }
}

int functionRef(Vm& vm, const char* name) {
  RefArgs a{name, LUA_NOREF};
  if (lua_cpcall(vm.state(), makeFunctionRef, &a) != 0) {
    lua_pop(vm.state(), 1);
    return LUA_NOREF;
  }
  return a.ref;
}

CallFailure runHook(Vm& vm, int fn_ref, Invocation& inv, int vars_ref) {
  lua_State* L = vm.state();
  lua_getfield(L, LUA_REGISTRYINDEX, kInvokeKey);
  lua_rawgeti(L, LUA_REGISTRYINDEX, fn_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, vars_ref);
  int nargs = 2;
  if (inv.phase == Phase::kRequestBody || inv.phase == Phase::kResponseBody) {
    lua_pushboolean(L, inv.last ? 1 : 0);
    ++nargs;
  }
  vm.binding = &inv;
  CallFailure f = vm.call(nargs);
  vm.binding = nullptr;
  return f;
}

}  // namespace gatehouse::lua

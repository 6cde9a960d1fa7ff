// gh.shared and gh.global: the dictionary functions over a SharedDict, and gh.global's
// suspension when it goes through Redis (the policy performs the DictOp and resumes the hook).
// Arguments are checked before a lock is taken and values pushed after it is released.
#include <lua.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "lua/api.h"
#include "lua/api_internal.h"

namespace gatehouse::lua {
namespace {

constexpr double kMaxTtlSeconds = 10.0 * 365 * 24 * 3600;

int64_t steadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Upvalues: 1 the dictionary, 2 the mutex guarding it across workers (null for a worker's
// own), 3 whether it goes through the policy (gh.global with Redis).
SharedDict& dictOf(lua_State* L) {
  return *static_cast<SharedDict*>(lua_touserdata(L, lua_upvalueindex(1)));
}
std::unique_lock<std::mutex> lockOf(lua_State* L) {
  auto* mu = static_cast<std::mutex*>(lua_touserdata(L, lua_upvalueindex(2)));
  return mu != nullptr ? std::unique_lock<std::mutex>(*mu) : std::unique_lock<std::mutex>();
}

std::string_view keyArg(lua_State* L) {
  size_t n = 0;
  const char* k = luaL_checklstring(L, 1, &n);
  return {k, n};
}

// A ttl argument in seconds (nil or 0: none) as milliseconds, at least 1.
int64_t ttlArg(lua_State* L, int idx) {
  if (lua_isnoneornil(L, idx)) return 0;
  const double s = luaL_checknumber(L, idx);
  if (!(s >= 0) || s > kMaxTtlSeconds) luaL_argerror(L, idx, "a ttl is seconds, 0 to 10 years");
  if (s == 0) return 0;
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(s * 1000)));
}

double finiteArg(lua_State* L, int idx, double def) {
  const double v = luaL_optnumber(L, idx, def);
  if (!std::isfinite(v)) luaL_argerror(L, idx, "a finite number");
  return v;
}

// Performs `op`: here, or (gh.global through Redis, in a hook that can wait) by suspending the
// hook until the policy resumes it with the result.
int perform(lua_State* L, DictOp& op) {
  if (lua_toboolean(L, lua_upvalueindex(3)) != 0) {
    auto* inv = static_cast<Invocation*>(Vm::of(L)->binding);
    if (inv != nullptr) {  // null: the top level, which runs on the local dictionary
      if ((inv->phase != Phase::kRequestHeaders && inv->phase != Phase::kRequestBody &&
           inv->phase != Phase::kResponseHeaders) ||
          L != inv->thread) {
        lua_pushnil(L);
        lua_pushliteral(L,
                        "gh.global through redis is available in on_request_headers, "
                        "on_request_body and on_response_headers only (not in the script's "
                        "coroutines)");
        return 2;
      }
      inv->global_op = std::move(op);
      inv->waiting = Wait::kGlobal;
      return lua_yield(L, 0);
    }
  }
  DictResult r;
  {
    auto lock = lockOf(L);
    r = applyDictOp(dictOf(L), op);
  }
  return pushDictResult(L, r);
}

void pushValue(lua_State* L, const SharedDict::Value& v) {
  if (const auto* d = std::get_if<double>(&v)) {
    lua_pushnumber(L, *d);
  } else if (const auto* s = std::get_if<std::string>(&v)) {
    lua_pushlstring(L, s->data(), s->size());
  } else {
    lua_pushboolean(L, std::get<bool>(v) ? 1 : 0);
  }
}

// gh.X.get(key): the value, or nil.
int dictGet(lua_State* L) {
  const std::string_view key = keyArg(L);
  if (lua_toboolean(L, lua_upvalueindex(3)) != 0) {
    DictOp op;
    op.kind = DictOp::Kind::kGet;
    op.key.assign(key);
    return perform(L, op);
  }
  // The common case, without a DictOp: a view of the key and one lookup.
  if (lua_touserdata(L, lua_upvalueindex(2)) == nullptr) {
    // A worker's own dictionary: pushed straight from the entry (no copy, no lock to hold).
    const SharedDict::Value* found = dictOf(L).get(key);
    if (found == nullptr) {
      lua_pushnil(L);
    } else {
      pushValue(L, *found);
    }
    return 1;
  }
  std::optional<SharedDict::Value> v;  // copied under the lock, pushed after it
  {
    auto lock = lockOf(L);
    if (const SharedDict::Value* found = dictOf(L).get(key)) v = *found;
  }
  if (!v) {
    lua_pushnil(L);
  } else {
    pushValue(L, *v);
  }
  return 1;
}

// The value argument of set and add; false (and the reason pushed) when it is too large.
bool valueArg(lua_State* L, DictOp& op) {
  switch (lua_type(L, 2)) {
    case LUA_TNUMBER:
      op.value = lua_tonumber(L, 2);
      return true;
    case LUA_TBOOLEAN:
      op.value = lua_toboolean(L, 2) != 0;
      return true;
    case LUA_TSTRING: {
      size_t vn = 0;
      const char* s = lua_tolstring(L, 2, &vn);
      if (vn > SharedDict::kMaxValueBytes) {
        lua_pushboolean(L, 0);
        lua_pushliteral(L, "value too large");
        return false;
      }
      op.value = std::string(s, vn);
      return true;
    }
    default:
      luaL_argerror(L, 2, "a number, string or boolean");
      return false;
  }
}

// gh.X.set(key, value [, ttl]): value a number, string or boolean; nil removes the key.
// Returns true, or false and a reason.
int dictSet(lua_State* L) {
  DictOp op;
  op.key.assign(keyArg(L));
  if (lua_isnoneornil(L, 2)) {
    op.kind = DictOp::Kind::kDelete;
    return perform(L, op);
  }
  op.kind = DictOp::Kind::kSet;
  op.ttl_ms = ttlArg(L, 3);
  if (!valueArg(L, op)) return 2;
  return perform(L, op);
}

// gh.X.add(key, value [, ttl]): as set, only when the key is absent; false, "exists" when not.
int dictAdd(lua_State* L) {
  DictOp op;
  op.kind = DictOp::Kind::kAdd;
  op.key.assign(keyArg(L));
  op.ttl_ms = ttlArg(L, 3);
  if (!valueArg(L, op)) return 2;
  return perform(L, op);
}

// gh.X.incr(key [, by = 1 [, init = 0 [, ttl]]]): the new value, or nil and a reason. The ttl
// applies to a key the call creates (a counter per window).
int dictIncr(lua_State* L) {
  DictOp op;
  op.kind = DictOp::Kind::kIncr;
  op.key.assign(keyArg(L));
  op.by = finiteArg(L, 2, 1);
  op.init = finiteArg(L, 3, 0);
  op.ttl_ms = ttlArg(L, 4);
  return perform(L, op);
}

// gh.X.delete(key): true.
int dictDelete(lua_State* L) {
  DictOp op;
  op.kind = DictOp::Kind::kDelete;
  op.key.assign(keyArg(L));
  return perform(L, op);
}

}  // namespace

SharedDict::Map::iterator SharedDict::live(std::string_view key) {
  auto it = entries_.find(key);
  if (it != entries_.end() && it->second.expires_ns != 0 && it->second.expires_ns <= steadyNs()) {
    entries_.erase(it);
    return entries_.end();
  }
  return it;
}

bool SharedDict::room() {
  if (entries_.size() < kMaxEntries) return true;
  const int64_t now = steadyNs();
  std::erase_if(entries_, [now](const auto& kv) {
    return kv.second.expires_ns != 0 && kv.second.expires_ns <= now;
  });
  return entries_.size() < kMaxEntries;
}

const SharedDict::Value* SharedDict::get(std::string_view key) {
  auto it = live(key);
  return it == entries_.end() ? nullptr : &it->second.value;
}

bool SharedDict::set(std::string_view key, Value v, int64_t ttl_ms) {
  const int64_t expires = ttl_ms != 0 ? steadyNs() + ttl_ms * 1'000'000 : 0;
  auto it = live(key);
  if (it != entries_.end()) {
    it->second = Entry{std::move(v), expires};
    return true;
  }
  if (!room()) return false;
  entries_.emplace(std::string(key), Entry{std::move(v), expires});
  return true;
}

void SharedDict::erase(std::string_view key) {
  auto it = entries_.find(key);
  if (it != entries_.end()) entries_.erase(it);
}

const double* SharedDict::incr(std::string_view key, double by, double init, int64_t ttl_ms) {
  auto it = live(key);
  if (it == entries_.end()) {
    if (!room()) return nullptr;
    const int64_t expires = ttl_ms != 0 ? steadyNs() + ttl_ms * 1'000'000 : 0;
    it = entries_.emplace(std::string(key), Entry{init, expires}).first;
  }
  auto* d = std::get_if<double>(&it->second.value);
  if (d == nullptr) return nullptr;
  *d += by;
  return d;
}

DictResult applyDictOp(SharedDict& dict, const DictOp& op) {
  DictResult r;
  switch (op.kind) {
    case DictOp::Kind::kGet:
      if (const SharedDict::Value* v = dict.get(op.key)) r.value = *v;
      break;
    case DictOp::Kind::kAdd:
      if (dict.get(op.key) != nullptr) {
        r.error = "exists";
        r.refused = true;
        break;
      }
      [[fallthrough]];
    case DictOp::Kind::kSet:
      if (dict.set(op.key, op.value, op.ttl_ms)) {
        r.value = true;
      } else {
        r.error = "dictionary full";
        r.refused = true;
      }
      break;
    case DictOp::Kind::kIncr:
      if (const double* v = dict.incr(op.key, op.by, op.init, op.ttl_ms)) {
        r.value = *v;
      } else {
        r.error = "not a number, or dictionary full";
      }
      break;
    case DictOp::Kind::kDelete:
      dict.erase(op.key);
      r.value = true;
      break;
  }
  return r;
}

int pushDictResult(lua_State* L, const DictResult& r) {
  if (!r.error.empty()) {
    if (r.refused) {
      lua_pushboolean(L, 0);
    } else {
      lua_pushnil(L);
    }
    lua_pushlstring(L, r.error.data(), r.error.size());
    return 2;
  }
  if (r.value) {
    pushValue(L, *r.value);
  } else {
    lua_pushnil(L);
  }
  return 1;
}

void registerDictionaryApi(lua_State* L, const char* name, SharedDict* dict, std::mutex* mu,
                           bool remote) {
  lua_newtable(L);
  const luaL_Reg fns[] = {{"get", dictGet},
                          {"set", dictSet},
                          {"add", dictAdd},
                          {"incr", dictIncr},
                          {"delete", dictDelete}};
  for (const auto& fn : fns) {
    lua_pushlightuserdata(L, dict);
    lua_pushlightuserdata(L, mu);
    lua_pushboolean(L, remote ? 1 : 0);
    lua_pushcclosure(L, fn.func, 3);
    lua_setfield(L, -2, fn.name);
  }
  lua_setfield(L, -2, name);
}

}  // namespace gatehouse::lua

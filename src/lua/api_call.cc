// gh.call (a sub-request that suspends the hook) and gh.vars (the request's variables,
// RequestContext::vars): the parts of the `gh` table that reach past this policy.
#include <lua.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "lua/api.h"
#include "lua/api_internal.h"

namespace gatehouse::lua {
namespace {

constexpr size_t kMaxVars = 64;
constexpr size_t kMaxVarBytes = 64 * 1024;
constexpr double kMaxCallSeconds = 300;

std::string_view viewAt(lua_State* L, int idx) {
  size_t n = 0;
  const char* s = lua_tolstring(L, idx, &n);
  return {s, n};
}

// Reads the string field `name` of the options table at index 2 into `out`; false when it is
// absent (an error when it is there but not a string).
bool stringOption(lua_State* L, const char* name, std::string& out) {
  lua_getfield(L, 2, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return false;
  }
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "gh.call: %s must be a string", name);
  out.assign(viewAt(L, -1));
  lua_pop(L, 1);
  return true;
}

void readHeaders(lua_State* L, SubRequest& req) {
  lua_getfield(L, 2, "headers");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  if (!lua_istable(L, -1)) luaL_error(L, "gh.call: headers must be a table");
  const int t = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1)) {
      luaL_error(L, "gh.call: headers maps names to string values");
    }
    std::string name(viewAt(L, -2));
    for (char& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string_view value = viewAt(L, -1);
    if (!isToken(name) || !isFieldValue(value) || isManaged(name)) {
      luaL_error(L, "gh.call: header '%s' cannot be sent", name.c_str());
    }
    req.headers.emplace_back(std::move(name), value);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

// gh.call(cluster, [{method, path, headers, body, timeout}]): suspends the hook until the
// sub-request's answer: status, headers (a table of lower-case names), body; or nil and why.
int call(lua_State* L) {
  Invocation& inv = current(L);
  size_t n = 0;
  const char* cluster = luaL_checklstring(L, 1, &n);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  if (inv.phase != Phase::kRequestHeaders && inv.phase != Phase::kRequestBody &&
      inv.phase != Phase::kResponseHeaders) {
    return luaL_error(L,
                      "gh.call is available in on_request_headers, on_request_body and "
                      "on_response_headers only");
  }
  if (L != inv.thread) return luaL_error(L, "gh.call cannot run inside the script's coroutines");
  SubRequest req;
  req.cluster.assign(cluster, n);
  if (!lua_isnoneornil(L, 2)) {
    if (stringOption(L, "method", req.method) && !isToken(req.method)) {
      return luaL_error(L, "gh.call: not a method");
    }
    if (stringOption(L, "path", req.target) &&
        (req.target.empty() || req.target[0] != '/' || !isTargetPart(req.target, false))) {
      return luaL_error(L, "gh.call: a path starts with '/' (a query may follow)");
    }
    stringOption(L, "body", req.body);
    readHeaders(L, req);
    lua_getfield(L, 2, "timeout");
    if (!lua_isnil(L, -1)) {
      const double s = lua_tonumber(L, -1);
      if (!lua_isnumber(L, -1) || !(s > 0) || s > kMaxCallSeconds) {
        return luaL_error(L, "gh.call: timeout is seconds, more than 0 and at most 300");
      }
      req.timeout_ms = static_cast<uint32_t>(std::ceil(s * 1000));
    }
    lua_pop(L, 1);
  }
  if (inv.sub_requests >= inv.max_sub_requests) {
    lua_pushnil(L);
    lua_pushliteral(L, "too many sub-requests");
    return 2;
  }
  ++inv.sub_requests;
  inv.sub_request = std::move(req);
  inv.waiting = Wait::kSubRequest;
  return lua_yield(L, 0);
}

// gh.vars reads and writes the request's variables: the policies after this one, templates
// and the access log see them. Values are text (numbers and booleans are stored as such).
std::string_view varName(lua_State* L) {
  if (lua_type(L, 2) != LUA_TSTRING) luaL_error(L, "gh.vars keys are strings");
  return viewAt(L, 2);
}

int varGet(lua_State* L) {
  const std::string_view name = varName(L);
  for (const auto& [k, v] : current(L).ctx->vars) {
    if (k == name) {
      lua_pushlstring(L, v.data(), v.size());
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

int varSet(lua_State* L) {
  const std::string_view name = varName(L);
  auto& vars = current(L).ctx->vars;
  if (lua_isnil(L, 3)) {
    std::erase_if(vars, [&](const auto& kv) { return kv.first == name; });
    return 0;
  }
  std::string_view value;
  switch (lua_type(L, 3)) {
    case LUA_TBOOLEAN:
      value = lua_toboolean(L, 3) != 0 ? "true" : "false";
      break;
    case LUA_TNUMBER:
    case LUA_TSTRING:
      value = viewAt(L, 3);  // a number becomes its text in place
      break;
    default:
      return luaL_error(L, "gh.vars values are strings, numbers or booleans");
  }
  if (name.empty() || name.size() > 256 || value.size() > kMaxVarBytes) {
    return luaL_error(L, "gh.vars: a name of 1 to 256 bytes, a value up to 64 KiB");
  }
  // As RequestContext::setVar, written here so that the bridge needs only the context's
  // fields (the fuzz build links no http/filter.cc).
  for (auto& [k, v] : vars) {
    if (k == name) {
      v.assign(value);
      return 0;
    }
  }
  if (vars.size() >= kMaxVars) return luaL_error(L, "gh.vars: at most 64 variables per request");
  vars.emplace_back(std::string(name), std::string(value));
  return 0;
}

}  // namespace

void registerCallApi(lua_State* L) {
  lua_pushcfunction(L, call);
  lua_setfield(L, -2, "call");
  // gh.vars: an empty table whose metatable reaches the request (locked: a script must not
  // replace it, since every request shares the table).
  lua_newtable(L);
  lua_newtable(L);
  lua_pushcfunction(L, varGet);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, varSet);
  lua_setfield(L, -2, "__newindex");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "vars");
}

}  // namespace gatehouse::lua

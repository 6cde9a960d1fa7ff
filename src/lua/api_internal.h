#pragma once
// Shared by the files that build the `gh` table (lua/api*.cc); not for other layers. Runs on
// the Vm's thread.
#include <lua.hpp>

#include "lua/api.h"

namespace gatehouse::lua {

// The invocation being served; raises a Lua error outside a hook.
Invocation& current(lua_State* L);

// Sets each function of `fns` (null-terminated) as a field of the table on top of the stack.
inline void setFunctions(lua_State* L, const luaL_Reg* fns) {
  for (; fns->name != nullptr; ++fns) {
    lua_pushcfunction(L, fns->func);
    lua_setfield(L, -2, fns->name);
  }
}

// Checks of what a script hands the gateway (lua/api_request.cc).
bool isToken(std::string_view s);       // a header name or method
bool isFieldValue(std::string_view s);  // no CR, LF or NUL
// No spaces, controls or fragment; a path (`path`) also no '?' and a leading '/'.
bool isTargetPart(std::string_view s, bool path);
// Framing and connection fields are the gateway's to write: a script setting them could make
// the message's length lie.
bool isManaged(std::string_view name);

// Each adds its fields to the `gh` table on top of the stack.
void registerRequestApi(lua_State* L);
void registerUtilApi(lua_State* L);
void registerCallApi(lua_State* L);                                  // gh.call and gh.vars
void registerRegexApi(lua_State* L);                                 // gh.re
void registerMetricApi(lua_State* L, const ScriptMetrics* metrics);  // gh.metric
// gh[name]: the dictionary functions over `dict`, guarded by `mu` when not null; `remote`:
// gh.global through the policy (lua/api_dict.cc).
void registerDictionaryApi(lua_State* L, const char* name, SharedDict* dict, std::mutex* mu,
                           bool remote);
// Pushes what a dictionary function returns; the number of values.
int pushDictResult(lua_State* L, const DictResult& r);

}  // namespace gatehouse::lua

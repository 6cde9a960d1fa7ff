// gh.req, gh.resp, gh.respond and who is calling: the request-facing half of the `gh` table.
#include <lua.hpp>

#include <algorithm>
#include <array>
#include <cctype>

#include "lua/api.h"
#include "lua/api_internal.h"

namespace gatehouse::lua {
namespace {

// RFC 9110 tchar, as a table: a header set from a script checks every byte of its name.
constexpr std::array<bool, 256> kTokenChars = [] {
  std::array<bool, 256> t{};
  for (int c = '0'; c <= '9'; ++c)
    t[static_cast<size_t>(c)] = true;
  for (int c = 'a'; c <= 'z'; ++c)
    t[static_cast<size_t>(c)] = t[static_cast<size_t>(c - 'a' + 'A')] = true;
  for (char c : std::string_view("!#$%&'*+-.^_`|~"))
    t[static_cast<unsigned char>(c)] = true;
  return t;
}();
bool isTokenChar(unsigned char c) {
  return kTokenChars[c];
}
}  // namespace

bool isToken(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!isTokenChar(c)) return false;
  }
  return true;
}
bool isFieldValue(std::string_view s) {
  for (unsigned char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}
bool isTargetPart(std::string_view s, bool path) {
  if (path && (s.empty() || s[0] != '/')) return false;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == 0x7f || c == '#' || (path && c == '?')) return false;
  }
  return true;
}

namespace {

http::Request& request(lua_State* L) {
  return current(L).ctx->request;
}

// The response of the response phases; an error elsewhere.
http::Response& response(lua_State* L) {
  Invocation& inv = current(L);
  if (inv.phase != Phase::kResponseHeaders && inv.phase != Phase::kResponseBody &&
      inv.phase != Phase::kLog) {
    luaL_error(L, "gh.resp is available from on_response_headers on");
  }
  return inv.ctx->response;
}

std::string_view checkView(lua_State* L, int arg) {
  size_t n = 0;
  const char* s = luaL_checklstring(L, arg, &n);
  return {s, n};
}

void pushView(lua_State* L, std::string_view s) {
  lua_pushlstring(L, s.data(), s.size());
}

int pushHeader(lua_State* L, const http::HeaderMap& headers) {
  const http::HeaderField* f = headers.find(checkView(L, 1));
  if (f == nullptr) {
    lua_pushnil(L);
  } else {
    pushView(L, f->value);
  }
  return 1;
}

int pushHeaders(lua_State* L, const http::HeaderMap& headers) {
  lua_createtable(L, 0, static_cast<int>(headers.size()));
  for (const auto& f : headers.fields()) {
    std::string name(f.name);
    for (char& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    lua_getfield(L, -1, name.c_str());
    if (lua_isstring(L, -1)) {  // a repeated field: values joined as a list
      lua_pushliteral(L, ", ");
      pushView(L, f.value);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      pushView(L, f.value);
    }
    lua_setfield(L, -2, name.c_str());
  }
  return 1;
}

std::string lowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');  // ASCII: no locale lookup
  }
  return out;
}

int setHeader(lua_State* L, http::HeaderMap& headers) {
  const std::string_view name = checkView(L, 1);
  if (isManaged(name)) return luaL_argerror(L, 1, "framing headers are set by the gateway");
  if (lua_isnoneornil(L, 2)) {
    headers.remove(name);
    return 0;
  }
  const std::string_view value = checkView(L, 2);
  if (!isToken(name)) return luaL_argerror(L, 1, "not a header name");
  if (!isFieldValue(value)) return luaL_argerror(L, 2, "a header value holds no CR, LF or NUL");
  const bool lower =
      std::none_of(name.begin(), name.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  if (lower) {
    headers.set(name, value);  // the usual case: no copy to lower-case
  } else {
    headers.set(lowerCase(name), value);
  }
  return 0;
}

int removeHeader(lua_State* L, http::HeaderMap& headers) {
  if (isManaged(checkView(L, 1))) {
    return luaL_argerror(L, 1, "framing headers are set by the gateway");
  }
  lua_pushinteger(L, static_cast<lua_Integer>(headers.remove(checkView(L, 1))));
  return 1;
}

std::string& body(lua_State* L, Phase phase, const char* fn) {
  Invocation& inv = current(L);
  if (inv.phase != phase || inv.body == nullptr) {
    luaL_error(L, "%s is available in %s only", fn,
               phase == Phase::kRequestBody ? "on_request_body" : "on_response_body");
  }
  return *inv.body;
}

int reqGetHeader(lua_State* L) {
  return pushHeader(L, request(L).headers);
}
int reqGetHeaders(lua_State* L) {
  return pushHeaders(L, request(L).headers);
}
int reqSetHeader(lua_State* L) {
  return setHeader(L, request(L).headers);
}
int reqRemoveHeader(lua_State* L) {
  return removeHeader(L, request(L).headers);
}
int reqGetMethod(lua_State* L) {
  pushView(L, request(L).method);
  return 1;
}
int reqSetMethod(lua_State* L) {
  const std::string_view m = checkView(L, 1);
  if (!isToken(m)) return luaL_argerror(L, 1, "not a method");
  request(L).method.assign(m);
  return 0;
}
int reqGetPath(lua_State* L) {
  pushView(L, request(L).path);
  return 1;
}
int reqSetPath(lua_State* L) {
  const std::string_view p = checkView(L, 1);
  if (!isTargetPart(p, true)) return luaL_argerror(L, 1, "a path starts with '/' (no '?')");
  request(L).path.assign(p);
  return 0;
}
int reqGetQuery(lua_State* L) {
  pushView(L, request(L).query);
  return 1;
}
int reqSetQuery(lua_State* L) {
  const std::string_view q = checkView(L, 1);
  if (!isTargetPart(q, false)) return luaL_argerror(L, 1, "not a query string");
  request(L).query.assign(q);
  return 0;
}
int reqGetBody(lua_State* L) {
  pushView(L, body(L, Phase::kRequestBody, "gh.req.get_body"));
  return 1;
}
int reqSetBody(lua_State* L) {
  const std::string_view b = checkView(L, 1);
  body(L, Phase::kRequestBody, "gh.req.set_body").assign(b);
  return 0;
}

// In on_log: the status the client got (a reply the gateway or a policy made included).
int respGetStatus(lua_State* L) {
  const http::Response& r = response(L);
  const Invocation& inv = current(L);
  const int final_status = inv.ctx->final_status;
  lua_pushinteger(L, inv.phase == Phase::kLog && final_status != 0 ? final_status : r.status);
  return 1;
}
int respSetStatus(lua_State* L) {
  const lua_Integer status = luaL_checkinteger(L, 1);
  if (current(L).phase != Phase::kResponseHeaders) {
    return luaL_error(L, "gh.resp.set_status is available in on_response_headers only");
  }
  if (status < 200 || status > 599) return luaL_argerror(L, 1, "a status from 200 to 599");
  http::Response& r = response(L);
  r.status = static_cast<int>(status);
  r.reason.assign(http::reasonPhrase(r.status));
  return 0;
}
int respGetHeader(lua_State* L) {
  return pushHeader(L, response(L).headers);
}
int respGetHeaders(lua_State* L) {
  return pushHeaders(L, response(L).headers);
}
int respSetHeader(lua_State* L) {
  if (current(L).phase != Phase::kResponseHeaders) {
    return luaL_error(L, "response headers can be changed in on_response_headers only");
  }
  return setHeader(L, response(L).headers);
}
int respRemoveHeader(lua_State* L) {
  if (current(L).phase != Phase::kResponseHeaders) {
    return luaL_error(L, "response headers can be changed in on_response_headers only");
  }
  return removeHeader(L, response(L).headers);
}
int respGetBody(lua_State* L) {
  pushView(L, body(L, Phase::kResponseBody, "gh.resp.get_body"));
  return 1;
}
int respSetBody(lua_State* L) {
  const std::string_view b = checkView(L, 1);
  body(L, Phase::kResponseBody, "gh.resp.set_body").assign(b);
  return 0;
}

// gh.respond(status [, body [, headers]]): answer the request from the script.
int respond(lua_State* L) {
  const lua_Integer status = luaL_checkinteger(L, 1);
  size_t n = 0;
  const char* text = luaL_optlstring(L, 2, "", &n);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  Invocation& inv = current(L);
  if (inv.phase == Phase::kResponseBody || inv.phase == Phase::kLog) {
    return luaL_error(L, "gh.respond is not available once the response is being sent");
  }
  if (status < 200 || status > 599) return luaL_argerror(L, 1, "a status from 200 to 599");
  http::LocalReply& reply = inv.ctx->local_reply;
  reply.status = static_cast<int>(status);
  reply.headers.clear();
  if (!lua_isnoneornil(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
      size_t kn = 0, vn = 0;
      const char* k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &kn) : nullptr;
      const char* v = lua_isstring(L, -1) ? lua_tolstring(L, -1, &vn) : nullptr;
      if (k == nullptr || v == nullptr || !isToken({k, kn}) || !isFieldValue({v, vn}) ||
          isManaged({k, kn})) {
        return luaL_argerror(L, 3, "a table of header names to string values");
      }
      reply.headers.set(lowerCase({k, kn}), {v, vn});
      lua_pop(L, 1);
    }
  }
  if (!reply.headers.has("content-type") && n > 0) reply.headers.set("content-type", "text/plain");
  reply.body.assign(text, n);
  inv.ctx->has_local_reply = true;
  inv.responded = true;
  return 0;
}

// Absent values are an explicit nil, so that tostring(gh.consumer()) works.
int pushOptional(lua_State* L, std::string_view s) {
  if (s.empty()) {
    lua_pushnil(L);
  } else {
    pushView(L, s);
  }
  return 1;
}
int consumer(lua_State* L) {
  return pushOptional(L, current(L).ctx->consumer);
}
int routeName(lua_State* L) {
  return pushOptional(L, current(L).ctx->route_name);
}
int clientIp(lua_State* L) {
  return pushOptional(L, current(L).ctx->client_ip);
}
int requestId(lua_State* L) {
  return pushOptional(L, current(L).ctx->request_id);
}
int claim(lua_State* L) {
  const std::string_view name = checkView(L, 1);
  const auto& claims = current(L).ctx->claims;
  if (claims) {
    for (const auto& [k, v] : claims->values) {
      if (k == name) return pushOptional(L, v);
    }
  }
  lua_pushnil(L);
  return 1;
}
int claims(lua_State* L) {
  const auto& c = current(L).ctx->claims;
  if (!c) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, 0, static_cast<int>(c->values.size()));
  for (const auto& [k, v] : c->values) {
    pushView(L, k);
    pushView(L, v);
    lua_rawset(L, -3);
  }
  return 1;
}

const luaL_Reg kRequestFunctions[] = {
    {"get_header", reqGetHeader}, {"get_headers", reqGetHeaders},
    {"set_header", reqSetHeader}, {"remove_header", reqRemoveHeader},
    {"get_method", reqGetMethod}, {"set_method", reqSetMethod},
    {"get_path", reqGetPath},     {"set_path", reqSetPath},
    {"get_query", reqGetQuery},   {"set_query", reqSetQuery},
    {"get_body", reqGetBody},     {"set_body", reqSetBody},
    {nullptr, nullptr},
};
const luaL_Reg kResponseFunctions[] = {
    {"get_status", respGetStatus},
    {"set_status", respSetStatus},
    {"get_header", respGetHeader},
    {"get_headers", respGetHeaders},
    {"set_header", respSetHeader},
    {"remove_header", respRemoveHeader},
    {"get_body", respGetBody},
    {"set_body", respSetBody},
    {nullptr, nullptr},
};
const luaL_Reg kContextFunctions[] = {
    {"respond", respond}, {"consumer", consumer},  {"claim", claim},          {"claims", claims},
    {"route", routeName}, {"client_ip", clientIp}, {"request_id", requestId}, {nullptr, nullptr},
};

}  // namespace

bool isManaged(std::string_view name) {
  return http::iequals(name, "content-length") || http::isConnectionSpecific(name) ||
         http::iequals(name, "te") || http::iequals(name, "trailer");
}

Invocation& current(lua_State* L) {
  auto* inv = static_cast<Invocation*>(Vm::of(L)->binding);
  if (inv == nullptr || inv->ctx == nullptr) {
    luaL_error(L, "the request is available inside hooks only");
  }
  return *inv;
}

void registerRequestApi(lua_State* L) {
  lua_newtable(L);
  setFunctions(L, kRequestFunctions);
  lua_setfield(L, -2, "req");
  lua_newtable(L);
  setFunctions(L, kResponseFunctions);
  lua_setfield(L, -2, "resp");
  setFunctions(L, kContextFunctions);
}

}  // namespace gatehouse::lua

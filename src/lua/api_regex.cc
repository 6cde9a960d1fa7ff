// gh.re: the gateway's regular expressions (RE2: linear time, no backtracking) for scripts.
// Patterns are compiled once and kept in a bounded per-worker cache, so a hook that matches
// the same pattern on every request compiles it once.
#include <re2/re2.h>

#include <lua.hpp>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "lua/api_internal.h"

namespace gatehouse::lua {
namespace {

constexpr size_t kMaxCachedPatterns = 256;
constexpr size_t kMaxPatternBytes = 4096;
constexpr int kMaxCaptures = 32;

// The compiled `pattern`; raises a Lua error (with RE2's reason) when it does not compile.
const RE2& compiled(lua_State* L, int arg) {
  thread_local std::unordered_map<std::string, std::unique_ptr<RE2>> cache;
  size_t n = 0;
  const char* p = luaL_checklstring(L, arg, &n);
  if (n > kMaxPatternBytes) luaL_argerror(L, arg, "a pattern up to 4096 bytes");
  std::string pattern(p, n);
  auto it = cache.find(pattern);
  if (it == cache.end()) {
    RE2::Options options;
    options.set_log_errors(false);
    auto re = std::make_unique<RE2>(pattern, options);
    if (!re->ok()) {
      const std::string why = "invalid pattern: " + re->error();
      luaL_argerror(L, arg, why.c_str());
    }
    if (re->NumberOfCapturingGroups() > kMaxCaptures) {
      luaL_argerror(L, arg, "more than 32 capturing groups");
    }
    if (cache.size() >= kMaxCachedPatterns) cache.clear();  // scripts building patterns
    it = cache.emplace(std::move(pattern), std::move(re)).first;
  }
  return *it->second;
}

re2::StringPiece subjectAt(lua_State* L, int arg) {
  size_t n = 0;
  const char* s = luaL_checklstring(L, arg, &n);
  return {s, n};
}

// gh.re.match(subject, pattern): nil, or a table with [0] the match, [1..n] the groups (false
// for a group that took no part) and named groups by name.
int match(lua_State* L) {
  const re2::StringPiece subject = subjectAt(L, 1);
  const RE2& re = compiled(L, 2);
  const int groups = re.NumberOfCapturingGroups();
  std::vector<re2::StringPiece> parts(static_cast<size_t>(groups) + 1);
  if (!re.Match(subject, 0, subject.size(), RE2::UNANCHORED, parts.data(),
                static_cast<int>(parts.size()))) {
    lua_pushnil(L);
    return 1;
  }
  lua_createtable(L, groups, static_cast<int>(re.NamedCapturingGroups().size()) + 1);
  for (int i = 0; i <= groups; ++i) {
    const auto& part = parts[static_cast<size_t>(i)];
    if (part.data() == nullptr) {
      lua_pushboolean(L, 0);
    } else {
      lua_pushlstring(L, part.data(), part.size());
    }
    lua_rawseti(L, -2, i);
  }
  for (const auto& [name, index] : re.NamedCapturingGroups()) {
    lua_rawgeti(L, -1, index);
    lua_setfield(L, -2, name.c_str());
  }
  return 1;
}

// gh.re.find(subject, pattern): the 1-based first and last byte of the first match, or nil.
int find(lua_State* L) {
  const re2::StringPiece subject = subjectAt(L, 1);
  const RE2& re = compiled(L, 2);
  re2::StringPiece whole;
  if (!re.Match(subject, 0, subject.size(), RE2::UNANCHORED, &whole, 1)) {
    lua_pushnil(L);
    return 1;
  }
  const auto first = static_cast<lua_Integer>(whole.data() - subject.data());
  lua_pushinteger(L, first + 1);
  lua_pushinteger(L, first + static_cast<lua_Integer>(whole.size()));
  return 2;
}

// gh.re.gsub(subject, pattern, replacement): the subject with every match replaced (\0 is the
// match, \1..\9 the groups) and the number of replacements.
int gsub(lua_State* L) {
  const re2::StringPiece in = subjectAt(L, 1);
  std::string out(in.data(), in.size());
  const RE2& re = compiled(L, 2);
  const re2::StringPiece replacement = subjectAt(L, 3);
  std::string why;
  if (!re.CheckRewriteString(replacement, &why)) {
    why = "invalid replacement: " + why;
    return luaL_argerror(L, 3, why.c_str());
  }
  const int n = RE2::GlobalReplace(&out, re, replacement);
  lua_pushlstring(L, out.data(), out.size());
  lua_pushinteger(L, n);
  return 2;
}

const luaL_Reg kRegexFunctions[] = {
    {"match", match},
    {"find", find},
    {"gsub", gsub},
    {nullptr, nullptr},
};

}  // namespace

void registerRegexApi(lua_State* L) {
  lua_newtable(L);
  setFunctions(L, kRegexFunctions);
  lua_setfield(L, -2, "re");
}

}  // namespace gatehouse::lua

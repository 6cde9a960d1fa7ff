// The `gh` helpers that need no request: time, base64, hex, JSON, SHA-256, HMAC, logging.
// Data errors return nil and a message (no Lua error unwinds through a half-built value).
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "core/encoding.h"
#include "core/log.h"
#include "lua/api_internal.h"

namespace gatehouse::lua {
namespace {

constexpr int kMaxJsonDepth = 64;

std::string_view checkView(lua_State* L, int arg) {
  size_t n = 0;
  const char* s = luaL_checklstring(L, arg, &n);
  return {s, n};
}
void pushString(lua_State* L, const std::string& s) {
  lua_pushlstring(L, s.data(), s.size());
}
int failWith(lua_State* L, const char* msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

int timeNow(lua_State* L) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  lua_pushnumber(L, std::chrono::duration<double>(now).count());
  return 1;
}
int monotonic(lua_State* L) {
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  lua_pushnumber(L, std::chrono::duration<double>(now).count());
  return 1;
}

int base64Encode(lua_State* L) {
  const std::string_view in = checkView(L, 1);
  const bool url = lua_toboolean(L, 2) != 0;
  pushString(L, encoding::base64Encode(
                    in, url ? encoding::Base64::kUrl : encoding::Base64::kStandard, !url));
  return 1;
}
// Standard or URL alphabet, padding optional.
int base64Decode(lua_State* L) {
  std::string_view in = checkView(L, 1);
  while (!in.empty() && in.back() == '=')
    in.remove_suffix(1);
  if (in.size() % 4 == 1) return failWith(L, "invalid base64");
  std::string out;
  out.reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int d = encoding::base64Digit(c, encoding::Base64::kEither);
    if (d < 0 || c == '=') return failWith(L, "invalid base64");
    acc = (acc << 6) | static_cast<uint32_t>(d);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  pushString(L, out);
  return 1;
}
int hexEncode(lua_State* L) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const std::string_view in = checkView(L, 1);
  std::string out;
  out.reserve(in.size() * 2);
  for (unsigned char c : in) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  pushString(L, out);
  return 1;
}
int hexDecode(lua_State* L) {
  const std::string_view in = checkView(L, 1);
  if (in.size() % 2 != 0) return failWith(L, "invalid hex");
  std::string out;
  out.reserve(in.size() / 2);
  for (size_t i = 0; i < in.size(); i += 2) {
    const int hi = encoding::hexDigit(in[i]), lo = encoding::hexDigit(in[i + 1]);
    if (hi < 0 || lo < 0) return failWith(L, "invalid hex");
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  pushString(L, out);
  return 1;
}

int sha256(lua_State* L) {
  const std::string_view in = checkView(L, 1);
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
  lua_pushlstring(L, reinterpret_cast<const char*>(md), sizeof md);
  return 1;
}
int hmacSha256(lua_State* L) {
  const std::string_view key = checkView(L, 1);
  const std::string_view msg = checkView(L, 2);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), md, &len) == nullptr) {
    return failWith(L, "hmac failed");
  }
  lua_pushlstring(L, reinterpret_cast<const char*>(md), len);
  return 1;
}

// JSON: a Lua value at `idx` appended to `out`; false and `err` set on a value JSON cannot hold.
bool encodeJson(lua_State* L, int idx, std::string& out, int depth, const char*& err);

bool encodeTable(lua_State* L, int idx, std::string& out, int depth, const char*& err) {
  if (depth > kMaxJsonDepth) return err = "nested too deeply (or a cycle)", false;
  // An array when the keys are exactly 1..n (n > 0); an object otherwise.
  size_t count = 0;
  bool array = true;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    ++count;
    if (lua_type(L, -2) != LUA_TNUMBER) array = false;
    lua_pop(L, 1);
  }
  array = array && count > 0 && lua_objlen(L, idx) == count;
  out.push_back(array ? '[' : '{');
  if (array) {
    for (size_t i = 1; i <= count; ++i) {
      if (i > 1) out.push_back(',');
      lua_rawgeti(L, idx, static_cast<int>(i));
      const bool ok = encodeJson(L, lua_gettop(L), out, depth + 1, err);
      lua_pop(L, 1);
      if (!ok) return false;
    }
    out.push_back(']');
    return true;
  }
  bool first = true;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    const int kt = lua_type(L, -2);
    if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
      lua_pop(L, 2);
      return err = "object keys must be strings", false;
    }
    if (!first) out.push_back(',');
    first = false;
    lua_pushvalue(L, -2);  // tolstring would change a number key in place and break lua_next
    size_t kn = 0;
    const char* k = lua_tolstring(L, -1, &kn);
    out.push_back('"');
    encoding::appendJsonEscaped(out, {k, kn});
    out.append("\":");
    lua_pop(L, 1);
    const bool ok = encodeJson(L, lua_gettop(L), out, depth + 1, err);
    lua_pop(L, 1);
    if (!ok) {
      lua_pop(L, 1);
      return false;
    }
  }
  out.push_back('}');
  return true;
}

bool encodeJson(lua_State* L, int idx, std::string& out, int depth, const char*& err) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL:
      out.append("null");
      return true;
    case LUA_TLIGHTUSERDATA:
      if (lua_touserdata(L, idx) == nullptr) return out.append("null"), true;
      break;
    case LUA_TBOOLEAN:
      out.append(lua_toboolean(L, idx) ? "true" : "false");
      return true;
    case LUA_TNUMBER: {
      const double d = lua_tonumber(L, idx);
      if (!std::isfinite(d)) return err = "numbers must be finite", false;
      char buf[32];
      const bool integral = d == std::floor(d) && std::fabs(d) < 1e15;
      std::snprintf(buf, sizeof buf, integral ? "%.0f" : "%.17g", d);
      out.append(buf);
      return true;
    }
    case LUA_TSTRING: {
      size_t n = 0;
      const char* s = lua_tolstring(L, idx, &n);
      out.push_back('"');
      encoding::appendJsonEscaped(out, {s, n});
      out.push_back('"');
      return true;
    }
    case LUA_TTABLE:
      if (!lua_checkstack(L, 4)) return err = "out of stack", false;
      return encodeTable(L, idx, out, depth, err);
    default:
      break;
  }
  err = "only nil, gh.null, booleans, numbers, strings and tables can be encoded";
  return false;
}

int jsonEncode(lua_State* L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  const char* err = nullptr;
  std::string out;
  if (!encodeJson(L, 1, out, 0, err)) return failWith(L, err);
  pushString(L, out);
  return 1;
}

void pushJson(lua_State* L, const nlohmann::json& j) {
  luaL_checkstack(L, 3, "JSON nested too deeply");
  switch (j.type()) {
    case nlohmann::json::value_t::null:
      lua_pushlightuserdata(L, nullptr);
      return;
    case nlohmann::json::value_t::boolean:
      lua_pushboolean(L, j.get<bool>() ? 1 : 0);
      return;
    case nlohmann::json::value_t::string: {
      const auto& s = j.get_ref<const std::string&>();
      lua_pushlstring(L, s.data(), s.size());
      return;
    }
    case nlohmann::json::value_t::array: {
      lua_createtable(L, static_cast<int>(j.size()), 0);
      int i = 0;
      for (const auto& v : j) {
        pushJson(L, v);
        lua_rawseti(L, -2, ++i);
      }
      return;
    }
    case nlohmann::json::value_t::object:
      lua_createtable(L, 0, static_cast<int>(j.size()));
      for (const auto& [k, v] : j.items()) {
        lua_pushlstring(L, k.data(), k.size());
        pushJson(L, v);
        lua_rawset(L, -3);
      }
      return;
    default:
      lua_pushnumber(L, j.get<double>());
      return;
  }
}

// Whether `s` nests arrays and objects deeper than kMaxJsonDepth (outside strings).
bool nestsTooDeep(std::string_view s) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

int jsonDecode(lua_State* L) {
  const std::string_view in = checkView(L, 1);
  if (nestsTooDeep(in)) return failWith(L, "JSON nested too deeply");
  const auto j = nlohmann::json::parse(in.begin(), in.end(), nullptr, false);
  if (j.is_discarded()) return failWith(L, "invalid JSON");
  pushJson(L, j);
  return 1;
}

int logLine(lua_State* L) {
  const std::string_view level = checkView(L, 1);
  log::Level lvl = log::Level::kInfo;
  if (!log::parseLevel(level, lvl)) return luaL_argerror(L, 1, "debug, info, warn or error");
  const char* msg = luaL_checkstring(L, 2);
  auto* inv = static_cast<Invocation*>(Vm::of(L)->binding);
  if (inv != nullptr && inv->logs != nullptr) {
    inv->logs->push_back(std::string(level) + " " + scriptPosition(L, 1) + ": " + msg);
    return 0;
  }
  if (lvl < log::level()) return 0;
  std::string line = "lua ";
  line.append(scriptPosition(L, 1)).append(": ").append(msg);
  log::write(lvl, line);
  return 0;
}

const luaL_Reg kUtilFunctions[] = {
    {"time", timeNow},
    {"monotonic", monotonic},
    {"base64_encode", base64Encode},
    {"base64_decode", base64Decode},
    {"hex_encode", hexEncode},
    {"hex_decode", hexDecode},
    {"json_encode", jsonEncode},
    {"json_decode", jsonDecode},
    {"sha256", sha256},
    {"hmac_sha256", hmacSha256},
    {"log", logLine},
    {nullptr, nullptr},
};

}  // namespace

void registerUtilApi(lua_State* L) {
  setFunctions(L, kUtilFunctions);
  lua_pushlightuserdata(L, nullptr);
  lua_setfield(L, -2, "null");
}

}  // namespace gatehouse::lua

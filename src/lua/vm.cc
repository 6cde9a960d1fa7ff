// The sandboxed LuaJIT state: bounded allocator, count hook, the library subset.
#include "lua/vm.h"

#include <lua.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace gatehouse::lua {
namespace {

// The count hook fires every kTick instructions (or every instruction once over budget).
constexpr uint64_t kTick = 1000;

// load(string [, chunkname]) and loadstring: source text only, in the sandbox's globals.
int loadText(lua_State* L) {
  size_t n = 0;
  const char* s = luaL_checklstring(L, 1, &n);
  const char* name = luaL_optstring(L, 2, "=(load)");
  if (luaL_loadbufferx(L, s, n, name, "t") != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

// collectgarbage("count" | "collect" | "step"): a script must not stop the collector.
int collectGarbage(lua_State* L) {
  const char* opt = luaL_optstring(L, 1, "collect");
  if (std::strcmp(opt, "count") == 0) {
    lua_pushnumber(L, lua_gc(L, LUA_GCCOUNT, 0) + lua_gc(L, LUA_GCCOUNTB, 0) / 1024.0);
    return 1;
  }
  if (std::strcmp(opt, "collect") == 0 || std::strcmp(opt, "step") == 0) {
    lua_gc(L, std::strcmp(opt, "collect") == 0 ? LUA_GCCOLLECT : LUA_GCSTEP, 0);
    lua_pushinteger(L, 0);
    return 1;
  }
  return luaL_error(L, "collectgarbage('%s') is not allowed", opt);
}

void openLibrary(lua_State* L, lua_CFunction open, const char* name) {
  lua_pushcfunction(L, open);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
  if (name[0] != '\0')
    lua_setglobal(L, name);  // ffi does not set its own global
  else
    lua_pop(L, 1);
}

void clearGlobal(lua_State* L, const char* name) {
  lua_pushnil(L);
  lua_setglobal(L, name);
}

void clearField(lua_State* L, const char* table, const char* field) {
  lua_getglobal(L, table);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    lua_setfield(L, -2, field);
  }
  lua_pop(L, 1);
}

// Replaces global table `name` by a table with only `keep` of its fields.
void keepFields(lua_State* L, const char* name, std::initializer_list<const char*> keep) {
  lua_getglobal(L, name);
  lua_newtable(L);
  for (const char* field : keep) {
    lua_getfield(L, -2, field);
    lua_setfield(L, -2, field);
  }
  lua_setglobal(L, name);
  lua_pop(L, 1);
}

struct OpenArgs {
  uint32_t allow;
  lua_CFunction handler;
  int handler_ref;
};

int openSandbox(lua_State* L) {
  auto* args = static_cast<OpenArgs*>(lua_touserdata(L, 1));
  const uint32_t allow = args->allow;
  lua_pushcfunction(L, args->handler);
  args->handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  openLibrary(L, luaopen_base, "");
  openLibrary(L, luaopen_table, LUA_TABLIBNAME);
  openLibrary(L, luaopen_string, LUA_STRLIBNAME);
  openLibrary(L, luaopen_math, LUA_MATHLIBNAME);
  openLibrary(L, luaopen_bit, LUA_BITLIBNAME);
  openLibrary(L, luaopen_os, LUA_OSLIBNAME);
  if (allow & kAllowIo) openLibrary(L, luaopen_io, LUA_IOLIBNAME);
  if (allow & kAllowDebug) openLibrary(L, luaopen_debug, LUA_DBLIBNAME);
  if (allow & kAllowFfi) openLibrary(L, luaopen_ffi, LUA_FFILIBNAME);
  if (allow & kAllowPackage) {
    openLibrary(L, luaopen_package, LUA_LOADLIBNAME);
  } else {
    clearGlobal(L, "dofile");
    clearGlobal(L, "loadfile");
  }
  if (!(allow & kAllowOs)) keepFields(L, LUA_OSLIBNAME, {"time", "clock", "date", "difftime"});
  if (!(allow & kAllowBytecode)) {
    lua_pushcfunction(L, loadText);
    lua_setglobal(L, "load");
    lua_pushcfunction(L, loadText);
    lua_setglobal(L, "loadstring");
    clearField(L, LUA_STRLIBNAME, "dump");
  }
  lua_pushcfunction(L, collectGarbage);
  lua_setglobal(L, "collectgarbage");
  return 0;
}

// Lua cuts a long file name in messages to "..." and its last 56 bytes (LUA_IDSIZE): put the
// whole name back, so that a log line names the file.
void restoreFileName(std::string& msg, const std::string& file) {
  constexpr size_t kIdSize = 60;
  if (file.size() < kIdSize) return;
  const std::string cut = "..." + file.substr(file.size() - (kIdSize - 4));
  for (size_t at = msg.find(cut); at != std::string::npos; at = msg.find(cut, at + file.size())) {
    msg.replace(at, cut.size(), file);
  }
}

// "file:line" when `msg` starts with it (the script's file), else "".
std::string positionPrefix(const std::string& msg, const std::string& file) {
  if (file.empty() || msg.compare(0, file.size(), file) != 0 || msg.size() <= file.size() ||
      msg[file.size()] != ':') {
    return {};
  }
  size_t end = file.size() + 1;
  while (end < msg.size() && msg[end] >= '0' && msg[end] <= '9')
    ++end;
  if (end == file.size() + 1 || end >= msg.size() || msg[end] != ':') return {};
  return msg.substr(0, end);
}

}  // namespace

std::string scriptPosition(lua_State* L, int level) {
  lua_Debug ar;
  for (; lua_getstack(L, level, &ar) != 0; ++level) {
    if (lua_getinfo(L, "Sl", &ar) != 0 && ar.currentline > 0) {
      // The whole file name (short_src cuts long paths); short_src for other chunks.
      const char* src = ar.source != nullptr && ar.source[0] == '@' ? ar.source + 1 : ar.short_src;
      return std::string(src) + ":" + std::to_string(ar.currentline);
    }
  }
  return {};
}

std::unique_ptr<Vm> Vm::create(const Limits& limits, uint32_t allow) {
  auto vm = std::make_unique<Vm>(Key{}, limits);
  vm->L_ = lua_newstate(&Vm::allocate, vm.get());
  if (vm->L_ == nullptr) return nullptr;
  luaJIT_setmode(vm->L_, 0, LUAJIT_MODE_ENGINE | LUAJIT_MODE_OFF);
  OpenArgs args{allow, &Vm::onError, LUA_NOREF};
  if (lua_cpcall(vm->L_, openSandbox, &args) != 0) return nullptr;
  vm->handler_ref_ = args.handler_ref;
  vm->armBudget();
  return vm;
}

Vm::~Vm() {
  if (L_ != nullptr) lua_close(L_);
}

Vm* Vm::of(lua_State* L) {
  void* ud = nullptr;
  lua_getallocf(L, &ud);
  return static_cast<Vm*>(ud);
}

void* Vm::allocate(void* ud, void* ptr, size_t osize, size_t nsize) {
  auto* vm = static_cast<Vm*>(ud);
  const size_t old = ptr != nullptr ? osize : 0;
  if (nsize == 0) {
    std::free(ptr);
    vm->used_ -= old;
    return nullptr;
  }
  if (nsize > old && vm->limits_.max_memory != 0 &&
      vm->used_ + (nsize - old) > vm->limits_.max_memory) {
    vm->refusing_ = true;
    return nullptr;
  }
  void* p = std::realloc(ptr, nsize);
  if (p == nullptr) return nullptr;
  vm->used_ = vm->used_ - old + nsize;
  return p;
}

void Vm::armBudget() {
  over_budget_ = false;
  if (limits_.max_instructions == 0) {
    lua_sethook(L_, nullptr, 0, 0);
    return;
  }
  const uint64_t tick = std::min(kTick, limits_.max_instructions);
  tick_limit_ = (limits_.max_instructions + tick - 1) / tick;
  lua_sethook(L_, &Vm::onCount, LUA_MASKCOUNT, static_cast<int>(tick));
}

void Vm::onCount(lua_State* L, lua_Debug*) {
  Vm* vm = of(L);
  if (!vm->over_budget_ && ++vm->ticks_ <= vm->tick_limit_) return;
  if (!vm->over_budget_) {
    // From now on every instruction fails, so a script's own pcall cannot swallow the error.
    vm->over_budget_ = true;
    vm->where_ = scriptPosition(L, 0);
    lua_sethook(L, &Vm::onCount, LUA_MASKCOUNT, 1);
  }
  const std::string msg =
      vm->where_ + (vm->where_.empty() ? "" : ": ") + "instruction budget exceeded";
  lua_pushlstring(L, msg.data(), msg.size());
  lua_error(L);
}

int Vm::onError(lua_State* L) {
  Vm* vm = of(L);
  if (vm->where_.empty()) vm->where_ = scriptPosition(L, 1);
  return 1;
}

CallFailure Vm::failure(lua_State* from, int rc) {
  CallFailure f;
  f.kind = rc == LUA_ERRMEM ? Failure::kMemory
           : over_budget_   ? Failure::kBudget
           : refusing_      ? Failure::kMemory
                            : Failure::kError;
  size_t n = 0;
  const char* msg = lua_tolstring(from, -1, &n);
  f.message = msg != nullptr
                  ? std::string(msg, n)
                  : std::string("(error object is a ") + luaL_typename(from, -1) + " value)";
  f.where = where_;
  restoreFileName(f.message, chunk_name_);
  lua_pop(from, 1);
  return f;
}

void Vm::recover(const CallFailure& f) {
  if (over_budget_) armBudget();
  if (f.kind == Failure::kMemory) {
    // What this call left behind is garbage now; a state still nearly full after a full
    // collection (a script growing a global table) is replaced by its owner.
    refusing_ = false;
    lua_gc(L_, LUA_GCCOLLECT, 0);
    exhausted_ = limits_.max_memory != 0 && used_ > limits_.max_memory / 4 * 3;
  }
}

CallFailure Vm::call(int nargs) {
  const int base = lua_gettop(L_) - nargs;  // the function's slot
  lua_rawgeti(L_, LUA_REGISTRYINDEX, handler_ref_);
  lua_insert(L_, base);
  ticks_ = 0;
  refusing_ = false;
  where_.clear();
  const int rc = lua_pcall(L_, nargs, 0, base);
  CallFailure f;
  if (rc != 0) f = failure(L_, rc);
  lua_pop(L_, 1);  // the handler
  recover(f);
  return f;
}

Vm::Resumed Vm::resume(lua_State* co, int nargs, uint64_t& ticks, CallFailure& f) {
  ticks_ = ticks;
  refusing_ = false;
  where_.clear();
  const int rc = lua_resume(co, nargs);
  ticks = ticks_;
  if (rc == LUA_YIELD) return Resumed::kYielded;
  if (rc == 0) {
    lua_settop(co, 0);
    return Resumed::kDone;
  }
  if (where_.empty()) where_ = scriptPosition(co, 0);
  f = failure(co, rc);
  // LuaJIT unwinds a failed coroutine's frames: the position is then the one the message
  // starts with ("file:line: ..."), which Lua adds to errors raised in the script's code.
  if (f.where.empty()) f.where = positionPrefix(f.message, chunk_name_);
  return Resumed::kFailed;
}

Status Vm::load(std::string_view source, std::string_view chunk_name) {
  chunk_name_.assign(chunk_name);
  const std::string name = "@" + chunk_name_;
  if (luaL_loadbufferx(L_, source.data(), source.size(), name.c_str(), "t") != 0) {
    std::string msg = lua_tostring(L_, -1) != nullptr ? lua_tostring(L_, -1) : "load failed";
    lua_pop(L_, 1);
    restoreFileName(msg, chunk_name_);
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
  }
  CallFailure f = call(0);
  if (f.kind == Failure::kNone) return {};
  std::string msg = f.message;
  if (!f.where.empty() && msg.rfind(f.where, 0) != 0) msg = f.where + ": " + msg;
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

}  // namespace gatehouse::lua

// The Lua bridge (lua/) and the `lua` policy: the sandbox, the instruction budget, the memory
// bound, the gh API against a RequestContext, the shared dictionary, and the policy's options
// and failure handling.
#include <gtest/gtest.h>
#include <lua.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http/filter.h"
#include "lua/api.h"
#include "lua/vm.h"
#include "policies/lua/global_redis.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

using lua::CallFailure;
using lua::Failure;
using lua::Invocation;
using lua::Phase;
using lua::Vm;

// A state with the API and `script` loaded.
struct Loaded {
  std::unique_ptr<Vm> vm;
  lua::SharedDict dict;
  lua::GlobalDict global;
  explicit Loaded(const std::string& script, lua::Limits limits = {},
                  uint32_t allow = lua::kAllowNone) {
    vm = Vm::create(limits, allow);
    EXPECT_TRUE(vm);
    EXPECT_TRUE(lua::installApi(*vm, &dict, &global));
    auto st = vm->load(script, "test.lua");
    EXPECT_TRUE(st.ok()) << st.error().message;
  }
  // Runs global `fn` as a hook against `ctx`.
  CallFailure run(const char* fn, http::RequestContext& ctx, Phase phase = Phase::kRequestHeaders,
                  std::string* body = nullptr, Invocation* out = nullptr) {
    const int ref = lua::functionRef(*vm, fn);
    EXPECT_NE(ref, LUA_NOREF) << fn;
    Invocation inv;
    inv.ctx = &ctx;
    inv.phase = phase;
    inv.body = body;
    inv.last = true;
    CallFailure f = lua::runHook(*vm, ref, inv);
    if (out != nullptr) *out = inv;
    return f;
  }
  // Evaluates `expr` in the state: its string value (or the error message).
  std::string eval(const std::string& expr) {
    lua_State* L = vm->state();
    const std::string chunk = "result = tostring(" + expr + ")";
    if (luaL_loadstring(L, chunk.c_str()) != 0) return lua_tostring(L, -1);
    CallFailure f = vm->call(0);
    if (f.kind != Failure::kNone) return "error: " + f.message;
    lua_getglobal(L, "result");
    std::string out = lua_tostring(L, -1);
    lua_pop(L, 1);
    return out;
  }
};

TEST(LuaSandbox, ForbiddenLibrariesAreAbsent) {
  Loaded l("");
  for (const char* name : {"io", "debug", "ffi", "package", "require", "dofile", "loadfile", "jit",
                           "os.execute", "os.getenv", "os.exit", "string.dump", "module"}) {
    EXPECT_EQ(l.eval(std::string(name) + " == nil"), "true") << name;
  }
  EXPECT_EQ(l.eval("type(os.time())"), "number");
  EXPECT_EQ(l.eval("type(os.clock())"), "number");
  EXPECT_EQ(l.eval("load('return 1 + 1')()"), "2");
  EXPECT_EQ(l.eval("select(2, load('\\27LJ\\2\\0'))"), "attempt to load chunk with wrong mode");
  EXPECT_NE(l.eval("collectgarbage('stop')").find("is not allowed"), std::string::npos);
  EXPECT_EQ(l.eval("collectgarbage('count') > 0"), "true");
}

TEST(LuaSandbox, AllowOpensLibraries) {
  Loaded l("", {},
           lua::kAllowIo | lua::kAllowOs | lua::kAllowDebug | lua::kAllowFfi | lua::kAllowPackage |
               lua::kAllowBytecode);
  for (const char* name :
       {"io", "debug", "ffi", "package", "require", "dofile", "os.getenv", "string.dump"}) {
    EXPECT_EQ(l.eval(std::string(name) + " ~= nil"), "true") << name;
  }
}

TEST(LuaSandbox, SyntaxErrorNamesFileAndLine) {
  auto vm = Vm::create({}, lua::kAllowNone);
  auto st = vm->load("local x = 1\nlocal = 2\n", "scripts/auth.lua");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message.rfind("scripts/auth.lua:2:", 0), 0u) << st.error().message;
  const std::string long_name =
      "/very/long/directory/name/that/lua/would/cut/in/its/messages/a.lua";
  st = vm->load("error('top')", long_name);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, long_name + ":1: top");
}

TEST(LuaBudget, InfiniteLoopsEndWithTheirPosition) {
  Loaded l(
      "function spin()\n  while true do end\nend\n"
      "function swallow()\n  while true do pcall(function() while true do end end) end\nend\n"
      "function co()\n  coroutine.wrap(function() while true do end end)()\nend\n"
      "function fine() local s = 0 for i = 1, 1000 do s = s + i end end\n",
      {.max_instructions = 100'000, .max_memory = 0});
  http::RequestContext ctx;
  for (const char* fn : {"spin", "swallow", "co"}) {
    CallFailure f = l.run(fn, ctx);
    EXPECT_EQ(f.kind, Failure::kBudget) << fn << ": " << f.message;
    EXPECT_NE(f.message.find("instruction budget exceeded"), std::string::npos);
    EXPECT_EQ(f.where.rfind("test.lua:", 0), 0u) << f.where;
    // The budget is per call: the next call runs normally.
    EXPECT_EQ(l.run("fine", ctx).kind, Failure::kNone);
  }
  EXPECT_EQ(l.run("spin", ctx).where, "test.lua:2");
}

TEST(LuaMemory, AllocationPastTheBoundFailsTheCall) {
  Loaded l(
      "hoard = {}\n"
      "function big() local t = {} for i = 1, 1e8 do t[i] = string.rep('x', 64) .. i end end\n"
      "function grow() for i = 1, 1e8 do hoard[#hoard + 1] = string.rep('y', 64) .. i end end\n"
      "function rep() return string.rep('z', 1e9) end\n"
      "function fine() return {1, 2, 3} end\n",
      {.max_instructions = 0, .max_memory = 1 << 20});
  http::RequestContext ctx;
  for (const char* fn : {"big", "rep"}) {
    CallFailure f = l.run(fn, ctx);
    EXPECT_EQ(f.kind, Failure::kMemory) << fn << ": " << f.message;
    EXPECT_LE(l.vm->memoryUsed(), 1u << 20);
    EXPECT_FALSE(l.vm->exhausted()) << fn;  // the garbage was collected
    EXPECT_EQ(l.run("fine", ctx).kind, Failure::kNone);
  }
  EXPECT_EQ(l.run("grow", ctx).kind, Failure::kMemory);
  EXPECT_TRUE(l.vm->exhausted());  // still full: the owner replaces the state
}

TEST(LuaApi, RequestHeadersPathQueryMethod) {
  Loaded l(R"(
function hook()
  gh.req.set_header("X-Out", gh.req.get_header("x-in") .. "!")
  gh.req.remove_header("x-drop")
  gh.req.set_path("/new" .. gh.req.get_path())
  gh.req.set_query("a=1")
  gh.req.set_method("PATCH")
  gh.vars.x = 1
end
function bad_path() gh.req.set_path("no-slash") end
function bad_value() gh.req.set_header("x", "a\r\nb: c") end
function body_outside() gh.req.get_body() end
function framing() gh.req.set_header("Content-Length", "1") end
function framing_removed() gh.req.remove_header("transfer-encoding") end
)");
  http::RequestContext ctx;
  ctx.request.method = "GET";
  ctx.request.path = "/p";
  ctx.request.headers.add("x-in", "v");
  ctx.request.headers.add("x-drop", "1");
  ASSERT_EQ(l.run("hook", ctx).kind, Failure::kNone);
  EXPECT_EQ(ctx.request.headers.get("x-out"), "v!");
  EXPECT_FALSE(ctx.request.headers.has("x-drop"));
  EXPECT_EQ(ctx.request.path, "/new/p");
  EXPECT_EQ(ctx.request.query, "a=1");
  EXPECT_EQ(ctx.request.method, "PATCH");
  for (const char* fn : {"bad_path", "bad_value", "body_outside", "framing", "framing_removed"}) {
    CallFailure f = l.run(fn, ctx);
    EXPECT_EQ(f.kind, Failure::kError) << fn;
    EXPECT_EQ(f.where.rfind("test.lua:", 0), 0u) << fn << ": " << f.where;
  }
  EXPECT_EQ(ctx.request.path, "/new/p");
}

TEST(LuaApi, RespondAndBodies) {
  Loaded l(R"(
function deny() gh.respond(429, "slow down", {["Retry-After"] = "3"}) end
function body() gh.req.set_body(gh.req.get_body():upper()) end
function late() gh.respond(200, "x") end
)");
  http::RequestContext ctx;
  Invocation inv;
  ASSERT_EQ(l.run("deny", ctx, Phase::kRequestHeaders, nullptr, &inv).kind, Failure::kNone);
  EXPECT_TRUE(inv.responded);
  EXPECT_TRUE(ctx.has_local_reply);
  EXPECT_EQ(ctx.local_reply.status, 429);
  EXPECT_EQ(ctx.local_reply.body, "slow down");
  ASSERT_EQ(ctx.local_reply.headers.fields().size(), 2u);              // and content-type
  EXPECT_EQ(ctx.local_reply.headers.fields()[0].name, "retry-after");  // HTTP/2: lower case
  EXPECT_EQ(ctx.local_reply.headers.get("retry-after"), "3");
  std::string chunk = "abc";
  ASSERT_EQ(l.run("body", ctx, Phase::kRequestBody, &chunk).kind, Failure::kNone);
  EXPECT_EQ(chunk, "ABC");
  EXPECT_EQ(l.run("late", ctx, Phase::kResponseBody, &chunk).kind, Failure::kError);
}

TEST(LuaApi, ConsumerClaimsAndContext) {
  Loaded l(R"(
function hook()
  gh.req.set_header("x-who", gh.consumer() .. "/" .. gh.claim("sub") .. "/" ..
                    tostring(gh.claim("none")) .. "/" .. gh.claims().tier .. "/" ..
                    gh.route() .. "/" .. gh.client_ip() .. "/" .. gh.request_id())
end
)");
  http::RequestContext ctx;
  ctx.consumer = "alice";
  auto claims = std::make_shared<http::TokenClaims>();
  claims->values = {{"sub", "u-1"}, {"tier", "gold"}};
  ctx.claims = claims;
  ctx.route_name = "api";
  ctx.client_ip = "10.0.0.1";
  ctx.request_id = "rid";
  ASSERT_EQ(l.run("hook", ctx).kind, Failure::kNone);
  EXPECT_EQ(ctx.request.headers.get("x-who"), "alice/u-1/nil/gold/api/10.0.0.1/rid");
}

TEST(LuaApi, VarsWriteThroughToTheRequest) {
  Loaded l(R"(
function fill()
  gh.req.set_header("x-seen", tostring(gh.vars.k1) .. "," .. tostring(gh.vars.from_before))
  gh.vars.k1 = 41
  gh.vars.flag = true
  gh.vars.text = "v"
  gh.vars.from_before = nil
  gh.req.set_header("x-sum", tostring(gh.vars.k1 + 1))
  gh.req.set_header("x-locked", tostring(pcall(setmetatable, gh.vars, {})))
end
function bad() gh.vars.t = {} end
)");
  for (int i = 0; i < 2; ++i) {
    http::RequestContext ctx;
    ctx.setVar("from_before", "earlier policy");
    ASSERT_EQ(l.run("fill", ctx).kind, Failure::kNone);
    EXPECT_EQ(ctx.request.headers.get("x-seen"), "nil,earlier policy");
    EXPECT_EQ(ctx.request.headers.get("x-sum"), "42");
    EXPECT_EQ(ctx.request.headers.get("x-locked"), "false");
    EXPECT_EQ(ctx.var("k1"), "41");
    EXPECT_EQ(ctx.var("flag"), "true");
    EXPECT_EQ(ctx.var("text"), "v");
    EXPECT_EQ(ctx.vars.size(), 3u);  // from_before removed
  }
  http::RequestContext ctx;
  const CallFailure f = l.run("bad", ctx);
  EXPECT_EQ(f.kind, Failure::kError);
  EXPECT_NE(f.message.find("strings, numbers or booleans"), std::string::npos) << f.message;
}

TEST(LuaApi, CallSuspendsTheHookUntilTheAnswer) {
  Loaded l(R"(
function hook()
  local status, headers, body = gh.call("auth", {method = "POST", path = "/check?x=1",
                                                 headers = {["X-Key"] = "k"}, body = "b",
                                                 timeout = 0.25})
  if not status then return gh.req.set_header("x-first", "error|" .. headers) end
  gh.req.set_header("x-first", tostring(status) .. "|" .. tostring(headers["x-a"]) .. "|" .. body)
  local none, err = gh.call("down")
  gh.req.set_header("x-second", tostring(none) .. "|" .. err)
  local ok, msg = pcall(gh.call, "x", {path = "no-slash"})
  gh.req.set_header("x-bad", tostring(ok))
end
function in_coroutine()
  local co = coroutine.create(function() return gh.call("auth") end)
  local ok, err = coroutine.resume(co)
  gh.req.set_header("x-co", tostring(ok) .. "|" .. tostring(err))
  coroutine.yield()
end
function spin_after_call()
  gh.call("auth")
  while true do end
end
)",
           lua::Limits{.max_instructions = 100'000});
  http::RequestContext ctx;
  Invocation inv;
  inv.ctx = &ctx;
  lua::HookCall call(*l.vm);
  ASSERT_EQ(call.start(lua::functionRef(*l.vm, "hook"), inv), lua::HookCall::Step::kWaiting);
  EXPECT_EQ(inv.sub_request.cluster, "auth");
  EXPECT_EQ(inv.sub_request.method, "POST");
  EXPECT_EQ(inv.sub_request.target, "/check?x=1");
  EXPECT_EQ(inv.sub_request.body, "b");
  EXPECT_EQ(inv.sub_request.timeout_ms, 250u);
  ASSERT_EQ(inv.sub_request.headers.size(), 1u);
  EXPECT_EQ(inv.sub_request.headers[0].first, "x-key");
  // Another hook runs on the same state while this one waits.
  http::RequestContext other;
  other.request.headers.add("x-n", "1");
  EXPECT_EQ(l.run("hook", other).kind, Failure::kNone);
  EXPECT_EQ(other.request.headers.get("x-first"), "error|sub-requests are not available here");

  lua::SubResponse answer;
  answer.status = 201;
  answer.headers = {{"x-a", "1"}, {"x-a", "2"}};
  answer.body = "payload";
  ASSERT_EQ(call.resume(inv, answer), lua::HookCall::Step::kWaiting);
  EXPECT_EQ(inv.sub_request.cluster, "down");
  lua::SubResponse failed;
  failed.error = "timeout";
  ASSERT_EQ(call.resume(inv, failed), lua::HookCall::Step::kDone);
  EXPECT_EQ(ctx.request.headers.get("x-first"), "201|1, 2|payload");
  EXPECT_EQ(ctx.request.headers.get("x-second"), "nil|timeout");
  EXPECT_EQ(ctx.request.headers.get("x-bad"), "false");

  // gh.call inside the script's own coroutine is refused; a bare yield fails the hook.
  http::RequestContext co_ctx;
  const CallFailure f = l.run("in_coroutine", co_ctx);
  EXPECT_EQ(co_ctx.request.headers.get("x-co").substr(0, 6), "false|");
  EXPECT_EQ(f.kind, Failure::kError);
  EXPECT_NE(f.message.find("coroutine.yield outside"), std::string::npos) << f.message;

  // The budget spans the resumes; a call dropped while waiting leaves the state usable.
  {
    lua::HookCall spin(*l.vm);
    Invocation si;
    si.ctx = &ctx;
    ASSERT_EQ(spin.start(lua::functionRef(*l.vm, "spin_after_call"), si),
              lua::HookCall::Step::kWaiting);
    EXPECT_EQ(spin.resume(si, answer), lua::HookCall::Step::kFailed);
    EXPECT_EQ(spin.failure().kind, Failure::kBudget);
    EXPECT_EQ(spin.failure().where, "test.lua:21");
    lua::HookCall dropped(*l.vm);
    Invocation di;
    di.ctx = &ctx;
    ASSERT_EQ(dropped.start(lua::functionRef(*l.vm, "spin_after_call"), di),
              lua::HookCall::Step::kWaiting);
  }
  lua_gc(l.vm->state(), LUA_GCCOLLECT, 0);
  http::RequestContext again;
  EXPECT_EQ(l.run("hook", again).kind, Failure::kNone);
}

TEST(LuaApi, Regexes) {
  Loaded l(R"(
function re()
  local m = gh.re.match("/users/42/orders/7", [[^/users/(?P<user>\d+)/orders/(\d+)(x)?$]])
  gh.req.set_header("x-match", m[0] .. "|" .. m[1] .. "|" .. m.user .. "|" .. m[2] .. "|" ..
                               tostring(m[3]))
  gh.req.set_header("x-nomatch", tostring(gh.re.match("abc", "^b")))
  local s, e = gh.re.find("hello world", "o w")
  gh.req.set_header("x-find", s .. "," .. e)
  local out, n = gh.re.gsub("a1b22c333", "[0-9]+", "<\\0>")
  gh.req.set_header("x-gsub", out .. "|" .. n)
  gh.req.set_header("x-bad", tostring(pcall(gh.re.match, "x", "(")))
  gh.req.set_header("x-catastrophic", tostring(gh.re.match(string.rep("a", 5000), "(a*)*b")))
end
)");
  http::RequestContext ctx;
  const CallFailure f = l.run("re", ctx);
  ASSERT_EQ(f.kind, Failure::kNone) << f.message;
  EXPECT_EQ(ctx.request.headers.get("x-match"), "/users/42/orders/7|42|42|7|false");
  EXPECT_EQ(ctx.request.headers.get("x-nomatch"), "nil");
  EXPECT_EQ(ctx.request.headers.get("x-find"), "5,7");
  EXPECT_EQ(ctx.request.headers.get("x-gsub"), "a<1>b<22>c<333>|3");
  EXPECT_EQ(ctx.request.headers.get("x-bad"), "false");
  EXPECT_EQ(ctx.request.headers.get("x-catastrophic"), "nil");  // RE2: linear, no backtracking
}

TEST(LuaApi, Helpers) {
  Loaded l("");
  EXPECT_EQ(l.eval("gh.base64_encode('hi?')"), "aGk/");
  EXPECT_EQ(l.eval("gh.base64_encode('hi?', true)"), "aGk_");
  EXPECT_EQ(l.eval("gh.base64_decode('aGk_')"), "hi?");
  EXPECT_EQ(l.eval("gh.base64_decode('a')"), "nil");
  EXPECT_EQ(l.eval("gh.hex_decode('zz')"), "nil");
  EXPECT_EQ(l.eval("gh.hex_encode(gh.sha256('abc'))"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(l.eval("gh.hex_encode(gh.hmac_sha256('key', 'The quick brown fox jumps over the "
                   "lazy dog'))"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8");
  EXPECT_EQ(l.eval("gh.json_encode({a = {1, 2.5, 'x'}})"), R"({"a":[1,2.5,"x"]})");
  EXPECT_EQ(l.eval("gh.json_encode({b = gh.null})"), R"({"b":null})");
  EXPECT_EQ(l.eval("gh.json_encode({})"), "{}");
  EXPECT_EQ(l.eval("gh.json_encode('\\255')"), R"("\\xff")");
  EXPECT_EQ(l.eval("select(2, gh.json_encode({f = print}))"),
            "only nil, gh.null, booleans, numbers, strings and tables can be encoded");
  EXPECT_EQ(l.eval("select(2, (function() local t = {} t.t = t return gh.json_encode(t) end)())"),
            "nested too deeply (or a cycle)");
  EXPECT_EQ(l.eval("gh.json_decode('[1, {\"k\": [true]}]')[2].k[1]"), "true");
  EXPECT_EQ(l.eval("gh.json_decode('null') == gh.null"), "true");
  EXPECT_EQ(l.eval("select(2, gh.json_decode(string.rep('[', 100000)))"), "JSON nested too deeply");
  EXPECT_EQ(l.eval("gh.time() > 1.7e9"), "true");
}

TEST(LuaSharedDict, GetSetIncr) {
  Loaded l("");
  EXPECT_EQ(l.eval("gh.shared.incr('n')"), "1");
  EXPECT_EQ(l.eval("gh.shared.incr('n', 5)"), "6");
  EXPECT_EQ(l.eval("gh.shared.incr('m', 1, 10)"), "11");
  EXPECT_EQ(l.eval("gh.shared.set('s', 'v')"), "true");
  EXPECT_EQ(l.eval("gh.shared.get('s')"), "v");
  EXPECT_EQ(l.eval("gh.shared.incr('s')"), "nil");
  EXPECT_EQ(l.eval("gh.shared.set('s', nil)"), "true");
  EXPECT_EQ(l.eval("gh.shared.get('s')"), "nil");
  EXPECT_EQ(l.eval("select(2, gh.shared.set('big', string.rep('x', 70000)))"), "value too large");
  EXPECT_EQ(l.dict.size(), 2u);
}

TEST(LuaSharedDict, TtlAddAndDelete) {
  Loaded l("");
  EXPECT_EQ(l.eval("gh.shared.set('t', 'v', 600)"), "true");
  EXPECT_EQ(l.eval("gh.shared.add('t', 'w')"), "false");
  EXPECT_EQ(l.eval("select(2, gh.shared.add('t', 'w'))"), "exists");
  EXPECT_EQ(l.eval("gh.shared.set('t', 'v', 0.001)"), "true");
  // A window counter: the ttl starts with the key; an incr keeps it.
  EXPECT_EQ(l.eval("gh.shared.incr('w', 1, 0, 600)"), "1");
  EXPECT_EQ(l.eval("gh.shared.incr('w', 1, 0, 0.001)"), "2");
  EXPECT_EQ(l.eval("gh.shared.incr('x', 1, 0, 0.001)"), "1");
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the 1 ms ttls
  EXPECT_EQ(l.eval("gh.shared.get('t')"), "nil");
  EXPECT_EQ(l.eval("gh.shared.get('w')"), "2");
  EXPECT_EQ(l.eval("gh.shared.incr('x')"), "1");
  EXPECT_EQ(l.eval("gh.shared.add('t', 'w')"), "true");
  EXPECT_EQ(l.eval("gh.shared.get('t')"), "w");
  EXPECT_EQ(l.eval("gh.shared.delete('t')"), "true");
  EXPECT_EQ(l.eval("gh.shared.get('t')"), "nil");
  EXPECT_EQ(l.eval("pcall(gh.shared.set, 'x', 1, -1)"), "false");
  EXPECT_EQ(l.eval("pcall(gh.shared.incr, 'x', 0/0)"), "false");
  EXPECT_EQ(l.eval("gh.global.add('g', true)"), "true");
  EXPECT_EQ(l.eval("gh.global.get('g')"), "true");
}

// gh.global with global_remote: a call in a hook suspends it with the DictOp, and the result it
// is resumed with is what the script gets.
TEST(LuaSharedDict, RemoteGlobalSuspendsTheHook) {
  std::unique_ptr<Vm> vm = Vm::create({}, lua::kAllowNone);
  lua::SharedDict local;
  lua::GlobalDict global;
  ASSERT_TRUE(vm && lua::installApi(*vm, &local, &global, true));
  ASSERT_TRUE(vm->load(R"(
gh.global.set("top", 1)  -- the top level runs on the process's dictionary
function hook()
  local n, err = gh.global.incr("hits", 2, 10, 60)
  gh.req.set_header("x-n", tostring(n) .. "|" .. tostring(err))
  local v, verr = gh.global.get("k")
  gh.req.set_header("x-v", tostring(v) .. "|" .. tostring(verr))
end
function on_log()
  local v, err = gh.global.get("k")
  gh.req.set_header("x-log", tostring(v) .. "|" .. err)
end
)",
                       "remote.lua")
                  .ok());
  EXPECT_EQ(std::get<double>(*global.dict.get("top")), 1);
  http::RequestContext ctx;
  Invocation inv;
  inv.ctx = &ctx;
  lua::HookCall call(*vm);
  ASSERT_EQ(call.start(lua::functionRef(*vm, "hook"), inv), lua::HookCall::Step::kWaiting);
  EXPECT_EQ(inv.waiting, lua::Wait::kGlobal);
  EXPECT_EQ(inv.global_op.kind, lua::DictOp::Kind::kIncr);
  EXPECT_EQ(inv.global_op.key, "hits");
  EXPECT_EQ(inv.global_op.by, 2);
  EXPECT_EQ(inv.global_op.init, 10);
  EXPECT_EQ(inv.global_op.ttl_ms, 60'000);
  lua::DictResult n;
  n.value = 12.0;
  ASSERT_EQ(call.resume(inv, n), lua::HookCall::Step::kWaiting);
  EXPECT_EQ(inv.global_op.kind, lua::DictOp::Kind::kGet);
  lua::DictResult down;
  down.error = "redis: timeout";
  ASSERT_EQ(call.resume(inv, down), lua::HookCall::Step::kDone);
  EXPECT_EQ(ctx.request.headers.get("x-n"), "12|nil");
  EXPECT_EQ(ctx.request.headers.get("x-v"), "nil|redis: timeout");
  // A sub-request's answer does not resume a hook waiting for gh.global.
  ASSERT_EQ(call.start(lua::functionRef(*vm, "hook"), inv), lua::HookCall::Step::kWaiting);
  EXPECT_EQ(call.resume(inv, lua::SubResponse{}), lua::HookCall::Step::kFailed);
  // Where the gateway cannot wait, the call says so.
  http::RequestContext log_ctx;
  Invocation li;
  li.ctx = &log_ctx;
  li.phase = Phase::kLog;
  EXPECT_EQ(lua::runHook(*vm, lua::functionRef(*vm, "on_log"), li).kind, Failure::kNone);
  EXPECT_NE(log_ctx.request.headers.get("x-log").find("nil|gh.global through redis is available"),
            std::string::npos);
  EXPECT_EQ(local.size(), 0u);
}

TEST(LuaGlobalRedis, ArgumentsAndReplies) {
  using policies::lua::globalArgs;
  using policies::lua::globalResultFromReply;
  lua::DictOp op;
  op.kind = lua::DictOp::Kind::kSet;
  op.key = "k";
  op.value = 0.1;
  op.ttl_ms = 1500;
  EXPECT_EQ(globalArgs("p{n}:", op),
            (std::vector<std::string>{"p{n}:k", "set", "n0.10000000000000001", "1500"}));
  op.kind = lua::DictOp::Kind::kAdd;
  op.value = std::string("a\0b", 3);
  op.ttl_ms = 0;
  EXPECT_EQ(globalArgs("p:", op),
            (std::vector<std::string>{"p:k", "add", std::string("sa\0b", 4), "0"}));
  op.kind = lua::DictOp::Kind::kIncr;
  op.by = -2;
  op.init = 5;
  op.ttl_ms = 60000;
  EXPECT_EQ(globalArgs("p:", op), (std::vector<std::string>{"p:k", "incr", "-2", "5", "60000"}));

  auto reply = [](std::vector<std::string> strings) {
    redis::CallResult r;
    r.ok = true;
    r.ints.assign(strings.size(), 0);
    r.strings = std::move(strings);
    return r;
  };
  lua::DictResult out;
  ASSERT_TRUE(globalResultFromReply(reply({"v", "n42.5"}), out));
  EXPECT_EQ(std::get<double>(*out.value), 42.5);
  ASSERT_TRUE(globalResultFromReply(reply({"v", "b0"}), out));
  EXPECT_EQ(std::get<bool>(*out.value), false);
  ASSERT_TRUE(globalResultFromReply(reply({"v", "shi"}), out));
  EXPECT_EQ(std::get<std::string>(*out.value), "hi");
  ASSERT_TRUE(globalResultFromReply(reply({"v", "41"}), out));  // untagged: a string
  EXPECT_EQ(std::get<std::string>(*out.value), "41");
  ASSERT_TRUE(globalResultFromReply(reply({"v", "nope"}), out));  // 'n' but not a number
  EXPECT_EQ(std::get<std::string>(*out.value), "nope");
  lua::DictResult exists;
  ASSERT_TRUE(globalResultFromReply(reply({"exists"}), exists));
  EXPECT_TRUE(exists.refused);
  EXPECT_EQ(exists.error, "exists");
  lua::DictResult bad;
  EXPECT_FALSE(globalResultFromReply(reply({"what"}), bad));
  redis::CallResult ints;
  ints.ok = true;
  ints.ints = {1, 2};
  EXPECT_FALSE(globalResultFromReply(ints, bad));
}

TEST(LuaSharedDict, GlobalIsSharedByStatesOnManyThreads) {
  lua::GlobalDict global;
  static constexpr int kThreads = 4, kIncrements = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&global] {
      lua::SharedDict local;
      auto vm = Vm::create({}, lua::kAllowNone);
      ASSERT_TRUE(vm && lua::installApi(*vm, &local, &global));
      ASSERT_TRUE(vm->load("for i = 1, " + std::to_string(kIncrements) +
                               " do gh.global.incr('n') gh.shared.incr('n') end",
                           "t.lua")
                      .ok());
      EXPECT_EQ(std::get<double>(*local.get("n")), kIncrements);
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(std::get<double>(*global.dict.get("n")), kThreads * kIncrements);
}

TEST(LuaPolicy, Options) {
  std::string error;
  EXPECT_FALSE(testutil::buildPolicy("lua", "{}", &error));
  EXPECT_NE(error.find("set file"), std::string::npos) << error;
  EXPECT_FALSE(testutil::buildPolicy("lua", "{source: 'x = 1'}", &error));
  EXPECT_NE(error.find("defines no hook"), std::string::npos) << error;
  EXPECT_FALSE(
      testutil::buildPolicy("lua", "{source: 'function on_log() end', allow: [net]}", &error));
  EXPECT_NE(error.find("unknown library 'net'"), std::string::npos) << error;
  EXPECT_FALSE(
      testutil::buildPolicy("lua", "{source: 'function on_log() end', max_memory: 1KiB}", &error));
  EXPECT_FALSE(testutil::buildPolicy("lua", "{file: /nonexistent.lua}", &error));
  EXPECT_NE(error.find("cannot read"), std::string::npos) << error;
  EXPECT_FALSE(testutil::buildPolicy("lua", "{source: 'while true do end'}", &error));
  EXPECT_NE(error.find("inline:1: instruction budget exceeded"), std::string::npos) << error;
}

TEST(LuaPolicy, FailedHookEndsTheRequestWithTheConfiguredStatus) {
  auto factory = testutil::buildPolicy("lua", R"(
error_status: 503
source: |
  function on_request_headers()
    if gh.req.get_path() == "/boom" then error("boom") end
    gh.req.set_header("x-ran", "1")
  end
)");
  ASSERT_TRUE(factory);
  EXPECT_FALSE(factory->wantsRequestBody());
  for (const char* path : {"/boom", "/fine", "/boom"}) {
    http::RequestContext ctx;
    ctx.request.path = path;
    auto f = factory->create();
    const http::Verdict v = f.filter->onRequestHeaders(ctx);
    if (std::string(path) == "/boom") {
      EXPECT_EQ(v, http::Verdict::kRespond);
      EXPECT_EQ(ctx.local_reply.status, 503);
    } else {
      EXPECT_EQ(v, http::Verdict::kContinue);
      EXPECT_EQ(ctx.request.headers.get("x-ran"), "1");
    }
    f.filter->onComplete(ctx);
  }
}

}  // namespace
}  // namespace gatehouse

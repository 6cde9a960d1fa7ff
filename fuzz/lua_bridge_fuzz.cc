// The Lua bridge (lua/): random header and body bytes go through a fixed script that reads,
// copies and rewrites them and round-trips them through every encoder. No input may make a
// hook fail (the script catches what it expects to be refused), break a round trip, or leave
// the request in a state that breaks the API's promises (no CR, LF or NUL set into a header
// value, a path that starts with '/' and holds no '?').
// Input: header name, NUL, header value, NUL, body.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "lua/api.h"
#include "lua/vm.h"

namespace {

namespace glua = gatehouse::lua;

constexpr std::string_view kScript = R"lua(
local function check(cond, what) if not cond then error("round trip failed: " .. what) end end
function on_request_headers()
  local name, value = gh.req.get_header("x-fuzz-name"), gh.req.get_header("x-fuzz-value")
  local ok = pcall(gh.req.set_header, name, value)
  gh.req.set_header("x-set-ok", tostring(ok))
  if ok then check(gh.req.get_header(name) == value, "set_header") end
  pcall(gh.req.set_path, value)
  pcall(gh.req.set_query, value)
  pcall(gh.req.set_method, name)
  check(gh.base64_decode(gh.base64_encode(value)) == value, "base64")
  check(gh.base64_decode(gh.base64_encode(value, true)) == value, "base64url")
  check(gh.hex_decode(gh.hex_encode(value)) == value, "hex")
  check(#gh.sha256(value) == 32 and #gh.hmac_sha256(name, value) == 32, "digests")
  gh.base64_decode(value)
  gh.hex_decode(value)
  if #value <= 65536 then gh.vars.seen = value end
  gh.shared.set(name, value)
  gh.shared.incr("n")
  gh.global.set(value, name)
  gh.global.get(name)
end
function on_request_body(last)
  local body = gh.req.get_body()
  local decoded = gh.json_decode(body)
  if decoded ~= nil then
    local again = gh.json_encode(decoded)
    if again then check(gh.json_decode(again) ~= nil, "json") end
  end
  gh.json_encode({body, gh.vars.seen, n = #body})
  gh.req.set_body(body:reverse())
  if #body > 0 and body:byte(1) == 33 then gh.respond(400, body, {["x-fuzz"] = "1"}) end
end
)lua";

struct Bridge {
  std::unique_ptr<glua::Vm> vm;
  glua::SharedDict dict;
  glua::GlobalDict global;
  int on_headers = -1;
  int on_body = -1;
  Bridge() {
    vm = glua::Vm::create({.max_instructions = 10'000'000, .max_memory = 64ull << 20},
                          glua::kAllowNone);
    FUZZ_CHECK(vm && glua::installApi(*vm, &dict, &global));
    FUZZ_CHECK(vm->load(kScript, "bridge.lua").ok());
    on_headers = glua::functionRef(*vm, "on_request_headers");
    on_body = glua::functionRef(*vm, "on_request_body");
  }
};

bool cleanValue(std::string_view v) {
  return v.find_first_of(std::string_view("\r\n\0", 3)) == v.npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Bridge bridge;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t a = in.find('\0');
  const size_t b = a == in.npos ? in.npos : in.find('\0', a + 1);
  if (b == in.npos) return 0;
  gatehouse::http::RequestContext ctx;
  ctx.request.method = "POST";
  ctx.request.path = "/";
  ctx.request.headers.add("x-fuzz-name", in.substr(0, a));
  ctx.request.headers.add("x-fuzz-value", in.substr(a + 1, b - a - 1));
  std::string body(in.substr(b + 1));

  glua::Vm& vm = *bridge.vm;
  glua::Invocation head;
  head.ctx = &ctx;
  const glua::CallFailure f1 = glua::runHook(vm, bridge.on_headers, head);
  if (f1.kind != glua::Failure::kNone) std::fprintf(stderr, "%s\n", f1.message.c_str());
  FUZZ_CHECK(f1.kind == glua::Failure::kNone);
  glua::Invocation whole;
  whole.ctx = &ctx;
  whole.phase = glua::Phase::kRequestBody;
  whole.body = &body;
  whole.last = true;
  const glua::CallFailure f2 = glua::runHook(vm, bridge.on_body, whole);
  if (f2.kind != glua::Failure::kNone) std::fprintf(stderr, "%s\n", f2.message.c_str());
  FUZZ_CHECK(f2.kind == glua::Failure::kNone);

  FUZZ_CHECK(body.size() == size - b - 1);
  FUZZ_CHECK(whole.responded == (!body.empty() && body.back() == '!'));
  // set_header took the pair only when the value is one a header may carry.
  const std::string_view value = in.substr(a + 1, b - a - 1);
  FUZZ_CHECK(ctx.request.headers.get("x-set-ok") == "false" || (cleanValue(value) && a > 0));
  FUZZ_CHECK(!ctx.request.path.empty() && ctx.request.path[0] == '/');
  FUZZ_CHECK(ctx.request.path.find('?') == std::string::npos);
  if (bridge.dict.size() > 1000) bridge.dict = glua::SharedDict();
  if (bridge.global.dict.size() > 1000) bridge.global.dict = glua::SharedDict();
  return 0;
}

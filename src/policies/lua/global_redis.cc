// gh.global through Redis: the script, its arguments and its replies.
#include "policies/lua/global_redis.h"

#include <charconv>
#include <cstdio>
#include <mutex>

namespace gatehouse::policies::lua {
namespace {

namespace glua = gatehouse::lua;

// ARGV[1] is the call; set/add: ARGV[2] the tagged value, ARGV[3] the ttl in ms ("0": none);
// incr: ARGV[2] by, ARGV[3] init, ARGV[4] the ttl of a key it creates. Replies are strings:
// {"v", value}, {"nil"}, {"ok"}, {"exists"} or {"nan"}. An incr keeps the key's expiry.
constexpr std::string_view kScript = R"lua(
local k, op = KEYS[1], ARGV[1]
if op == 'get' then
  local v = redis.call('GET', k)
  if v then return {'v', v} end
  return {'nil'}
elseif op == 'del' then
  redis.call('DEL', k)
  return {'ok'}
elseif op == 'set' or op == 'add' then
  local args = {'SET', k, ARGV[2]}
  if ARGV[3] ~= '0' then
    args[#args + 1] = 'PX'
    args[#args + 1] = ARGV[3]
  end
  if op == 'add' then args[#args + 1] = 'NX' end
  if redis.call(unpack(args)) then return {'ok'} end
  return {'exists'}
elseif op == 'incr' then
  local v = redis.call('GET', k)
  local n
  if v then
    if string.sub(v, 1, 1) == 'n' then n = tonumber(string.sub(v, 2)) else n = tonumber(v) end
    if not n then return {'nan'} end
  else
    n = tonumber(ARGV[3])
  end
  n = n + tonumber(ARGV[2])
  if n ~= n or n == math.huge or n == -math.huge then return {'nan'} end
  local text = 'n' .. string.format('%.17g', n)
  local ttl = ARGV[4]
  if v then
    ttl = redis.call('PTTL', k)
    if ttl > 0 then ttl = tostring(ttl) else ttl = '0' end
  end
  if ttl ~= '0' then redis.call('SET', k, text, 'PX', ttl) else redis.call('SET', k, text) end
  return {'v', text}
end
return redis.error_reply('gatehouse lua global: unknown call')
)lua";

std::string numberText(double d) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%.17g", d);
  return std::string(buf, static_cast<size_t>(n));
}

std::string tagged(const glua::SharedDict::Value& v) {
  if (const auto* d = std::get_if<double>(&v)) return "n" + numberText(*d);
  if (const auto* s = std::get_if<std::string>(&v)) return "s" + *s;
  return std::get<bool>(v) ? "b1" : "b0";
}

// The value of a stored text: tagged, or (untagged) the text as a string.
glua::SharedDict::Value untagged(const std::string& text) {
  if (!text.empty()) {
    const char* begin = text.data() + 1;
    const char* end = text.data() + text.size();
    switch (text[0]) {
      case 'n': {
        double d = 0;
        auto [ptr, ec] = std::from_chars(begin, end, d);
        if (ec == std::errc() && ptr == end) return d;
        break;
      }
      case 's':
        return text.substr(1);
      case 'b':
        if (text == "b1") return true;
        if (text == "b0") return false;
        break;
      default:
        break;
    }
  }
  return text;
}

}  // namespace

std::string_view globalScript() {
  return kScript;
}

std::vector<std::string> globalArgs(const std::string& key_prefix, const glua::DictOp& op) {
  std::vector<std::string> args;
  args.reserve(5);
  args.push_back(key_prefix + op.key);
  switch (op.kind) {
    case glua::DictOp::Kind::kGet:
      args.emplace_back("get");
      break;
    case glua::DictOp::Kind::kDelete:
      args.emplace_back("del");
      break;
    case glua::DictOp::Kind::kSet:
    case glua::DictOp::Kind::kAdd:
      args.emplace_back(op.kind == glua::DictOp::Kind::kSet ? "set" : "add");
      args.push_back(tagged(op.value));
      args.push_back(std::to_string(op.ttl_ms));
      break;
    case glua::DictOp::Kind::kIncr:
      args.emplace_back("incr");
      args.push_back(numberText(op.by));
      args.push_back(numberText(op.init));
      args.push_back(std::to_string(op.ttl_ms));
      break;
  }
  return args;
}

bool globalResultFromReply(const redis::CallResult& r, glua::DictResult& out) {
  if (!r.ok || r.strings.empty() || r.strings.size() != r.ints.size()) return false;
  const std::string& what = r.strings[0];
  if (what == "v" && r.strings.size() == 2) {
    out.value = untagged(r.strings[1]);
  } else if (what == "nil") {
    out.value.reset();
  } else if (what == "ok") {
    out.value = true;
  } else if (what == "exists") {
    out.error = "exists";
    out.refused = true;
  } else if (what == "nan") {
    out.error = "not a number";
  } else {
    return false;
  }
  return true;
}

runtime::Task<glua::DictResult> performGlobal(const GlobalRedis& g, glua::GlobalDict& fallback,
                                              glua::DictOp op) {
  redis::Connection& conn =
      redis::Connection::forThisThread(g.endpoint_id, g.endpoint, globalScript());
  std::string why = "not connected";
  if (conn.usable()) {
    redis::CallResult r = co_await conn.eval(globalArgs(g.key_prefix, op), 1);
    glua::DictResult out;
    if (globalResultFromReply(r, out)) co_return out;
    why = r.ok ? "unexpected reply" : r.error;
  }
  if (g.on_error == OnRedisError::kFallback) {
    std::lock_guard<std::mutex> lock(fallback.mu);
    co_return glua::applyDictOp(fallback.dict, op);
  }
  glua::DictResult failed;
  failed.error = "redis: " + why;
  co_return failed;
}

}  // namespace gatehouse::policies::lua

// `gatehouse lua-test`: the described request, the hooks run in the gateway's order, and the
// report (text or JSON).
#include "policies/lua/test_command.h"

#include <yaml-cpp/yaml.h>
#include <lua.hpp>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "lua/api.h"
#include "policies/lua/lua.h"

namespace gatehouse::policies::lua {
namespace {

namespace glua = gatehouse::lua;
using nlohmann::json;

constexpr const char* kUsage =
    "usage: gatehouse lua-test SCRIPT --request FILE|JSON [--policy FILE|YAML] [--json]\n";

// A file's text, or `arg` itself when it is inline (starts with '{').
bool readDocument(const std::string& arg, YAML::Node& out, std::string& error) {
  std::string text = arg;
  if (arg.empty() || arg[0] != '{') {
    std::ifstream in(arg, std::ios::binary);
    if (!in) {
      error = "cannot read '" + arg + "'";
      return false;
    }
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
  }
  try {  // yaml-cpp reports errors by exception; this runs once, on the command line
    out = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    error = arg + ": " + e.what();
    return false;
  }
  return true;
}

std::string text(const YAML::Node& n, const char* key, const std::string& fallback) {
  return n[key] && n[key].IsScalar() ? n[key].as<std::string>() : fallback;
}

void readFields(const YAML::Node& map, http::HeaderMap& out) {
  if (!map || !map.IsMap()) return;
  for (const auto& kv : map) {
    if (kv.second.IsSequence()) {
      for (const auto& v : kv.second)
        out.add(kv.first.as<std::string>(), v.as<std::string>());
    } else {
      out.add(kv.first.as<std::string>(), kv.second.as<std::string>());
    }
  }
}

json fieldsJson(const http::HeaderMap& h) {
  json out = json::array();
  for (const auto& f : h.fields())
    out.push_back({std::string(f.name), std::string(f.value)});
  return out;
}

std::string lowerCase(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A copy of a header list (a HeaderMap holds views and cannot be copied).
using Fields = std::vector<std::pair<std::string, std::string>>;
Fields copyFields(const http::HeaderMap& h) {
  Fields out;
  for (const auto& f : h.fields())
    out.emplace_back(lowerCase(f.name), std::string(f.value));
  return out;
}

// What changed between two header lists: fields set (new or other values) and removed.
json headerChanges(const Fields& before_fields, const http::HeaderMap& after) {
  http::HeaderMap before;
  for (const auto& [k, v] : before_fields)
    before.add(k, v);
  json set = json::object(), removed = json::array();
  for (const auto& f : after.fields()) {
    if (!before.has(f.name) || before.get(f.name) != after.get(f.name)) {
      set[lowerCase(f.name)] = std::string(after.get(f.name));
    }
  }
  for (const auto& f : before.fields()) {
    if (!after.has(f.name) && !removed.contains(std::string(f.name))) {
      removed.push_back(std::string(f.name));
    }
  }
  return {{"set", set}, {"removed", removed}};
}

struct Run {
  const Options& options;
  glua::Vm& vm;
  const YAML::Node calls;
  http::RequestContext ctx;
  std::vector<std::string> logs;
  json hooks = json::array();
  json sub_requests = json::array();
  bool failed = false;

  // The fixture for a sub-request: calls["CLUSTER PATH"], else calls["CLUSTER"].
  glua::SubResponse answer(const glua::SubRequest& req) const {
    glua::SubResponse a;
    const bool any = calls && calls.IsMap();
    const YAML::Node exact = any ? calls[req.cluster + " " + req.target] : YAML::Node();
    const YAML::Node f = !any ? YAML::Node() : exact.IsDefined() ? exact : calls[req.cluster];
    if (!f.IsDefined() || !f.IsMap()) {
      a.error = "no fixture for " + req.cluster + " " + req.target + " (lua-test sends nothing)";
      return a;
    }
    if (f["error"]) {
      a.error = f["error"].as<std::string>();
      return a;
    }
    a.status = f["status"] ? f["status"].as<int>() : 200;
    http::HeaderMap h;
    readFields(f["headers"], h);
    for (const auto& field : h.fields())
      a.headers.emplace_back(std::string(field.name), std::string(field.value));
    a.body = text(f, "body", "");
    return a;
  }

  // Runs one hook, if the script has it; false when it failed.
  bool hook(const char* name, glua::Phase phase, std::string* body) {
    const int ref = glua::functionRef(vm, name);
    if (ref == LUA_NOREF) return true;
    glua::Invocation inv;
    inv.ctx = &ctx;
    inv.phase = phase;
    inv.body = body;
    inv.last = true;
    inv.logs = &logs;
    inv.max_sub_requests = options.max_sub_requests;
    glua::HookCall call(vm);
    glua::HookCall::Step step = call.start(ref, inv);
    while (step == glua::HookCall::Step::kWaiting) {
      const glua::SubResponse a = answer(inv.sub_request);
      json entry = {{"hook", name},
                    {"cluster", inv.sub_request.cluster},
                    {"method", inv.sub_request.method},
                    {"path", inv.sub_request.target},
                    {"body", inv.sub_request.body}};
      if (a.error.empty()) {
        entry["answer_status"] = a.status;
      } else {
        entry["answer_error"] = a.error;
      }
      sub_requests.push_back(entry);
      step = call.resume(inv, a);
    }
    json h = {{"hook", name}, {"result", "ok"}};
    if (step == glua::HookCall::Step::kFailed) {
      const glua::CallFailure& f = call.failure();
      h["result"] = f.kind == glua::Failure::kBudget   ? "instruction budget exceeded"
                    : f.kind == glua::Failure::kMemory ? "memory bound exceeded"
                                                       : "error";
      h["where"] = f.where;
      h["message"] = f.message;
      failed = true;
    }
    if (inv.responded) h["responded"] = true;
    hooks.push_back(h);
    return !failed;
  }
};

void describedRequest(const YAML::Node& d, http::RequestContext& ctx, std::string& body) {
  ctx.request.method = text(d, "method", "GET");
  std::string target = text(d, "path", "/");
  if (const size_t q = target.find('?'); q != std::string::npos) {
    ctx.request.query = target.substr(q + 1);
    target.resize(q);
  }
  ctx.request.path = target;
  if (d["query"]) ctx.request.query = text(d, "query", "");
  readFields(d["headers"], ctx.request.headers);
  ctx.request.authority = std::string(ctx.request.headers.get("host"));
  body = text(d, "body", "");
  ctx.request.has_body = !body.empty();
  ctx.consumer = text(d, "consumer", "");
  ctx.client_ip = text(d, "client_ip", "127.0.0.1");
  ctx.route_name = text(d, "route", "lua-test");
  ctx.request_id = text(d, "request_id", "lua-test");
  if (d["claims"] && d["claims"].IsMap()) {
    auto claims = std::make_shared<http::TokenClaims>();
    for (const auto& kv : d["claims"])
      claims->values.emplace_back(kv.first.as<std::string>(), kv.second.as<std::string>());
    ctx.claims = std::move(claims);
  }
}

// Runs the hooks in the gateway's order and returns the report.
json runHooks(Run& run, const YAML::Node& d, std::string& body) {
  http::RequestContext& ctx = run.ctx;
  const Fields original = copyFields(ctx.request.headers);
  json report;
  bool ok = run.hook("on_request_headers", glua::Phase::kRequestHeaders, nullptr);
  if (ok && !ctx.has_local_reply)
    ok = run.hook("on_request_body", glua::Phase::kRequestBody, &body);
  const bool answered_early = ctx.has_local_reply;
  report["request"] = {{"method", ctx.request.method},
                       {"path", ctx.request.path},
                       {"query", ctx.request.query},
                       {"headers", headerChanges(original, ctx.request.headers)},
                       {"body_changed", body != text(d, "body", "")}};
  if (ok && !answered_early) {
    const YAML::Node r = d["response"] ? d["response"] : YAML::Node(YAML::NodeType::Map);
    ctx.response.status = r["status"] ? r["status"].as<int>() : 200;
    readFields(r["headers"], ctx.response.headers);
    ctx.response_started = true;
    const Fields upstream_headers = copyFields(ctx.response.headers);
    std::string resp_body = text(r, "body", "");
    ok = run.hook("on_response_headers", glua::Phase::kResponseHeaders, nullptr);
    if (ok && !ctx.has_local_reply) {
      ok = run.hook("on_response_body", glua::Phase::kResponseBody, &resp_body);
    }
    if (!ctx.has_local_reply) {
      report["response"] = {{"status", ctx.response.status},
                            {"headers", headerChanges(upstream_headers, ctx.response.headers)},
                            {"body", resp_body}};
    }
  }
  if (ctx.has_local_reply) {
    report["reply"] = {{"status", ctx.local_reply.status},
                       {"headers", fieldsJson(ctx.local_reply.headers)},
                       {"body", ctx.local_reply.body}};
  }
  ctx.final_status = !ok                   ? run.options.error_status
                     : ctx.has_local_reply ? ctx.local_reply.status
                                           : ctx.response.status;
  if (ok) run.hook("on_log", glua::Phase::kLog, nullptr);
  report["status"] = ctx.final_status;
  return report;
}

json metricsJson(const Options& o, const glua::ScriptMetrics& metrics) {
  json out = json::array();
  for (const auto& spec : o.metrics) {
    metrics.find(spec.name)->forEach([&](const std::string& key, double v) {
      json labels = json::object();
      size_t at = 0;
      for (const auto& label : spec.labels) {
        const size_t end = key.find('\0', at);
        labels[label] = key.substr(at, end == std::string::npos ? std::string::npos : end - at);
        at = end == std::string::npos ? key.size() : end + 1;
      }
      out.push_back({{"name", spec.name}, {"labels", labels}, {"value", v}});
    });
  }
  return out;
}

void printText(const json& r) {
  for (const auto& h : r["hooks"]) {
    std::printf("hook %s: %s", h["hook"].get<std::string>().c_str(),
                h["result"].get<std::string>().c_str());
    if (h.contains("where")) {
      std::printf(" at %s: %s", h["where"].get<std::string>().c_str(),
                  h["message"].get<std::string>().c_str());
    }
    std::printf("%s\n", h.contains("responded") ? " (responded)" : "");
  }
  const json& req = r["request"];
  std::printf("request: %s %s%s%s\n", req["method"].get<std::string>().c_str(),
              req["path"].get<std::string>().c_str(),
              req["query"].get<std::string>().empty() ? "" : "?",
              req["query"].get<std::string>().c_str());
  for (const auto& [k, v] : req["headers"]["set"].items())
    std::printf("  set header %s: %s\n", k.c_str(), v.get<std::string>().c_str());
  for (const auto& k : req["headers"]["removed"])
    std::printf("  removed header %s\n", k.get<std::string>().c_str());
  if (req["body_changed"].get<bool>()) std::printf("  body changed\n");
  for (const auto& c : r["sub_requests"]) {
    std::printf("sub-request %s %s %s -> %s\n", c["cluster"].get<std::string>().c_str(),
                c["method"].get<std::string>().c_str(), c["path"].get<std::string>().c_str(),
                c.contains("answer_error") ? c["answer_error"].get<std::string>().c_str()
                                           : std::to_string(c["answer_status"].get<int>()).c_str());
  }
  if (r.contains("reply")) {
    std::printf("reply (short-circuit): %d\n", r["reply"]["status"].get<int>());
    for (const auto& f : r["reply"]["headers"])
      std::printf("  %s: %s\n", f[0].get<std::string>().c_str(), f[1].get<std::string>().c_str());
    std::printf("  body: %s\n", r["reply"]["body"].get<std::string>().c_str());
  }
  if (r.contains("response")) {
    std::printf("response: %d\n", r["response"]["status"].get<int>());
    for (const auto& [k, v] : r["response"]["headers"]["set"].items())
      std::printf("  set header %s: %s\n", k.c_str(), v.get<std::string>().c_str());
    for (const auto& k : r["response"]["headers"]["removed"])
      std::printf("  removed header %s\n", k.get<std::string>().c_str());
  }
  std::printf("status: %d\n", r["status"].get<int>());
  for (const auto& [k, v] : r["vars"].items())
    std::printf("var %s = %s\n", k.c_str(), v.get<std::string>().c_str());
  for (const auto& line : r["logs"])
    std::printf("log %s\n", line.get<std::string>().c_str());
  for (const auto& m : r["metrics"])
    std::printf("metric %s %s = %g\n", m["name"].get<std::string>().c_str(),
                m["labels"].dump().c_str(), m["value"].get<double>());
}

struct Arguments {
  std::string script, request, policy;
  bool as_json = false;
};

bool parseArguments(const std::vector<std::string>& args, Arguments& a) {
  for (size_t i = 0; i < args.size(); ++i) {
    const bool has_value = i + 1 < args.size();
    if (args[i] == "--request" && has_value) {
      a.request = args[++i];
    } else if (args[i] == "--policy" && has_value) {
      a.policy = args[++i];
    } else if (args[i] == "--json") {
      a.as_json = true;
    } else if (a.script.empty() && args[i].rfind("-", 0) != 0) {
      a.script = args[i];
    } else {
      return false;
    }
  }
  return !a.script.empty() && !a.request.empty();
}

}  // namespace

int runLuaTest(const std::vector<std::string>& args) {
  Arguments a;
  if (!parseArguments(args, a)) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  YAML::Node description, policy(YAML::NodeType::Map);
  std::string error;
  if (!readDocument(a.request, description, error) ||
      (!a.policy.empty() && !readDocument(a.policy, policy, error))) {
    std::fprintf(stderr, "lua-test: %s\n", error.c_str());
    return 2;
  }
  policy["file"] = a.script;
  auto o = parseOptions(policy);
  if (!o.ok()) {
    std::fprintf(stderr, "lua-test: %s\n", o.error().message.c_str());
    return 2;
  }
  glua::SharedDict dict;
  glua::GlobalDict global;
  const auto metrics = glua::ScriptMetrics::make(o->metrics);
  auto vm = glua::Vm::create(o->limits, o->allow);
  if (!vm || !glua::installApi(*vm, &dict, &global) || !glua::installMetrics(*vm, metrics.get())) {
    std::fprintf(stderr, "lua-test: the Lua state does not fit in max_memory\n");
    return 1;
  }
  if (auto st = vm->load(o->source, o->chunk_name); !st.ok()) {
    std::fprintf(stderr, "lua-test: %s\n", st.error().message.c_str());
    return 1;
  }
  std::string body;
  Run run{*o, *vm, description["calls"], {}, {}, {}, {}, false};
  json report;
  try {  // a description with a field of the wrong type (yaml-cpp throws); command line only
    describedRequest(description, run.ctx, body);
    report = runHooks(run, description, body);
  } catch (const YAML::Exception& e) {
    std::fprintf(stderr, "lua-test: the request description: %s\n", e.what());
    return 2;
  }
  report["hooks"] = run.hooks;
  report["sub_requests"] = run.sub_requests;
  report["vars"] = json::object();
  for (const auto& [k, v] : run.ctx.vars)
    report["vars"][k] = v;
  report["logs"] = run.logs;
  report["metrics"] = metricsJson(*o, *metrics);
  if (a.as_json) {
    std::printf("%s\n", report.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    printText(report);
  }
  return run.failed ? 1 : 0;
}

}  // namespace gatehouse::policies::lua

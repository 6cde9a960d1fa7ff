// The `lua` policy: per-worker states, the per-request filter that runs the hooks, and how a
// failed hook ends a request.
#include "policies/lua/lua.h"

#include <lua.hpp>

#include <array>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "core/log.h"
#include "lua/api.h"
#include "policies/policy_yaml.h"
#include "proxy/cluster_client.h"

namespace gatehouse::policies::lua {
namespace {

namespace glua = gatehouse::lua;

enum Hook { kOnRequestHeaders, kOnRequestBody, kOnResponseHeaders, kOnResponseBody, kOnLog };
constexpr const char* kHookNames[] = {"on_request_headers", "on_request_body",
                                      "on_response_headers", "on_response_body", "on_log"};
constexpr size_t kHookCount = std::size(kHookNames);

// One worker's state for one policy instance.
struct WorkerScript {
  std::unique_ptr<glua::Vm> vm;
  std::array<int, kHookCount> hooks{};
  std::shared_ptr<glua::SharedDict> dict;
  std::shared_ptr<glua::GlobalDict> global;
  std::shared_ptr<const glua::ScriptMetrics> metrics;  // gh.metric's (the Vm points at them)
};

// A fresh state with the API and the script loaded, or why not.
Result<std::unique_ptr<WorkerScript>> loadScript(
    const Options& o, std::shared_ptr<glua::SharedDict> dict,
    std::shared_ptr<glua::GlobalDict> global, std::shared_ptr<const glua::ScriptMetrics> metrics) {
  auto ws = std::make_unique<WorkerScript>();
  ws->metrics = std::move(metrics);
  ws->dict = std::move(dict);
  ws->global = std::move(global);
  ws->vm = glua::Vm::create(o.limits, o.allow);
  if (!ws->vm ||
      !glua::installApi(*ws->vm, ws->dict.get(), ws->global.get(), o.global_redis.has_value()) ||
      !glua::installMetrics(*ws->vm, ws->metrics.get())) {
    return configError("the Lua state does not fit in max_memory");
  }
  if (auto st = ws->vm->load(o.source, o.chunk_name); !st.ok()) return st.error();
  for (size_t h = 0; h < kHookCount; ++h)
    ws->hooks[h] = glua::functionRef(*ws->vm, kHookNames[h]);
  return ws;
}

// This worker's dictionary for a script name: kept for the worker's life, so that a reloaded
// script with the same name finds its state.
std::shared_ptr<glua::SharedDict> workerDict(const std::string& name) {
  thread_local std::unordered_map<std::string, std::shared_ptr<glua::SharedDict>> dicts;
  auto& d = dicts[name];
  if (!d) d = std::make_shared<glua::SharedDict>();
  return d;
}

// The process's dictionary for a script name (gh.global), kept for the process's life.
std::shared_ptr<glua::GlobalDict> globalDict(const std::string& name) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<glua::GlobalDict>> dicts;
  std::lock_guard<std::mutex> lock(mu);
  auto& d = dicts[name];
  if (!d) d = std::make_shared<glua::GlobalDict>();
  return d;
}

class LuaFactory;

// This worker's states, by policy instance. An entry whose factory is gone (an old snapshot)
// is dropped when the worker next makes a state.
struct WorkerEntry {
  const LuaFactory* factory;
  std::weak_ptr<const void> alive;
  std::shared_ptr<WorkerScript> script;
};
thread_local std::vector<WorkerEntry> t_scripts;

class LuaFactory final : public http::FilterFactory {
 public:
  LuaFactory(Options o, std::array<bool, kHookCount> has)
      : o_(std::move(o)),
        has_(has),
        metrics_(glua::ScriptMetrics::make(o_.metrics)),
        alive_(std::make_shared<char>()) {}
  http::FilterRef create() const override;
  bool wantsRequestBody() const override { return has_[kOnRequestBody]; }
  bool wantsResponseBody() const override { return has_[kOnResponseBody]; }
  const Options& options() const { return o_; }

  // This worker's state, made on first use; null (and logged) when it cannot be made.
  std::shared_ptr<WorkerScript> workerScript() const {
    for (auto& e : t_scripts) {
      if (e.factory == this && !e.alive.expired()) return e.script;
    }
    std::erase_if(t_scripts, [](const WorkerEntry& e) { return e.alive.expired(); });
    auto ws = loadScript(o_, workerDict(o_.name), globalDict(o_.name), metrics_);
    if (!ws.ok()) {
      log::error("lua ", o_.chunk_name, ": ", ws.error().message);
      return nullptr;
    }
    std::shared_ptr<WorkerScript> script = std::move(*ws);
    t_scripts.push_back({this, alive_, script});
    return script;
  }
  // Drops this worker's state (out of memory): the next request makes a fresh one.
  void dropWorkerScript(const WorkerScript* ws) const {
    std::erase_if(t_scripts, [ws](const WorkerEntry& e) { return e.script.get() == ws; });
  }

 private:
  const Options o_;
  const std::array<bool, kHookCount> has_;
  const std::shared_ptr<const glua::ScriptMetrics> metrics_;
  const std::shared_ptr<const void> alive_;  // its weak copies tell workers this is gone
};

const char* failureName(glua::Failure kind) {
  switch (kind) {
    case glua::Failure::kBudget:
      return "instruction budget exceeded";
    case glua::Failure::kMemory:
      return "memory bound exceeded";
    default:
      return "error";
  }
}

// What a sub-request failed with, as the script reads it.
std::string subRequestError(const proxy::AttemptError& e) {
  if (e.code == proxy::AttemptError::Code::kRequestTimeout) return "timeout";
  return std::string(proxy::errorReply(e).message);
}

// Performs a script's gh.call through the cluster client (the request's worker, its snapshot).
runtime::Task<glua::SubResponse> performSubRequest(glua::SubRequest req, size_t max_bytes) {
  glua::SubResponse out;
  proxy::WorkerContext* worker = proxy::currentWorker();
  if (worker == nullptr) {  // only a unit test without a worker gets here
    out.error = "sub-requests need a worker";
    co_return out;
  }
  proxy::ClusterRequest call;
  call.method = std::move(req.method);
  call.target = std::move(req.target);
  call.headers = std::move(req.headers);
  call.body = std::move(req.body);
  call.timeout = std::chrono::milliseconds(req.timeout_ms);
  call.max_response_bytes = max_bytes;
  proxy::ClusterResult r =
      co_await proxy::callCluster(*worker, std::move(req.cluster), std::move(call));
  if (!r.ok()) {
    out.error = subRequestError(r.error);
    co_return out;
  }
  out.status = r.response.status;
  out.headers = std::move(r.response.headers);
  out.body = std::move(r.response.body);
  co_return out;
}

class LuaFilter final : public http::Filter {
 public:
  explicit LuaFilter(const LuaFactory& f) : f_(f) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    script_ = f_.workerScript();
    if (!script_) return ctx.respondError(f_.options().error_status, "lua policy unavailable");
    if (f_.wantsRequestBody()) ctx.buffer_request_body = f_.options().max_body_size;
    return run(ctx, kOnRequestHeaders, glua::Phase::kRequestHeaders, nullptr, false);
  }
  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    return run(ctx, kOnRequestBody, glua::Phase::kRequestBody, &chunk, end);
  }
  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    return run(ctx, kOnResponseHeaders, glua::Phase::kResponseHeaders, nullptr, false);
  }
  http::Verdict onResponseBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    return run(ctx, kOnResponseBody, glua::Phase::kResponseBody, &chunk, end);
  }
  void onComplete(http::RequestContext& ctx) override {
    run(ctx, kOnLog, glua::Phase::kLog, nullptr, false);
  }

 private:
  http::Verdict run(http::RequestContext& ctx, Hook hook, glua::Phase phase, std::string* body,
                    bool last) {
    if (!script_ || script_->hooks[hook] == LUA_NOREF || failed_) return http::Verdict::kContinue;
    // Field by field: a fresh Invocation (its sub-request's strings) costs more than the hook.
    inv_.ctx = &ctx;
    inv_.responded = false;
    inv_.waiting = glua::Wait::kNone;
    inv_.sub_requests = 0;
    inv_.phase = phase;
    inv_.body = body;
    inv_.last = last;
    inv_.max_sub_requests = f_.options().max_sub_requests;
    if (!call_) call_.emplace(*script_->vm);
    return settle(ctx, hook, call_->start(script_->hooks[hook], inv_));
  }

  http::Verdict settle(http::RequestContext& ctx, Hook hook, glua::HookCall::Step step) {
    switch (step) {
      case glua::HookCall::Step::kDone:
        return inv_.responded ? http::Verdict::kRespond : http::Verdict::kContinue;
      case glua::HookCall::Step::kWaiting:
        // gh.call and gh.global (Redis) refuse the phases whose verdicts the core does not
        // await.
        ctx.pending = awaitHook(ctx, hook);
        return http::Verdict::kPause;
      case glua::HookCall::Step::kFailed:
        break;
    }
    return fail(ctx, hook, call_->failure());
  }

  // The hook, suspended in gh.call or gh.global (Redis): each sub-request or dictionary call
  // performed, the hook resumed with its answer, until it ends. The filter (and with it the
  // state and the factory) outlives this task.
  runtime::Task<http::Verdict> awaitHook(http::RequestContext& ctx, Hook hook) {
    glua::HookCall::Step step = glua::HookCall::Step::kWaiting;
    while (step == glua::HookCall::Step::kWaiting) {
      if (inv_.waiting == glua::Wait::kGlobal) {
        glua::DictResult result = co_await performGlobal(
            *f_.options().global_redis, *script_->global, std::move(inv_.global_op));
        step = call_->resume(inv_, result);
      } else {
        glua::SubResponse answer =
            co_await performSubRequest(std::move(inv_.sub_request), f_.options().max_sub_response);
        step = call_->resume(inv_, answer);
      }
    }
    co_return settle(ctx, hook, step);
  }

  http::Verdict fail(http::RequestContext& ctx, Hook hook, const glua::CallFailure& f) {
    failed_ = true;
    const glua::Phase phase = inv_.phase;
    log::error("lua ", f_.options().chunk_name, ": ", kHookNames[hook], " failed at ",
               f.where.empty() ? "?" : f.where, " (", failureName(f.kind), "): ", f.message,
               "; request ", ctx.request_id);
    if (script_->vm->exhausted()) f_.dropWorkerScript(script_.get());
    // Once the response is on its way its status cannot change: the failure is only logged.
    if (phase == glua::Phase::kResponseBody || phase == glua::Phase::kLog) {
      return http::Verdict::kContinue;
    }
    return ctx.respondError(f_.options().error_status, "lua policy failed");
  }

  const LuaFactory& f_;
  std::shared_ptr<WorkerScript> script_;  // outlives call_ (declared before it)
  std::optional<glua::HookCall> call_;
  glua::Invocation inv_;
  bool failed_ = false;  // a failed hook ends the script's part in this request
};

http::FilterRef LuaFactory::create() const {
  return http::FilterRef::own(std::make_unique<LuaFilter>(*this));
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  auto o = parseOptions(config);
  if (!o.ok()) return o.error();
  // Compile and run the top level once here: a broken script fails the config, with file:line.
  glua::SharedDict scratch_dict;
  glua::GlobalDict scratch_global;  // the top level must not touch the live dictionaries
  auto vm = glua::Vm::create(o->limits, o->allow);
  if (!vm || !glua::installApi(*vm, &scratch_dict, &scratch_global)) {
    return configError("the Lua state does not fit in max_memory");
  }
  if (auto st = vm->load(o->source, o->chunk_name); !st.ok()) return st.error();
  std::array<bool, kHookCount> has{};
  bool any = false;
  for (size_t h = 0; h < kHookCount; ++h) {
    has[h] = glua::functionRef(*vm, kHookNames[h]) != LUA_NOREF;
    any = any || has[h];
  }
  if (!any) {
    return configError(o->chunk_name +
                       ": defines no hook (on_request_headers, on_request_body, "
                       "on_response_headers, on_response_body or on_log)");
  }
  return http::FilterFactoryPtr(std::make_shared<LuaFactory>(std::move(*o), has));
}

}  // namespace gatehouse::policies::lua

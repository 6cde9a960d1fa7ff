#include "policies/aggregate/aggregate.h"

#include <cctype>
#include <chrono>
#include <coroutine>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "policies/aggregate/plan.h"
#include "policies/aggregate/stats.h"
#include "policies/policy_yaml.h"
#include "proxy/cluster_client.h"
#include "runtime/event_loop.h"
#include "template/request_variables.h"

namespace gatehouse::policies::aggregate {
namespace {

std::string lowerCase(std::string_view s) {
  std::string out(s);
  for (char& ch : out)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

struct Call {
  std::string name;
  std::string cluster;
  std::string method = "GET";
  tmpl::Template path;
  std::vector<std::pair<std::string, tmpl::Template>> headers;
  std::optional<tmpl::Template> body;
  std::chrono::milliseconds timeout{3000};
  bool required = true;
  tmpl::JsonPointer at;      // merge: keys
  std::vector<size_t> deps;  // the calls whose answers it reads
  CallSeries* series = nullptr;
};

enum class Merge { kKeys, kDeep, kTemplate };

struct Config {
  std::vector<Call> calls;
  Merge merge = Merge::kKeys;
  std::optional<tmpl::Template> body_template;  // merge: template
  std::vector<std::string> forward_headers;     // lower case
  bool forward_authorization = false;
  std::string consumer_header = "x-consumer";  // empty: not sent
  size_t max_response_bytes = 1 << 20;
  int status = 200;
  std::string partial_header = "x-aggregate-partial";
};

// One call's progress within a run.
struct CallState {
  enum class Phase { kWaiting, kRunning, kDone };
  Phase phase = Phase::kWaiting;
  std::optional<Failure> failure;  // set when done and failed
  int status = 0;                  // the upstream's status, when one answered
  Json body;
  proxy::CallCanceller canceller;
};

// One aggregation: shared by the filter's task and every call's task, so that a call still
// finishing after the client left (its connection being torn down) has a place to write.
class Run {
 public:
  Run(std::shared_ptr<const Config> c, proxy::WorkerContext& worker)
      : config(std::move(c)),
        calls(config->calls.size()),
        left(config->calls.size()),
        worker_(worker) {}

  // Starts every call whose inputs are ready; a call that reads a failed call fails at once.
  static void startReady(const std::shared_ptr<Run>& self);
  static runtime::Task<> runCall(std::shared_ptr<Run> self, size_t i);
  static void onCancel(void* self) { static_cast<Run*>(self)->cancelAll(); }
  void cancelAll() {
    cancelled = true;
    for (auto& c : calls)
      c.canceller.cancel();
  }

  // Awaits the end of every call.
  auto allDone() {
    struct Awaiter {
      Run& run;
      bool await_ready() const noexcept { return run.left == 0; }
      void await_suspend(std::coroutine_handle<> h) noexcept { run.waiter = h; }
      void await_resume() const noexcept {}
    };
    return Awaiter{*this};
  }

  const std::shared_ptr<const Config> config;
  // The request the templates read; reset when the filter's frame goes (the client left), after
  // which no call is built any more (they are all cancelled).
  const http::RequestContext* request = nullptr;
  std::vector<std::pair<std::string, std::string>> forwarded;  // sent with every call
  trace::CallTrace trace;  // the request's trace context (inactive without tracing)
  std::vector<CallState> calls;
  size_t left;
  bool cancelled = false;
  std::coroutine_handle<> waiter;  // the filter's task, while it awaits allDone()

 private:
  void finish(const std::shared_ptr<Run>& self, size_t i, std::optional<Failure> f) {
    calls[i].phase = CallState::Phase::kDone;
    calls[i].failure = f;
    --left;
    startReady(self);
    if (left == 0 && waiter) worker_.loop().schedule(std::exchange(waiter, {}));
  }
  std::optional<proxy::ClusterRequest> buildRequest(size_t i) const;

  proxy::WorkerContext& worker_;
};

// The templates' variables: the request's (while it lives) and calls.NAME.* from the answers.
class RunVariables final : public tmpl::VariableSource {
 public:
  explicit RunVariables(const Run& run) : run_(run) {}
  bool append(const tmpl::Variable& v, std::string& out) const override {
    if (v.field != tmpl::Field::kCallBody && v.field != tmpl::Field::kCallStatus) {
      return run_.request && tmpl::RequestVariables(*run_.request).append(v, out);
    }
    const auto& calls = run_.config->calls;
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i].name != v.key) continue;
      const CallState& st = run_.calls[i];
      if (v.field == tmpl::Field::kCallStatus) {
        if (st.status == 0) return false;
        out += std::to_string(st.status);
        return true;
      }
      if (st.phase != CallState::Phase::kDone || st.failure) return false;
      const Json* value = v.pointer.find(st.body);
      return value && tmpl::appendJsonValue(*value, out);
    }
    return false;
  }

 private:
  const Run& run_;
};

std::optional<proxy::ClusterRequest> Run::buildRequest(size_t i) const {
  const Call& call = config->calls[i];
  const RunVariables vars(*this);
  // A value that is missing (and has no `default`) skips the call rather than send a guess.
  auto render = [&](const tmpl::Template& t, Escape escape, std::string& out) {
    return t.render(EscapingVariables(vars, escape), out);
  };
  proxy::ClusterRequest req;
  req.method = call.method;
  if (!render(call.path, Escape::kUrl, req.target)) return std::nullopt;
  req.timeout = call.timeout;
  req.max_response_bytes = config->max_response_bytes;
  if (trace.active()) {
    req.trace = trace;
    req.trace.name = "aggregate " + call.name;
  }
  req.headers = forwarded;
  req.headers.emplace_back("accept", "application/json");
  for (const auto& [name, t] : call.headers) {
    std::string value;
    if (!render(t, Escape::kNone, value)) return std::nullopt;
    req.headers.emplace_back(name, std::move(value));
  }
  if (call.body) {
    if (!render(*call.body, Escape::kJson, req.body)) return std::nullopt;
    req.headers.emplace_back("content-type", "application/json");
  }
  return req;
}

void Run::startReady(const std::shared_ptr<Run>& self) {
  Run& run = *self;
  for (size_t i = 0; i < run.calls.size(); ++i) {
    CallState& st = run.calls[i];
    if (st.phase != CallState::Phase::kWaiting) continue;
    std::optional<Failure> skip;
    bool ready = true;
    for (size_t d : run.config->calls[i].deps) {
      const CallState& dep = run.calls[d];
      if (dep.phase != CallState::Phase::kDone) ready = false;
      if (dep.failure) skip = Failure::kSkipped;
    }
    if (run.cancelled) skip = Failure::kCancelled;
    if (skip) {
      run.config->calls[i].series->count(0, skip);
      // finish() calls startReady again, which sees this call done: nothing is visited twice.
      run.finish(self, i, skip);
      return;
    }
    if (!ready) continue;
    st.phase = CallState::Phase::kRunning;
    runtime::spawn(runCall(self, i));
  }
}

runtime::Task<> Run::runCall(std::shared_ptr<Run> self, size_t i) {
  Run& run = *self;
  const Call& call = run.config->calls[i];
  CallState& st = run.calls[i];
  const auto started = runtime::Clock::now();
  std::optional<Failure> failure;
  std::optional<proxy::ClusterRequest> req;
  if (!run.cancelled) req = run.buildRequest(i);  // after a cancel the request may be gone
  if (!req) {
    failure = run.cancelled ? Failure::kCancelled : Failure::kSkipped;
  } else {
    req->canceller = &st.canceller;
    proxy::ClusterResult r =
        co_await proxy::callCluster(run.worker_, call.cluster, std::move(*req));
    using Code = proxy::AttemptError::Code;
    if (!r.ok()) {
      switch (r.error.code) {
        case Code::kRequestTimeout:
        case Code::kResponseTimeout:
          failure = Failure::kTimeout;
          break;
        case Code::kCancelled:
          failure = Failure::kCancelled;
          break;
        case Code::kResponseTooLarge:
          failure = Failure::kBadBody;
          break;
        default:
          failure = Failure::kUnreachable;
      }
    } else {
      st.status = r.response.status;
      if (st.status < 200 || st.status > 299) {
        failure = Failure::kStatus;
      } else if (!r.response.body.empty()) {
        st.body = Json::parse(r.response.body, nullptr, false);
        if (st.body.is_discarded()) failure = Failure::kBadBody;
        if (run.config->merge == Merge::kDeep && !st.body.is_object()) failure = Failure::kBadBody;
      }
    }
  }
  const auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(runtime::Clock::now() - started);
  call.series->count(static_cast<uint64_t>(us.count()), failure);
  run.finish(self, i, failure);
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

class AggregateFilter final : public http::StatelessFilter {
 public:
  explicit AggregateFilter(std::shared_ptr<const Config> c) : c_(std::move(c)) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) const override {
    proxy::WorkerContext* worker = proxy::currentWorker();
    if (!worker) return ctx.respondError(500, "aggregate: no worker");  // unit tests only
    ctx.pending = aggregate(ctx, start(ctx, *worker));
    return http::Verdict::kPause;
  }

 private:
  std::shared_ptr<Run> start(const http::RequestContext& ctx, proxy::WorkerContext& worker) const {
    auto run = std::make_shared<Run>(c_, worker);
    run->request = &ctx;
    if (ctx.trace_context) run->trace = ctx.trace_context->callTrace("aggregate", false);
    auto& fwd = run->forwarded;
    if (!ctx.request_id.empty()) fwd.emplace_back("x-request-id", ctx.request_id);
    if (!c_->consumer_header.empty() && !ctx.consumer.empty()) {
      fwd.emplace_back(c_->consumer_header, ctx.consumer);
    }
    if (c_->forward_authorization) {
      if (const auto* f = ctx.request.headers.find("authorization")) {
        fwd.emplace_back("authorization", std::string(f->value));
      }
    }
    for (const auto& name : c_->forward_headers) {
      if (const auto* f = ctx.request.headers.find(name)) fwd.emplace_back(name, f->value);
    }
    return run;
  }

  runtime::Task<http::Verdict> aggregate(http::RequestContext& ctx,
                                         std::shared_ptr<Run> run) const {
    // Destroyed with this frame, also when the request is dropped while the calls run: the
    // calls are then cut, and nothing resumes a frame that is gone.
    struct Watch {
      Run& run;
      http::RequestContext& ctx;
      ~Watch() {
        ctx.cancelled.unsubscribe();
        run.waiter = {};
        run.request = nullptr;
        if (run.left > 0) run.cancelAll();
      }
    } watch{*run, ctx};
    if (ctx.cancelled.fired()) run->cancelled = true;
    ctx.cancelled.subscribe(&Run::onCancel, run.get());
    Run::startReady(run);
    co_await run->allDone();
    co_return answer(ctx, *run);
  }

  http::Verdict answer(http::RequestContext& ctx, const Run& run) const {
    Json doc = Json::object();
    std::vector<std::string> partial;
    Json errors = Json::object();
    for (size_t i = 0; i < c_->calls.size(); ++i) {
      const Call& call = c_->calls[i];
      const CallState& st = run.calls[i];
      if (st.failure && call.required) {
        std::string msg = "aggregate: required call '" + call.name + "' failed (" +
                          std::string(failureName(*st.failure)) + ")";
        ctx.respondError(502, msg);
        ctx.local_reply.headers.add("x-aggregate-failed", call.name);
        return http::Verdict::kRespond;
      }
      if (st.failure) {
        partial.push_back(call.name);
        Json e = {{"reason", failureName(*st.failure)}};
        if (st.status != 0) e["status"] = st.status;
        errors[call.name] = std::move(e);
        if (c_->merge == Merge::kKeys) place(doc, call.at, nullptr);
        continue;
      }
      if (c_->merge == Merge::kKeys) {
        place(doc, call.at, st.body);
      } else if (c_->merge == Merge::kDeep) {
        deepMerge(doc, st.body);
      }
    }
    if (c_->merge == Merge::kTemplate) {
      // Missing values (a failed optional call) render as nothing, or their `default`.
      std::string text;
      c_->body_template->render(RunVariables(run), text);
      doc = Json::parse(text, nullptr, false);
      if (doc.is_discarded()) {
        return ctx.respondError(500, "aggregate: the merge template did not produce JSON");
      }
    }
    if (!partial.empty() && doc.is_object()) {
      doc["_partial"] = partial;
      doc["_errors"] = std::move(errors);
    }
    ctx.respond(c_->status, doc.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n",
                "application/json");
    if (!partial.empty() && !c_->partial_header.empty()) {
      ctx.local_reply.headers.add(c_->partial_header, joined(partial));
    }
    return http::Verdict::kRespond;
  }

  const std::shared_ptr<const Config> c_;
};

class AggregateFactory final : public http::StatelessFactory<AggregateFilter> {
 public:
  using http::StatelessFactory<AggregateFilter>::StatelessFactory;
  bool answersRequests() const override { return true; }
};

Result<tmpl::Template> readTemplate(const YAML::Node& node, const std::string& what) {
  auto s = readString(node, what);
  if (!s.ok()) return s.error();
  auto t = compileTemplate(*s);
  if (!t.ok()) return prefixed(what, t.error());
  return t;
}

Status readCall(const YAML::Node& n, const std::string& what, const http::PolicyContext& ctx,
                Call& call) {
  if (!n.IsMap()) return configError(what + ": expected a map with name, cluster and path");
  if (auto st = checkKeys(
          n, {"name", "cluster", "method", "path", "headers", "body", "timeout", "required", "at"});
      !st.ok()) {
    return prefixed(what, st.error());
  }
  for (const char* k : {"name", "cluster", "path"}) {
    if (!n[k]) return configError(what + "." + k + ": required");
  }
  auto name = readName(n["name"], what + ".name");
  if (!name.ok()) return name.error();
  call.name = std::move(*name);
  auto cluster = readName(n["cluster"], what + ".cluster");
  if (!cluster.ok()) return cluster.error();
  if (ctx.clusters && !ctx.clusters->hasCluster(*cluster)) {
    return configError(what + ".cluster: unknown cluster '" + *cluster + "'");
  }
  call.cluster = std::move(*cluster);
  if (n["method"]) {
    auto m = readName(n["method"], what + ".method");
    if (!m.ok()) return m.error();
    for (char ch : *m) {
      if (ch < 'A' || ch > 'Z') return configError(what + ".method: expected GET, POST, ...");
    }
    call.method = std::move(*m);
  }
  auto path = readTemplate(n["path"], what + ".path");
  if (!path.ok()) return path.error();
  if (path->text().empty() || path->text()[0] != '/') {
    return configError(what +
                       ".path: expected an absolute path such as /users/{{ request.params.id }}");
  }
  call.path = std::move(*path);
  if (const auto& h = n["headers"]) {
    if (!h.IsMap()) return configError(what + ".headers: expected a map of header: template");
    for (const auto& kv : h) {
      const std::string key = kv.first.as<std::string>();
      if (!isHeaderName(key)) return configError(what + ".headers: bad header name '" + key + "'");
      auto t = readTemplate(kv.second, what + ".headers." + key);
      if (!t.ok()) return t.error();
      call.headers.emplace_back(lowerCase(key), std::move(*t));
    }
  }
  if (n["body"]) {
    auto t = readTemplate(n["body"], what + ".body");
    if (!t.ok()) return t.error();
    call.body = std::move(*t);
  }
  if (n["timeout"]) {
    auto d = readDuration(n["timeout"], what + ".timeout", std::chrono::milliseconds(1),
                          std::chrono::minutes(5), "500ms or 3s");
    if (!d.ok()) return d.error();
    call.timeout = *d;
  }
  if (n["required"]) {
    auto b = readBool(n["required"], what + ".required");
    if (!b.ok()) return b.error();
    call.required = *b;
  }
  std::string at = "/" + call.name;
  if (auto st = readOptional(n, "at", at, what + ".at"); !st.ok()) return st.error();
  auto p = tmpl::JsonPointer::parse(at);
  if (!p.ok()) return prefixed(what + ".at", p.error());
  if (p->isRoot()) return configError(what + ".at: expected a member such as /user");
  call.at = std::move(*p);
  return {};
}

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config, const http::PolicyContext& ctx) {
  if (!config || !config.IsMap()) return configError("expected a map with 'calls'");
  if (auto st = checkKeys(config,
                          {"calls", "merge", "template", "forward_headers", "forward_authorization",
                           "consumer_header", "max_response_size", "status", "partial_header"});
      !st.ok()) {
    return st.error();
  }
  auto c = std::make_shared<Config>();
  const YAML::Node& calls = config["calls"];
  if (!calls || !calls.IsSequence() || calls.size() == 0) {
    return configError("calls: expected a non-empty list of calls");
  }
  for (size_t i = 0; i < calls.size(); ++i) {
    Call call;
    if (auto st = readCall(calls[i], "calls[" + std::to_string(i) + "]", ctx, call); !st.ok()) {
      return st.error();
    }
    for (const auto& other : c->calls) {
      if (other.name == call.name) return configError("calls: duplicate name '" + call.name + "'");
    }
    c->calls.push_back(std::move(call));
  }
  if (config["merge"]) {
    auto m = readChoice<Merge>(
        config["merge"], "merge",
        {{"keys", Merge::kKeys}, {"deep", Merge::kDeep}, {"template", Merge::kTemplate}});
    if (!m.ok()) return m.error();
    c->merge = *m;
  }
  if ((c->merge == Merge::kTemplate) != static_cast<bool>(config["template"])) {
    return configError(c->merge == Merge::kTemplate ? "template: required with merge: template"
                                                    : "template: only with merge: template");
  }
  if (c->merge == Merge::kTemplate) {
    auto t = readTemplate(config["template"], "template");
    if (!t.ok()) return t.error();
    c->body_template = std::move(*t);
  }
  if (c->merge != Merge::kKeys) {
    for (size_t i = 0; i < calls.size(); ++i) {
      if (calls[i]["at"]) {
        return configError("calls[" + std::to_string(i) + "].at: only with merge: keys");
      }
    }
  }
  if (const auto& n = config["forward_headers"]) {
    auto list = readStringList(n, "forward_headers");
    if (!list.ok()) return list.error();
    for (const auto& h : *list) {
      if (!isHeaderName(h)) return configError("forward_headers: bad header name '" + h + "'");
      c->forward_headers.push_back(lowerCase(h));
    }
  }
  if (auto st = readOptional(config, "forward_authorization", c->forward_authorization); !st.ok()) {
    return st.error();
  }
  for (const char* key : {"consumer_header", "partial_header"}) {
    std::string& out = key[0] == 'c' ? c->consumer_header : c->partial_header;
    if (auto st = readOptional(config, key, out); !st.ok()) return st.error();
    if (!out.empty() && !isHeaderName(out))
      return configError(std::string(key) + ": bad header name");
    out = lowerCase(out);
  }
  if (config["max_response_size"]) {
    auto n = readSize(config["max_response_size"], "max_response_size", 1, 64u << 20, "1MiB");
    if (!n.ok()) return n.error();
    c->max_response_bytes = *n;
  }
  if (config["status"]) {
    auto s = readInt(config["status"], "status", 200, 299);
    if (!s.ok()) return s.error();
    c->status = *s;
  }
  std::vector<CallTemplates> refs;
  for (const auto& call : c->calls) {
    CallTemplates r{call.name, {&call.path}};
    for (const auto& [name, t] : call.headers)
      r.templates.push_back(&t);
    if (call.body) r.templates.push_back(&*call.body);
    refs.push_back(std::move(r));
  }
  auto deps = orderCalls(refs);
  if (!deps.ok()) return deps.error();
  if (c->body_template) {
    // The merge template may name only calls that exist.
    std::vector<CallTemplates> with_merge = refs;
    with_merge.push_back({"template", {&*c->body_template}});
    if (auto all = orderCalls(with_merge); !all.ok()) return all.error();
  }
  const std::string route = ctx.scope.empty() ? "-" : ctx.scope;
  for (size_t i = 0; i < c->calls.size(); ++i) {
    c->calls[i].deps = std::move((*deps)[i]);
    c->calls[i].series = &callSeries(route, c->calls[i].name);
  }
  return http::FilterFactoryPtr(std::make_shared<AggregateFactory>(c));
}

}  // namespace gatehouse::policies::aggregate

#pragma once
// The per-route policy chain. A policy is two halves:
//  - FilterFactory: the config half, built and validated once per config snapshot on the
//    control thread, then immutable and shared by every worker;
//  - Filter: the per-request half, created on a worker for each request, reading only its
//    factory's config.
// Phases run in a fixed order: request headers -> request body -> (router/upstream) ->
// response headers -> response body -> complete (always, for logging). A phase returns a
// verdict at once; it pauses with an awaitable only when it truly needs I/O.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"
#include "http/admin_endpoint.h"
#include "http/message.h"
#include "http/url.h"
#include "runtime/task.h"

namespace YAML {
class Node;
}
namespace gatehouse::policies {
class ConsumerRegistry;
}
namespace gatehouse::trace {
class RequestTrace;  // trace/request_trace.h
}

namespace gatehouse::http {

enum class Verdict {
  kContinue,  // run the next filter / phase
  kRespond,   // the filter filled ctx.local_reply: stop the chain, skip the upstream
  kPause,     // the filter set ctx.pending: the core awaits it, then acts on its verdict
};

struct LocalReply {
  int status = 200;
  HeaderMap headers;
  std::string body;
  // A body shared with its owner (a cached response), sent instead of `body` when set: a reply
  // from a store then copies no body bytes. Held until the reply is written.
  std::shared_ptr<const std::string> shared_body;
};

// Tells a paused filter that its request was abandoned (the client reset its HTTP/2 stream, a
// drain deadline passed), so that it stops the work it started (aggregate's upstream calls).
// One subscriber at a time; the callback runs on the request's worker, from the core's abort
// path, and must not resume coroutines inline (schedule them instead).
class CancelSignal {
 public:
  using Callback = void (*)(void* arg);
  void subscribe(Callback cb, void* arg) {
    cb_ = cb;
    arg_ = arg;
  }
  void unsubscribe() {
    cb_ = nullptr;
    arg_ = nullptr;
  }
  void fire() {
    fired_ = true;
    if (Callback cb = std::exchange(cb_, nullptr)) cb(arg_);
  }
  bool fired() const { return fired_; }
  void reset() {
    unsubscribe();
    fired_ = false;
  }

 private:
  Callback cb_ = nullptr;
  void* arg_ = nullptr;
  bool fired_ = false;
};

struct PathParam {
  std::string_view name;
  std::string_view value;
};

// What a filter may see and change for one request. Lives on the worker for the request's
// lifetime; references are valid for every phase.
// Top-level string and integer claims of a verified token (jwt_auth, oauth2_introspection),
// shared with the token cache; other policies key on them (rate_limit `claim:NAME`).
struct TokenClaims {
  std::vector<std::pair<std::string, std::string>> values;
  std::string_view get(std::string_view name) const {
    for (const auto& [k, v] : values) {
      if (k == name) return v;
    }
    return {};
  }
};

class RequestContext {
 public:
  Request request;
  Response response;              // valid from the response-headers phase on
  bool response_started = false;  // response headers have been received or generated
  // `response` is the gateway's own reply (a filter's local reply, or an error such as a 502
  // when the upstream failed), not one from the upstream: a cache must not store it.
  bool local_response = false;
  LocalReply local_reply;
  bool has_local_reply = false;
  // Fired when the request is abandoned while it runs (see CancelSignal). Declared before
  // `pending`, so that a paused task destroyed with the context can still unsubscribe.
  CancelSignal cancelled;
  runtime::Task<Verdict> pending;  // set together with Verdict::kPause

  std::string request_id;
  std::string client_ip;
  std::string consumer;  // the authenticated identity (set by auth policies); empty = anonymous
  // The consumer's groups (set with `consumer`), for authorization policies such as `acl`.
  std::vector<std::string> consumer_groups;
  std::shared_ptr<const TokenClaims> claims;  // set with `consumer` by token policies
  // Verified downstream client certificate (mTLS); empty subject when there is none.
  std::string_view client_cert_subject;
  std::string_view client_cert_sans;
  std::span<const std::string> client_cert_san_entries;  // one entry each ("URI:spiffe://x")
  std::string_view client_cert_sha256;
  std::string route_name;
  std::vector<PathParam> path_params;
  // Set in the request-headers phase by a filter that must see the whole request body before
  // any of it reaches an upstream (a body digest, say). The core then reads the body into
  // memory (more than this many bytes, or than limits.max_body_bytes: 413), calls every
  // onRequestBody once with the whole body and end=true, honours its kRespond / kPause
  // verdict, and only then picks an upstream; the body is forwarded with a Content-Length.
  // 0 (the default): the body streams, and body-phase verdicts are not acted on.
  // A request without a body gets the body phase too (one empty chunk): bytes a filter puts
  // there become the request body (a protocol translation building its own).
  uint64_t buffer_request_body = 0;
  // Set in the response-headers phase by a filter that rewrites the response body and decides
  // the status or headers from what the body or trailers say (a protocol translation). The
  // core then sends the head only when the body filters first produce bytes, or at the end of
  // the body (with a Content-Length); until then a body call may still change ctx.response.
  // Honoured on HTTP/1 and HTTP/2 upstream clusters.
  bool hold_response_head = false;
  // The upstream response trailers, valid only during the response-body phase's end=true
  // call (null otherwise). drop_response_trailers keeps them from the client (they meant
  // something only to a protocol the filter translated away).
  const HeaderMap* response_trailers = nullptr;
  bool drop_response_trailers = false;
  // Bumped in the response-headers phase by a filter whose factory wants the response body but
  // that leaves this response's body alone (compress, on an image). When every such filter on
  // the route declines, the core relays the body as it came, with its Content-Length.
  uint8_t response_body_declines = 0;
  void declineResponseBody() { ++response_body_declines; }
  // Set by the core just before onComplete: bytes read from and written to the client for
  // this request, heads included (the access log's bytes_in / bytes_out), and the status sent.
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  int final_status = 0;
  // Set-Cookie value from the load balancer (sticky sessions), added to the upstream response.
  std::string lb_set_cookie;
  // Request variables set by policies (Lua's gh.vars, transform) for later policies, templates
  // (`vars.NAME`) and the access log. Few per request, so a list, not a map.
  std::vector<std::pair<std::string, std::string>> vars;
  std::string_view var(std::string_view name) const {
    for (const auto& [k, v] : vars) {
      if (k == name) return v;
    }
    return {};
  }
  void setVar(std::string_view name, std::string_view value);
  // A policy's pick of the upstream cluster, by name (`version`): the route forwards there
  // instead of its own cluster or split. Only names the policy's factory lists in
  // routableClusters() have a compiled variant; the view must outlive the request (it points
  // into the factory's config).
  std::string_view upstream_cluster;
  // The request's trace while it is recorded (sampled, or held for an error), else null. A
  // policy reports a decision as a span event: `if (ctx.trace) ctx.trace->event(...)`
  // (include trace/request_trace.h), so an unsampled request pays one null check.
  trace::RequestTrace* trace = nullptr;
  // The request's trace context whenever tracing is on, recorded or not: sub-requests
  // (aggregate, mirror) take their propagation headers from it.
  trace::RequestTrace* trace_context = nullptr;

  // Clears everything for the next request on the connection, keeping buffer capacity.
  void reset();

  // Helpers for filters that answer the request themselves.
  Verdict respond(int status, std::string body, std::string_view content_type = "text/plain");
  // JSON error body carrying the request id: {"error": "...", "status": N, "request_id": "..."}
  Verdict respondError(int status, std::string_view message);
};

// The per-request half of a policy that keeps state for one request (a decision to recall in a
// later phase, a body digest): a new instance per request, used by one worker only.
class Filter {
 public:
  virtual ~Filter() = default;
  virtual Verdict onRequestHeaders(RequestContext&) { return Verdict::kContinue; }
  // Called only when the factory wants the request body; `chunk` may be rewritten in place.
  virtual Verdict onRequestBody(RequestContext&, std::string& /*chunk*/, bool /*end*/) {
    return Verdict::kContinue;
  }
  virtual Verdict onResponseHeaders(RequestContext&) { return Verdict::kContinue; }
  virtual Verdict onResponseBody(RequestContext&, std::string& /*chunk*/, bool /*end*/) {
    return Verdict::kContinue;
  }
  // Always called once per request that reached the filter, whatever happened.
  virtual void onComplete(RequestContext&) {}
};

// The per-request half of a policy that keeps no state between phases: one immutable instance,
// owned by the factory, serves every request on every worker at once, so its phases are const.
class StatelessFilter {
 public:
  virtual ~StatelessFilter() = default;
  virtual Verdict onRequestHeaders(RequestContext&) const { return Verdict::kContinue; }
  virtual Verdict onRequestBody(RequestContext&, std::string& /*chunk*/, bool /*end*/) const {
    return Verdict::kContinue;
  }
  virtual Verdict onResponseHeaders(RequestContext&) const { return Verdict::kContinue; }
  virtual Verdict onResponseBody(RequestContext&, std::string& /*chunk*/, bool /*end*/) const {
    return Verdict::kContinue;
  }
  virtual void onComplete(RequestContext&) const {}
};

// A policy's filter for one request, called through `filter`: a Filter it owns, or a view of a
// shared StatelessFilter (a Filter that forwards to it, held inline: no allocation).
class FilterRef {
 public:
  FilterRef() = default;
  static FilterRef own(std::unique_ptr<Filter> f);
  static FilterRef shared(const StatelessFilter& f);
  FilterRef(FilterRef&& o) noexcept { *this = std::move(o); }
  FilterRef& operator=(FilterRef&& o) noexcept;

  Filter* filter = nullptr;  // the owned filter or &view_

 private:
  class SharedView final : public Filter {
   public:
    const StatelessFilter* target = nullptr;
    Verdict onRequestHeaders(RequestContext& c) override { return target->onRequestHeaders(c); }
    Verdict onRequestBody(RequestContext& c, std::string& chunk, bool end) override {
      return target->onRequestBody(c, chunk, end);
    }
    Verdict onResponseHeaders(RequestContext& c) override { return target->onResponseHeaders(c); }
    Verdict onResponseBody(RequestContext& c, std::string& chunk, bool end) override {
      return target->onResponseBody(c, chunk, end);
    }
    void onComplete(RequestContext& c) override { target->onComplete(c); }
  };
  std::unique_ptr<Filter> owned_;
  SharedView view_;
};

// The config half of a policy: built and validated once per snapshot on the control thread,
// then immutable and shared by every worker. create() runs on a worker for each request.
class FilterFactory {
 public:
  virtual ~FilterFactory() = default;
  virtual FilterRef create() const = 0;
  virtual bool wantsRequestBody() const { return false; }
  virtual bool wantsResponseBody() const { return false; }
  // The clusters this policy may send a request to by setting ctx.upstream_cluster; the
  // snapshot builder compiles a route variant for each (control thread).
  virtual std::vector<std::string> routableClusters() const { return {}; }
  // The policy answers every request itself (aggregate): its route needs no cluster.
  virtual bool answersRequests() const { return false; }
};

// The factory of a policy whose filter `F` (a StatelessFilter) is stateless: it holds the one
// filter, built in place from the parsed config, and hands it to every request.
template <class F>
class StatelessFactory : public FilterFactory {
 public:
  template <class... Args>
  explicit StatelessFactory(Args&&... args) : filter_(std::forward<Args>(args)...) {}
  FilterRef create() const override { return FilterRef::shared(filter_); }
  const F& filter() const { return filter_; }

 private:
  const F filter_;
};

// The filter of `factory` when it is a StatelessFactory<F>, else nullptr.
template <class F>
const F* statelessFilterOf(const FilterFactory& factory) {
  const auto* f = dynamic_cast<const StatelessFactory<F>*>(&factory);
  return f ? &f->filter() : nullptr;
}

using FilterFactoryPtr = std::shared_ptr<const FilterFactory>;

// The upstream clusters of the snapshot being built, for a policy that calls a service while
// it handles a request (a JWKS, a token introspection endpoint) through
// proxy/cluster_client.h: a configured cluster by name, or the implicit cluster of a URL's
// origin. Implemented by the snapshot builder (server/); control thread, during the build.
class ClusterCatalog {
 public:
  // Whether `name` is a configured cluster.
  virtual bool hasCluster(std::string_view name) const = 0;
  // Adds (once per origin and TLS options) the implicit cluster of `url`: its host and port,
  // TLS with these options for https, resolved like a configured endpoint. Returns its name
  // (http::implicitClusterName), or why it cannot be built (a bad CA file, say).
  virtual Result<std::string> clusterForUrl(const Url& url, const ClientTlsOptions& tls) = 0;

 protected:
  ~ClusterCatalog() = default;
};

// What a builder may read besides its own YAML, from the snapshot being built (control
// thread; valid only during the call).
struct PolicyContext {
  // The top-level `consumers:` registry (empty, or null in unit tests, without one). Builders keep
  // the shared_ptr if their factory uses it.
  std::shared_ptr<const policies::ConsumerRegistry> consumers;
  // The factories already in this route's chain (virtual-host policies first), in order.
  std::span<const FilterFactoryPtr> preceding;
  // The snapshot's clusters; null in unit tests (a URL then names its implicit cluster, which
  // no snapshot holds, and a cluster name is taken on trust).
  ClusterCatalog* clusters = nullptr;
  // "<virtual host>/<route>": the chain being built, for state a policy keeps across reloads by
  // its identity (rate_limit). Empty in unit tests.
  std::string scope;
  // The cluster the route forwards to (the first of a traffic split), for a policy that calls it
  // itself (cache's background refresh); empty when the route has none.
  std::string route_cluster;
};

// Policy registration: name -> builder. The builder validates `config` and returns the
// immutable factory, or an error whose message names the bad option (the caller prefixes
// file, line and YAML path). A builder that needs the snapshot (consumers, the chain so far)
// takes a PolicyContext; the others need not.
using PolicyBuilder = Result<FilterFactoryPtr> (*)(const YAML::Node& config);
using ContextPolicyBuilder = Result<FilterFactoryPtr> (*)(const YAML::Node& config,
                                                          const PolicyContext& ctx);

struct PolicyRegistration {
  PolicyRegistration(std::string_view n, PolicyBuilder b, AdminEndpoint a = {})
      : name(n), admin(a), plain_(b) {}
  PolicyRegistration(std::string_view n, ContextPolicyBuilder b, AdminEndpoint a = {})
      : name(n), admin(a), contextual_(b) {}

  Result<FilterFactoryPtr> build(const YAML::Node& config, const PolicyContext& ctx) const {
    return contextual_ ? contextual_(config, ctx) : plain_(config);
  }
  // With an empty context (no registry, nothing before it): unit tests.
  Result<FilterFactoryPtr> build(const YAML::Node& config) const { return build(config, {}); }

  std::string_view name;
  AdminEndpoint admin;  // the policy's admin API endpoint, if it has one

 private:
  PolicyBuilder plain_ = nullptr;
  ContextPolicyBuilder contextual_ = nullptr;
};

// Every built-in policy, defined in policies/registry.cc (one line per policy).
const std::vector<PolicyRegistration>& policyRegistry();
const PolicyRegistration* findPolicy(std::string_view name);

}  // namespace gatehouse::http

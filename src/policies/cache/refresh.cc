#include "policies/cache/refresh.h"

#include <chrono>
#include <utility>

#include "core/clock.h"
#include "proxy/cluster_client.h"
#include "runtime/task.h"

namespace gatehouse::policies::cache {
namespace {

int64_t nowSeconds() {
  return clock::wallNs() / 1'000'000'000;
}

bool conditionalOrFraming(std::string_view name) {
  return name == "if-none-match" || name == "if-modified-since" || name == "if-match" ||
         name == "if-unmodified-since" || name == "if-range" || name == "content-length" ||
         name == "transfer-encoding" || name == "connection" || name == "keep-alive" ||
         name == "te" || name == "upgrade" || name == "host";
}

// The stored entry for a full answer, or null when it may not be stored.
gatehouse::cache::EntryPtr entryOf(const RefreshJob& job, const proxy::ClusterRequest& sent,
                                   proxy::ClusterResponse& got, const http::Response& resp,
                                   int64_t request_time, int64_t now) {
  if (got.body.size() > job.max_object_size) return nullptr;
  http::Request req;
  req.method = sent.method;
  for (const auto& [name, value] : sent.headers)
    req.headers.add(name, value);
  const auto resp_cc = gatehouse::cache::cacheControlOf(resp.headers);
  const int64_t lifetime = gatehouse::cache::freshnessLifetime(
      resp_cc, gatehouse::cache::datesOf(resp.headers), resp.status, now, job.rules.heuristic,
      job.rules.fallback_ttl_s);
  const gatehouse::cache::CacheControl req_cc;
  if (gatehouse::cache::checkStorable(req, req_cc, resp, resp_cc, lifetime) !=
      gatehouse::cache::NotStorable::kNone) {
    return nullptr;
  }
  auto e = gatehouse::cache::makeEntry(req, resp, resp_cc, lifetime, request_time, now);
  e->body = std::make_shared<const std::string>(std::move(got.body));
  return e;
}

runtime::Task<> refresh(proxy::WorkerContext& worker, RefreshJob job, proxy::ClusterRequest req) {
  // However this ends (an answer, a failure, the worker shutting down), the key's next stale
  // use may start a refresh again.
  struct Finish {
    gatehouse::cache::Store& store;
    const std::string& key;
    ~Finish() { store.flights().finish(key); }
  } finish{*job.store, job.key};
  const int64_t request_time = nowSeconds();
  proxy::ClusterResult result = co_await proxy::callCluster(worker, job.cluster, req);
  if (!result.ok()) co_return;
  const int64_t now = nowSeconds();
  http::Response resp;
  resp.status = result.response.status;
  for (const auto& [name, value] : result.response.headers)
    resp.headers.add(name, value);
  if (resp.status == 304) {
    job.store->insert(
        job.key, gatehouse::cache::refreshEntry(*job.entry, resp, job.rules, request_time, now));
    co_return;
  }
  resp.has_body = !result.response.body.empty();
  resp.content_length = result.response.body.size();
  if (auto e = entryOf(job, req, result.response, resp, request_time, now)) {
    job.store->insert(job.key, std::move(e));
  }
}

}  // namespace

void startRefresh(proxy::WorkerContext& worker, RefreshJob job, const http::Request& request) {
  proxy::ClusterRequest req;
  req.method = "GET";
  req.target = request.path;
  if (!request.query.empty()) req.target.append("?").append(request.query);
  req.authority = request.authority;
  for (const auto& f : request.headers.fields()) {
    if (!conditionalOrFraming(f.name)) req.headers.emplace_back(f.name, f.value);
  }
  if (!job.entry->etag.empty()) req.headers.emplace_back("if-none-match", job.entry->etag);
  if (!job.entry->last_modified.empty()) {
    req.headers.emplace_back("if-modified-since", job.entry->last_modified);
  }
  // The whole call, retries included; each attempt is also bound by the cluster's response
  // timeout. Until it ends no other refresh of the key starts.
  req.timeout = std::chrono::seconds(60);
  req.max_response_bytes = job.max_object_size;
  runtime::spawn(refresh(worker, std::move(job), std::move(req)));
}

}  // namespace gatehouse::policies::cache

#pragma once
// stale-while-revalidate's refresh in the background (RFC 5861 §3): the request that finds an
// entry stale within its grant answers from it at once and starts one request to the route's
// cluster (proxy/cluster_client.h) off the client's path. A 304 refreshes the stored entry, a
// storable answer replaces it, anything else leaves it (it keeps answering stale within its
// grant). The key's flight is held for the refresh's whole life, so one runs per key. Worker
// thread only.
#include <cstdint>
#include <memory>
#include <string>

#include "cache/semantics.h"
#include "cache/store.h"
#include "http/message.h"
#include "proxy/worker_context.h"

namespace gatehouse::policies::cache {

struct RefreshJob {
  std::shared_ptr<gatehouse::cache::Store> store;
  gatehouse::cache::StoreRules rules;
  uint64_t max_object_size = 0;
  std::string key;
  gatehouse::cache::EntryPtr entry;  // the stale entry
  std::string cluster;               // the route's
};

// Starts the refresh of `job.entry` for `request` (its method, target, authority and fields are
// copied; the entry's validators replace the client's conditionals). The caller has led the
// key's flight; the refresh finishes it.
void startRefresh(proxy::WorkerContext& worker, RefreshJob job, const http::Request& request);

}  // namespace gatehouse::policies::cache

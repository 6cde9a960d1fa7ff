#pragma once
// Request mirroring (route option `mirror`): a filter, appended last to a route's chain, that
// copies a sampled share of the requests to another cluster, fire-and-forget. Each copy runs in
// its own spawned coroutine on the worker with its own connection (`connection: close`); the
// client's request never waits for it and its outcome is only counted
// (gatehouse_mirror_requests_total). Bodies are buffered up to max_body_bytes; a larger body is
// not mirrored. At most kMaxInFlightPerWorker copies run at once per worker.
#include <string>

#include "config/model.h"
#include "http/filter.h"
#include "proxy/snapshot.h"

namespace gatehouse::proxy {

inline constexpr int kMaxMirrorsInFlightPerWorker = 256;

// Control thread, while the snapshot is built. `target` must have its hosts filled in.
http::FilterFactoryPtr makeMirrorFilter(const config::Mirror& cfg, const std::string& route,
                                        const upstream::CompiledCluster& target);

}  // namespace gatehouse::proxy

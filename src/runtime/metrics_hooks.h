#pragma once
// Extra /metrics lines from components outside the runtime (policies keep their own counters,
// shared by all workers). A renderer is a plain function registered once per metric family; the
// admin thread calls every renderer at the end of the Prometheus page. Registration and
// rendering take a mutex: neither runs on the request path.
#include <string>
#include <string_view>

namespace gatehouse::runtime {

using MetricsRenderer = void (*)(std::string& out);

// Idempotent per `family`: registering it again replaces the renderer. Any thread.
void registerMetricsRenderer(std::string_view family, MetricsRenderer fn);
// Appends every registered renderer's output, in registration order. Any thread.
void renderExtraMetrics(std::string& out);

}  // namespace gatehouse::runtime

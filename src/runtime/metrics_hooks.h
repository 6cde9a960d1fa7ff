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

// For a family whose samples come from several independent components (say one per auth
// policy): each registers its sample renderer under its own `key`, with the same `family`,
// `help` and `type` ("counter", "gauge"); the page prints "# HELP" and "# TYPE" once, then
// every contributor's sample lines. Idempotent per (family, key). Any thread.
void registerMetricsSamples(std::string_view family, std::string_view help, std::string_view type,
                            std::string_view key, MetricsRenderer fn);

// Appends every registered renderer's output, in registration order. Any thread.
void renderExtraMetrics(std::string& out);

}  // namespace gatehouse::runtime

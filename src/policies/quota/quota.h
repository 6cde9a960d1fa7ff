#pragma once
// Policy `quota`: long-period request quotas per consumer (or any rate_limit key): calendar
// days, ISO weeks or months in a configured time zone, or rolling windows. Kept in Redis so
// they survive gateway restarts (mode redis), or in process memory (mode local, lost on
// restart). Admin API: GET/DELETE /quotas/<policy>/<key>, POST .../reset.
// See docs/config.md#quota.
#include "http/filter.h"

namespace gatehouse::policies::quota {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);
// /quotas on the admin API.
http::AdminEndpoint adminEndpoint();

}  // namespace gatehouse::policies::quota

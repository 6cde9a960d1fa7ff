#pragma once
// Policy `transform`: rewrites the request (headers, query, path, method, JSON body) before the
// upstream sees it and the response (status, headers, JSON body) before the client does, with
// values from templates (template/template.h). Bodies are read whole only when a rule needs
// them, up to max_body_size (request: 413 beyond it; response: 502). The factory is built on
// the control thread; a filter per request runs on its worker.
#include "http/filter.h"

namespace gatehouse::policies::transform {

Result<http::FilterFactoryPtr> build(const YAML::Node& config);

}  // namespace gatehouse::policies::transform

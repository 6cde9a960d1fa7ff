#pragma once
// TEMPORARY stub until request-target normalisation lands.
#include <string>
#include <string_view>

#include "config/model.h"
#include "core/result.h"

namespace gatehouse::http {

struct Target {
  std::string path;
  std::string_view query;
};

inline Result<Target> parseRequestTarget(std::string_view raw, std::string_view,
                                         const config::PathNormalization&) {
  if (raw.empty() || raw.front() != '/') {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kDownstream, "bad target");
  }
  auto q = raw.find('?');
  Target t;
  t.path.assign(raw.substr(0, q));
  if (q != std::string_view::npos) t.query = raw.substr(q + 1);
  return t;
}

}  // namespace gatehouse::http

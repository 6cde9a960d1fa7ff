#include "cache/key.h"

#include <algorithm>

namespace gatehouse::cache {

void buildKey(const KeySpec& spec, const http::Request& req, std::string_view consumer,
              std::string& out) {
  out.clear();
  if (spec.host) {
    for (char c : req.authority)
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  out.append(req.path);
  if (spec.query != KeySpec::Query::kNone && !req.query.empty()) {
    std::vector<std::string_view> params;
    std::string_view q = req.query;
    while (!q.empty()) {
      const size_t amp = q.find('&');
      const std::string_view p = q.substr(0, amp);
      const std::string_view name = p.substr(0, p.find('='));
      const bool wanted = spec.query == KeySpec::Query::kAll ||
                          std::find(spec.query_params.begin(), spec.query_params.end(), name) !=
                              spec.query_params.end();
      if (!p.empty() && wanted) params.push_back(p);
      if (amp == std::string_view::npos) break;
      q.remove_prefix(amp + 1);
    }
    std::stable_sort(params.begin(), params.end(), [](std::string_view a, std::string_view b) {
      return a.substr(0, a.find('=')) < b.substr(0, b.find('='));
    });
    for (size_t i = 0; i < params.size(); ++i) {
      out.push_back(i == 0 ? '?' : '&');
      out.append(params[i]);
    }
  }
  for (const auto& h : spec.headers) {
    out.append("\n").append(h).append(": ");
    bool first = true;
    for (const auto& f : req.headers.fields()) {
      if (!http::iequals(f.name, h)) continue;
      if (!first) out.append(", ");
      out.append(f.value);
      first = false;
    }
  }
  if (spec.consumer) out.append("\nconsumer: ").append(consumer);
}

}  // namespace gatehouse::cache

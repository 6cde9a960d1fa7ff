#pragma once
// Policy quota's factory, shared by the request path (quota.cc) and the admin API (admin.cc).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/admin_endpoint.h"
#include "http/filter.h"
#include "policies/quota/config.h"
#include "policies/rate_limit/limiter.h"

namespace gatehouse::policies::quota {

class QuotaFactory final : public http::FilterFactory,
                           public std::enable_shared_from_this<QuotaFactory> {
 public:
  explicit QuotaFactory(QuotaConfig c);
  http::FilterRef create() const override;

  const QuotaConfig& config() const { return config_; }
  CounterCells& counters() const { return counters_->cells.local(); }
  // Mode local: the counters (atomics shared by workers and the admin API).
  rate_limit::LimiterTable& table() const { return *table_; }
  const std::string& endpointId() const { return endpoint_id_; }

  // Redis KEYS then ARGV for `key` at wall-clock `now_ns`; `want`: 1 to charge, 0 to report,
  // -1 to delete. A calendar quota's Redis key names its period, so a new period starts from 0.
  std::vector<std::string> redisArgs(std::string_view key, int64_t now_ns, int64_t want) const;

 private:
  const QuotaConfig config_;
  std::shared_ptr<Counters> counters_;
  std::shared_ptr<rate_limit::LimiterTable> table_;
  const std::string endpoint_id_;
};

// The live factory of the policy named `name` (the most recently built one still in use), or
// nullptr. Any thread.
std::shared_ptr<const QuotaFactory> findPolicy(std::string_view name);
// Every live policy name, sorted.
std::vector<std::string> policyNames();
void registerFactory(const std::shared_ptr<const QuotaFactory>& f);

// The admin routes /quotas and /quotas/... (registered by build()).
runtime::Task<http::AdminReply> handleAdmin(std::string method, std::string path,
                                            std::string query);

}  // namespace gatehouse::policies::quota

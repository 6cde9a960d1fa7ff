// Load-balancing algorithms by config name: one line per algorithm.
#include "lb/load_balancer.h"
#include "lb/round_robin.h"

namespace gatehouse::lb {

Result<std::shared_ptr<const LoadBalancerFactory>> makeLoadBalancerFactory(std::string_view name) {
  if (name == "round_robin") {
    return std::shared_ptr<const LoadBalancerFactory>(std::make_shared<RoundRobinFactory>());
  }
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                     "unknown load-balancing algorithm '" + std::string(name) + "'");
}

}  // namespace gatehouse::lb

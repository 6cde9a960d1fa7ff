// Load-balancing algorithms by config name: one line per algorithm. The loader's list of names
// (config::kLbAlgorithms) must match.
#include "config/model.h"
#include "lb/load_balancer.h"
#include "lb/round_robin.h"

namespace gatehouse::lb {
namespace {

struct Algorithm {
  std::string_view name;
  Result<LoadBalancerFactoryPtr> (*make)(const config::Cluster&);
};

// clang-format off
constexpr Algorithm kAlgorithms[] = {
    {"round_robin", &RoundRobinFactory::make},
};
// clang-format on

}  // namespace

Result<LoadBalancerFactoryPtr> makeLoadBalancerFactory(const config::Cluster& cluster) {
  for (const Algorithm& a : kAlgorithms) {
    if (a.name == cluster.lb) return a.make(cluster);
  }
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                     "unknown load-balancing algorithm '" + cluster.lb + "'");
}

}  // namespace gatehouse::lb

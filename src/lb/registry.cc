// Load-balancing algorithms by config name: one line per algorithm. The loader's list of names
// (config::kLbAlgorithms) must match; LbRegistry in tests/unit/lb_config_test.cc checks it.
#include "config/model.h"
#include "lb/least_conn.h"
#include "lb/least_time.h"
#include "lb/load_balancer.h"
#include "lb/maglev.h"
#include "lb/random.h"
#include "lb/ring_hash.h"
#include "lb/round_robin.h"

namespace gatehouse::lb {
namespace {

struct Algorithm {
  std::string_view name;
  Result<LoadBalancerFactoryPtr> (*make)(const config::Cluster&);
};

// clang-format off
constexpr Algorithm kAlgorithms[] = {
    {"round_robin", &makeRoundRobinFactory},
    {"least_conn", &makeLeastConnFactory},
    {"least_time", &makeLeastTimeFactory},
    {"random", &makeWeightedRandomFactory},
    {"ip_hash", &makeIpHashFactory},
    {"ring_hash", &makeRingHashFactory},
    {"maglev", &makeMaglevFactory},
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

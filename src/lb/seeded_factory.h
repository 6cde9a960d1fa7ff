#pragma once
// The factory of an algorithm whose balancers need only the hosts, a few options fixed at
// config time and a random seed: Balancer(hosts, options..., seed). Each worker's balancer
// gets its own seed, so workers do not make the same random choices in step.
#include <memory>
#include <tuple>
#include <utility>

#include "lb/load_balancer.h"
#include "lb/rng.h"

namespace gatehouse::lb {

template <typename Balancer, typename... Options>
class SeededFactory final : public LoadBalancerFactory {
 public:
  explicit SeededFactory(Options... options) : options_(std::move(options)...) {}
  std::unique_ptr<LoadBalancer> create(const HostSet& hosts) const override {
    return std::apply(
        [&hosts](const Options&... options) {
          return std::make_unique<Balancer>(hosts, options..., randomSeed());
        },
        options_);
  }

 private:
  std::tuple<Options...> options_;
};

}  // namespace gatehouse::lb

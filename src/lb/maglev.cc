#include "lb/maglev.h"

#include <algorithm>
#include <limits>
#include <numeric>

namespace gatehouse::lb {
namespace {

// Two independent hashes of the host name give its permutation.
constexpr uint64_t kOffsetSeed = 0x6D61676C65762D6FULL;
constexpr uint64_t kSkipSeed = 0x6D61676C65762D73ULL;
constexpr uint32_t kEmpty = std::numeric_limits<uint32_t>::max();

bool isPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; uint64_t{d} * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

}  // namespace

MaglevTable MaglevTable::build(const HostSet& hosts, uint32_t table_size) {
  MaglevTable table;
  const size_t n = hosts.hosts.size();
  if (n == 0 || table_size < 2) return table;
  // The permutations only cover every slot when M is prime; the loader insists on it, and this
  // guards the tests and any other caller.
  while (!isPrime(table_size))
    ++table_size;
  const uint64_t m = table_size;

  struct Builder {
    uint32_t host;
    uint64_t position;  // offset + next * skip, mod M
    uint64_t skip;
    uint64_t weight;
    uint64_t target = 0;  // the turn after which this host may take its next slot, times weight
  };
  // In name order, so that the table does not depend on the order of hosts in the config.
  std::vector<Builder> builders;
  builders.reserve(n);
  uint64_t max_weight = 1;
  for (uint32_t i = 0; i < n; ++i) {
    const Host& h = hosts.hosts[i];
    const uint64_t weight = std::max<uint32_t>(h.weight, 1);
    max_weight = std::max(max_weight, weight);
    builders.push_back(
        {i, xxh64(h.name, kOffsetSeed) % m, xxh64(h.name, kSkipSeed) % (m - 1) + 1, weight});
  }
  std::sort(builders.begin(), builders.end(), [&](const Builder& a, const Builder& b) {
    return hosts.hosts[a.host].name < hosts.hosts[b.host].name;
  });

  table.slots_.assign(table_size, kEmpty);
  uint64_t filled = 0;
  // In turn t a host may take a slot when t * weight has reached its target; the heaviest host
  // takes one every turn, a host of half its weight every other turn, and so on.
  for (uint64_t turn = 1; filled < m; ++turn) {
    for (Builder& b : builders) {
      if (turn * b.weight < b.target) continue;
      b.target += max_weight;
      while (table.slots_[b.position] != kEmpty) {
        b.position += b.skip;
        if (b.position >= m) b.position -= m;
      }
      table.slots_[b.position] = b.host;
      if (++filled == m) break;
    }
  }
  return table;
}

Result<LoadBalancerFactoryPtr> makeMaglevFactory(const config::Cluster& cluster) {
  return LoadBalancerFactoryPtr(
      std::make_shared<HashingFactory<MaglevTable, &config::LbOptions::maglev_table_size>>(
          cluster.lb_options));
}

}  // namespace gatehouse::lb

#include "lb/ring_hash.h"

#include <algorithm>
#include <charconv>
#include <numeric>

namespace gatehouse::lb {

Ring Ring::build(const HostSet& hosts, uint32_t replicas_per_weight) {
  Ring ring;
  const size_t n = hosts.hosts.size();
  if (n == 0) return ring;
  uint64_t wanted = 0;
  for (const Host& h : hosts.hosts) {
    wanted +=
        uint64_t{std::max<uint32_t>(h.weight, 1)} * std::max<uint32_t>(replicas_per_weight, 1);
  }
  const double scale = wanted > kMaxPoints ? static_cast<double>(kMaxPoints) / wanted : 1.0;

  // Points that collide are ordered by host name, so the ring does not depend on the order in
  // which the config lists the hosts.
  std::vector<uint32_t> by_name(n);
  std::iota(by_name.begin(), by_name.end(), 0U);
  std::sort(by_name.begin(), by_name.end(),
            [&](uint32_t a, uint32_t b) { return hosts.hosts[a].name < hosts.hosts[b].name; });
  std::vector<uint32_t> rank(n);
  for (uint32_t r = 0; r < n; ++r)
    rank[by_name[r]] = r;

  struct Point {
    uint64_t hash;
    uint32_t rank;
    uint32_t host;
  };
  std::vector<Point> points;
  points.reserve(std::min<uint64_t>(wanted, kMaxPoints + n));
  std::string text;
  for (uint32_t i = 0; i < n; ++i) {
    const Host& h = hosts.hosts[i];
    const auto count = std::max<uint64_t>(
        1, static_cast<uint64_t>(static_cast<double>(std::max<uint32_t>(h.weight, 1)) *
                                 std::max<uint32_t>(replicas_per_weight, 1) * scale));
    text.assign(h.name).push_back('#');
    const size_t prefix = text.size();
    for (uint64_t j = 0; j < count; ++j) {
      char digits[20];
      auto [end, ec] = std::to_chars(digits, digits + sizeof digits, j);
      text.resize(prefix);
      text.append(digits, end);
      points.push_back({xxh64(text), rank[i], i});
    }
  }
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
    return a.hash != b.hash ? a.hash < b.hash : a.rank < b.rank;
  });
  ring.hashes_.reserve(points.size());
  ring.hosts_.reserve(points.size());
  for (const Point& p : points) {
    ring.hashes_.push_back(p.hash);
    ring.hosts_.push_back(p.host);
  }
  return ring;
}

size_t Ring::position(uint64_t hash) const {
  auto it = std::lower_bound(hashes_.begin(), hashes_.end(), hash);
  return it == hashes_.end() ? 0 : static_cast<size_t>(it - hashes_.begin());
}

namespace {
using RingHashFactory = HashingFactory<Ring, &config::LbOptions::ring_replicas>;
}  // namespace

Result<LoadBalancerFactoryPtr> makeRingHashFactory(const config::Cluster& cluster) {
  return LoadBalancerFactoryPtr(std::make_shared<RingHashFactory>(cluster.lb_options));
}

Result<LoadBalancerFactoryPtr> makeIpHashFactory(const config::Cluster& cluster) {
  config::LbOptions options = cluster.lb_options;
  options.hash_key = config::HashKey{};  // source_ip
  return LoadBalancerFactoryPtr(std::make_shared<RingHashFactory>(options));
}

}  // namespace gatehouse::lb

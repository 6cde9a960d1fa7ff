// round_robin and random: who gets how many picks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lb/random.h"
#include "lb/round_robin.h"
#include "lb_test_util.h"

namespace gatehouse::lb {
namespace {

using test_util::chiSquare;
using test_util::chiSquareCritical001;
using test_util::equalHosts;
using test_util::makeHosts;

TEST(LbRoundRobin, WeightsFiveOneOneGiveTheNginxSequence) {
  // NGINX's smooth weighted round robin with a=5, b=1, c=1 (ngx_http_upstream_round_robin.c):
  // "a a b a c a a", every cycle, rather than a burst of five a's.
  RoundRobin rr(makeHosts({5, 1, 1}), 1);
  std::string seq;
  for (int i = 0; i < 7 * 3; ++i)
    seq += static_cast<char>('a' + rr.pick({}));
  EXPECT_EQ(seq,
            "aabacaa"
            "aabacaa"
            "aabacaa");
}

TEST(LbRoundRobin, WeightedIsExactOverACycleAndNeverBursts) {
  const std::vector<uint32_t> weights = {4, 3, 2, 1};
  RoundRobin rr(makeHosts(weights), 7);
  for (int cycle = 0; cycle < 5; ++cycle) {
    std::vector<uint32_t> count(weights.size());
    int last = -1;
    int run = 0;
    for (int i = 0; i < 10; ++i) {
      int h = rr.pick({});
      ASSERT_GE(h, 0);
      ++count[static_cast<size_t>(h)];
      run = h == last ? run + 1 : 1;
      last = h;
      EXPECT_LE(run, 2) << "burst to host " << h;
    }
    EXPECT_EQ(count, weights) << "cycle " << cycle;
  }
}

TEST(LbRoundRobin, EqualWeightsRotateFromARandomStart) {
  std::vector<int> firsts;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    RoundRobin rr(equalHosts(4), seed);
    int first = rr.pick({});
    firsts.push_back(first);
    for (int i = 1; i < 8; ++i)
      EXPECT_EQ(rr.pick({}), (first + i) % 4);
  }
  // Workers (seeds) do not all start on the same host.
  EXPECT_NE(std::count(firsts.begin(), firsts.end(), firsts[0]), 20);
}

TEST(LbRoundRobin, NoHosts) {
  RoundRobin rr(HostSet{}, 1);
  EXPECT_EQ(rr.pick({}), -1);
}

std::vector<uint64_t> countPicks(LoadBalancer& lb, size_t hosts, int picks) {
  std::vector<uint64_t> counts(hosts);
  for (int i = 0; i < picks; ++i) {
    int h = lb.pick({});
    EXPECT_GE(h, 0);
    EXPECT_LT(h, static_cast<int>(hosts));
    if (h >= 0 && static_cast<size_t>(h) < hosts) ++counts[static_cast<size_t>(h)];
  }
  return counts;
}

TEST(LbRandom, WeightedPassesChiSquare) {
  const std::vector<uint32_t> weights = {1, 2, 3, 4, 10};
  WeightedRandom lb(makeHosts(weights), 12345);
  auto counts = countPicks(lb, weights.size(), 100'000);
  std::vector<double> shares(weights.begin(), weights.end());
  double chi = chiSquare(counts, shares);
  EXPECT_LT(chi, chiSquareCritical001(weights.size() - 1));
}

TEST(LbRandom, UnweightedPassesChiSquare) {
  WeightedRandom lb(equalHosts(7), 99);
  auto counts = countPicks(lb, 7, 100'000);
  EXPECT_LT(chiSquare(counts, std::vector<double>(7, 1.0)), chiSquareCritical001(6));
}

TEST(LbRandom, SkewedWeightsStillReachTheLightHost) {
  const std::vector<uint32_t> weights = {10000, 1, 500, 1};
  WeightedRandom lb(makeHosts(weights), 3);
  auto counts = countPicks(lb, weights.size(), 200'000);
  std::vector<double> shares(weights.begin(), weights.end());
  EXPECT_GT(counts[1], 0u);
  EXPECT_GT(counts[3], 0u);
  EXPECT_LT(chiSquare(counts, shares), chiSquareCritical001(3));
}

TEST(LbRandom, SeedsDiffer) {
  WeightedRandom a(equalHosts(10), 1);
  WeightedRandom b(equalHosts(10), 2);
  int same = 0;
  for (int i = 0; i < 100; ++i)
    same += a.pick({}) == b.pick({}) ? 1 : 0;
  EXPECT_LT(same, 40);
}

TEST(LbRandom, NoHosts) {
  WeightedRandom lb(HostSet{}, 1);
  EXPECT_EQ(lb.pick({}), -1);
}

}  // namespace
}  // namespace gatehouse::lb

#pragma once
// A small, fast PRNG for per-worker balancer decisions (xoshiro256**, seeded through
// splitmix64). Not for anything secret. Each LoadBalancer owns one, so no locking; tests pass a
// fixed seed to get repeatable picks.
#include <bit>
#include <cstdint>

namespace gatehouse::lb {

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& s : state_) {
      seed += 0x9E3779B97F4A7C15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
      z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
      s = z ^ (z >> 31);
    }
  }

  uint64_t next() {
    const uint64_t result = std::rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = std::rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, n) by multiply-shift (Lemire) on 32 random bits; the bias, below n / 2^32,
  // is far under anything a balancer could notice. n must be > 0.
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(((next() >> 32) * n) >> 32); }

 private:
  uint64_t state_[4];
};

// A fresh seed from the OS, so that workers do not make the same "random" choices in step.
uint64_t randomSeed();

}  // namespace gatehouse::lb

#include "lb/rng.h"

#include <random>

namespace gatehouse::lb {

uint64_t randomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace gatehouse::lb

#pragma once
// XXH64 (https://github.com/Cyan4973/xxHash, doc/xxhash_spec.md), written out here because the
// hashing balancers need a hash that is the same on every worker, process, build and machine:
// std::hash promises none of that. Pure function; any thread.
#include <cstdint>
#include <string_view>

namespace gatehouse::lb {

uint64_t xxh64(std::string_view data, uint64_t seed = 0);

}  // namespace gatehouse::lb

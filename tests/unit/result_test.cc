#include "core/result.h"

#include <gtest/gtest.h>

namespace gatehouse {
namespace {

TEST(Result, HoldsValueOrError) {
  Result<int> ok = 42;
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(*ok, 42);
  Result<int> bad = Error::make(ErrorCode::kTimeout, ErrorSource::kUpstream, "slow", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kTimeout);
  EXPECT_TRUE(bad.error().retryable);
  EXPECT_EQ(toString(bad.error().code), "timeout");
}

}  // namespace
}  // namespace gatehouse

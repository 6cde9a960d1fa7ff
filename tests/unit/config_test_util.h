#pragma once
// Helpers shared by the config loader tests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "config/loader.h"

namespace gatehouse::config::test_util {

inline LoadResult load(std::string_view yaml) {
  return loadConfigString(yaml, "test.yaml");
}

inline std::string dump(const LoadResult& r) {
  std::string out;
  for (const ConfigError& e : r.errors)
    out += e.format() + "\n";
  return out;
}

inline Config loadOk(std::string_view yaml) {
  LoadResult r = load(yaml);
  EXPECT_TRUE(r.ok()) << dump(r);
  EXPECT_TRUE(r.errors.empty());
  return r.config.value_or(Config{});
}

// Loads `yaml`, expects exactly one error and returns it.
inline ConfigError onlyError(std::string_view yaml) {
  LoadResult r = load(yaml);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.errors.size(), 1u) << dump(r);
  return r.errors.empty() ? ConfigError{} : r.errors[0];
}

#define EXPECT_CONFIG_ERROR(err, want_line, want_path, want_message)            \
  do {                                                                          \
    const ConfigError& e_ = (err);                                              \
    EXPECT_EQ(e_.line, want_line) << e_.format();                               \
    EXPECT_EQ(e_.path, want_path) << e_.format();                               \
    EXPECT_THAT(e_.message, ::testing::HasSubstr(want_message)) << e_.format(); \
  } while (0)

// A route that needs no cluster, for tests about other things.
constexpr std::string_view kOkRoute = "direct_response: {status: 200}";

}  // namespace gatehouse::config::test_util

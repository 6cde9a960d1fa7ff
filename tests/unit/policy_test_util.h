#pragma once
// Builds a registered policy's factory from YAML text, as the snapshot builder does.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <string_view>

#include "http/filter.h"

namespace gatehouse::testutil {

inline http::FilterFactoryPtr buildPolicy(std::string_view name, const std::string& yaml,
                                          std::string* error = nullptr) {
  const auto* reg = http::findPolicy(name);
  EXPECT_NE(reg, nullptr) << name;
  if (!reg) return nullptr;
  auto r = reg->build(YAML::Load(yaml));
  if (!r.ok()) {
    if (error) *error = r.error().message;
    return nullptr;
  }
  return *r;
}

}  // namespace gatehouse::testutil

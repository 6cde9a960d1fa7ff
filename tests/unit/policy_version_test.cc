// The pure parts of the version policy: dates (Deprecation / Sunset) and media-type
// parameters, and the config errors.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include "policies/version/version.h"

namespace gatehouse::policies::version {
namespace {

TEST(VersionPolicy, ParsesDates) {
  EXPECT_EQ(parseDate("1970-01-02"), 86400);
  EXPECT_EQ(parseDate("2026-01-01T00:00:00Z"), 1767225600);
  EXPECT_EQ(parseDate("2026-01-01T02:00:00+02:00"), 1767225600);
  EXPECT_EQ(parseDate("2026-01-01T00:00:00-01:00"), 1767225600 + 3600);
  EXPECT_EQ(parseDate("@1688169599"), 1688169599);
  EXPECT_FALSE(parseDate("2026-13-01"));
  EXPECT_FALSE(parseDate("2026-01-01T00:00:00"));
  EXPECT_FALSE(parseDate("yesterday"));
  EXPECT_FALSE(parseDate("@"));
}

TEST(VersionPolicy, MediaTypeParameter) {
  EXPECT_EQ(mediaTypeParam("application/vnd.x+json; version=2", "version"), "2");
  EXPECT_EQ(mediaTypeParam("text/html, application/vnd.x+json;q=0.9;Version=\"3\"", "version"),
            "3");
  EXPECT_FALSE(mediaTypeParam("application/json", "version"));
  EXPECT_FALSE(mediaTypeParam("application/json; version=", "version"));
  EXPECT_FALSE(mediaTypeParam("", "version"));
}

TEST(VersionPolicy, ConfigErrors) {
  auto bad = [](const char* yaml) {
    auto r = build(YAML::Load(yaml), {});
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(bad("{versions: {'1': {}}}").find("default: required"), std::string::npos);
  EXPECT_NE(bad("{versions: {'1': {sunset: 2026-01-01}}, default: '1'}").find("need deprecated"),
            std::string::npos);
  EXPECT_NE(bad("{versions: {'1': {deprecated: 2026-01-01, gone_after_sunset: true}}, default: "
                "'1'}")
                .find("needs sunset"),
            std::string::npos);
  EXPECT_NE(bad("{versions: {'1': {}}, default: '1', unknown: maybe}").find("unknown"),
            std::string::npos);
  EXPECT_EQ(bad("{versions: {'1': {deprecated: 2026-01-01, sunset: 2027-01-01}, '2': {}}, "
                "default: '2', from: [header, path]}"),
            "");
}

}  // namespace
}  // namespace gatehouse::policies::version

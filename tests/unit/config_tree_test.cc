// config::configTree / diffTrees: what `gatehouse validate --diff-with` prints.
#include <gtest/gtest.h>

#include "config/config_tree.h"

namespace gatehouse::config {
namespace {

TEST(ConfigTree, RedactsSecretsButShowsTheyChanged) {
  auto a =
      configTree("redis: {password: hunter2}\nclusters:\n  - name: c\n    sticky: {key: abc}\n");
  ASSERT_TRUE(a.ok());
  const std::string pw = (*a)["redis"]["password"].get<std::string>();
  EXPECT_EQ(pw.find("hunter2"), std::string::npos);
  EXPECT_TRUE(pw.starts_with("<redacted sha256:")) << pw;
  EXPECT_EQ((*a)["clusters"][0]["sticky"]["key"].get<std::string>().find("abc"), std::string::npos);
  auto b =
      configTree("redis: {password: hunter3}\nclusters:\n  - name: c\n    sticky: {key: abc}\n");
  ASSERT_TRUE(b.ok());
  const auto changes = diffTrees(*a, *b);
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].path, "redis.password");
  EXPECT_EQ(formatChanges(changes).find("hunter"), std::string::npos);
}

// Keys of a map come out sorted (the tree's objects are ordered by key).
TEST(ConfigTree, NamedListsMatchByName) {
  auto a = configTree(R"(
clusters:
  - {name: a, lb: round_robin, endpoints: ["h:1", "h:2"]}
  - {name: b}
timeouts: {drain: 15s}
)");
  auto b = configTree(R"(
clusters:
  - {name: new}
  - {name: a, lb: least_conn, endpoints: ["h:1"]}
timeouts: {drain: 15s, client_header: 5s}
)");
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string text = formatChanges(diffTrees(*a, *b));
  EXPECT_EQ(text,
            "- clusters[a].endpoints[1]: \"h:2\"\n"
            "~ clusters[a].lb: \"round_robin\" -> \"least_conn\"\n"
            "- clusters[b]: {\"name\":\"b\"}\n"
            "+ clusters[new]: {\"name\":\"new\"}\n"
            "+ timeouts.client_header: \"5s\"\n");
  EXPECT_TRUE(diffTrees(*a, *a).empty());
}

TEST(ConfigTree, BadYamlIsAnError) {
  EXPECT_FALSE(configTree("a: [1, 2").ok());
}

}  // namespace
}  // namespace gatehouse::config

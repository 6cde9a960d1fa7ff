#pragma once
// The one reader of policy options: typed reads of a policy's YAML config that return error
// values naming the option (`what`), for every policy builder. Control thread only (builders
// run while a config snapshot is built). Scalar syntax (durations, sizes, booleans) is the
// config file's own (config/yaml_helpers.h), so a policy option reads like any other setting.
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace gatehouse::policies {

inline Error configError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}
// `what` + ": " + the message of `e` (an error of a nested reader).
Error prefixed(std::string_view what, const Error& e);

// Fails with "unknown option 'x'; expected one of: a, b" when `node` is a map with other keys.
Status checkKeys(const YAML::Node& node, std::initializer_list<std::string_view> allowed);
// The options of a policy whose options are all optional: `config` when it is a map, an empty
// map when it is absent or null, an error otherwise.
Result<YAML::Node> optionalMap(const YAML::Node& config);

Result<std::string> readString(const YAML::Node& node, std::string_view what);
// A string that must not be empty.
Result<std::string> readName(const YAML::Node& node, std::string_view what);
Result<int> readInt(const YAML::Node& node, std::string_view what, int min, int max);
// true or false (also yes/no, on/off, as everywhere in the config file).
Result<bool> readBool(const YAML::Node& node, std::string_view what);
// A decimal number in [lo, hi]; `range` is how the error shows it ("from 0 to 1").
Result<double> readDecimal(const YAML::Node& node, std::string_view what, double lo, double hi,
                           std::string_view range);
// A duration ("300ms", "5s", "10m") in [min, max]. The error reads "expected a duration from
// MIN to MAX, like `like`".
Result<std::chrono::milliseconds> readDuration(const YAML::Node& node, std::string_view what,
                                               std::chrono::milliseconds min,
                                               std::chrono::milliseconds max,
                                               std::string_view like = "30s or 5m");
// The same in whole milliseconds.
Result<int64_t> readDurationMs(const YAML::Node& node, std::string_view what, int64_t min_ms,
                               int64_t max_ms);
// A size ("64KiB", "1MiB") in [min, max] bytes; the error reads "expected a size from MIN to
// MAX, like `like`".
Result<uint64_t> readSize(const YAML::Node& node, std::string_view what, uint64_t min, uint64_t max,
                          std::string_view like);
// Option `key` of the map `config` into `out` when it is set (`out` keeps its default
// otherwise), read as above; errors name `what` (default: the key).
Status readOptional(const YAML::Node& config, const char* key, bool& out,
                    std::string_view what = {});
Status readOptional(const YAML::Node& config, const char* key, std::string& out,
                    std::string_view what = {});
// One of `names`: its index. The error reads "`what`: unknown `noun` 'x'; expected a, b or c".
Result<size_t> readChoiceIndex(const YAML::Node& node, std::string_view what,
                               std::span<const std::string_view> names, std::string_view noun);
// One of `choices` (name, value): the value of the name given.
template <class E>
Result<E> readChoice(const YAML::Node& node, std::string_view what,
                     std::initializer_list<std::pair<std::string_view, E>> choices,
                     std::string_view noun = "value") {
  std::string_view names[16];
  size_t n = 0;
  for (const auto& c : choices) {
    if (n < std::size(names)) names[n++] = c.first;
  }
  auto i = readChoiceIndex(node, what, std::span(names, n), noun);
  if (!i.ok()) return i.error();
  return (choices.begin() + *i)->second;
}
// One string or a list of strings.
Result<std::vector<std::string>> readStringList(const YAML::Node& node, std::string_view what);
// A non-empty list of strings; errors name the element (`what[i]`). `of` completes "expected a
// non-empty list of ..." when given.
Result<std::vector<std::string>> readNonEmptyList(const YAML::Node& node, std::string_view what,
                                                  std::string_view of = {});
// A map of names to header names ("forward_claims: {sub: x-user}"); `expected` completes
// "expected a map of ..." in the error.
Result<std::vector<std::pair<std::string, std::string>>> readHeaderMap(const YAML::Node& node,
                                                                       std::string_view what,
                                                                       std::string_view expected);

bool isHeaderName(std::string_view name);
bool isHeaderValue(std::string_view value);

}  // namespace gatehouse::policies

#pragma once
// Typed readers over yaml-cpp nodes for the config loader. Each reader reports a ConfigError
// (with the node's line and YAML path) and returns nullopt instead of throwing, so one pass
// over the document collects every error. Internal to config/; runs on the control thread.
#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "config/loader.h"
#include "config/model.h"

namespace gatehouse::config {

// "a.b" and "a[3]"; an empty parent gives just the key.
std::string childPath(std::string_view parent, std::string_view key);
std::string indexPath(std::string_view parent, size_t index);

// Collects errors for one file; stops recording (but keeps counting) past kMaxReportedErrors.
class Diagnostics {
 public:
  explicit Diagnostics(std::string file) : file_(std::move(file)) {}

  void add(const YAML::Mark& mark, std::string path, std::string message);
  void add(const YAML::Node& at, std::string path, std::string message);
  const std::string& file() const { return file_; }
  size_t count() const { return count_; }
  // Takes over `other`'s errors, which keep naming their own file (a document the config
  // refers to, such as an OpenAPI description).
  void absorb(Diagnostics& other);
  // Errors sorted by position (unpositioned first), plus a note if some were dropped.
  std::vector<ConfigError> take();

 private:
  std::string file_;
  std::vector<ConfigError> errors_;
  size_t count_ = 0;
};

// Scalar syntax, shared by the readers and the tests. nullopt = malformed.
// Durations: an integer of milliseconds, or a decimal number with ms, s, m or h ("1.5s").
std::optional<Millis> parseDuration(std::string_view text);
// Sizes: an integer of bytes, or an integer with B, KB, MB, GB (1000-based) or KiB, MiB, GiB.
std::optional<uint64_t> parseSize(std::string_view text);
std::optional<int64_t> parseInt(std::string_view text);
// Digits with an optional fraction: "1", "1.25". No sign, exponent, inf or nan.
std::optional<double> parseDecimal(std::string_view text);
// true/false, yes/no, on/off in any case (the YAML 1.1 spellings users write).
std::optional<bool> parseBool(std::string_view text);
// "250ms", "10s", "2m", "1h": the largest unit that divides the value exactly.
std::string formatDuration(Millis ms);
std::string formatSize(uint64_t bytes);

// "a, b, c", for "expected one of" messages.
std::string joinNames(std::span<const std::string_view> names);

// Where the value of `key` in `map` was written, or the map's own position if it has no such key.
YAML::Mark valueMark(const YAML::Node& map, std::string_view key);

// "a map", "a list", "an empty value" or "'text'", for "expected X, got Y" messages.
std::string describe(const YAML::Node& node);

// Value readers. `path` names `node` in errors.
std::optional<std::string> readString(Diagnostics& diag, const YAML::Node& node,
                                      const std::string& path, bool allow_empty = false);
std::optional<bool> readBool(Diagnostics& diag, const YAML::Node& node, const std::string& path);
std::optional<int64_t> readInt(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                               int64_t min, int64_t max);
std::optional<Millis> readDuration(Diagnostics& diag, const YAML::Node& node,
                                   const std::string& path, Millis min, Millis max);
std::optional<uint64_t> readSize(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                                 uint64_t min, uint64_t max);
// Reports anything but a sequence.
bool expectList(Diagnostics& diag, const YAML::Node& node, const std::string& path);
// expectList, and an empty list reported with `empty_message`: false for either.
bool expectNonEmptyList(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                        std::string empty_message);
// A list of CIDRs ("10.0.0.0/8", "::1"), appended to `out` in canonical form; each bad entry is
// reported at its line.
void readCidrList(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                  std::vector<std::string>& out);

// Longest a timeout may be; also keeps arithmetic on Millis far from overflow.
inline constexpr Millis kMaxDuration{7LL * 24 * 3600 * 1000};

// One YAML mapping checked against a fixed key list. The constructor reports a value that is
// not a map, keys that are not strings, duplicate keys and unknown keys (with a suggestion).
class MapReader {
 public:
  enum class Extensions { kReject, kIgnore };

  // With Extensions::kIgnore, keys starting with "x-" are skipped rather than reported, so a
  // file can keep anchored blocks there (`x-defaults: &defaults {...}`).
  MapReader(Diagnostics& diag, const YAML::Node& node, std::string path,
            std::span<const std::string_view> known, Extensions extensions = Extensions::kReject);

  bool isMap() const { return is_map_; }
  const YAML::Node& node() const { return node_; }
  const std::string& path() const { return path_; }
  std::string path(std::string_view key) const { return childPath(path_, key); }
  Diagnostics& diag() const { return diag_; }
  // The value for `key`, or nullptr when absent.
  const YAML::Node* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Reports "missing required option" (at the map) and returns false when `key` is absent.
  bool require(std::string_view key) const;
  // The key node itself, for errors that point at the key.
  const YAML::Node* findKey(std::string_view key) const;

  // Each reader leaves `out` untouched when the key is absent or the value is invalid.
  void read(std::string_view key, bool& out) const;
  void read(std::string_view key, std::string& out, bool allow_empty = false) const;
  void read(std::string_view key, std::optional<std::string>& out, bool allow_empty = false) const;
  void readDuration(std::string_view key, Millis min, Millis max, Millis& out) const;
  void readDuration(std::string_view key, Millis min, Millis max, std::optional<Millis>& out) const;
  template <typename T>
  void readInt(std::string_view key, int64_t min, int64_t max, T& out) const {
    if (const YAML::Node* v = find(key)) {
      if (auto n = gatehouse::config::readInt(diag_, *v, path(key), min, max)) {
        out = static_cast<T>(*n);
      }
    }
  }
  // A string (into a std::string or std::optional<std::string>) that must pass `valid(value)`;
  // otherwise `problem(value)` is reported.
  template <typename Out, typename Valid, typename Problem>
  void readChecked(std::string_view key, Out& out, Valid&& valid, Problem&& problem) const {
    if (const YAML::Node* v = find(key)) {
      std::optional<std::string> s = readString(diag_, *v, path(key));
      if (s && !valid(*s)) {
        diag_.add(*v, path(key), problem(*s));
      } else if (s) {
        out = std::move(*s);
      }
    }
  }
  template <typename T>
  void readSize(std::string_view key, uint64_t min, uint64_t max, T& out) const {
    if (const YAML::Node* v = find(key)) {
      if (auto n = gatehouse::config::readSize(diag_, *v, path(key), min, max)) {
        out = static_cast<T>(*n);
      }
    }
  }

 private:
  struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
  };
  Diagnostics& diag_;
  YAML::Node node_;
  std::string path_;
  std::vector<Entry> entries_;
  bool is_map_ = false;
};

// Calls `each(m)` with a MapReader for every item of the list at `node` that is a map; a
// value that is not a list, and items that are not maps, are reported and skipped.
template <typename Each>
void forEachMap(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                std::span<const std::string_view> known, Each&& each) {
  if (!expectList(diag, node, path)) return;
  size_t index = 0;
  for (const auto& item : node) {
    const MapReader m(diag, item, indexPath(path, index++), known);
    if (m.isMap()) each(m);
  }
}

// each(item, item_path, text) for every item of the sequence `node` (check it with expectList)
// that is a string; the others are reported.
template <typename Each>
void forEachString(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                   Each&& each) {
  size_t index = 0;
  for (const auto& item : node) {
    const std::string item_path = indexPath(path, index++);
    std::optional<std::string> text = readString(diag, item, item_path);
    if (text) each(item, item_path, std::move(*text));
  }
}

// Reads m[key] into `out` when it is one of `allowed`; else reports the choices and keeps `out`.
void readOneOf(const MapReader& m, std::string_view key, std::span<const std::string_view> allowed,
               std::string& out);

// readOneOf for an enum numbered 0, 1, 2, ... in the order of `names`, the first its default:
// when m has `key`, `out` is the value it names (the default for a name not in `names`).
template <typename Enum>
void readEnum(const MapReader& m, std::string_view key, std::span<const std::string_view> names,
              Enum& out) {
  if (!m.has(key)) return;
  std::string name(names.front());
  readOneOf(m, key, names, name);
  out = static_cast<Enum>(std::find(names.begin(), names.end(), name) - names.begin());
}

}  // namespace gatehouse::config

#include "config/yaml_helpers.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "config/syntax.h"

namespace gatehouse::config {

namespace {

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

// Reads a run of digits into `out`, saturating at `cap` so huge numbers still reach the range
// check and get a "must be at most" message instead of "malformed".
size_t readDigits(std::string_view s, size_t i, uint64_t cap, uint64_t& out) {
  out = 0;
  size_t start = i;
  for (; i < s.size() && isDigit(s[i]); ++i) {
    uint64_t d = static_cast<uint64_t>(s[i] - '0');
    out = (out > (cap - d) / 10) ? cap : out * 10 + d;
  }
  return i - start;
}

uint64_t saturatingMul(uint64_t a, uint64_t b) {
  if (b != 0 && a > std::numeric_limits<uint64_t>::max() / b) {
    return std::numeric_limits<uint64_t>::max();
  }
  return a * b;
}

size_t editDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + cost});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string rangeMessage(const std::string& min, const std::string& max, bool has_min,
                         const std::string& got) {
  if (!has_min) return "must be at most " + max + ", got " + got;
  return "must be between " + min + " and " + max + ", got " + got;
}

// What readInt, readDuration and readSize share: parse the scalar, then check it against
// [min, max]. `expected` says what a valid value looks like; `format` writes a bound in the
// error; without a lower bound (`has_min` false) the range reads "at most max".
template <typename T, typename Parse, typename Format>
std::optional<T> readInRange(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                             std::string_view expected, Parse parse, Format format, T min, T max,
                             bool has_min) {
  std::optional<T> v;
  if (node.IsScalar()) v = parse(node.Scalar());
  if (!v) {
    diag.add(node, path, "expected " + std::string(expected) + ", got " + describe(node));
    return std::nullopt;
  }
  if (*v < min || *v > max) {
    diag.add(node, path, rangeMessage(format(min), format(max), has_min, node.Scalar()));
    return std::nullopt;
  }
  return v;
}

}  // namespace

std::string childPath(std::string_view parent, std::string_view key) {
  std::string out(parent);
  if (!out.empty()) out += '.';
  out += key;
  return out;
}

std::string indexPath(std::string_view parent, size_t index) {
  std::string out(parent);
  out += '[';
  out += std::to_string(index);
  out += ']';
  return out;
}

void Diagnostics::add(const YAML::Mark& mark, std::string path, std::string message) {
  ++count_;
  if (errors_.size() >= kMaxReportedErrors) return;
  ConfigError e;
  e.file = file_;
  if (!mark.is_null()) {
    e.line = mark.line + 1;
    e.column = mark.column + 1;
  }
  e.path = std::move(path);
  e.message = std::move(message);
  errors_.push_back(std::move(e));
}

void Diagnostics::add(const YAML::Node& at, std::string path, std::string message) {
  add(at.IsDefined() ? at.Mark() : YAML::Mark::null_mark(), std::move(path), std::move(message));
}

void Diagnostics::absorb(Diagnostics& other) {
  const size_t dropped = other.count_ - other.errors_.size();
  for (ConfigError& e : other.errors_) {
    ++count_;
    if (errors_.size() < kMaxReportedErrors) errors_.push_back(std::move(e));
  }
  count_ += dropped;
  other.errors_.clear();
  other.count_ = 0;
}

std::vector<ConfigError> Diagnostics::take() {
  std::stable_sort(errors_.begin(), errors_.end(), [](const ConfigError& a, const ConfigError& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  if (count_ > errors_.size()) {
    ConfigError more;
    more.file = file_;
    more.message = std::to_string(count_ - errors_.size()) + " more errors not shown";
    errors_.push_back(std::move(more));
  }
  count_ = 0;
  return std::move(errors_);
}

std::optional<Millis> parseDuration(std::string_view text) {
  constexpr uint64_t kCap = std::numeric_limits<int64_t>::max();
  uint64_t whole = 0;
  size_t i = readDigits(text, 0, kCap, whole);
  if (i == 0) return std::nullopt;
  uint64_t frac = 0;
  uint64_t frac_scale = 1;
  if (i < text.size() && text[i] == '.') {
    ++i;
    size_t frac_digits = 0;
    for (; i < text.size() && isDigit(text[i]); ++i, ++frac_digits) {
      if (frac_digits >= 9) return std::nullopt;  // finer than any unit we accept
      frac = frac * 10 + static_cast<uint64_t>(text[i] - '0');
      frac_scale *= 10;
    }
    if (frac_digits == 0) return std::nullopt;
  }
  std::string_view unit = text.substr(i);
  uint64_t unit_ms = 0;
  if (unit.empty()) {
    if (frac_scale != 1) return std::nullopt;  // "1.5" has no unit to scale by
    unit_ms = 1;
  } else if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60'000;
  } else if (unit == "h") {
    unit_ms = 3'600'000;
  } else {
    return std::nullopt;
  }
  // Sub-millisecond remainders would be silently dropped; refuse them instead.
  if ((frac * unit_ms) % frac_scale != 0) return std::nullopt;
  uint64_t total = saturatingMul(whole, unit_ms);
  uint64_t extra = frac * unit_ms / frac_scale;
  total = total > kCap - extra ? kCap : total + extra;
  return Millis(static_cast<int64_t>(total));
}

std::optional<uint64_t> parseSize(std::string_view text) {
  constexpr uint64_t kCap = std::numeric_limits<uint64_t>::max();
  uint64_t n = 0;
  size_t i = readDigits(text, 0, kCap, n);
  if (i == 0) return std::nullopt;
  std::string_view unit = text.substr(i);
  uint64_t scale = 0;
  if (unit.empty() || unit == "B") {
    scale = 1;
  } else if (unit == "KB") {
    scale = 1000;
  } else if (unit == "MB") {
    scale = 1000 * 1000;
  } else if (unit == "GB") {
    scale = 1000 * 1000 * 1000;
  } else if (unit == "KiB") {
    scale = uint64_t{1} << 10;
  } else if (unit == "MiB") {
    scale = uint64_t{1} << 20;
  } else if (unit == "GiB") {
    scale = uint64_t{1} << 30;
  } else {
    return std::nullopt;
  }
  return saturatingMul(n, scale);
}

std::optional<int64_t> parseInt(std::string_view text) {
  bool negative = false;
  if (!text.empty() && (text[0] == '-' || text[0] == '+')) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  uint64_t n = 0;
  constexpr uint64_t kCap = uint64_t{1} << 62;  // far outside every range we check
  size_t digits = readDigits(text, 0, kCap, n);
  if (digits == 0 || digits != text.size()) return std::nullopt;
  int64_t v = static_cast<int64_t>(n);
  return negative ? -v : v;
}

std::optional<double> parseDecimal(std::string_view text) {
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  auto digits = [](std::string_view s) { return std::all_of(s.begin(), s.end(), isDigit); };
  if (whole.empty() || !digits(whole) || !digits(frac)) return std::nullopt;
  if (dot != std::string_view::npos && frac.empty()) return std::nullopt;  // "1."
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<bool> parseBool(std::string_view text) {
  if (text.size() > 5) return std::nullopt;
  std::string lower;
  for (char c : text)
    lower += lowerAscii(c);
  if (lower == "true" || lower == "yes" || lower == "on") return true;
  if (lower == "false" || lower == "no" || lower == "off") return false;
  return std::nullopt;
}

std::string formatDuration(Millis ms) {
  int64_t v = ms.count();
  if (v != 0 && v % 3'600'000 == 0) return std::to_string(v / 3'600'000) + "h";
  if (v != 0 && v % 60'000 == 0) return std::to_string(v / 60'000) + "m";
  if (v != 0 && v % 1000 == 0) return std::to_string(v / 1000) + "s";
  return std::to_string(v) + "ms";
}

std::string formatSize(uint64_t bytes) {
  if (bytes != 0 && bytes % (uint64_t{1} << 30) == 0) return std::to_string(bytes >> 30) + "GiB";
  if (bytes != 0 && bytes % (uint64_t{1} << 20) == 0) return std::to_string(bytes >> 20) + "MiB";
  if (bytes != 0 && bytes % (uint64_t{1} << 10) == 0) return std::to_string(bytes >> 10) + "KiB";
  return std::to_string(bytes);
}

std::string joinNames(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

YAML::Mark valueMark(const YAML::Node& map, std::string_view key) {
  if (map.IsMap()) {
    for (const auto& kv : map) {
      if (kv.first.IsScalar() && kv.first.Scalar() == key) return kv.second.Mark();
    }
  }
  return map.Mark();
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Undefined:
      return "nothing";
    case YAML::NodeType::Scalar:
      break;
  }
  constexpr size_t kShown = 40;
  const std::string& s = node.Scalar();
  std::string out = "'";
  out += s.substr(0, kShown);
  if (s.size() > kShown) out += "...";
  out += "'";
  return out;
}

std::optional<std::string> readString(Diagnostics& diag, const YAML::Node& node,
                                      const std::string& path, bool allow_empty) {
  if (!node.IsScalar()) {
    diag.add(node, path, "expected a string, got " + describe(node));
    return std::nullopt;
  }
  if (!allow_empty && node.Scalar().empty()) {
    diag.add(node, path, "must not be empty");
    return std::nullopt;
  }
  return node.Scalar();
}

std::optional<bool> readBool(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  std::optional<bool> v;
  if (node.IsScalar()) v = parseBool(node.Scalar());
  if (!v) diag.add(node, path, "expected true or false, got " + describe(node));
  return v;
}

std::optional<int64_t> readInt(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                               int64_t min, int64_t max) {
  const auto format = [](int64_t n) { return std::to_string(n); };
  return readInRange(diag, node, path, "an integer", parseInt, format, min, max, true);
}

std::optional<Millis> readDuration(Diagnostics& diag, const YAML::Node& node,
                                   const std::string& path, Millis min, Millis max) {
  return readInRange(diag, node, path, "a duration like 250ms, 10s, 1m", parseDuration,
                     formatDuration, min, max, min.count() > 0);
}

std::optional<uint64_t> readSize(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                                 uint64_t min, uint64_t max) {
  return readInRange(diag, node, path, "a size like 512, 8KiB, 10MiB", parseSize, formatSize, min,
                     max, min > 0);
}

bool expectList(Diagnostics& diag, const YAML::Node& node, const std::string& path) {
  if (node.IsSequence()) return true;
  diag.add(node, path, "expected a list, got " + describe(node));
  return false;
}

MapReader::MapReader(Diagnostics& diag, const YAML::Node& node, std::string path,
                     std::span<const std::string_view> known, Extensions extensions)
    : diag_(diag), node_(node), path_(std::move(path)) {
  if (!node.IsMap()) {
    diag_.add(node, path_, "expected a map, got " + describe(node));
    return;
  }
  is_map_ = true;
  for (const auto& kv : node) {
    const YAML::Node& key_node = kv.first;
    if (!key_node.IsScalar()) {
      diag_.add(key_node, path_, "keys must be strings, got " + describe(key_node));
      continue;
    }
    const std::string& key = key_node.Scalar();
    if (extensions == Extensions::kIgnore && key.starts_with("x-")) continue;
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string message = "unknown option '" + key + "'; expected one of: " + joinNames(known);
      // Suggest only for near misses; a distance of 2 catches swaps and most typos.
      constexpr size_t kMaxSuggestDistance = 2;
      constexpr size_t kMaxKeyLength = 64;
      std::string_view best;
      size_t best_distance = kMaxSuggestDistance + 1;
      for (std::string_view k : known) {
        if (key.size() > kMaxKeyLength) break;
        size_t d = editDistance(key, k);
        if (d < best_distance) {
          best_distance = d;
          best = k;
        }
      }
      if (!best.empty()) message += " (did you mean '" + std::string(best) + "'?)";
      diag_.add(key_node, childPath(path_, key), std::move(message));
      continue;
    }
    if (const YAML::Node* first = findKey(key)) {
      diag_.add(key_node, childPath(path_, key),
                "duplicate key '" + key + "' (first at line " +
                    std::to_string(first->Mark().line + 1) + ")");
      continue;
    }
    entries_.push_back(Entry{key, key_node, kv.second});
  }
}

const YAML::Node* MapReader::find(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

const YAML::Node* MapReader::findKey(std::string_view key) const {
  for (const Entry& e : entries_) {
    if (e.key == key) return &e.key_node;
  }
  return nullptr;
}

bool MapReader::require(std::string_view key) const {
  if (!is_map_) return false;
  if (has(key)) return true;
  diag_.add(node_, path(key), "missing required option '" + std::string(key) + "'");
  return false;
}

void MapReader::read(std::string_view key, bool& out) const {
  if (const YAML::Node* v = find(key)) {
    if (auto b = readBool(diag_, *v, path(key))) out = *b;
  }
}

void MapReader::read(std::string_view key, std::string& out, bool allow_empty) const {
  if (const YAML::Node* v = find(key)) {
    if (auto s = readString(diag_, *v, path(key), allow_empty)) out = std::move(*s);
  }
}

void MapReader::read(std::string_view key, std::optional<std::string>& out,
                     bool allow_empty) const {
  if (const YAML::Node* v = find(key)) {
    if (auto s = readString(diag_, *v, path(key), allow_empty)) out = std::move(*s);
  }
}

void MapReader::readDuration(std::string_view key, Millis min, Millis max, Millis& out) const {
  if (const YAML::Node* v = find(key)) {
    if (auto d = gatehouse::config::readDuration(diag_, *v, path(key), min, max)) out = *d;
  }
}

void MapReader::readDuration(std::string_view key, Millis min, Millis max,
                             std::optional<Millis>& out) const {
  if (const YAML::Node* v = find(key)) {
    if (auto d = gatehouse::config::readDuration(diag_, *v, path(key), min, max)) out = *d;
  }
}

void readOneOf(const MapReader& m, std::string_view key, std::span<const std::string_view> allowed,
               std::string& out) {
  std::string v = out;
  m.read(key, v);
  if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
    std::string list;
    for (auto a : allowed)
      list += (list.empty() ? "" : ", ") + std::string(a);
    m.diag().add(*m.find(key), m.path(key), "must be one of " + list + ", got '" + v + "'");
    return;
  }
  out = v;
}

bool expectNonEmptyList(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                        std::string empty_message) {
  if (!expectList(diag, node, path)) return false;
  if (node.size() > 0) return true;
  diag.add(node, path, std::move(empty_message));
  return false;
}

void readCidrList(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                  std::vector<std::string>& out) {
  if (!expectList(diag, node, path)) return;
  forEachString(diag, node, path,
                [&](const YAML::Node& item, const std::string& item_path, std::string text) {
                  Result<std::string> cidr = normalizeCidr(text);
                  if (!cidr) {
                    diag.add(item, item_path, "invalid CIDR: " + cidr.error().message);
                    return;
                  }
                  out.push_back(std::move(*cidr));
                });
}

}  // namespace gatehouse::config

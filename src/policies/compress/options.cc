// The `compress` policy's options (control thread) and its Content-Type match (workers).
#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "core/strings.h"
#include "http/headers.h"
#include "policies/compress/compress.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::compress {
namespace {

using gatehouse::compress::algorithmOf;
using gatehouse::compress::kAllAlgorithms;
using gatehouse::compress::levelRange;
using gatehouse::compress::tokenOf;

// Bodies that compress well and that clients expect compressed; images, audio, video and
// archives are compressed already.
constexpr std::string_view kDefaultTypes[] = {"text/*",
                                              "application/json",
                                              "application/javascript",
                                              "application/xml",
                                              "application/x-ndjson",
                                              "application/wasm",
                                              "+json",
                                              "+xml"};
constexpr uint64_t kDefaultMaxDecoded = 10ull << 20;

Result<MediaPattern> readPattern(std::string_view text, std::string_view what) {
  MediaPattern p;
  if (text.size() > 1 && text[0] == '+') {
    p.suffix.assign(text);
  } else {
    const size_t slash = text.find('/');
    if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size()) {
      return configError(std::string(what) + ": '" + std::string(text) +
                         "' is not a media type (text/*, application/json or +json)");
    }
    p.type.assign(text.substr(0, slash));
    if (text.substr(slash + 1) != "*") p.subtype.assign(text.substr(slash + 1));
  }
  for (std::string* s : {&p.type, &p.subtype, &p.suffix}) {
    std::transform(s->begin(), s->end(), s->begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  return p;
}

Status readAlgorithms(const YAML::Node& node, Options& o) {
  auto names = readNonEmptyList(node, "algorithms", "codings (br, zstd, gzip)");
  if (!names.ok()) return names.error();
  o.algorithms.clear();
  for (const auto& name : *names) {
    auto a = algorithmOf(name);
    if (!a || name == "x-gzip") {
      return configError("algorithms: unknown coding '" + name + "'; expected br, zstd or gzip");
    }
    if (std::find(o.algorithms.begin(), o.algorithms.end(), *a) != o.algorithms.end()) {
      return configError("algorithms: '" + name + "' is listed twice");
    }
    o.algorithms.push_back(*a);
  }
  return {};
}

Status readLevels(const YAML::Node& node, Options& o) {
  if (!node.IsMap()) return configError("levels: expected a map like {gzip: 6, br: 4, zstd: 3}");
  for (const auto& kv : node) {
    const std::string name = kv.first.as<std::string>("");
    auto a = algorithmOf(name);
    if (!a || name == "x-gzip") {
      return configError("levels: unknown coding '" + name + "'; expected br, zstd or gzip");
    }
    const auto range = levelRange(*a);
    auto level = readInt(kv.second, "levels." + name, range.min, range.max);
    if (!level.ok()) return level.error();
    o.levels[static_cast<size_t>(*a)] = *level;
  }
  return {};
}

Status readRequestDecompression(const YAML::Node& node, Options& o) {
  if (auto st = checkKeys(node, {"enabled", "max_size"}); !st.ok()) {
    return prefixed("request_decompression", st.error());
  }
  o.decode_requests = true;
  if (auto st = readOptional(node, "enabled", o.decode_requests, "request_decompression.enabled");
      !st.ok()) {
    return st;
  }
  if (node["max_size"]) {
    auto size = readSize(node["max_size"], "request_decompression.max_size", 1, 1ull << 32,
                         "1MiB or 64MiB");
    if (!size.ok()) return size.error();
    o.max_decoded_size = *size;
  }
  return {};
}

}  // namespace

Result<Options> parseOptions(const YAML::Node& config) {
  auto map = optionalMap(config);
  if (!map.ok()) return map.error();
  const YAML::Node& c = *map;
  if (auto st = checkKeys(
          c, {"algorithms", "min_size", "content_types", "levels", "request_decompression"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  o.algorithms = {Algorithm::kBrotli, Algorithm::kZstd, Algorithm::kGzip};
  for (Algorithm a : kAllAlgorithms)
    o.levels[static_cast<size_t>(a)] = levelRange(a).fallback;
  o.max_decoded_size = kDefaultMaxDecoded;
  if (c["algorithms"]) {
    if (auto st = readAlgorithms(c["algorithms"], o); !st.ok()) return st.error();
  }
  if (c["levels"]) {
    if (auto st = readLevels(c["levels"], o); !st.ok()) return st.error();
  }
  if (c["min_size"]) {
    auto size = readSize(c["min_size"], "min_size", 0, 1ull << 30, "256 or 1KiB");
    if (!size.ok()) return size.error();
    o.min_size = *size;
  }
  std::vector<std::string> types(std::begin(kDefaultTypes), std::end(kDefaultTypes));
  if (c["content_types"]) {
    auto list = readNonEmptyList(c["content_types"], "content_types", "media types");
    if (!list.ok()) return list.error();
    types = std::move(*list);
  }
  for (const auto& t : types) {
    auto p = readPattern(t, "content_types");
    if (!p.ok()) return p.error();
    o.content_types.push_back(std::move(*p));
  }
  if (c["request_decompression"]) {
    if (auto st = readRequestDecompression(c["request_decompression"], o); !st.ok()) {
      return st.error();
    }
  }
  return o;
}

bool matchesMediaType(std::string_view content_type, const std::vector<MediaPattern>& patterns) {
  const std::string_view media =
      strings::trimSpaces(content_type.substr(0, content_type.find(';')));
  const size_t slash = media.find('/');
  if (slash == std::string_view::npos) return false;
  const std::string_view type = media.substr(0, slash);
  const std::string_view subtype = media.substr(slash + 1);
  for (const auto& p : patterns) {
    if (!p.suffix.empty()) {
      if (subtype.size() > p.suffix.size() &&
          http::iequals(subtype.substr(subtype.size() - p.suffix.size()), p.suffix)) {
        return true;
      }
    } else if (http::iequals(type, p.type) &&
               (p.subtype.empty() || http::iequals(subtype, p.subtype))) {
      return true;
    }
  }
  return false;
}

}  // namespace gatehouse::policies::compress

#include "policies/graphql/config.h"

#include <openssl/sha.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "policies/policy_yaml.h"

namespace gatehouse::policies::graphql {
namespace {

Status readLimit(const YAML::Node& config, const char* key, uint64_t& out) {
  if (!config[key]) return {};
  auto n = readInt(config[key], key, 1, 1'000'000'000);
  if (!n.ok()) return n.error();
  out = static_cast<uint64_t>(*n);
  return {};
}

bool isSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Status addHash(PersistedQueries& pq, std::string hash, std::string_view what) {
  for (char& c : hash)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  if (!isSha256Hex(hash)) {
    return configError(std::string(what) + ": '" + hash + "' is not a hex SHA-256 hash");
  }
  pq.hashes.insert(std::move(hash));
  return {};
}

// A persisted query list file: a JSON object {"<sha256>": "<query>", ...} (a manifest with the
// texts: hash-only requests can be served), or plain text with one hash per line ('#' comments).
Status loadPersistedFile(const std::string& file, PersistedQueries& pq) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return configError("persisted_queries.file: cannot read '" + file + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    auto doc = nlohmann::json::parse(text, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      return configError("persisted_queries.file: '" + file + "' is not a JSON object");
    }
    for (auto it = doc.begin(); it != doc.end(); ++it) {
      if (!it.value().is_string()) {
        return configError("persisted_queries.file: '" + file + "': the value of '" + it.key() +
                           "' is not a query string");
      }
      const std::string& query = it.value().get_ref<const std::string&>();
      if (sha256Hex(query) != it.key()) {
        return configError("persisted_queries.file: '" + file + "': '" + it.key() +
                           "' is not the SHA-256 of its query");
      }
      if (auto st = addHash(pq, it.key(), "persisted_queries.file"); !st.ok()) return st;
      pq.texts.emplace(it.key(), query);
    }
    return {};
  }
  std::istringstream lines(text);
  std::string line;
  size_t n = 0;
  while (std::getline(lines, line)) {
    ++n;
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    const size_t e = line.find_last_not_of(" \t\r");
    auto st = addHash(pq, line.substr(b, e - b + 1),
                      "persisted_queries.file: " + file + ":" + std::to_string(n));
    if (!st.ok()) return st;
  }
  return {};
}

Status parsePersisted(const YAML::Node& n, PersistedQueries& pq) {
  if (!n.IsMap()) return configError("persisted_queries: expected a map");
  if (auto st = checkKeys(n, {"hashes", "file", "queries", "allow_unlisted"}); !st.ok()) {
    return prefixed("persisted_queries", st.error());
  }
  pq.enabled = true;
  if (auto st =
          readOptional(n, "allow_unlisted", pq.allow_unlisted, "persisted_queries.allow_unlisted");
      !st.ok()) {
    return st;
  }
  if (n["hashes"]) {
    auto list = readStringList(n["hashes"], "persisted_queries.hashes");
    if (!list.ok()) return list.error();
    for (auto& h : *list) {
      if (auto st = addHash(pq, std::move(h), "persisted_queries.hashes"); !st.ok()) return st;
    }
  }
  if (n["queries"]) {  // inline query texts: their hashes are computed here
    auto list = readStringList(n["queries"], "persisted_queries.queries");
    if (!list.ok()) return list.error();
    for (auto& q : *list) {
      std::string h = sha256Hex(q);
      pq.hashes.insert(h);
      pq.texts.emplace(std::move(h), std::move(q));
    }
  }
  if (n["file"]) {
    auto file = readName(n["file"], "persisted_queries.file");
    if (!file.ok()) return file.error();
    if (auto st = loadPersistedFile(*file, pq); !st.ok()) return st;
  }
  if (pq.hashes.empty() && !pq.allow_unlisted) {
    return configError("persisted_queries: no hashes given (hashes, queries or file)");
  }
  return {};
}

Status parseCost(const YAML::Node& n, gatehouse::graphql::CostOptions& cost) {
  if (!n.IsMap()) return configError("cost: expected a map");
  if (auto st = checkKeys(n, {"default", "fields", "list_arguments", "default_list_size"});
      !st.ok()) {
    return prefixed("cost", st.error());
  }
  if (n["default"]) {
    auto d = readInt(n["default"], "cost.default", 0, 1000000);
    if (!d.ok()) return d.error();
    cost.default_field_cost = static_cast<uint64_t>(*d);
  }
  if (n["default_list_size"]) {
    auto d = readInt(n["default_list_size"], "cost.default_list_size", 0, 1000000);
    if (!d.ok()) return d.error();
    cost.default_list_size = static_cast<uint64_t>(*d);
  }
  if (n["list_arguments"]) {
    auto list = readStringList(n["list_arguments"], "cost.list_arguments");
    if (!list.ok()) return list.error();
    cost.list_arguments = std::move(*list);
  }
  if (const auto& f = n["fields"]) {
    if (!f.IsMap()) return configError("cost.fields: expected a map of field name to cost");
    for (auto it = f.begin(); it != f.end(); ++it) {
      const std::string name = it->first.as<std::string>("");
      auto c = readInt(it->second, "cost.fields." + name, 0, 1000000);
      if (!c.ok()) return c.error();
      cost.field_costs[name] = static_cast<uint64_t>(*c);
    }
  }
  return {};
}

Status parseIntrospection(const YAML::Node& n, Introspection& in) {
  if (n.IsScalar()) {
    auto b = readBool(n, "introspection");
    if (!b.ok()) return b.error();
    in.enabled = *b;
    return {};
  }
  if (!n.IsMap()) return configError("introspection: expected true, false or a map");
  if (auto st = checkKeys(n, {"enabled", "allow_consumers", "deny_consumers"}); !st.ok()) {
    return prefixed("introspection", st.error());
  }
  if (auto st = readOptional(n, "enabled", in.enabled, "introspection.enabled"); !st.ok())
    return st;
  for (const char* key : {"allow_consumers", "deny_consumers"}) {
    if (!n[key]) continue;
    auto list = readStringList(n[key], std::string("introspection.") + key);
    if (!list.ok()) return list.error();
    auto& set = std::string_view(key) == "allow_consumers" ? in.allow_consumers : in.deny_consumers;
    for (auto& c : *list)
      set.insert(std::move(c));
  }
  return {};
}

Status parseRouting(const YAML::Node& n, GraphqlConfig& c) {
  if (!n.IsMap()) return configError("routing: expected a map");
  if (auto st = checkKeys(n, {"operations", "types"}); !st.ok())
    return prefixed("routing", st.error());
  for (const char* key : {"operations", "types"}) {
    const YAML::Node& m = n[key];
    if (!m) continue;
    const std::string what = std::string("routing.") + key;
    if (!m.IsMap()) return configError(what + ": expected a map of name to cluster");
    const bool types = std::string_view(key) == "types";
    for (auto it = m.begin(); it != m.end(); ++it) {
      const std::string name = it->first.as<std::string>("");
      if (types && name != "query" && name != "mutation" && name != "subscription") {
        return configError(what + ": unknown operation type '" + name +
                           "'; expected query, mutation or subscription");
      }
      auto cluster = readName(it->second, what + "." + name);
      if (!cluster.ok()) return cluster.error();
      (types ? c.route_types : c.route_operations)[name] = std::move(*cluster);
    }
  }
  return {};
}

}  // namespace

std::string sha256Hex(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(SHA256_DIGEST_LENGTH * 2, '0');
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

Result<GraphqlConfig> parseConfig(const YAML::Node& node) {
  auto m = optionalMap(node);
  if (!m.ok()) return m.error();
  const YAML::Node& config = *m;
  if (auto st =
          checkKeys(config, {"max_body", "max_document_bytes", "max_nesting", "max_depth",
                             "max_aliases", "max_fields", "max_cost", "cost", "persisted_queries",
                             "introspection", "allow_get", "error_status", "routing"});
      !st.ok()) {
    return st.error();
  }
  GraphqlConfig c;
  if (config["max_body"]) {
    auto n = readSize(config["max_body"], "max_body", 64, uint64_t{1} << 30, "a size like 1mb");
    if (!n.ok()) return n.error();
    c.max_body_bytes = *n;
  }
  if (config["max_document_bytes"]) {
    auto n = readSize(config["max_document_bytes"], "max_document_bytes", 16, uint64_t{1} << 30,
                      "a size like 64kb");
    if (!n.ok()) return n.error();
    c.parse.max_bytes = *n;
  }
  if (config["max_nesting"]) {
    auto n = readInt(config["max_nesting"], "max_nesting", 2, 4096);
    if (!n.ok()) return n.error();
    c.parse.max_nesting = static_cast<uint32_t>(*n);
  }
  for (auto [key, out] :
       {std::pair{"max_depth", &c.max_depth}, std::pair{"max_aliases", &c.max_aliases},
        std::pair{"max_fields", &c.max_fields}, std::pair{"max_cost", &c.max_cost}}) {
    if (auto st = readLimit(config, key, *out); !st.ok()) return st.error();
  }
  if (config["cost"]) {
    if (auto st = parseCost(config["cost"], c.cost); !st.ok()) return st.error();
  }
  if (config["persisted_queries"]) {
    if (auto st = parsePersisted(config["persisted_queries"], c.persisted); !st.ok())
      return st.error();
  }
  if (config["introspection"]) {
    if (auto st = parseIntrospection(config["introspection"], c.introspection); !st.ok()) {
      return st.error();
    }
  }
  if (auto st = readOptional(config, "allow_get", c.allow_get, "allow_get"); !st.ok())
    return st.error();
  if (config["error_status"]) {
    auto s = readInt(config["error_status"], "error_status", 200, 599);
    if (!s.ok()) return s.error();
    if (*s != 200 && *s != 400 && *s != 422) {
      return configError("error_status: expected 200 or 400 (or 422)");
    }
    c.error_status = *s;
  }
  if (config["routing"]) {
    if (auto st = parseRouting(config["routing"], c); !st.ok()) return st.error();
  }
  return c;
}

}  // namespace gatehouse::policies::graphql

#include "config/openapi_routes_loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <span>

#include "config/route_loader.h"
#include "config/syntax.h"
#include "config/yaml_document.h"

namespace gatehouse::config {

namespace {

constexpr std::string_view kKeys[] = {"spec",
                                      "base_path",
                                      "cluster",
                                      "clusters_by_tag",
                                      "clusters_by_operation",
                                      "policies",
                                      "policies_by_tag",
                                      "policies_by_operation",
                                      "validate",
                                      "method_not_allowed"};
// The validate map is openapi_validate's config without the two options set from here.
constexpr std::string_view kValidateKeys[] = {"responses", "formats", "max_body_size",
                                              "max_errors"};
constexpr std::string_view kMethods[] = {"get",     "put",  "post",  "delete",
                                         "options", "head", "patch", "trace"};

bool isIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// "{pet-id}" -> "pet_id": router variables are identifiers; OpenAPI names need not be.
std::string routeVariable(std::string_view name, std::vector<std::string>& taken) {
  std::string out;
  for (char c : name)
    out += isIdentChar(c) ? c : '_';
  if (out.empty() || (out[0] >= '0' && out[0] <= '9')) out.insert(0, "_");
  std::string unique = out;
  for (int n = 2; std::find(taken.begin(), taken.end(), unique) != taken.end(); ++n)
    unique = out + "_" + std::to_string(n);
  taken.push_back(unique);
  return unique;
}

// The router's template for an OpenAPI path, or an error when a variable is not a whole
// segment ("/files/{name}.json"), which the router cannot express.
Result<std::string> routeTemplate(std::string_view path) {
  std::string out;
  std::vector<std::string> taken;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string_view::npos) end = path.size();
    std::string_view seg = path.substr(pos, end - pos);
    out += '/';
    if (seg.find_first_of("{}") == std::string_view::npos) {
      out += seg;
    } else if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}' &&
               seg.substr(1, seg.size() - 2).find_first_of("{}") == std::string_view::npos) {
      out += "{" + routeVariable(seg.substr(1, seg.size() - 2), taken) + "}";
    } else {
      return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                         "segment '" + std::string(seg) +
                             "' mixes a variable with text; routes need whole-segment variables "
                             "like /items/{id}");
    }
    pos = end + 1;
  }
  return out;
}

// Literal segments before variable ones, segment by segment: OpenAPI's "concrete paths match
// first" (/users/login before /users/{name}), as the router takes the first route that matches.
std::vector<bool> specificityKey(std::string_view tmpl) {
  std::vector<bool> key;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] == '/') key.push_back(i + 1 < tmpl.size() && tmpl[i + 1] == '{');
  }
  return key;
}

void readOperation(Diagnostics& diag, const std::string& path, const std::string& method,
                   const YAML::Node& op, std::map<std::string, int, std::less<>>& ids,
                   std::vector<OpenApiOperation>& out) {
  const std::string where = "paths." + path + "." + method;
  if (!op.IsMap()) {
    diag.add(op, where, "an operation must be a map, got " + describe(op));
    return;
  }
  OpenApiOperation o;
  o.method = toUpperAscii(method);
  o.path = path;
  o.line = op.Mark().line + 1;
  if (YAML::Node id = op["operationId"]) {
    if (!id.IsScalar() || id.Scalar().empty()) {
      diag.add(id, where + ".operationId", "operationId must be a non-empty string");
    } else if (auto [it, fresh] = ids.emplace(id.Scalar(), id.Mark().line + 1); !fresh) {
      diag.add(id, where + ".operationId",
               "duplicate operationId '" + id.Scalar() + "' (first at line " +
                   std::to_string(it->second) + ")");
    } else {
      o.operation_id = id.Scalar();
    }
  }
  if (YAML::Node tags = op["tags"]) {
    if (!tags.IsSequence()) {
      diag.add(tags, where + ".tags", "tags must be a list of strings");
    } else {
      for (const auto& t : tags) {
        if (t.IsScalar()) o.tags.push_back(t.Scalar());
      }
    }
  }
  out.push_back(std::move(o));
}

// Reads the document's text as one YAML (or JSON) node; syntax errors go to `diag`.
std::optional<YAML::Node> parseDocument(Diagnostics& diag, const std::string& text) {
  try {
    return parseSingleDocument(diag, text);
  } catch (const YAML::Exception& e) {
    diag.add(e.mark, "", "YAML syntax error: " + e.msg);
  }
  return std::nullopt;
}

std::optional<std::string> readFileText(const std::string& file, std::string& error) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(file, ec)) {  // a FIFO or device would block the load
    error = ec ? ec.message() : "not a regular file";
    return std::nullopt;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  std::string text;
  constexpr size_t kChunk = 64 * 1024;
  while (in && text.size() <= kMaxConfigBytes) {
    const size_t old_size = text.size();
    text.resize(old_size + kChunk);
    in.read(text.data() + old_size, static_cast<std::streamsize>(kChunk));
    text.resize(old_size + static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) {
    error = std::strerror(errno);
    return std::nullopt;
  }
  if (text.size() > kMaxConfigBytes) {
    error = "larger than " + formatSize(kMaxConfigBytes);
    return std::nullopt;
  }
  return text;
}

// A map of name -> T, T read by `read(value, value_path)`, remembering where each key stands.
template <typename T, typename Read>
std::vector<std::pair<std::string, T>> readNamedMap(const MapReader& m, std::string_view key,
                                                    std::map<std::string, YAML::Mark>& marks,
                                                    Read&& read) {
  std::vector<std::pair<std::string, T>> out;
  const YAML::Node* node = m.find(key);
  if (!node) return out;
  if (!node->IsMap()) {
    m.diag().add(*node, m.path(key), "expected a map, got " + describe(*node));
    return out;
  }
  for (const auto& kv : *node) {
    if (!kv.first.IsScalar()) continue;
    const std::string& name = kv.first.Scalar();
    marks.emplace(name, kv.first.Mark());
    std::optional<T> value = read(kv.second, childPath(m.path(key), name));
    if (value) out.emplace_back(name, std::move(*value));
  }
  return out;
}

// What a block says, before routes are made from it.
struct Block {
  std::string spec;
  std::string base_path;
  std::optional<std::string> cluster;
  std::vector<std::pair<std::string, std::string>> clusters_by_tag;
  std::vector<std::pair<std::string, std::string>> clusters_by_operation;
  std::vector<PolicySpec> policies;
  std::vector<std::pair<std::string, std::vector<PolicySpec>>> policies_by_tag;
  std::vector<std::pair<std::string, std::vector<PolicySpec>>> policies_by_operation;
  std::optional<PolicySpec> validate;
  bool method_not_allowed = true;
  std::map<std::string, YAML::Mark> tag_marks;  // keys of the *_by_tag maps
  std::map<std::string, YAML::Mark> operation_marks;
};

std::optional<PolicySpec> readValidate(const MapReader& m, const Block& b) {
  const YAML::Node* v = m.find("validate");
  if (!v) return std::nullopt;
  YAML::Node config(YAML::NodeType::Map);
  if (v->IsMap()) {
    MapReader vm(m.diag(), *v, m.path("validate"), kValidateKeys);
    for (const auto& kv : *v)
      config[kv.first.Scalar()] = kv.second;
  } else if (std::optional<bool> on = readBool(m.diag(), *v, m.path("validate")); !on || !*on) {
    return std::nullopt;
  }
  config["spec"] = b.spec;
  if (!b.base_path.empty()) config["base_path"] = b.base_path;
  PolicySpec spec;
  spec.name = "openapi_validate";
  spec.config = std::make_shared<const YAML::Node>(config);
  spec.yaml_path = m.path("validate");
  spec.file = m.diag().file();
  spec.line = v->Mark().line + 1;
  return spec;
}

Block readBlock(const MapReader& m, const std::set<std::string, std::less<>>& clusters) {
  Diagnostics& diag = m.diag();
  Block b;
  if (m.require("spec")) m.read("spec", b.spec);
  m.read("base_path", b.base_path);
  if (!b.base_path.empty()) {
    if (Status s = checkPath(b.base_path); !s) {
      diag.add(*m.find("base_path"), m.path("base_path"), s.error().message);
    }
    while (!b.base_path.empty() && b.base_path.back() == '/')
      b.base_path.pop_back();
  }
  auto readCluster = [&](const YAML::Node& n, const std::string& p) -> std::optional<std::string> {
    std::optional<std::string> name = readString(diag, n, p);
    if (name && !clusters.contains(*name)) {
      diag.add(n, p, "unknown cluster '" + *name + "'");
      return std::nullopt;
    }
    return name;
  };
  if (const YAML::Node* v = m.find("cluster")) b.cluster = readCluster(*v, m.path("cluster"));
  b.clusters_by_tag = readNamedMap<std::string>(m, "clusters_by_tag", b.tag_marks, readCluster);
  b.clusters_by_operation =
      readNamedMap<std::string>(m, "clusters_by_operation", b.operation_marks, readCluster);
  if (const YAML::Node* v = m.find("policies"))
    b.policies = readPolicies(diag, *v, m.path("policies"));
  auto readList = [&](const YAML::Node& n, const std::string& p) {
    return std::optional(readPolicies(diag, n, p));
  };
  b.policies_by_tag =
      readNamedMap<std::vector<PolicySpec>>(m, "policies_by_tag", b.tag_marks, readList);
  b.policies_by_operation = readNamedMap<std::vector<PolicySpec>>(m, "policies_by_operation",
                                                                  b.operation_marks, readList);
  m.read("method_not_allowed", b.method_not_allowed);
  b.validate = readValidate(m, b);
  return b;
}

// Every operationId and tag the block names must be in the document: a typo would otherwise
// leave an operation without its auth or limit.
void checkNames(const MapReader& m, const Block& b, const std::vector<OpenApiOperation>& ops) {
  // Named copies of the bindings: clang 14 (the fuzz build) cannot capture structured bindings.
  for (const auto& named : b.operation_marks) {
    const auto& id = named.first;
    const auto& mark = named.second;
    auto same = [&id](const OpenApiOperation& o) { return o.operation_id == id; };
    if (std::none_of(ops.begin(), ops.end(), same)) {
      m.diag().add(mark, m.path(),
                   "unknown operationId '" + id + "': no operation of '" + b.spec + "' has it");
    }
  }
  for (const auto& tagged : b.tag_marks) {
    const auto& tag = tagged.first;
    const auto& mark = tagged.second;
    auto has = [&tag](const OpenApiOperation& o) {
      return std::find(o.tags.begin(), o.tags.end(), tag) != o.tags.end();
    };
    if (std::none_of(ops.begin(), ops.end(), has)) {
      m.diag().add(mark, m.path(),
                   "unknown tag '" + tag + "': no operation of '" + b.spec + "' has it");
    }
  }
}

bool hasTag(const OpenApiOperation& o, std::string_view tag) {
  return std::find(o.tags.begin(), o.tags.end(), tag) != o.tags.end();
}

// clusters_by_operation, else the first clusters_by_tag entry (in written order) whose tag
// the operation has, else `cluster`.
std::optional<std::string> clusterFor(const Block& b, const OpenApiOperation& o) {
  for (const auto& [id, cluster] : b.clusters_by_operation) {
    if (id == o.operation_id) return cluster;
  }
  for (const auto& [tag, cluster] : b.clusters_by_tag) {
    if (hasTag(o, tag)) return cluster;
  }
  return b.cluster;
}

// `policies`, then each policies_by_tag list (written order) whose tag the operation has, then
// its policies_by_operation list, then openapi_validate: auth and limits answer first.
std::vector<PolicySpec> policiesFor(const Block& b, const OpenApiOperation& o) {
  std::vector<PolicySpec> out = b.policies;
  for (const auto& [tag, list] : b.policies_by_tag) {
    if (hasTag(o, tag)) out.insert(out.end(), list.begin(), list.end());
  }
  for (const auto& [id, list] : b.policies_by_operation) {
    if (id == o.operation_id) out.insert(out.end(), list.begin(), list.end());
  }
  if (b.validate) out.push_back(*b.validate);
  return out;
}

struct Generated {
  const OpenApiOperation* op;
  std::string tmpl;  // base_path + the router's template
};

std::string problem405(const std::string& allow) {
  return R"({"type":"about:blank","title":"Method not allowed by the API description",)"
         R"("status":405,"detail":"allowed: )" +
         allow + "\"}\n";
}

// The Allow header a 405 must carry (RFC 9110 15.5.6), set by the `headers` policy.
PolicySpec allowHeader(const MapReader& m, const std::string& allow) {
  YAML::Node config(YAML::NodeType::Map);
  config["response"]["set"]["allow"] = allow;
  PolicySpec spec;
  spec.name = "headers";
  spec.config = std::make_shared<const YAML::Node>(config);
  spec.yaml_path = childPath(m.path(), "method_not_allowed");
  spec.file = m.diag().file();
  spec.line = m.node().Mark().line + 1;
  return spec;
}

void setPath(Route& r, const std::string& tmpl) {
  if (tmpl.find('{') == std::string::npos) {
    r.match.path_exact = tmpl;
  } else {
    r.match.path_template = tmpl;
  }
}

// A path's 405: every method the document does not define for it, with Allow.
Route notAllowedRoute(const MapReader& m, const std::string& tmpl,
                      const std::vector<std::string>& methods) {
  std::string allow;
  for (const auto& method : methods)
    allow += (allow.empty() ? "" : ", ") + method;
  Route r;
  r.name = "405 " + tmpl;
  r.yaml_path = childPath(m.path(), "method_not_allowed");
  r.line = m.node().Mark().line + 1;
  setPath(r, tmpl);
  DirectResponse d;
  d.status = 405;
  d.body = problem405(allow);
  d.content_type = "application/problem+json";
  r.direct_response = std::move(d);
  r.policies.push_back(allowHeader(m, allow));  // `headers` also edits local replies
  return r;
}

// Paths most specific first, each path's operations together and then its 405 route: a
// concrete path owns all its methods (PUT /pets/search is a 405, not /pets/{petId}'s PUT).
void addRoutes(const MapReader& m, const Block& b, std::vector<Generated>& gen,
               std::vector<Route>& out) {
  std::vector<std::string> paths;  // in the document's order
  for (const Generated& g : gen) {
    if (std::find(paths.begin(), paths.end(), g.tmpl) == paths.end()) paths.push_back(g.tmpl);
  }
  auto pathIndex = [&](const std::string& tmpl) {
    return std::find(paths.begin(), paths.end(), tmpl) - paths.begin();
  };
  std::stable_sort(gen.begin(), gen.end(), [&](const Generated& x, const Generated& y) {
    return std::pair(specificityKey(x.tmpl), pathIndex(x.tmpl)) <
           std::pair(specificityKey(y.tmpl), pathIndex(y.tmpl));
  });
  size_t without_cluster = 0;
  std::string first_without;
  for (size_t begin = 0; begin < gen.size();) {
    size_t end = begin;
    std::vector<std::string> methods;
    while (end < gen.size() && gen[end].tmpl == gen[begin].tmpl)
      methods.push_back(gen[end++].op->method);
    // HEAD is GET without the body (RFC 9110 9.3.2), unless the document defines it.
    const bool add_head = std::find(methods.begin(), methods.end(), "GET") != methods.end() &&
                          std::find(methods.begin(), methods.end(), "HEAD") == methods.end();
    for (size_t i = begin; i < end; ++i) {
      const OpenApiOperation& o = *gen[i].op;
      Route r;
      r.name = o.operation_id.empty() ? o.method + " " + b.base_path + o.path : o.operation_id;
      r.yaml_path = childPath(m.path(), r.name);
      r.line = m.node().Mark().line + 1;
      setPath(r, gen[i].tmpl);
      r.match.methods.push_back(o.method);
      if (o.method == "GET" && add_head) r.match.methods.emplace_back("HEAD");
      r.cluster = clusterFor(b, o);
      r.policies = policiesFor(b, o);
      if (!r.cluster && r.policies.empty() && without_cluster++ == 0) {
        first_without = r.name + " (" + b.spec + ":" + std::to_string(o.line) + ")";
      }
      out.push_back(std::move(r));
    }
    if (add_head) methods.emplace_back("HEAD");
    if (b.method_not_allowed) out.push_back(notAllowedRoute(m, gen[begin].tmpl, methods));
    begin = end;
  }
  if (without_cluster > 0) {
    m.diag().add(m.node(), m.path(),
                 std::to_string(without_cluster) + " operation(s) have no cluster, the first " +
                     first_without +
                     ": set `cluster`, or name them in clusters_by_tag or clusters_by_operation");
  }
}

}  // namespace

std::vector<OpenApiOperation> readOpenApiOperations(Diagnostics& diag, const std::string& text) {
  std::vector<OpenApiOperation> out;
  std::optional<YAML::Node> root = parseDocument(diag, text);
  if (!root) return out;
  if (!root->IsMap() || !(*root)["openapi"] || !(*root)["openapi"].IsScalar() ||
      !(*root)["openapi"].Scalar().starts_with("3.")) {
    diag.add(*root, "openapi", "not an OpenAPI 3.0 or 3.1 document (no `openapi: 3.x`)");
    return out;
  }
  const YAML::Node paths = (*root)["paths"];
  if (!paths || !paths.IsMap()) {
    diag.add(paths ? paths : *root, "paths", "the document has no `paths` map");
    return out;
  }
  std::map<std::string, int, std::less<>> ids;  // operationId -> line
  for (const auto& kv : paths) {
    const std::string& path = kv.first.Scalar();
    if (path.empty() || path[0] != '/') {
      diag.add(kv.first, "paths", "path '" + path + "' must start with '/'");
      continue;
    }
    if (!kv.second.IsMap()) {
      if (!kv.second.IsNull()) diag.add(kv.second, "paths." + path, "a path item must be a map");
      continue;
    }
    if (kv.second["$ref"]) {
      diag.add(kv.second["$ref"], "paths." + path + ".$ref",
               "a path item $ref is not supported by routes_from_openapi; inline the path item");
      continue;
    }
    for (const auto& item : kv.second) {
      const std::string& key = item.first.Scalar();
      if (std::find(std::begin(kMethods), std::end(kMethods), key) == std::end(kMethods)) continue;
      readOperation(diag, path, key, item.second, ids, out);
    }
  }
  return out;
}

void readRoutesFromOpenApi(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                           const std::set<std::string, std::less<>>& clusters,
                           std::vector<Route>& out) {
  MapReader m(diag, node, path, kKeys);
  if (!m.isMap()) return;
  Block b = readBlock(m, clusters);
  if (b.spec.empty()) return;
  std::string error;
  std::optional<std::string> text = readFileText(b.spec, error);
  if (!text) {
    diag.add(*m.find("spec"), m.path("spec"),
             "cannot read the OpenAPI document '" + b.spec + "': " + error);
    return;
  }
  Diagnostics spec_diag(b.spec);
  std::vector<OpenApiOperation> ops = readOpenApiOperations(spec_diag, *text);
  std::vector<Generated> gen;
  for (const OpenApiOperation& o : ops) {
    Result<std::string> tmpl = routeTemplate(o.path);
    if (tmpl.ok()) {
      *tmpl = b.base_path + *tmpl;
      if (Status s = checkPathTemplate(*tmpl); !s) tmpl = s.error();
    }
    if (!tmpl.ok()) {
      YAML::Mark at;
      at.line = o.line - 1;
      spec_diag.add(at, "paths." + o.path, tmpl.error().message);
      continue;
    }
    gen.push_back({&o, std::move(*tmpl)});
  }
  const bool spec_ok = spec_diag.count() == 0;
  diag.absorb(spec_diag);
  if (!spec_ok) return;
  checkNames(m, b, ops);
  addRoutes(m, b, gen, out);
}

}  // namespace gatehouse::config

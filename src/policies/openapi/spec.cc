// Reading an OpenAPI document into operations, and compiling their schemas.
#include "policies/openapi/spec.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "jsonschema/uri.h"

namespace gatehouse::policies::openapi {
namespace {

using Json = nlohmann::json;

Error specError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

// A plain YAML scalar as JSON's null, boolean, number or string (YAML 1.2 core schema).
Json yamlScalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() != "?") return Json(s);  // quoted: always a string
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Json(nullptr);
  if (s == "true" || s == "True" || s == "TRUE") return Json(true);
  if (s == "false" || s == "False" || s == "FALSE") return Json(false);
  Json number = Json::parse(s, nullptr, false);
  if (number.is_number()) return number;
  return Json(s);
}

Json yamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : n)
        out[kv.first.Scalar()] = yamlToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : n)
        out.push_back(yamlToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      return yamlScalar(n);
    default:
      return Json(nullptr);
  }
}

Result<Json> parseDocument(std::string_view text, const std::string& name) {
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    Json doc = Json::parse(text, nullptr, false);
    if (doc.is_discarded()) return specError(name + ": not valid JSON");
    return doc;
  }
  try {  // yaml-cpp reports by exception; this runs on the control thread only
    return yamlToJson(YAML::Load(std::string(text)));
  } catch (const YAML::Exception& e) {
    return specError(name + ": not valid YAML: " + e.what());
  }
}

const Json* follow(const Json& doc, const Json* node) {
  // A `$ref` to another place of the same document (parameters, schemas, request bodies).
  for (int hops = 0; node && node->is_object() && hops < 16; ++hops) {
    auto ref = node->find("$ref");
    if (ref == node->end() || !ref->is_string()) return node;
    const auto& text = ref->get_ref<const std::string&>();
    if (text.empty() || text[0] != '#') return nullptr;
    node = jsonschema::resolvePointer(doc, jsonschema::fragmentOf(text));
  }
  return node;
}

Scalar scalarOf(const Json& doc, const Json* schema, bool& array) {
  schema = follow(doc, schema);
  if (!schema || !schema->is_object()) return Scalar::kAny;
  auto type = schema->find("type");
  std::string name;
  if (type != schema->end() && type->is_string()) name = type->get<std::string>();
  if (type != schema->end() && type->is_array()) {
    for (const auto& t : *type) {
      if (t.is_string() && t != "null") name = t.get<std::string>();
    }
  }
  if (name == "array" && !array) {
    array = true;
    auto items = schema->find("items");
    return items == schema->end() ? Scalar::kString : scalarOf(doc, &*items, array);
  }
  if (name == "integer") return Scalar::kInteger;
  if (name == "number") return Scalar::kNumber;
  if (name == "boolean") return Scalar::kBoolean;
  if (name == "string") return Scalar::kString;
  return Scalar::kAny;
}

class SpecReader {
 public:
  SpecReader(const Json& doc, std::string uri, jsonschema::Builder& b)
      : doc_(doc), uri_(std::move(uri)), builder_(b) {}

  Result<std::vector<Operation>> read();

 private:
  Result<jsonschema::SchemaId> schemaAt(const std::string& pointer) {
    auto id = builder_.compile(uri_ + "#" + pointer);
    if (!id.ok()) return specError(where(pointer) + ": " + id.error().message);
    return *id;
  }
  static std::string where(const std::string& pointer) {
    std::string out;
    size_t pos = 1;
    while (pos <= pointer.size() && pos != 0) {
      size_t end = pointer.find('/', pos);
      std::string token = pointer.substr(pos, end == std::string::npos ? end : end - pos);
      for (size_t i; (i = token.find("~1")) != std::string::npos;)
        token.replace(i, 2, "/");
      for (size_t i; (i = token.find("~0")) != std::string::npos;)
        token.replace(i, 2, "~");
      if (!out.empty()) out.push_back('.');
      out += token;
      pos = end == std::string::npos ? 0 : end + 1;
    }
    return out;
  }
  Status readParameter(const Json& p, const std::string& pointer, Operation& op);
  Status readContent(const Json& content, const std::string& pointer, std::vector<MediaType>& out);
  Status readOperation(const std::string& path, const Json& item, const std::string& method,
                       const std::string& pointer, std::vector<Operation>& out);

  const Json& doc_;
  std::string uri_;
  jsonschema::Builder& builder_;
};

// The pointer a $ref names inside our document, or `pointer` when `node` is no $ref.
std::string targetPointer(const Json& node, const std::string& pointer) {
  auto ref = node.is_object() ? node.find("$ref") : node.end();
  if (ref == node.end() || !ref->is_string()) return pointer;
  const auto& text = ref->get_ref<const std::string&>();
  return text.size() > 1 && text[0] == '#' ? text.substr(1) : pointer;
}

Status SpecReader::readParameter(const Json& raw, const std::string& pointer, Operation& op) {
  const std::string at = targetPointer(raw, pointer);
  const Json* p = follow(doc_, &raw);
  if (!p || !p->is_object()) return specError(where(pointer) + ": unresolvable parameter");
  auto name = p->find("name");
  auto in = p->find("in");
  if (name == p->end() || !name->is_string() || in == p->end() || !in->is_string()) {
    return specError(where(pointer) + ": a parameter needs 'name' and 'in'");
  }
  Parameter param;
  param.name = name->get<std::string>();
  const std::string where_in = in->get<std::string>();
  if (where_in == "path") {
    param.in = Parameter::In::kPath;
    param.required = true;
  } else if (where_in == "query") {
    param.in = Parameter::In::kQuery;
  } else if (where_in == "header") {
    param.in = Parameter::In::kHeader;
    std::transform(param.name.begin(), param.name.end(), param.name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
  } else if (where_in == "cookie") {
    param.in = Parameter::In::kCookie;
  } else {
    return specError(where(pointer) + ": unknown 'in' '" + where_in + "'");
  }
  if (auto r = p->find("required"); r != p->end() && r->is_boolean()) {
    param.required = param.required || r->get<bool>();
  }
  if (auto e = p->find("explode"); e != p->end() && e->is_boolean()) param.explode = e->get<bool>();
  if (auto s = p->find("schema"); s != p->end()) {
    param.scalar = scalarOf(doc_, &*s, param.array);
    auto id = schemaAt(at + "/schema");
    if (!id.ok()) return id.error();
    param.schema = *id;
    param.has_schema = true;
  }
  // An operation's parameter replaces the path item's one of the same name and place.
  for (auto& existing : op.parameters) {
    if (existing.name == param.name && existing.in == param.in) {
      existing = std::move(param);
      return {};
    }
  }
  op.parameters.push_back(std::move(param));
  return {};
}

Status SpecReader::readContent(const Json& content, const std::string& pointer,
                               std::vector<MediaType>& out) {
  if (!content.is_object()) return specError(where(pointer) + ": 'content' must be a map");
  for (const auto& [range, media] : content.items()) {
    MediaType m;
    m.range = mediaTypeOf(range);
    m.json = isJsonMedia(m.range) || m.range == kAnyMedia || m.range == "application/*";
    std::string media_pointer = pointer;
    jsonschema::appendPointerToken(media_pointer, range);
    if (media.is_object() && media.contains("schema")) {
      auto id = schemaAt(media_pointer + "/schema");
      if (!id.ok()) return id.error();
      m.schema = *id;
      m.has_schema = true;
    }
    out.push_back(std::move(m));
  }
  return {};
}

Status SpecReader::readOperation(const std::string& path, const Json& item,
                                 const std::string& method, const std::string& pointer,
                                 std::vector<Operation>& out) {
  const Json& o = item[method];
  if (!o.is_object()) return specError(where(pointer) + ": an operation must be a map");
  Operation op;
  op.method = method;
  std::transform(op.method.begin(), op.method.end(), op.method.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  op.path_template = path;
  std::string_view rest(path);
  while (!rest.empty()) {
    rest.remove_prefix(rest[0] == '/' ? 1 : 0);
    size_t end = rest.find('/');
    op.segments.emplace_back(rest.substr(0, end));
    if (op.segments.back().find('{') == std::string::npos) ++op.literal_segments;
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  }
  if (auto id = o.find("operationId"); id != o.end() && id->is_string()) {
    op.operation_id = id->get<std::string>();
  }
  // Path-item parameters first, then the operation's (which override them).
  const std::string item_pointer = pointer.substr(0, pointer.rfind('/'));
  for (const auto& [owner, base] :
       {std::pair<const Json*, const std::string*>{&item, &item_pointer},
        std::pair<const Json*, const std::string*>{&o, &pointer}}) {
    auto list = owner->find("parameters");
    if (list == owner->end() || !list->is_array()) continue;
    for (size_t i = 0; i < list->size(); ++i) {
      auto s = readParameter((*list)[i], *base + "/parameters/" + std::to_string(i), op);
      if (!s.ok()) return s;
    }
  }
  if (auto body = o.find("requestBody"); body != o.end()) {
    std::string at = targetPointer(*body, pointer + "/requestBody");
    const Json* b = follow(doc_, &*body);
    if (!b || !b->is_object()) return specError(where(pointer) + ": unresolvable requestBody");
    op.has_request_body = true;
    if (auto r = b->find("required"); r != b->end() && r->is_boolean()) {
      op.body_required = r->get<bool>();
    }
    if (auto c = b->find("content"); c != b->end()) {
      if (auto s = readContent(*c, at + "/content", op.request_content); !s.ok()) return s;
    }
  }
  if (auto responses = o.find("responses"); responses != o.end() && responses->is_object()) {
    for (const auto& [status, raw] : responses->items()) {
      std::string at = pointer + "/responses";
      jsonschema::appendPointerToken(at, status);
      at = targetPointer(raw, at);
      const Json* r = follow(doc_, &raw);
      ResponseSpec spec{status, {}};
      if (r && r->is_object()) {
        if (auto c = r->find("content"); c != r->end()) {
          if (auto s = readContent(*c, at + "/content", spec.content); !s.ok()) return s;
        }
      }
      op.responses.push_back(std::move(spec));
    }
  }
  out.push_back(std::move(op));
  return {};
}

Result<std::vector<Operation>> SpecReader::read() {
  std::vector<Operation> ops;
  auto paths = doc_.find("paths");
  if (paths == doc_.end() || !paths->is_object()) return specError("the document has no 'paths'");
  static constexpr const char* kMethods[] = {"get",     "put",  "post",  "delete",
                                             "options", "head", "patch", "trace"};
  for (const auto& [path, raw_item] : paths->items()) {
    if (path.empty() || path[0] != '/') return specError("paths: '" + path + "' must start with /");
    std::string pointer = "/paths";
    jsonschema::appendPointerToken(pointer, path);
    const Json* item = follow(doc_, &raw_item);
    if (!item || !item->is_object()) return specError(where(pointer) + ": must be a map");
    for (const char* method : kMethods) {
      if (!item->contains(method)) continue;
      auto s = readOperation(path, *item, method, pointer + "/" + method, ops);
      if (!s.ok()) return s.error();
    }
  }
  return ops;
}

}  // namespace

std::string mediaTypeOf(std::string_view content_type) {
  std::string out(content_type.substr(0, content_type.find(';')));
  while (!out.empty() && (out.back() == ' ' || out.back() == '\t'))
    out.pop_back();
  size_t start = out.find_first_not_of(" \t");
  out.erase(0, start == std::string::npos ? out.size() : start);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  return out;
}

bool mediaInRange(std::string_view media, std::string_view range) {
  if (range == kAnyMedia || range == media) return true;
  if (range.size() > 2 && range.substr(range.size() - 2) == "/*") {
    return media.substr(0, range.size() - 1) == range.substr(0, range.size() - 1);
  }
  return false;
}

bool isJsonMedia(std::string_view media) {
  return media == "application/json" ||
         (media.size() > 5 && media.substr(media.size() - 5) == "+json");
}

Result<std::shared_ptr<const Spec>> parseSpec(std::string_view text, const std::string& name,
                                              SpecOptions options) {
  auto doc = parseDocument(text, name);
  if (!doc.ok()) return doc.error();
  auto version = doc->find("openapi");
  if (!doc->is_object() || version == doc->end() || !version->is_string()) {
    return specError(name + ": not an OpenAPI document (no 'openapi' version)");
  }
  const std::string v = version->get<std::string>();
  jsonschema::Options schema_options;
  schema_options.formats = options.formats;
  if (v.rfind("3.0", 0) == 0) {
    schema_options.dialect = jsonschema::Dialect::kOpenApi30;
  } else if (v.rfind("3.1", 0) == 0) {
    schema_options.dialect = jsonschema::Dialect::kDraft2020_12;
  } else {
    return specError(name + ": OpenAPI version '" + v + "' is not supported (3.0 or 3.1)");
  }
  const std::string uri =
      name.size() > 0 && name[0] == '/' ? "file://" + name : "urn:openapi:" + name;
  jsonschema::Builder builder(schema_options);
  if (auto s = builder.addDocument(uri, *doc); !s.ok())
    return specError(name + ": " + s.error().message);
  SpecReader reader(*doc, uri, builder);
  auto ops = reader.read();
  if (!ops.ok()) return specError(name + ": " + ops.error().message);
  auto validator = builder.finish();
  if (!validator.ok()) return specError(name + ": " + validator.error().message);
  return std::make_shared<const Spec>(std::move(*validator), std::move(*ops));
}

Result<std::shared_ptr<const Spec>> loadSpec(const std::string& file, SpecOptions options) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return specError("cannot read the OpenAPI document '" + file + "'");
  std::stringstream text;
  text << in.rdbuf();
  std::error_code ec;
  auto absolute = std::filesystem::absolute(file, ec);
  const std::string name = ec ? file : absolute.string();
  // routes_from_openapi attaches one openapi_validate per operation: they share one compiled
  // document while its text is unchanged and some snapshot still holds it.
  struct Cached {
    std::string name;
    jsonschema::FormatMode formats;
    std::string text;
    std::weak_ptr<const Spec> spec;
  };
  static std::mutex mutex;  // builds run on the control thread; `validate` may run elsewhere
  static std::vector<Cached> cache;
  std::string body = text.str();
  std::lock_guard lock(mutex);
  std::erase_if(cache, [](const Cached& c) { return c.spec.expired(); });
  for (const Cached& c : cache) {
    if (c.name != name || c.formats != options.formats || c.text != body) continue;
    if (auto spec = c.spec.lock()) return spec;
  }
  auto spec = parseSpec(body, name, options);
  if (spec.ok()) cache.push_back({name, options.formats, std::move(body), *spec});
  return spec;
}

Match Spec::match(std::string_view method, std::string_view path) const {
  Match best;
  size_t best_literals = 0;
  std::vector<std::string_view> segments;
  std::string_view rest = path;
  while (!rest.empty()) {
    rest.remove_prefix(rest[0] == '/' ? 1 : 0);
    size_t end = rest.find('/');
    segments.push_back(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  }
  std::vector<std::pair<std::string_view, std::string_view>> params;
  for (const auto& op : operations_) {
    if (op.segments.size() != segments.size()) continue;
    params.clear();
    bool ok = true;
    for (size_t i = 0; i < segments.size() && ok; ++i) {
      std::string_view t = op.segments[i], s = segments[i];
      size_t open = t.find('{');
      if (open == std::string_view::npos) {
        ok = t == s;
        continue;
      }
      size_t close = t.find('}', open);
      std::string_view prefix = t.substr(0, open), suffix = t.substr(close + 1);
      ok = close != std::string_view::npos && s.size() > prefix.size() + suffix.size() &&
           s.substr(0, prefix.size()) == prefix && s.substr(s.size() - suffix.size()) == suffix;
      if (ok) {
        params.emplace_back(t.substr(open + 1, close - open - 1),
                            s.substr(prefix.size(), s.size() - prefix.size() - suffix.size()));
      }
    }
    if (!ok) continue;
    best.path_known = true;
    if (op.method != method) continue;
    if (!best.operation || op.literal_segments > best_literals) {
      best.operation = &op;
      best_literals = op.literal_segments;
      best.path_params = params;
    }
  }
  return best;
}

}  // namespace gatehouse::policies::openapi

// Schema positions to nodes. Each keyword the position's dialect knows becomes a field of its
// node; $ref and $dynamicRef are resolved here, once, against what the scan recorded.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "jsonschema/compile_state.h"
#include "jsonschema/formats.h"
#include "jsonschema/uri.h"

namespace gatehouse::jsonschema {

Error schemaError(std::string message) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(message));
}

namespace {

// Reads the keywords of one schema object into a node. `self` is the node's id (already
// reserved, so that a $ref cycle back to it resolves).
class NodeReader {
 public:
  NodeReader(CompileState& state, const Json& schema, const Location& at)
      : state_(state), schema_(schema), at_(at) {}

  Result<Node> read();

 private:
  const Json* get(const char* key) const {
    auto it = schema_.find(key);
    return it == schema_.end() ? nullptr : &*it;
  }
  Result<NodeId> sub(const Json& s) { return state_.compileAt(s, at_); }
  Status subList(const char* key, std::vector<NodeId>& out);
  Status subOne(const char* key, NodeId& out, uint32_t flag = 0);
  Status count(const char* key, std::optional<uint64_t>& out);
  Status number(const char* key, std::optional<double>& out);
  Status readType();
  Status readNumeric();
  Status readString();
  Status readArray();
  Status readObject();
  Status readDependencies();
  Status readRefs();
  Status readApplicators();

  CompileState& state_;
  const Json& schema_;
  const Location& at_;
  Node node_;
};

Error keywordError(const char* key, std::string_view what) {
  return schemaError(std::string("'") + key + "' " + std::string(what));
}

Status NodeReader::subList(const char* key, std::vector<NodeId>& out) {
  const Json* v = get(key);
  if (!v) return {};
  if (!v->is_array() || v->empty()) return keywordError(key, "must be a non-empty array");
  for (const auto& s : *v) {
    auto id = sub(s);
    if (!id.ok()) return id.error();
    out.push_back(*id);
  }
  return {};
}

Status NodeReader::subOne(const char* key, NodeId& out, uint32_t flag) {
  const Json* v = get(key);
  if (!v) return {};
  auto id = sub(*v);
  if (!id.ok()) return id.error();
  out = *id;
  node_.has |= flag;
  return {};
}

Status NodeReader::count(const char* key, std::optional<uint64_t>& out) {
  const Json* v = get(key);
  if (!v) return {};
  if (!v->is_number() || v->get<double>() < 0 || std::floor(v->get<double>()) != v->get<double>()) {
    return keywordError(key, "must be a non-negative integer");
  }
  out = static_cast<uint64_t>(v->get<double>());
  return {};
}

Status NodeReader::number(const char* key, std::optional<double>& out) {
  const Json* v = get(key);
  if (!v) return {};
  if (!v->is_number()) return keywordError(key, "must be a number");
  out = v->get<double>();
  return {};
}

uint8_t typeBit(std::string_view name) {
  if (name == "null") return kNull;
  if (name == "boolean") return kBoolean;
  if (name == "object") return kObject;
  if (name == "array") return kArray;
  if (name == "number") return kNumber | kInteger;
  if (name == "integer") return kInteger;
  if (name == "string") return kString;
  return 0;
}

Status NodeReader::readType() {
  if (const Json* t = get("type")) {
    std::vector<const Json*> names;
    if (t->is_array()) {
      for (const auto& n : *t)
        names.push_back(&n);
    } else {
      names.push_back(t);
    }
    for (const Json* n : names) {
      uint8_t bit = n->is_string() ? typeBit(n->get_ref<const std::string&>()) : 0;
      if (bit == 0) return schemaError("'type' names an unknown type: " + n->dump());
      node_.types |= bit;
    }
    node_.has |= kHasType;
    const Json* nullable = get("nullable");
    if (at_.dialect == Dialect::kOpenApi30 && nullable && nullable->is_boolean() &&
        nullable->get<bool>()) {
      node_.types |= kNull;
    }
  }
  if (const Json* e = get("enum")) {
    if (!e->is_array()) return keywordError("enum", "must be an array");
    node_.enum_values.assign(e->begin(), e->end());
    node_.has |= kHasEnum;
  }
  if (const Json* c = get("const");
      c && at_.dialect != Dialect::kDraft4 && at_.dialect != Dialect::kOpenApi30) {
    node_.const_value = *c;
    node_.has |= kHasConst;
  }
  if (const Json* f = get("format"); f && f->is_string()) {
    node_.format = formatByName(f->get_ref<const std::string&>());
    if (node_.format != Format::kNone && state_.options.formats == FormatMode::kAssert) {
      node_.has |= kHasFormat;
    }
  }
  return {};
}

Status NodeReader::readNumeric() {
  for (auto [key, out] : {std::pair{"minimum", &node_.minimum},
                          {"maximum", &node_.maximum},
                          {"multipleOf", &node_.multiple_of}}) {
    if (auto s = number(key, *out); !s.ok()) return s;
  }
  if (node_.multiple_of && *node_.multiple_of <= 0) {
    return keywordError("multipleOf", "must be greater than 0");
  }
  if (isDraft4(at_.dialect)) {
    // draft-04: exclusiveMinimum / exclusiveMaximum are booleans that qualify the bounds.
    const Json* emin = get("exclusiveMinimum");
    if (emin && emin->is_boolean() && emin->get<bool>() && node_.minimum) {
      node_.exclusive_minimum = node_.minimum;
      node_.minimum.reset();
    }
    const Json* emax = get("exclusiveMaximum");
    if (emax && emax->is_boolean() && emax->get<bool>() && node_.maximum) {
      node_.exclusive_maximum = node_.maximum;
      node_.maximum.reset();
    }
  } else {
    if (auto s = number("exclusiveMinimum", node_.exclusive_minimum); !s.ok()) return s;
    if (auto s = number("exclusiveMaximum", node_.exclusive_maximum); !s.ok()) return s;
  }
  if (node_.minimum || node_.maximum || node_.exclusive_minimum || node_.exclusive_maximum ||
      node_.multiple_of) {
    node_.has |= kHasNumeric;
  }
  return {};
}

Status NodeReader::readString() {
  if (auto s = count("minLength", node_.min_length); !s.ok()) return s;
  if (auto s = count("maxLength", node_.max_length); !s.ok()) return s;
  if (const Json* p = get("pattern")) {
    if (!p->is_string()) return keywordError("pattern", "must be a string");
    auto regex = compilePattern(p->get_ref<const std::string&>());
    if (!regex.ok()) return regex.error();
    node_.pattern = std::move(*regex);
  }
  if (node_.min_length || node_.max_length || node_.pattern) node_.has |= kHasString;
  return {};
}

Status NodeReader::readArray() {
  const bool legacy = isLegacy(at_.dialect);
  const Json* items = get("items");
  if (legacy && items && items->is_array()) {
    for (const auto& s : *items) {
      auto id = sub(s);
      if (!id.ok()) return id.error();
      node_.prefix_items.push_back(*id);
    }
    if (auto s = subOne("additionalItems", node_.items); !s.ok()) return s;
  } else {
    if (!legacy) {
      if (auto s = subList("prefixItems", node_.prefix_items); !s.ok()) return s;
    }
    if (auto s = subOne("items", node_.items); !s.ok()) return s;
  }
  if (at_.dialect != Dialect::kDraft4 && at_.dialect != Dialect::kOpenApi30) {
    if (auto s = subOne("contains", node_.contains); !s.ok()) return s;
  }
  if (!legacy) {
    if (auto s = count("minContains", node_.min_contains); !s.ok()) return s;
    if (auto s = count("maxContains", node_.max_contains); !s.ok()) return s;
    if (auto s = subOne("unevaluatedItems", node_.unevaluated_items, kHasUnevaluatedItems);
        !s.ok()) {
      return s;
    }
  }
  if (auto s = count("minItems", node_.min_items); !s.ok()) return s;
  if (auto s = count("maxItems", node_.max_items); !s.ok()) return s;
  if (const Json* u = get("uniqueItems"); u && u->is_boolean()) node_.unique_items = u->get<bool>();
  if (!node_.prefix_items.empty() || node_.items != kNoNode || node_.contains != kNoNode ||
      node_.min_items || node_.max_items || node_.unique_items) {
    node_.has |= kHasArray;
  }
  return {};
}

Status NodeReader::readObject() {
  if (const Json* p = get("properties"); p && p->is_object()) {
    for (const auto& [name, s] : p->items()) {
      auto id = sub(s);
      if (!id.ok()) return id.error();
      node_.properties.emplace_back(name, *id);
    }
    std::sort(node_.properties.begin(), node_.properties.end());
  }
  if (const Json* p = get("patternProperties"); p && p->is_object()) {
    for (const auto& [pattern, s] : p->items()) {
      auto regex = compilePattern(pattern);
      if (!regex.ok()) return regex.error();
      auto id = sub(s);
      if (!id.ok()) return id.error();
      node_.pattern_properties.push_back({std::move(*regex), *id});
    }
  }
  if (auto s = subOne("additionalProperties", node_.additional_properties); !s.ok()) return s;
  if (const Json* r = get("required"); r && r->is_array()) {
    for (const auto& name : *r) {
      if (!name.is_string()) return keywordError("required", "must list strings");
      node_.required.push_back(name.get<std::string>());
    }
  }
  if (auto s = count("minProperties", node_.min_properties); !s.ok()) return s;
  if (auto s = count("maxProperties", node_.max_properties); !s.ok()) return s;
  if (!isDraft4(at_.dialect)) {
    if (auto s = subOne("propertyNames", node_.property_names); !s.ok()) return s;
  }
  if (auto s = readDependencies(); !s.ok()) return s;
  if (!isLegacy(at_.dialect)) {
    if (auto s = subOne("unevaluatedProperties", node_.unevaluated_properties,
                        kHasUnevaluatedProperties);
        !s.ok()) {
      return s;
    }
  }
  if (!node_.properties.empty() || !node_.pattern_properties.empty() ||
      node_.additional_properties != kNoNode || !node_.required.empty() || node_.min_properties ||
      node_.max_properties || node_.property_names != kNoNode ||
      !node_.dependent_required.empty()) {
    node_.has |= kHasObject;
  }
  if (!node_.dependent_schemas.empty()) node_.has |= kHasDependentSchemas;
  return {};
}

Status NodeReader::readDependencies() {
  auto names = [](const Json& list, DependentRequired& out) -> Status {
    for (const auto& n : list) {
      if (!n.is_string()) return schemaError("dependencies must list property names");
      out.required.push_back(n.get<std::string>());
    }
    return {};
  };
  auto add = [&](const char* key, bool allow_lists, bool allow_schemas) -> Status {
    const Json* d = get(key);
    if (!d || !d->is_object()) return {};
    for (const auto& [name, v] : d->items()) {
      if (v.is_array() && allow_lists) {
        DependentRequired dr{name, {}};
        if (auto s = names(v, dr); !s.ok()) return s;
        node_.dependent_required.push_back(std::move(dr));
      } else if (allow_schemas) {
        auto id = sub(v);
        if (!id.ok()) return id.error();
        node_.dependent_schemas.push_back({name, *id});
      }
    }
    return {};
  };
  if (isLegacy(at_.dialect)) return add("dependencies", true, true);
  if (auto s = add("dependentRequired", true, false); !s.ok()) return s;
  return add("dependentSchemas", false, true);
}

Status NodeReader::readRefs() {
  if (const Json* r = get("$ref"); r && r->is_string()) {
    auto id = state_.compileReference(r->get_ref<const std::string&>(), at_);
    if (!id.ok()) return id.error();
    node_.ref = *id;
    node_.has |= kHasRef;
  }
  if (isLegacy(at_.dialect)) return {};
  if (const Json* r = get("$dynamicRef"); r && r->is_string()) {
    const auto& text = r->get_ref<const std::string&>();
    auto id = state_.compileReference(text, at_);
    if (!id.ok()) return id.error();
    node_.dynamic_ref = *id;
    node_.has |= kHasDynamicRef;
    // Dynamic only when the static target is a $dynamicAnchor of the same name (the bookend).
    std::string fragment = fragmentOf(resolveUri(at_.base, text));
    const Json* target =
        state_.anchors[withoutFragment(resolveUri(at_.base, text)) + "#" + fragment];
    if (!fragment.empty() && fragment[0] != '/' && target && target->is_object()) {
      auto a = target->find("$dynamicAnchor");
      if (a != target->end() && a->is_string() && a->get<std::string>() == fragment) {
        node_.dynamic_anchor = fragment;
        state_.uses_dynamic_ref = true;
      }
    }
  }
  return {};
}

Status NodeReader::readApplicators() {
  if (auto s = subList("allOf", node_.all_of); !s.ok()) return s;
  if (auto s = subList("anyOf", node_.any_of); !s.ok()) return s;
  if (auto s = subList("oneOf", node_.one_of); !s.ok()) return s;
  if (!node_.all_of.empty()) node_.has |= kHasAllOf;
  if (!node_.any_of.empty()) node_.has |= kHasAnyOf;
  if (!node_.one_of.empty()) node_.has |= kHasOneOf;
  if (auto s = subOne("not", node_.not_, kHasNot); !s.ok()) return s;
  if (at_.dialect != Dialect::kDraft4 && at_.dialect != Dialect::kOpenApi30 && get("if")) {
    if (auto s = subOne("if", node_.if_, kHasIf); !s.ok()) return s;
    if (auto s = subOne("then", node_.then_); !s.ok()) return s;
    if (auto s = subOne("else", node_.else_); !s.ok()) return s;
  }
  return {};
}

Result<Node> NodeReader::read() {
  node_.resource = at_.resource;
  if (auto s = readRefs(); !s.ok()) return s.error();
  // draft-04 to draft-07: a $ref replaces the whole schema object.
  if (isLegacy(at_.dialect) && (node_.has & kHasRef)) return std::move(node_);
  for (auto step :
       {&NodeReader::readType, &NodeReader::readNumeric, &NodeReader::readString,
        &NodeReader::readArray, &NodeReader::readObject, &NodeReader::readApplicators}) {
    if (auto s = (this->*step)(); !s.ok()) return s.error();
  }
  return std::move(node_);
}

}  // namespace

Result<NodeId> CompileState::compileAt(const Json& schema, const Location& fallback) {
  if (auto it = compiled.find(&schema); it != compiled.end()) return it->second;
  auto loc = locations.find(&schema);
  if (loc == locations.end()) {
    // Reached through a pointer into a place the scan did not walk (an OpenAPI document's
    // components, an unknown keyword): it belongs to the resource of the pointer's root.
    scan(schema, fallback);
    loc = locations.find(&schema);
    if (loc == locations.end()) return schemaError("a schema must be an object or a boolean");
  }
  auto& nodes = out->nodes_;
  const NodeId id = static_cast<NodeId>(nodes.size());
  nodes.emplace_back();
  compiled.emplace(&schema, id);
  if (schema.is_boolean()) {
    nodes[id].kind = schema.get<bool>() ? Node::Kind::kTrue : Node::Kind::kFalse;
    nodes[id].resource = loc->second.resource;
    return id;
  }
  const Location at = loc->second;  // a copy: compiling children may rehash `locations`
  auto node = NodeReader(*this, schema, at).read();
  if (!node.ok()) return node.error();
  out->nodes_[id] = std::move(*node);
  return id;
}

Result<NodeId> CompileState::compileReference(std::string_view reference, const Location& from) {
  std::string absolute = resolveUri(from.base, reference);
  std::string uri = withoutFragment(absolute);
  std::string fragment = fragmentOf(absolute);
  auto root = resources.find(uri);
  if (root == resources.end()) {
    return schemaError("unresolvable $ref '" + std::string(reference) + "': no document " + uri);
  }
  const Json* target = nullptr;
  if (fragment.empty() || fragment[0] == '/') {
    target = resolvePointer(*root->second, fragment);
  } else if (auto a = anchors.find(uri + "#" + fragment); a != anchors.end()) {
    target = a->second;
  }
  if (!target) {
    return schemaError("unresolvable $ref '" + std::string(reference) + "': nothing at #" +
                       fragment);
  }
  Location fallback = from;
  if (auto l = locations.find(root->second); l != locations.end()) fallback = l->second;
  return compileAt(*target, fallback);
}

Status CompileState::checkCycles() const {
  // A cycle of in-place applicators ($ref, allOf, not, ...) never reaches a smaller part of
  // the instance, so validating through it would never end: such a schema is refused here.
  const auto& nodes = out->nodes_;
  enum : uint8_t { kUnseen, kOnPath, kDone };
  std::vector<uint8_t> mark(nodes.size(), kUnseen);
  std::vector<std::pair<NodeId, size_t>> stack;  // node, next edge
  auto edges = [&](NodeId id, std::vector<NodeId>& out_edges) {
    const Node& n = nodes[id];
    out_edges.clear();
    for (NodeId e : {n.ref, n.dynamic_ref, n.not_, n.if_, n.then_, n.else_}) {
      if (e != kNoNode) out_edges.push_back(e);
    }
    for (const auto* list : {&n.all_of, &n.any_of, &n.one_of}) {
      out_edges.insert(out_edges.end(), list->begin(), list->end());
    }
    for (const auto& d : n.dependent_schemas)
      out_edges.push_back(d.schema);
  };
  std::vector<NodeId> scratch;
  for (NodeId root = 0; root < nodes.size(); ++root) {
    if (mark[root] != kUnseen) continue;
    stack.push_back({root, 0});
    mark[root] = kOnPath;
    while (!stack.empty()) {
      auto& [id, next] = stack.back();
      edges(id, scratch);
      if (next >= scratch.size()) {
        mark[id] = kDone;
        stack.pop_back();
        continue;
      }
      NodeId to = scratch[next++];
      if (mark[to] == kOnPath) {
        return schemaError("a $ref cycle never descends into the instance (it would not end)");
      }
      if (mark[to] == kUnseen) {
        mark[to] = kOnPath;
        stack.push_back({to, 0});
      }
    }
  }
  return {};
}

Status CompileState::compileDynamicAnchors() {
  // A $dynamicRef may land on any $dynamicAnchor of a resource in the dynamic scope, so every
  // one of them needs a node. Compiling one may add resources, so loop to a fixed point.
  for (size_t done = 0; uses_dynamic_ref && done < dynamic_anchors.size(); ++done) {
    auto anchors_of = dynamic_anchors[done];  // a copy: compiling may grow the outer vector
    for (const auto& [name, schema] : anchors_of) {
      auto loc = locations.find(schema);
      if (loc == locations.end()) continue;
      auto id = compileAt(*schema, loc->second);
      if (!id.ok()) return id.error();
      if (out->resources_.size() < dynamic_anchors.size()) {
        out->resources_.resize(dynamic_anchors.size());
      }
      out->resources_[done].dynamic_anchors.emplace_back(name, *id);
    }
  }
  out->resources_.resize(dynamic_anchors.size());
  return {};
}

}  // namespace gatehouse::jsonschema

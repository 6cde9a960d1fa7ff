// Validation: walks the compiled nodes over an instance. No exceptions; the instance path is a
// stack of views into the instance and becomes a JSON pointer only when an error is reported.
// Annotations (which properties and items were evaluated) are tracked only below a node with
// `unevaluatedProperties` / `unevaluatedItems`.
#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "jsonschema/formats.h"
#include "jsonschema/node.h"
#include "jsonschema/schema.h"
#include "jsonschema/uri.h"

namespace gatehouse::jsonschema {

using Json = nlohmann::json;

// What in-place subschemas evaluated at one instance location.
struct Annotations {
  std::vector<std::string_view> properties;
  bool all_properties = false;
  size_t items = 0;  // items [0, items) were evaluated
  bool all_items = false;
  std::vector<size_t> contained;  // indexes matched by `contains`

  void merge(const Annotations& o) {
    properties.insert(properties.end(), o.properties.begin(), o.properties.end());
    all_properties |= o.all_properties;
    items = std::max(items, o.items);
    all_items |= o.all_items;
    contained.insert(contained.end(), o.contained.begin(), o.contained.end());
  }
  bool hasProperty(std::string_view name) const {
    return all_properties ||
           std::find(properties.begin(), properties.end(), name) != properties.end();
  }
  bool hasItem(size_t i) const {
    return all_items || i < items ||
           std::find(contained.begin(), contained.end(), i) != contained.end();
  }
};

class Evaluator {
 public:
  Evaluator(const Validator& v, std::vector<ValidationError>* errors, size_t max_errors)
      : nodes_(v.nodes_), resources_(v.resources_), errors_(errors), max_errors_(max_errors) {
    path_.reserve(16);  // one allocation each instead of several as a document nests
    scope_.reserve(8);
  }

  bool validate(NodeId id, const Json& instance, Annotations* ann);
  bool exhausted() const { return steps_ > kMaxSteps; }

 private:
  static constexpr int kMaxDepth = 512;
  static constexpr uint64_t kMaxSteps = uint64_t{1} << 22;  // subschema visits per validate()
  bool validateNode(NodeId id, const Json& instance, Annotations* ann);
  struct Segment {
    std::string_view key;
    size_t index;
    bool is_index;
  };
  // Whether to stop at the first failure: nobody reads the errors, or enough were found.
  bool stopEarly() const {
    return errors_ == nullptr || quiet_ > 0 || errors_->size() >= max_errors_;
  }
  void fail(std::string_view keyword, std::string message);
  bool child(NodeId id, const Json& instance, std::string_view key) {
    path_.push_back({key, 0, false});
    bool ok = validate(id, instance, nullptr);
    path_.pop_back();
    return ok;
  }
  bool item(NodeId id, const Json& instance, size_t index) {
    path_.push_back({{}, index, true});
    bool ok = validate(id, instance, nullptr);
    path_.pop_back();
    return ok;
  }
  // Validates without reporting (a branch of anyOf, oneOf, not, if).
  bool quietly(NodeId id, const Json& instance, Annotations* ann) {
    ++quiet_;
    bool ok = validate(id, instance, ann);
    --quiet_;
    return ok;
  }
  bool checkType(const Node& n, const Json& v);
  bool checkNumber(const Node& n, const Json& v);
  bool checkString(const Node& n, const Json& v);
  bool checkArray(const Node& n, const Json& v, Annotations* ann);
  bool checkObject(const Node& n, const Json& v, Annotations* ann);
  bool checkProperties(const Node& n, const Json& v, Annotations* ann);
  bool checkApplicators(const Node& n, const Json& v, Annotations* ann);
  bool checkUnevaluated(const Node& n, const Json& v, const Annotations& own);
  NodeId dynamicTarget(const Node& n) const;

  const std::vector<Node>& nodes_;
  const std::vector<Resource>& resources_;
  std::vector<ValidationError>* errors_;
  size_t max_errors_;
  int quiet_ = 0;
  int depth_ = 0;
  uint64_t steps_ = 0;
  std::vector<Segment> path_;
  std::vector<uint32_t> scope_;  // resources entered, outermost first ($dynamicRef)
};

void Evaluator::fail(std::string_view keyword, std::string message) {
  if (errors_ == nullptr || quiet_ > 0 || errors_->size() >= max_errors_) return;
  std::string pointer;
  for (const auto& s : path_) {
    if (s.is_index) {
      pointer.push_back('/');
      pointer.append(std::to_string(s.index));
    } else {
      appendPointerToken(pointer, s.key);
    }
  }
  errors_->push_back({std::move(pointer), std::string(keyword), std::move(message)});
}

namespace {

uint8_t typeOf(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      return kNull;
    case Json::value_t::boolean:
      return kBoolean;
    case Json::value_t::object:
      return kObject;
    case Json::value_t::array:
      return kArray;
    case Json::value_t::string:
      return kString;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
      return kNumber | kInteger;
    case Json::value_t::number_float: {
      double d = v.get<double>();
      return std::isfinite(d) && std::floor(d) == d ? (kNumber | kInteger) : kNumber;
    }
    default:
      return 0;
  }
}

// Code points of a UTF-8 string: bytes that do not continue a sequence.
size_t codePoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

bool isMultiple(const Json& v, double divisor) {
  if (v.is_number_integer() && std::floor(divisor) == divisor && divisor < 9.2e18) {
    auto d = static_cast<int64_t>(divisor);
    return v.is_number_unsigned() ? v.get<uint64_t>() % static_cast<uint64_t>(d) == 0
                                  : v.get<int64_t>() % d == 0;
  }
  double q = v.get<double>() / divisor;
  if (!std::isfinite(q)) return false;
  return std::fabs(q - std::round(q)) <= 1e-9 * std::max(1.0, std::fabs(q));
}

}  // namespace

bool Evaluator::checkType(const Node& n, const Json& v) {
  bool ok = true;
  if ((n.has & kHasType) && (typeOf(v) & n.types) == 0) {
    fail("type", "wrong type: " + std::string(v.type_name()));
    ok = false;
    if (stopEarly()) return false;
  }
  if (n.has & kHasEnum) {
    if (std::find(n.enum_values.begin(), n.enum_values.end(), v) == n.enum_values.end()) {
      fail("enum", "not one of the allowed values");
      ok = false;
      if (stopEarly()) return false;
    }
  }
  if ((n.has & kHasConst) && !(v == n.const_value)) {
    fail("const", "not the constant value");
    ok = false;
  }
  return ok;
}

bool Evaluator::checkNumber(const Node& n, const Json& v) {
  double d = v.get<double>();
  auto check = [&](bool good, std::string_view keyword, const char* message) {
    if (!good) fail(keyword, message);
    return good;
  };
  bool ok = true;
  if (n.minimum) ok &= check(d >= *n.minimum, "minimum", "below the minimum");
  if (n.maximum) ok &= check(d <= *n.maximum, "maximum", "above the maximum");
  if (n.exclusive_minimum) {
    ok &= check(d > *n.exclusive_minimum, "exclusiveMinimum", "not above the exclusive minimum");
  }
  if (n.exclusive_maximum) {
    ok &= check(d < *n.exclusive_maximum, "exclusiveMaximum", "not below the exclusive maximum");
  }
  if (n.multiple_of) ok &= check(isMultiple(v, *n.multiple_of), "multipleOf", "not a multiple");
  return ok;
}

bool Evaluator::checkString(const Node& n, const Json& v) {
  const auto& s = v.get_ref<const std::string&>();
  bool ok = true;
  if (n.min_length || n.max_length) {
    size_t len = codePoints(s);
    if (n.min_length && len < *n.min_length) {
      fail("minLength", "shorter than " + std::to_string(*n.min_length));
      ok = false;
    }
    if (n.max_length && len > *n.max_length) {
      fail("maxLength", "longer than " + std::to_string(*n.max_length));
      ok = false;
    }
  }
  if (n.pattern && !RE2::PartialMatch(s, *n.pattern)) {
    fail("pattern", "does not match " + n.pattern->pattern());
    ok = false;
  }
  return ok;
}

bool Evaluator::checkArray(const Node& n, const Json& v, Annotations* ann) {
  bool ok = true;
  const size_t size = v.size();
  if (n.min_items && size < *n.min_items) {
    fail("minItems", "fewer than " + std::to_string(*n.min_items) + " items");
    ok = false;
  }
  if (n.max_items && size > *n.max_items) {
    fail("maxItems", "more than " + std::to_string(*n.max_items) + " items");
    ok = false;
  }
  if (n.unique_items) {
    for (size_t i = 1; i < size && ok; ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (v[i] == v[j]) {
          fail("uniqueItems",
               "items " + std::to_string(j) + " and " + std::to_string(i) + " are equal");
          ok = false;
          break;
        }
      }
    }
  }
  if (!ok && stopEarly()) return false;
  const size_t prefix = std::min(size, n.prefix_items.size());
  for (size_t i = 0; i < prefix; ++i) {
    if (!item(n.prefix_items[i], v[i], i)) {
      ok = false;
      if (stopEarly()) return false;
    }
  }
  if (ann) ann->items = std::max(ann->items, prefix);
  if (n.items != kNoNode) {
    for (size_t i = prefix; i < size; ++i) {
      if (!item(n.items, v[i], i)) {
        ok = false;
        if (stopEarly()) return false;
      }
    }
    if (ann) ann->all_items = true;
  }
  if (n.contains != kNoNode) {
    uint64_t matched = 0;
    for (size_t i = 0; i < size; ++i) {
      if (quietly(n.contains, v[i], nullptr)) {
        ++matched;
        if (ann) ann->contained.push_back(i);
      }
    }
    uint64_t min = n.min_contains.value_or(1);
    if (matched < min) {
      fail(n.min_contains ? "minContains" : "contains", "too few items match 'contains'");
      ok = false;
    } else if (n.max_contains && matched > *n.max_contains) {
      fail("maxContains", "too many items match 'contains'");
      ok = false;
    }
  }
  return ok;
}

bool Evaluator::checkProperties(const Node& n, const Json& v, Annotations* ann) {
  bool ok = true;
  const bool need_additional = n.additional_properties != kNoNode;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string& key = it.key();
    bool matched = false;
    auto p =
        std::lower_bound(n.properties.begin(), n.properties.end(), key,
                         [](const auto& entry, const std::string& k) { return entry.first < k; });
    if (p != n.properties.end() && p->first == key) {
      matched = true;
      if (!child(p->second, *it, key)) {
        ok = false;
        if (stopEarly()) return false;
      }
    }
    for (const auto& pp : n.pattern_properties) {
      if (RE2::PartialMatch(key, *pp.regex)) {
        matched = true;
        if (!child(pp.schema, *it, key)) {
          ok = false;
          if (stopEarly()) return false;
        }
      }
    }
    if (!matched && need_additional) {
      bool good;
      if (nodes_[n.additional_properties].kind == Node::Kind::kFalse) {
        good = false;
        path_.push_back({key, 0, false});
        fail("additionalProperties", "property '" + key + "' is not allowed");
        path_.pop_back();
      } else {
        good = child(n.additional_properties, *it, key);
      }
      if (!good) {
        ok = false;
        if (stopEarly()) return false;
      }
      matched = true;
    }
    if (matched && ann) ann->properties.push_back(key);
    if (n.property_names != kNoNode) {
      Json name(key);
      if (!quietly(n.property_names, name, nullptr)) {
        fail("propertyNames", "property name '" + key + "' is not allowed");
        ok = false;
        if (stopEarly()) return false;
      }
    }
  }
  return ok;
}

bool Evaluator::checkObject(const Node& n, const Json& v, Annotations* ann) {
  bool ok = true;
  for (const auto& name : n.required) {
    if (!v.contains(name)) {
      path_.push_back({name, 0, false});  // names the missing field, the useful place
      fail("required", "missing property '" + name + "'");
      path_.pop_back();
      ok = false;
      if (stopEarly()) return false;
    }
  }
  if (n.min_properties && v.size() < *n.min_properties) {
    fail("minProperties", "too few properties");
    ok = false;
  }
  if (n.max_properties && v.size() > *n.max_properties) {
    fail("maxProperties", "too many properties");
    ok = false;
  }
  for (const auto& dep : n.dependent_required) {
    if (!v.contains(dep.property)) continue;
    for (const auto& name : dep.required) {
      if (!v.contains(name)) {
        fail("dependentRequired", "'" + dep.property + "' requires '" + name + "'");
        ok = false;
      }
    }
  }
  if (!ok && stopEarly()) return false;
  if (!checkProperties(n, v, ann)) ok = false;
  return ok;
}

NodeId Evaluator::dynamicTarget(const Node& n) const {
  if (n.dynamic_anchor.empty()) return n.dynamic_ref;
  for (uint32_t resource : scope_) {
    if (resource >= resources_.size()) continue;
    for (const auto& [name, id] : resources_[resource].dynamic_anchors) {
      if (name == n.dynamic_anchor) return id;
    }
  }
  return n.dynamic_ref;
}

bool Evaluator::checkApplicators(const Node& n, const Json& v, Annotations* ann) {
  bool ok = true;
  auto note = [&](bool good) {
    if (!good) ok = false;
    return good || !stopEarly();
  };
  if ((n.has & kHasRef) && !note(validate(n.ref, v, ann))) return false;
  if ((n.has & kHasDynamicRef) && !note(validate(dynamicTarget(n), v, ann))) return false;
  if (n.has & kHasAllOf) {
    for (NodeId s : n.all_of) {
      if (!note(validate(s, v, ann))) return false;
    }
  }
  if (n.has & kHasAnyOf) {
    bool any = false;
    for (NodeId s : n.any_of) {
      Annotations branch;
      if (quietly(s, v, ann ? &branch : nullptr)) {
        any = true;
        if (!ann) break;  // without annotations to collect, the first match decides
        ann->merge(branch);
      }
    }
    if (!any) fail("anyOf", "matches none of the alternatives");
    if (!note(any)) return false;
  }
  if (n.has & kHasOneOf) {
    size_t matches = 0;
    Annotations chosen;
    for (NodeId s : n.one_of) {
      Annotations branch;
      if (quietly(s, v, ann ? &branch : nullptr)) {
        if (++matches > 1) break;
        if (ann) chosen = std::move(branch);
      }
    }
    if (matches != 1) {
      fail("oneOf",
           matches == 0 ? "matches none of the alternatives" : "matches more than one alternative");
    } else if (ann) {
      ann->merge(chosen);
    }
    if (!note(matches == 1)) return false;
  }
  if (n.has & kHasNot) {
    bool matched = quietly(n.not_, v, nullptr);
    if (matched) fail("not", "matches a schema it must not match");
    if (!note(!matched)) return false;
  }
  if (n.has & kHasIf) {
    Annotations branch;
    bool cond = quietly(n.if_, v, ann ? &branch : nullptr);
    if (cond && ann) ann->merge(branch);
    NodeId next = cond ? n.then_ : n.else_;
    if (next != kNoNode && !validate(next, v, ann)) {
      fail(cond ? "then" : "else", cond ? "fails 'then'" : "fails 'else'");
      if (!note(false)) return false;
    }
  }
  if ((n.has & kHasDependentSchemas) && v.is_object()) {
    for (const auto& dep : n.dependent_schemas) {
      if (v.contains(dep.property) && !note(validate(dep.schema, v, ann))) return false;
    }
  }
  return ok;
}

bool Evaluator::checkUnevaluated(const Node& n, const Json& v, const Annotations& own) {
  bool ok = true;
  if ((n.has & kHasUnevaluatedProperties) && v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (own.hasProperty(it.key())) continue;
      const bool never = nodes_[n.unevaluated_properties].kind == Node::Kind::kFalse;
      if (never || !child(n.unevaluated_properties, *it, it.key())) {
        if (never) {  // else the subschema reported its own keyword
          path_.push_back({it.key(), 0, false});
          fail("unevaluatedProperties", "property '" + it.key() + "' is not allowed");
          path_.pop_back();
        }
        ok = false;
        if (stopEarly()) return false;
      }
    }
  }
  if ((n.has & kHasUnevaluatedItems) && v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) {
      if (own.hasItem(i)) continue;
      const bool never = nodes_[n.unevaluated_items].kind == Node::Kind::kFalse;
      if (never || !item(n.unevaluated_items, v[i], i)) {
        if (never) {
          path_.push_back({{}, i, true});
          fail("unevaluatedItems", "item " + std::to_string(i) + " is not allowed");
          path_.pop_back();
        }
        ok = false;
        if (stopEarly()) return false;
      }
    }
  }
  return ok;
}

bool Evaluator::validate(NodeId id, const Json& v, Annotations* ann) {
  // Bounds the recursion (a deeply nested instance) and the work (nested anyOf branches that
  // each fail late can multiply): past either bound the instance is refused, not hung on.
  if (depth_ >= kMaxDepth) {
    fail("depth", "nested too deeply to validate");
    return false;
  }
  if (++steps_ > kMaxSteps) return false;  // reported once, by Validator::validate
  ++depth_;
  bool ok = validateNode(id, v, ann);
  --depth_;
  return ok;
}

bool Evaluator::validateNode(NodeId id, const Json& v, Annotations* ann) {
  const Node& n = nodes_[id];
  if (n.kind == Node::Kind::kTrue) return true;
  if (n.kind == Node::Kind::kFalse) {
    fail("false", "no value is allowed here");
    return false;
  }
  const bool entered = scope_.empty() || scope_.back() != n.resource;
  if (entered) scope_.push_back(n.resource);
  // A node with unevaluated* keeps its own annotations; the caller's get them on success.
  const bool own_annotations = (n.has & (kHasUnevaluatedProperties | kHasUnevaluatedItems)) != 0;
  Annotations own;
  Annotations* here = own_annotations ? &own : ann;
  bool ok = checkType(n, v);
  if (ok || !stopEarly()) {
    const auto t = v.type();
    if ((n.has & kHasNumeric) && v.is_number() && !checkNumber(n, v)) ok = false;
    if ((n.has & kHasString) && t == Json::value_t::string && !checkString(n, v)) ok = false;
    if ((n.has & kHasFormat) && t == Json::value_t::string &&
        !checkFormat(n.format, v.get_ref<const std::string&>())) {
      fail("format", "not a valid " + std::string(formatName(n.format)));
      ok = false;
    }
    if ((ok || !stopEarly()) && (n.has & kHasArray) && t == Json::value_t::array &&
        !checkArray(n, v, here)) {
      ok = false;
    }
    if ((ok || !stopEarly()) && (n.has & kHasObject) && t == Json::value_t::object &&
        !checkObject(n, v, here)) {
      ok = false;
    }
    if ((ok || !stopEarly()) && !checkApplicators(n, v, here)) ok = false;
    if ((ok || !stopEarly()) && own_annotations && !checkUnevaluated(n, v, own)) ok = false;
  }
  if (own_annotations && ok && ann) {
    ann->merge(own);
    if (n.has & kHasUnevaluatedProperties) ann->all_properties = true;
    if (n.has & kHasUnevaluatedItems) ann->all_items = true;
  }
  if (entered) scope_.pop_back();
  return ok;
}

Validator::Validator() = default;
Validator::~Validator() = default;

size_t Validator::nodeCount() const {
  return nodes_.size();
}

bool Validator::validate(SchemaId schema, const Json& instance,
                         std::vector<ValidationError>* errors, size_t max_errors) const {
  if (schema.node >= nodes_.size()) return false;
  Evaluator e(*this, errors, max_errors == 0 ? 1 : max_errors);
  const bool ok = e.validate(schema.node, instance, nullptr);
  if (e.exhausted() && errors) {
    // What failed after the budget ran out says nothing about the instance.
    errors->clear();
    errors->push_back({"", "budget", "too much work to validate"});
  }
  return ok && !e.exhausted();
}

}  // namespace gatehouse::jsonschema

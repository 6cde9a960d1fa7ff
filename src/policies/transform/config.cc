#include "policies/transform/config.h"

#include <yaml-cpp/yaml.h>

#include <string_view>

#include "http/headers.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::transform {
namespace {

using tmpl::JsonPointer;
using tmpl::Template;

// "what (line N): message"; the caller adds the file and the policy's YAML path.
Error optionError(const YAML::Node& at, std::string_view what, std::string_view message) {
  std::string s(what);
  if (at.Mark().line >= 0) s += " (line " + std::to_string(at.Mark().line + 1) + ")";
  return configError(s + ": " + std::string(message));
}

Result<Template> compileAt(const YAML::Node& node, std::string_view what, uint32_t scopes) {
  if (!node.IsScalar()) return optionError(node, what, "expected a string");
  tmpl::Compiled c = Template::compile(node.Scalar(), scopes);
  if (auto* e = std::get_if<tmpl::CompileError>(&c)) {
    return optionError(node, what, "template " + tmpl::describe(*e));
  }
  return std::move(std::get<Template>(c));
}

Result<JsonPointer> pointerAt(const YAML::Node& node, std::string_view what) {
  if (!node.IsScalar()) return optionError(node, what, "expected a JSON pointer like /a/b");
  auto p = JsonPointer::parse(node.Scalar());
  if (!p.ok()) return optionError(node, what, p.error().message);
  return p;
}

bool framingHeader(std::string_view name) {
  for (std::string_view f : {"content-length", "transfer-encoding", "connection", "upgrade"}) {
    if (http::iequals(name, f)) return true;
  }
  return false;
}

Status checkName(const YAML::Node& at, std::string_view what, const std::string& name,
                 bool header) {
  if (header && !isHeaderName(name))
    return optionError(at, what, "invalid header name '" + name + "'");
  if (header && framingHeader(name)) {
    return optionError(at, what, "header '" + name + "' controls message framing");
  }
  if (!header) {
    // Names are written into the query as they are: only characters that need no escape.
    const std::string_view ok = "-._~!$'()*+,;:@[]";
    bool valid = !name.empty();
    for (char c : name) {
      valid = valid && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || ok.find(c) != std::string_view::npos);
    }
    if (!valid) {
      return optionError(at, what,
                         "invalid query parameter name '" + name +
                             "' (letters, digits and -._~!$'()*+,;:@[] only)");
    }
  }
  return {};
}

Result<FieldOps> readFieldOps(const YAML::Node& node, const std::string& what, bool header,
                              uint32_t scopes) {
  FieldOps ops;
  if (!node.IsMap()) return optionError(node, what, "expected a map with add, set, rename, remove");
  if (auto st = checkKeys(node, {"add", "set", "rename", "remove"}); !st.ok()) {
    return optionError(node, what, st.error().message);
  }
  if (const auto r = node["remove"]) {
    auto names = readStringList(r, what + ".remove");
    if (!names.ok()) return names.error();
    for (auto& n : *names) {
      if (auto st = checkName(r, what + ".remove", n, header); !st.ok()) return st.error();
      ops.remove.push_back(std::move(n));
    }
  }
  if (const auto r = node["rename"]) {
    if (!r.IsMap()) return optionError(r, what + ".rename", "expected a map of old: new names");
    for (const auto& kv : r) {
      std::string from = kv.first.Scalar(), to = kv.second.IsScalar() ? kv.second.Scalar() : "";
      for (const auto& n : {from, to}) {
        if (auto st = checkName(kv.second, what + ".rename." + from, n, header); !st.ok()) {
          return st.error();
        }
      }
      ops.rename.emplace_back(std::move(from), std::move(to));
    }
  }
  for (auto [key, out] : {std::pair{"set", &ops.set}, std::pair{"add", &ops.add}}) {
    const auto r = node[key];
    if (!r) continue;
    const std::string w = what + "." + key;
    if (!r.IsMap()) return optionError(r, w, "expected a map of name: template");
    for (const auto& kv : r) {
      std::string name = kv.first.Scalar();
      if (auto st = checkName(kv.first, w, name, header); !st.ok()) return st.error();
      auto t = compileAt(kv.second, w + "." + name, scopes);
      if (!t.ok()) return t.error();
      out->emplace_back(std::move(name), std::move(*t));
    }
  }
  return ops;
}

// A YAML scalar as JSON: quoted scalars are strings; plain ones may be null, booleans or
// numbers.
tmpl::Json scalarJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;
  if (s == "null" || s == "~") return nullptr;
  if (s == "true") return true;
  if (s == "false") return false;
  tmpl::Json n = tmpl::Json::parse(s, nullptr, false);
  if (!n.is_discarded() && n.is_number()) return n;
  return s;
}

Status readValue(const YAML::Node& node, const std::string& what, uint32_t scopes, ValueSpec& spec,
                 const std::string& pointer, tmpl::Json& out) {
  if (node.IsMap()) {
    out = tmpl::Json::object();
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      std::string escaped;
      for (char c : key)
        escaped += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
      if (auto st = readValue(kv.second, what, scopes, spec, pointer + "/" + escaped, out[key]);
          !st.ok()) {
        return st;
      }
    }
    return {};
  }
  if (node.IsSequence()) {
    out = tmpl::Json::array();
    size_t i = 0;
    for (const auto& item : node) {
      out.push_back(nullptr);
      if (auto st =
              readValue(item, what, scopes, spec, pointer + "/" + std::to_string(i++), out.back());
          !st.ok()) {
        return st;
      }
    }
    return {};
  }
  if (!node.IsScalar()) {
    out = nullptr;
    return {};
  }
  if (node.Scalar().find("{{") == std::string::npos) {
    out = scalarJson(node);
    return {};
  }
  auto t = compileAt(node, what, scopes);
  if (!t.ok()) return t.error();
  spec.templates.emplace_back(*JsonPointer::parse(pointer), std::move(*t));
  return {};
}

Result<std::vector<BodyRule>> readBodyRules(const YAML::Node& node, const std::string& what,
                                            uint32_t scopes, int depth);

Result<BodyRule> readBodyRule(const YAML::Node& node, const std::string& what, uint32_t scopes,
                              int depth) {
  if (!node.IsMap()) return optionError(node, what, "expected a map such as {remove: /a}");
  if (auto st = checkKeys(node, {"set", "add", "remove", "rename", "move", "wrap", "unwrap", "map",
                                 "value", "value_json", "to", "rules"});
      !st.ok())
    return optionError(node, what, st.error().message);
  static constexpr std::pair<const char*, BodyRule::Kind> kKinds[] = {
      {"set", BodyRule::Kind::kSet},       {"add", BodyRule::Kind::kAdd},
      {"remove", BodyRule::Kind::kRemove}, {"rename", BodyRule::Kind::kRename},
      {"move", BodyRule::Kind::kMove},     {"wrap", BodyRule::Kind::kWrap},
      {"unwrap", BodyRule::Kind::kUnwrap}, {"map", BodyRule::Kind::kMap}};
  BodyRule rule;
  const char* op = nullptr;
  for (const auto& [key, kind] : kKinds) {
    if (!node[key]) continue;
    if (op)
      return optionError(node, what,
                         std::string("one operation per rule: both ") + op + " and " + key);
    op = key;
    rule.kind = kind;
  }
  if (!op)
    return optionError(node, what,
                       "expected one of set, add, remove, rename, move, wrap, unwrap, map");
  const std::string w = what + "." + op;
  using K = BodyRule::Kind;
  auto need = [&](const char* key) -> Status {
    if (!node[key]) return optionError(node, w, std::string("needs '") + key + "'");
    return {};
  };
  if (rule.kind == K::kWrap) {
    if (!node[op].IsScalar() || node[op].Scalar().empty())
      return optionError(node[op], w, "expected a key name");
    rule.name = node[op].Scalar();
    return rule;
  }
  auto at = pointerAt(node[op], w);
  if (!at.ok()) return at.error();
  rule.at = std::move(*at);
  if (rule.kind == K::kSet || rule.kind == K::kAdd) {
    if (rule.at.isRoot()) return optionError(node[op], w, "the pointer must name a field");
    if (node["value"] && node["value_json"])
      return optionError(node, w, "value or value_json, not both");
    if (node["value_json"]) {
      auto t = compileAt(node["value_json"], w + ".value_json", scopes);
      if (!t.ok()) return t.error();
      rule.value.json_template = std::move(*t);
    } else if (auto st = need("value"); !st.ok()) {
      return st.error();
    } else if (auto rv = readValue(node["value"], w + ".value", scopes, rule.value, "",
                                   rule.value.literal);
               !rv.ok()) {
      return rv.error();
    }
  } else if (rule.kind == K::kRename) {
    if (auto st = need("to"); !st.ok()) return st.error();
    if (rule.at.isRoot()) return optionError(node[op], w, "the pointer must name a field");
    rule.name = node["to"].Scalar();
    if (rule.name.empty()) return optionError(node["to"], w + ".to", "expected the new key name");
    // A rename is a move to a sibling: the target pointer is built here, once.
    std::string target = rule.at.text().substr(0, rule.at.text().rfind('/')) + "/";
    for (char c : rule.name)
      target += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    rule.to = *JsonPointer::parse(target);
  } else if (rule.kind == K::kMove) {
    if (auto st = need("to"); !st.ok()) return st.error();
    auto to = pointerAt(node["to"], w + ".to");
    if (!to.ok()) return to.error();
    rule.to = std::move(*to);
  } else if (rule.kind == K::kMap) {
    if (auto st = need("rules"); !st.ok()) return st.error();
    if (depth >= 4) return optionError(node, w, "map rules nest at most 4 deep");
    auto sub = readBodyRules(node["rules"], w + ".rules", scopes, depth + 1);
    if (!sub.ok()) return sub.error();
    rule.rules = std::move(*sub);
  }
  return rule;
}

Result<std::vector<BodyRule>> readBodyRules(const YAML::Node& node, const std::string& what,
                                            uint32_t scopes, int depth) {
  if (!node.IsSequence() || node.size() == 0)
    return optionError(node, what, "expected a non-empty list of rules");
  std::vector<BodyRule> out;
  for (size_t i = 0; i < node.size(); ++i) {
    auto r = readBodyRule(node[i], what + "[" + std::to_string(i) + "]", scopes, depth);
    if (!r.ok()) return r.error();
    out.push_back(std::move(*r));
  }
  return out;
}

Result<std::vector<StatusRule>> readStatusRules(const YAML::Node& node, const std::string& what) {
  if (!node.IsSequence()) return optionError(node, what, "expected a list of {from, to} rules");
  std::vector<StatusRule> out;
  for (size_t i = 0; i < node.size(); ++i) {
    const YAML::Node r = node[i];
    const std::string w = what + "[" + std::to_string(i) + "]";
    if (auto st = checkKeys(r, {"from", "to", "when_exists", "when_equals"}); !st.ok()) {
      return optionError(r, w, st.error().message);
    }
    StatusRule rule;
    auto from = readInt(r["from"], w + ".from", 100, 599);
    auto to = readInt(r["to"], w + ".to", 200, 599);
    if (!from.ok()) return from.error();
    if (!to.ok()) return to.error();
    rule.from = *from;
    rule.to = *to;
    if (r["when_exists"]) {
      auto p = pointerAt(r["when_exists"], w + ".when_exists");
      if (!p.ok()) return p.error();
      rule.when_exists = std::move(*p);
    }
    if (const auto eq = r["when_equals"]) {
      if (!eq.IsMap() || !eq["pointer"] || !eq["value"]) {
        return optionError(eq, w + ".when_equals", "expected {pointer: /a, value: v}");
      }
      auto p = pointerAt(eq["pointer"], w + ".when_equals.pointer");
      if (!p.ok()) return p.error();
      ValueSpec v;
      if (auto st = readValue(eq["value"], w + ".when_equals.value", 0, v, "", v.literal);
          !st.ok()) {
        return st.error();
      }
      rule.when_equals.emplace(std::move(*p), std::move(v.literal));
    }
    out.push_back(std::move(rule));
  }
  return out;
}

bool rulesRead(const std::vector<BodyRule>& rules, uint32_t scope) {
  for (const auto& r : rules) {
    if (r.value.json_template && (r.value.json_template->scopesUsed() & scope)) return true;
    for (const auto& [p, t] : r.value.templates) {
      if (t.scopesUsed() & scope) return true;
    }
    if (rulesRead(r.rules, scope)) return true;
  }
  return false;
}

bool templatesUse(const FieldOps& ops, uint32_t scope) {
  for (const auto* list : {&ops.set, &ops.add}) {
    for (const auto& [name, t] : *list) {
      if (t.scopesUsed() & scope) return true;
    }
  }
  return false;
}

Status readSide(const YAML::Node& node, const std::string& what, bool request, Side& side) {
  if (!node.IsMap()) return optionError(node, what, "expected a map");
  if (auto st = request ? checkKeys(node, {"headers", "query", "path", "method", "body"})
                        : checkKeys(node, {"headers", "body", "status"});
      !st.ok()) {
    return optionError(node, what, st.error().message);
  }
  const uint32_t scopes =
      request ? tmpl::kScopeRequest
              : tmpl::kScopeRequest | tmpl::kScopeResponse | tmpl::kScopeResponseBody;
  if (node["headers"]) {
    auto h = readFieldOps(node["headers"], what + ".headers", true, scopes);
    if (!h.ok()) return h.error();
    side.headers = std::move(*h);
  }
  if (node["query"]) {
    auto q = readFieldOps(node["query"], what + ".query", false, scopes);
    if (!q.ok()) return q.error();
    side.query = std::move(*q);
  }
  if (const auto p = node["path"]) {
    if (!p.IsScalar() || p.Scalar().empty() || p.Scalar()[0] != '/') {
      return optionError(p, what + ".path", "expected a template starting with '/'");
    }
    auto t = compileAt(p, what + ".path", scopes);
    if (!t.ok()) return t.error();
    side.path = std::move(*t);
  }
  if (const auto m = node["method"]) {
    if (!m.IsScalar() || m.Scalar().empty())
      return optionError(m, what + ".method", "expected a method");
    for (char c : m.Scalar()) {
      if (c < 'A' || c > 'Z')
        return optionError(m, what + ".method", "expected an upper-case method like POST");
    }
    side.method = m.Scalar();
  }
  if (node["body"]) {
    const uint32_t body_scopes = request ? scopes | tmpl::kScopeRequestBody : scopes;
    auto b = readBodyRules(node["body"], what + ".body", body_scopes, 0);
    if (!b.ok()) return b.error();
    side.body = std::move(*b);
  }
  if (node["status"]) {
    auto s = readStatusRules(node["status"], what + ".status");
    if (!s.ok()) return s.error();
    side.status = std::move(*s);
  }
  return {};
}

}  // namespace

Result<Options> parseOptions(const YAML::Node& config) {
  if (!config.IsMap()) return configError("expected a map with 'request' and/or 'response'");
  if (auto st = checkKeys(config, {"request", "response", "max_body_size", "on_non_json", "etag"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  if (config["max_body_size"]) {
    auto n = readSize(config["max_body_size"], "max_body_size", 1, uint64_t{1} << 30, "1MiB");
    if (!n.ok()) return n.error();
    o.max_body_size = *n;
  }
  if (config["on_non_json"]) {
    auto c = readChoice<OnNonJson>(config["on_non_json"], "on_non_json",
                                   {{"reject", OnNonJson::kReject}, {"pass", OnNonJson::kPass}});
    if (!c.ok()) return c.error();
    o.on_non_json = *c;
  }
  if (config["etag"]) {
    auto c = readChoice<EtagMode>(config["etag"], "etag",
                                  {{"weaken", EtagMode::kWeaken}, {"drop", EtagMode::kDrop}});
    if (!c.ok()) return c.error();
    o.etag = *c;
  }
  if (config["request"]) {
    if (auto st = readSide(config["request"], "request", true, o.request); !st.ok())
      return st.error();
  }
  if (config["response"]) {
    if (auto st = readSide(config["response"], "response", false, o.response); !st.ok()) {
      return st.error();
    }
  }
  if (o.request.empty() && o.response.empty()) return configError("no transformation given");
  bool needs =
      !o.response.body.empty() || templatesUse(o.response.headers, tmpl::kScopeResponseBody);
  for (const auto& s : o.response.status) {
    needs = needs || s.needsBody() || s.to == 204 || s.to == 304;
  }
  o.response_needs_body = needs;
  o.request_body_templates = rulesRead(o.request.body, tmpl::kScopeRequestBody);
  return o;
}

}  // namespace gatehouse::policies::transform

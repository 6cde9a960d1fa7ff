#include "policies/transform/body_rules.h"

#include <utility>

namespace gatehouse::policies::transform {

using json = tmpl::Json;

json buildValue(const ValueSpec& spec, const tmpl::VariableSource& vars, std::string& scratch) {
  if (spec.json_template) {
    scratch.clear();
    spec.json_template->render(vars, scratch);
    json parsed = json::parse(scratch, nullptr, false);
    if (parsed.is_discarded()) return json(scratch);
    return parsed;
  }
  json out = spec.literal;
  for (const auto& [pointer, t] : spec.templates) {
    scratch.clear();
    t.render(vars, scratch);
    pointer.set(out, json(scratch), true, true);
  }
  return out;
}

void applyBodyRules(const std::vector<BodyRule>& rules, json& doc, const tmpl::VariableSource& vars,
                    std::string& scratch) {
  using K = BodyRule::Kind;
  for (const BodyRule& r : rules) {
    switch (r.kind) {
      case K::kSet:
      case K::kAdd:
        r.at.set(doc, buildValue(r.value, vars, scratch), true, r.kind == K::kSet);
        break;
      case K::kRemove:
        (void)r.at.take(doc);
        break;
      case K::kRename:
      case K::kMove:
        if (auto v = r.at.take(doc)) r.to.set(doc, std::move(*v), true, true);
        break;
      case K::kWrap: {
        json wrapped = json::object();
        wrapped[r.name] = std::move(doc);
        doc = std::move(wrapped);
        break;
      }
      case K::kUnwrap:
        if (json* inner = r.at.find(doc)) {
          json v = std::move(*inner);
          doc = std::move(v);
        }
        break;
      case K::kMap:
        if (json* arr = r.at.find(doc); arr && arr->is_array()) {
          for (json& item : *arr)
            applyBodyRules(r.rules, item, vars, scratch);
        }
        break;
    }
  }
}

bool statusRuleHolds(const StatusRule& rule, int status, const json* doc) {
  if (rule.from != status) return false;
  if (!rule.needsBody()) return true;
  if (!doc) return false;
  if (rule.when_exists && !rule.when_exists->find(*doc)) return false;
  if (rule.when_equals) {
    const json* v = rule.when_equals->first.find(*doc);
    if (!v || *v != rule.when_equals->second) return false;
  }
  return true;
}

std::string serialize(const json& doc) {
  return doc.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace gatehouse::policies::transform

#pragma once
// Applies the JSON body rules of policy `transform` to a parsed body, on the worker that
// handles the request. Nothing throws: pointers were compiled at load and every write goes
// through JsonPointer's checked operations.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policies/transform/config.h"
#include "template/template.h"

namespace gatehouse::policies::transform {

// Runs `rules` in order on `doc`; templates read `vars`. `scratch` is reused for rendering.
void applyBodyRules(const std::vector<BodyRule>& rules, tmpl::Json& doc,
                    const tmpl::VariableSource& vars, std::string& scratch);

// The value a set/add rule writes.
tmpl::Json buildValue(const ValueSpec& spec, const tmpl::VariableSource& vars,
                      std::string& scratch);

// Whether `rule` holds for a response of `status` with the JSON body `doc` (null when the body
// is not JSON: a rule with a body condition then does not hold).
bool statusRuleHolds(const StatusRule& rule, int status, const tmpl::Json* doc);

// Compact JSON text; invalid UTF-8 in strings (from a template) becomes U+FFFD.
std::string serialize(const tmpl::Json& doc);

}  // namespace gatehouse::policies::transform

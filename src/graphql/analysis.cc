#include "graphql/analysis.h"

#include <algorithm>
#include <charconv>
#include <limits>

namespace gatehouse::graphql {
namespace {

constexpr uint64_t kCap = std::numeric_limits<uint64_t>::max();

uint64_t addSat(uint64_t a, uint64_t b) {
  return a > kCap - b ? kCap : a + b;
}
uint64_t mulSat(uint64_t a, uint64_t b) {
  if (a == 0 || b == 0) return 0;
  return a > kCap / b ? kCap : a * b;
}

// Measures selection sets; fragments are measured once (memo_) and combined where spread.
class Analyzer {
 public:
  Analyzer(const Document& doc, const Operation& op, const CostOptions& cost,
           const nlohmann::json& variables)
      : doc_(doc), op_(op), cost_(cost), variables_(variables), memo_(doc.fragments.size()) {
    for (size_t i = 0; i < doc.fragments.size(); ++i)
      by_name_.emplace(doc.fragments[i].name, i);
  }

  bool run(OperationStats& out) { return measure(op_.selections, out, 0); }
  AnalysisError& error() { return err_; }

 private:
  enum class State : uint8_t { kNew, kInProgress, kDone };
  struct Memo {
    State state = State::kNew;
    OperationStats stats;
  };

  bool fail(AnalysisError::Kind kind, std::string message) {
    err_.kind = kind;
    err_.message = std::move(message);
    return false;
  }

  static void merge(OperationStats& into, const OperationStats& s) {
    into.depth = std::max(into.depth, s.depth);
    into.fields = addSat(into.fields, s.fields);
    into.aliases = addSat(into.aliases, s.aliases);
    into.cost = addSat(into.cost, s.cost);
    into.introspection = into.introspection || s.introspection;
  }

  // The value of list argument `a`, or nullopt when it gives none.
  std::optional<uint64_t> listSize(const Value& v) const {
    const Value* literal = &v;
    if (v.kind == Value::Kind::kVariable) {
      if (variables_.is_object()) {
        auto it = variables_.find(std::string(v.text));
        if (it != variables_.end()) {
          if (it->is_number_unsigned()) return it->get<uint64_t>();
          if (it->is_number_integer()) return std::max<int64_t>(0, it->get<int64_t>());
          return std::nullopt;
        }
      }
      literal = nullptr;
      for (const auto& def : op_.variables) {
        if (def.name == v.text && def.has_default) literal = &def.default_value;
      }
      if (!literal) return cost_.default_list_size;
    }
    if (literal->kind != Value::Kind::kInt) return std::nullopt;
    if (!literal->text.empty() && literal->text[0] == '-') return 0;
    uint64_t n = 0;
    auto [p, ec] =
        std::from_chars(literal->text.data(), literal->text.data() + literal->text.size(), n);
    if (ec != std::errc()) return kCap;  // too large to hold: as large as can be
    return n;
  }

  uint64_t multiplier(const Selection& field) const {
    for (const auto& name : cost_.list_arguments) {
      for (const auto& a : field.arguments) {
        if (a.name != name) continue;
        if (auto n = listSize(a.value)) return *n;
      }
    }
    return 1;
  }

  uint64_t fieldCost(std::string_view name) const {
    auto it = cost_.field_costs.find(name);
    return it == cost_.field_costs.end() ? cost_.default_field_cost : it->second;
  }

  // Stats of `set` as if its fields were at depth 1; `chain` counts fragments being expanded.
  bool measure(const std::vector<Selection>& set, OperationStats& out, uint32_t chain) {
    for (const auto& s : set) {
      OperationStats part;
      switch (s.kind) {
        case Selection::Kind::kField: {
          OperationStats child;
          if (!s.selections.empty() && !measure(s.selections, child, chain)) return false;
          part.depth = child.depth + 1;
          part.fields = addSat(child.fields, 1);
          part.aliases = addSat(child.aliases, s.alias.empty() ? 0 : 1);
          part.cost = addSat(fieldCost(s.name), mulSat(multiplier(s), child.cost));
          part.introspection = child.introspection || s.name == "__schema" || s.name == "__type";
          break;
        }
        case Selection::Kind::kInlineFragment:
          if (!measure(s.selections, part, chain)) return false;
          break;
        case Selection::Kind::kFragmentSpread:
          if (!spread(s.name, part, chain)) return false;
          break;
      }
      merge(out, part);
    }
    return true;
  }

  bool spread(std::string_view name, OperationStats& out, uint32_t chain) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      return fail(AnalysisError::Kind::kUnknownFragment,
                  "unknown fragment '" + std::string(name) + "'");
    }
    Memo& m = memo_[it->second];
    if (m.state == State::kInProgress) {
      return fail(AnalysisError::Kind::kFragmentCycle,
                  "fragment '" + std::string(name) + "' spreads itself (a cycle)");
    }
    if (m.state == State::kNew) {
      if (chain + 1 > kMaxFragmentChain) {
        return fail(AnalysisError::Kind::kFragmentsTooDeep,
                    "fragments nest more than " + std::to_string(kMaxFragmentChain) + " deep");
      }
      m.state = State::kInProgress;
      OperationStats s;
      if (!measure(doc_.fragments[it->second].selections, s, chain + 1)) return false;
      // memo_ does not grow, so `m` is still valid.
      m.stats = s;
      m.state = State::kDone;
    }
    out = m.stats;
    return true;
  }

  const Document& doc_;
  const Operation& op_;
  const CostOptions& cost_;
  const nlohmann::json& variables_;
  std::vector<Memo> memo_;
  std::unordered_map<std::string_view, size_t> by_name_;
  AnalysisError err_;
};

}  // namespace

std::variant<const Operation*, AnalysisError> selectOperation(const Document& doc,
                                                              std::string_view operation_name) {
  if (operation_name.empty()) {
    if (doc.operations.size() == 1) return &doc.operations[0];
    return AnalysisError{AnalysisError::Kind::kOperationNameRequired,
                         "the document has several operations: operationName is required"};
  }
  for (const auto& op : doc.operations) {
    if (op.name == operation_name) return &op;
  }
  return AnalysisError{AnalysisError::Kind::kUnknownOperation,
                       "no operation named '" + std::string(operation_name) + "' in the document"};
}

std::variant<OperationStats, AnalysisError> analyze(const Document& doc, const Operation& op,
                                                    const CostOptions& cost,
                                                    const nlohmann::json& variables) {
  Analyzer a(doc, op, cost, variables);
  OperationStats stats;
  if (!a.run(stats)) return std::move(a.error());
  return stats;
}

}  // namespace gatehouse::graphql

#include "config/yaml_document.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace gatehouse::config {

namespace {

// Remembers where the last document started; everything else is ignored.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  YAML::Mark start;
};

// Results are memoised per node so an alias bomb costs one visit per distinct node, and the
// depth bound also stops at self-referencing anchors (`&a [*a]`), which yaml-cpp accepts and
// which would otherwise recurse forever. Recursion depth is bounded by kMaxNestingDepth.
class ShapeGuard {
 public:
  explicit ShapeGuard(Diagnostics& diag) : diag_(diag) {}

  bool check(const YAML::Node& root) {
    Shape shape = visit(root, 1);
    if (failed_) return false;
    if (shape.size > kMaxConfigNodes) {
      diag_.add(root, "",
                "document has more than " + std::to_string(kMaxConfigNodes) +
                    " nodes once aliases are expanded");
      return false;
    }
    return true;
  }

 private:
  struct Shape {
    int height = 1;
    size_t size = 1;
  };
  struct Memo {
    YAML::Node node;
    Shape shape;
  };

  Shape visit(const YAML::Node& node, int depth) {
    if (failed_) return {};
    if (!node.IsMap() && !node.IsSequence()) return {};
    std::vector<Memo>& bucket = memo_[node.Mark().pos];
    for (const Memo& m : bucket) {
      if (m.node.is(node)) {
        if (depth + m.shape.height - 1 > kMaxNestingDepth) tooDeep(node);
        return m.shape;
      }
    }
    if (depth > kMaxNestingDepth) {
      tooDeep(node);
      return {};
    }
    Shape shape;
    auto add = [&](const Shape& child) {
      shape.height = std::max(shape.height, child.height + 1);
      shape.size = std::min(shape.size + child.size, kMaxConfigNodes + 1);
    };
    for (const auto& item : node) {
      if (node.IsMap()) {
        add(visit(item.first, depth + 1));
        add(visit(item.second, depth + 1));
      } else {
        add(visit(item, depth + 1));
      }
      if (failed_) return {};
    }
    // References into an unordered_map survive the inserts made by the recursion above.
    bucket.push_back(Memo{node, shape});
    return shape;
  }

  void tooDeep(const YAML::Node& node) {
    failed_ = true;
    diag_.add(node, "",
              "nesting is deeper than " + std::to_string(kMaxNestingDepth) +
                  " levels (or an anchor refers to itself)");
  }

  Diagnostics& diag_;
  std::unordered_map<int, std::vector<Memo>> memo_;
  bool failed_ = false;
};

}  // namespace

std::optional<YAML::Node> parseSingleDocument(Diagnostics& diag, const std::string& text) {
  // A first pass over the events counts documents. YAML::LoadAll() is not used: on a token it
  // cannot place (a top-level ',' for one) yaml-cpp 0.7 returns an empty document without
  // consuming the token, so LoadAll() collects empty documents until memory runs out
  // (jbeder/yaml-cpp#1040). A document starting where the previous one did is that case.
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  std::optional<int> previous_start;
  std::optional<YAML::Mark> second_start;
  for (int round = 0; round < 3 && parser.HandleNextDocument(starts); ++round) {
    if (previous_start == starts.start.pos) {
      std::string message = "YAML syntax error: unexpected character";
      auto pos = static_cast<size_t>(starts.start.pos);
      if (pos < text.size() && text[pos] > ' ' && text[pos] < 0x7f) {
        message += std::string(" '") + text[pos] + "'";
      }
      diag.add(starts.start, "", std::move(message));
      return std::nullopt;
    }
    previous_start = starts.start.pos;
    if (round == 1) second_start = starts.start;
  }
  if (second_start) {
    diag.add(*second_start, "", "the file holds more than one YAML document; expected one");
    return std::nullopt;
  }
  // YAML::Load() handles exactly one document, so it cannot fall into the loop above.
  return YAML::Load(text);
}

bool checkDocumentShape(Diagnostics& diag, const YAML::Node& root) {
  return ShapeGuard(diag).check(root);
}

}  // namespace gatehouse::config

#include "config/shape_guard.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

namespace gatehouse::config {

namespace {

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

bool checkDocumentShape(Diagnostics& diag, const YAML::Node& root) {
  return ShapeGuard(diag).check(root);
}

}  // namespace gatehouse::config

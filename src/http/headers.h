#pragma once
// An ordered header list. Names and values are views: into the request's own head buffer for
// parsed headers, or into the HeaderMap's arena for headers a filter added. Lookups are
// case-insensitive; order and duplicates are preserved.
#include <forward_list>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::http {

bool iequals(std::string_view a, std::string_view b);

struct HeaderField {
  std::string_view name;
  std::string_view value;
};

class HeaderMap {
 public:
  // Appends a field whose bytes outlive this map (parsed head buffer, string literal).
  void addView(std::string_view name, std::string_view value) { fields_.push_back({name, value}); }
  // Appends a field, copying name and value into the map's arena.
  void add(std::string_view name, std::string_view value);
  // Replaces all fields named `name` with one field (copied).
  void set(std::string_view name, std::string_view value);
  // Removes all fields named `name`; returns how many were removed.
  size_t remove(std::string_view name);
  // First value for name, or nullptr-equivalent empty view with found=false.
  const HeaderField* find(std::string_view name) const;
  std::string_view get(std::string_view name) const {
    const HeaderField* f = find(name);
    return f ? f->value : std::string_view{};
  }
  bool has(std::string_view name) const { return find(name) != nullptr; }
  size_t count(std::string_view name) const;

  const std::vector<HeaderField>& fields() const { return fields_; }
  std::vector<HeaderField>& fields() { return fields_; }
  size_t size() const { return fields_.size(); }
  void clear() {
    fields_.clear();
    arena_.clear();
  }
  // Copies a string into the arena; the returned view lives as long as this map.
  std::string_view store(std::string_view s);

 private:
  std::vector<HeaderField> fields_;
  std::forward_list<std::string> arena_;  // node-based: stable addresses, no alloc when empty
};

}  // namespace gatehouse::http

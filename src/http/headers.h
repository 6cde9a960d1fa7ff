#pragma once
// An ordered header list. Names and values are views: into the request's own head buffer for
// parsed headers, or into the HeaderMap's arena for headers a filter added. Lookups are
// case-insensitive; order and duplicates are preserved.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gatehouse::http {

bool iequals(std::string_view a, std::string_view b);
// Connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2): connection, keep-alive,
// proxy-connection, transfer-encoding, upgrade. The length test skips most names.
bool isConnectionSpecific(std::string_view name);

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
  // Drops every field; arena blocks are kept for reuse by the next request on the connection.
  void clear();
  // Copies a string into the arena; the returned view lives until clear() or destruction.
  std::string_view store(std::string_view s);

  HeaderMap() = default;
  HeaderMap(HeaderMap&&) noexcept = default;
  HeaderMap& operator=(HeaderMap&&) noexcept = default;
  HeaderMap(const HeaderMap&) = delete;  // views into the arena must not be shared
  HeaderMap& operator=(const HeaderMap&) = delete;

 private:
  struct Block {
    std::unique_ptr<char[]> data;
    size_t size = 0;
  };
  std::vector<HeaderField> fields_;
  std::vector<Block> blocks_;  // bump arena: no allocation per stored string once warm
  size_t block_ = 0;           // block being filled
  size_t used_ = 0;            // bytes used in it
};

}  // namespace gatehouse::http

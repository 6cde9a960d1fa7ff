#include "http/headers.h"

#include <algorithm>
#include <cstring>

namespace gatehouse::http {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // Equal bytes are the common case (names mostly arrive in one canonical case). Two bytes that
  // differ only in bit 0x20 are case variants iff that lower-cased byte is a letter.
  for (size_t i = 0; i < a.size(); ++i) {
    const auto x = static_cast<unsigned char>(a[i]);
    const auto y = static_cast<unsigned char>(b[i]);
    if (x == y) continue;
    const unsigned lx = x | 0x20u;
    if (lx != (y | 0x20u) || lx < 'a' || lx > 'z') return false;
  }
  return true;
}

std::string_view HeaderMap::store(std::string_view s) {
  if (s.empty()) return {};
  constexpr size_t kBlock = 1024;
  if (blocks_.empty() || used_ + s.size() > blocks_[block_].size) {
    // Next kept block if it fits, else a new one (at least kBlock, or the string's size).
    size_t next = blocks_.empty() ? 0 : block_ + 1;
    while (next < blocks_.size() && blocks_[next].size < s.size())
      ++next;
    if (next >= blocks_.size()) {
      size_t n = s.size() > kBlock ? s.size() : kBlock;
      blocks_.push_back({std::make_unique_for_overwrite<char[]>(n), n});
      next = blocks_.size() - 1;
    }
    block_ = next;
    used_ = 0;
  }
  char* dst = blocks_[block_].data.get() + used_;
  std::memcpy(dst, s.data(), s.size());
  used_ += s.size();
  return {dst, s.size()};
}

void HeaderMap::clear() {
  fields_.clear();
  // Keep a few blocks for the next request; drop the rest (a rare huge header set).
  if (blocks_.size() > 4) blocks_.resize(4);
  block_ = 0;
  used_ = 0;
}

void HeaderMap::add(std::string_view name, std::string_view value) {
  fields_.push_back({store(name), store(value)});
}

void HeaderMap::set(std::string_view name, std::string_view value) {
  remove(name);
  add(name, value);
}

size_t HeaderMap::remove(std::string_view name) {
  // The size test first avoids a call per non-matching field (set() and remove() run several
  // times per request).
  auto it = std::remove_if(fields_.begin(), fields_.end(), [&](const HeaderField& f) {
    return f.name.size() == name.size() && iequals(f.name, name);
  });
  size_t n = static_cast<size_t>(fields_.end() - it);
  fields_.erase(it, fields_.end());
  return n;
}

const HeaderField* HeaderMap::find(std::string_view name) const {
  for (const auto& f : fields_) {
    if (iequals(f.name, name)) return &f;
  }
  return nullptr;
}

size_t HeaderMap::count(std::string_view name) const {
  size_t n = 0;
  for (const auto& f : fields_)
    n += iequals(f.name, name) ? 1 : 0;
  return n;
}

bool isConnectionSpecific(std::string_view name) {
  switch (name.size()) {
    case 7:
      return iequals(name, "upgrade");
    case 10:
      return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16:
      return iequals(name, "proxy-connection");
    case 17:
      return iequals(name, "transfer-encoding");
    default:
      return false;
  }
}

}  // namespace gatehouse::http

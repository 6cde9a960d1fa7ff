#include "template/json_pointer.h"

#include <utility>

namespace gatehouse::tmpl {

using json = Json;

std::optional<size_t> arrayIndex(std::string_view token) {
  if (token.empty() || token.size() > 18) return std::nullopt;  // 18 digits cannot overflow
  if (token.size() > 1 && token[0] == '0') return std::nullopt;
  size_t n = 0;
  for (char c : token) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  return n;
}

Result<JsonPointer> JsonPointer::parse(std::string_view text) {
  JsonPointer p;
  p.text_.assign(text);
  if (text.empty()) return p;
  if (text[0] != '/') {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                       "a JSON pointer starts with '/' (or is empty for the whole document)");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '/') {
      p.tokens_.emplace_back();
      continue;
    }
    if (c == '~') {
      const char next = i + 1 < text.size() ? text[i + 1] : '\0';
      if (next != '0' && next != '1') {
        return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig,
                           "bad escape at offset " + std::to_string(i) +
                               " of the JSON pointer: '~' must be followed by 0 or 1");
      }
      p.tokens_.back().push_back(next == '0' ? '~' : '/');
      ++i;
      continue;
    }
    p.tokens_.back().push_back(c);
  }
  return p;
}

namespace {

// One step down from `node` by `token`, or nullptr.
template <class Json>
Json* step(Json* node, const std::string& token) {
  if (node->is_object()) {
    auto it = node->find(token);
    return it == node->end() ? nullptr : &*it;
  }
  if (node->is_array()) {
    auto i = arrayIndex(token);
    if (!i || *i >= node->size()) return nullptr;
    return &(*node)[*i];
  }
  return nullptr;
}

}  // namespace

const json* JsonPointer::find(const json& doc) const {
  const json* node = &doc;
  for (const auto& t : tokens_) {
    node = step(node, t);
    if (!node) return nullptr;
  }
  return node;
}

json* JsonPointer::find(json& doc) const {
  json* node = &doc;
  for (const auto& t : tokens_) {
    node = step(node, t);
    if (!node) return nullptr;
  }
  return node;
}

bool JsonPointer::set(json& doc, json value, bool create_parents, bool overwrite) const {
  if (tokens_.empty()) {
    if (!overwrite) return false;
    doc = std::move(value);
    return true;
  }
  json* node = &doc;
  for (size_t i = 0; i + 1 < tokens_.size(); ++i) {
    json* next = step(node, tokens_[i]);
    if (!next) {
      if (!create_parents || !(node->is_object() || node->is_null())) return false;
      if (node->is_null()) *node = json::object();
      next = &(*node)[tokens_[i]];
      *next = json::object();
    }
    node = next;
  }
  const std::string& last = tokens_.back();
  if (node->is_null() && create_parents) *node = json::object();
  if (node->is_object()) {
    if (!overwrite && node->contains(last)) return false;
    (*node)[last] = std::move(value);
    return true;
  }
  if (node->is_array()) {
    if (last == "-") {
      node->push_back(std::move(value));
      return true;
    }
    auto i = arrayIndex(last);
    if (!i || *i >= node->size() || !overwrite) return false;
    (*node)[*i] = std::move(value);
    return true;
  }
  return false;
}

std::optional<json> JsonPointer::take(json& doc) const {
  if (tokens_.empty()) return std::exchange(doc, json());
  json* parent = &doc;
  for (size_t i = 0; i + 1 < tokens_.size(); ++i) {
    parent = step(parent, tokens_[i]);
    if (!parent) return std::nullopt;
  }
  const std::string& last = tokens_.back();
  if (parent->is_object()) {
    auto it = parent->find(last);
    if (it == parent->end()) return std::nullopt;
    json out = std::move(*it);
    parent->erase(it);
    return out;
  }
  if (parent->is_array()) {
    auto i = arrayIndex(last);
    if (!i || *i >= parent->size()) return std::nullopt;
    json out = std::move((*parent)[*i]);
    parent->erase(*i);
    return out;
  }
  return std::nullopt;
}

}  // namespace gatehouse::tmpl

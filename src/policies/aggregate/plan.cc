#include "policies/aggregate/plan.h"

#include <cctype>
#include <charconv>

namespace gatehouse::policies::aggregate {
namespace {

Error planError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

std::optional<size_t> arrayIndex(std::string_view token) {
  if (token.empty() || (token.size() > 1 && token[0] == '0')) return std::nullopt;
  size_t i = 0;
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), i);
  if (ec != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return i;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<Ref> parseRef(std::string_view expr) {
  Ref ref;
  auto after = [&](std::string_view prefix) -> std::optional<std::string_view> {
    if (expr.substr(0, prefix.size()) != prefix) return std::nullopt;
    return expr.substr(prefix.size());
  };
  if (expr == "consumer") {
    ref.kind = Ref::Kind::kConsumer;
    return ref;
  }
  std::optional<std::string_view> rest;
  if ((rest = after("request.params."))) {
    ref.kind = Ref::Kind::kParam;
  } else if ((rest = after("request.header."))) {
    ref.kind = Ref::Kind::kHeader;
  } else if ((rest = after("request.query."))) {
    ref.kind = Ref::Kind::kQuery;
  } else if ((rest = after("calls."))) {
    const size_t dot = rest->find(".body");
    if (dot == 0 || dot == std::string_view::npos) {
      return planError("{" + std::string(expr) + "}: expected {calls.NAME.body/POINTER}");
    }
    ref.kind = Ref::Kind::kCallBody;
    ref.name = std::string(rest->substr(0, dot));
    std::string_view ptr = rest->substr(dot + 5);
    if (!ptr.empty() && ptr[0] == '.') ptr.remove_prefix(1);  // "body./id" reads like "body/id"
    auto p = parsePointer(ptr);
    if (!p.ok()) return planError("{" + std::string(expr) + "}: " + p.error().message);
    ref.pointer = std::move(*p);
    return ref;
  } else {
    return planError("{" + std::string(expr) +
                     "}: unknown value; expected request.params.NAME, request.header.NAME, "
                     "request.query.NAME, consumer or calls.NAME.body/POINTER");
  }
  if (rest->empty()) return planError("{" + std::string(expr) + "}: missing name");
  ref.name = ref.kind == Ref::Kind::kHeader ? lower(*rest) : std::string(*rest);
  return ref;
}

}  // namespace

Result<JsonPointer> parsePointer(std::string_view text) {
  JsonPointer p;
  if (text.empty()) return p;
  if (text[0] != '/')
    return planError("JSON pointer '" + std::string(text) + "' must start with /");
  size_t pos = 1;
  for (;;) {
    const size_t slash = text.find('/', pos);
    std::string_view raw = text.substr(pos, slash == std::string_view::npos ? slash : slash - pos);
    std::string token;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        token.push_back(raw[i]);
      } else if (i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token.push_back(raw[++i] == '0' ? '~' : '/');
      } else {
        return planError("JSON pointer '" + std::string(text) + "': ~ must be followed by 0 or 1");
      }
    }
    p.tokens.push_back(std::move(token));
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return p;
}

const nlohmann::json* find(const nlohmann::json& doc, const JsonPointer& p) {
  const nlohmann::json* at = &doc;
  for (const auto& t : p.tokens) {
    if (at->is_object()) {
      auto it = at->find(t);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      auto i = arrayIndex(t);
      if (!i || *i >= at->size()) return nullptr;
      at = &(*at)[*i];
    } else {
      return nullptr;
    }
  }
  return at;
}

void place(nlohmann::json& doc, const JsonPointer& p, nlohmann::json value) {
  nlohmann::json* at = &doc;
  for (const auto& t : p.tokens) {
    if (at->is_array()) {
      auto i = arrayIndex(t);
      if (i && *i < at->size()) {
        at = &(*at)[*i];
        continue;
      }
      if (i || t == "-") {
        at->push_back(nullptr);
        at = &at->back();
        continue;
      }
    }
    if (!at->is_object()) *at = nlohmann::json::object();
    at = &(*at)[t];
  }
  *at = std::move(value);
}

void deepMerge(nlohmann::json& into, nlohmann::json from) {
  if (!into.is_object() || !from.is_object()) {
    into = std::move(from);
    return;
  }
  for (auto& [key, value] : from.items()) {
    auto it = into.find(key);
    if (it == into.end()) {
      into.emplace(key, std::move(value));
    } else {
      deepMerge(*it, std::move(value));
    }
  }
}

Result<Template> parseTemplate(std::string_view text) {
  Template t;
  t.literals.emplace_back();
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '}') {
      if (i + 1 < text.size() && text[i + 1] == '}') ++i;  // "}}" reads as "}"
      t.literals.back().push_back('}');
      continue;
    }
    if (c != '{') {
      t.literals.back().push_back(c);
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '{') {
      t.literals.back().push_back('{');
      ++i;
      continue;
    }
    const size_t close = text.find('}', i + 1);
    if (close == std::string_view::npos) {
      return planError("'" + std::string(text) + "': unclosed {");
    }
    auto ref = parseRef(text.substr(i + 1, close - i - 1));
    if (!ref.ok()) return ref.error();
    t.refs.push_back(std::move(*ref));
    t.literals.emplace_back();
    i = close;
  }
  return t;
}

void appendUrlEscaped(std::string& out, std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : v) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

void appendJsonEscaped(std::string& out, std::string_view v) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20) {
      out += "\\u00";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
}

std::optional<std::string> scalarText(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number() || v.is_boolean()) return v.dump();
  return std::nullopt;
}

Result<std::vector<std::vector<size_t>>> orderCalls(std::vector<CallRefs>& calls) {
  std::vector<std::vector<size_t>> deps(calls.size());
  for (size_t i = 0; i < calls.size(); ++i) {
    for (Template* t : calls[i].templates) {
      for (Ref& r : t->refs) {
        if (r.kind != Ref::Kind::kCallBody) continue;
        size_t j = 0;
        while (j < calls.size() && calls[j].name != r.name)
          ++j;
        if (j == calls.size()) {
          return planError("calls[" + std::to_string(i) + "] '" + calls[i].name +
                           "': reads unknown call '" + r.name + "'");
        }
        if (j == i) {
          return planError("calls[" + std::to_string(i) + "] '" + calls[i].name +
                           "': reads its own answer");
        }
        r.call = j;
        bool known = false;
        for (size_t d : deps[i])
          known = known || d == j;
        if (!known) deps[i].push_back(j);
      }
    }
  }
  // Depth-first search for a cycle; `path` is the chain being explored.
  enum class Mark { kNew, kOpen, kDone };
  std::vector<Mark> mark(calls.size(), Mark::kNew);
  std::vector<size_t> path;
  std::optional<std::string> cycle;
  auto visit = [&](auto&& self, size_t n) -> void {
    if (cycle || mark[n] == Mark::kDone) return;
    if (mark[n] == Mark::kOpen) {
      std::string text;
      size_t k = 0;
      while (path[k] != n)
        ++k;
      for (; k < path.size(); ++k)
        text += calls[path[k]].name + " -> ";
      cycle = text + calls[n].name;
      return;
    }
    mark[n] = Mark::kOpen;
    path.push_back(n);
    for (size_t d : deps[n])
      self(self, d);
    path.pop_back();
    mark[n] = Mark::kDone;
  };
  for (size_t i = 0; i < calls.size() && !cycle; ++i)
    visit(visit, i);
  if (cycle) return planError("calls: dependency cycle " + *cycle);
  return deps;
}

}  // namespace gatehouse::policies::aggregate

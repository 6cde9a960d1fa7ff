#include "policies/aggregate/plan.h"

#include <optional>

#include "core/encoding.h"

namespace gatehouse::policies::aggregate {
namespace {

Error planError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

// "{request.", "{calls." or "{consumer}" not inside "{{ ... }}": the old single-brace syntax.
std::optional<size_t> legacyReference(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '{') continue;
    if (i + 1 < text.size() && text[i + 1] == '{') {
      const size_t close = text.find("}}", i + 2);
      if (close == std::string_view::npos) return std::nullopt;  // the compiler reports it
      i = close + 1;
      continue;
    }
    std::string_view rest = text.substr(i + 1);
    if (rest.starts_with("request.") || rest.starts_with("calls.") ||
        rest.starts_with("consumer}")) {
      return i;
    }
  }
  return std::nullopt;
}

}  // namespace

void place(Json& doc, const tmpl::JsonPointer& p, Json value) {
  Json* at = &doc;
  for (const auto& t : p.tokens()) {
    if (at->is_array()) {
      auto i = tmpl::arrayIndex(t);
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
    if (!at->is_object()) *at = Json::object();
    at = &(*at)[t];
  }
  *at = std::move(value);
}

void deepMerge(Json& into, Json from) {
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

Result<tmpl::Template> compileTemplate(std::string_view text) {
  if (auto at = legacyReference(text)) {
    const size_t close = text.find('}', *at);
    std::string_view ref = text.substr(
        *at + 1, close == std::string_view::npos ? std::string_view::npos : close - *at - 1);
    std::string now = ref == "consumer" ? "consumer.name" : std::string(ref);
    if (now.starts_with("calls.") && now.find(".body/") != std::string::npos) {
      now.replace(now.find(".body/"), 6, ".body./");
    }
    return planError("column " + std::to_string(*at + 1) + ": '{" + std::string(ref) +
                     "}' is the old syntax; write '{{ " + now + " }}' (docs/templates.md)");
  }
  tmpl::Compiled c = tmpl::Template::compile(text, tmpl::kScopeRequest | tmpl::kScopeCalls);
  if (auto* e = std::get_if<tmpl::CompileError>(&c)) return planError(tmpl::describe(*e));
  return std::move(std::get<tmpl::Template>(c));
}

bool EscapingVariables::append(const tmpl::Variable& v, std::string& out) const {
  const bool url_form =
      v.field == tmpl::Field::kRequestPath || v.field == tmpl::Field::kRequestQuery;
  if (escape_ == Escape::kNone || (escape_ == Escape::kUrl && url_form)) {
    return inner_.append(v, out);
  }
  thread_local std::string scratch;  // one per worker, reused
  scratch.clear();
  if (!inner_.append(v, scratch)) return false;
  if (escape_ == Escape::kUrl) {
    tmpl::appendUrlEncoded(out, scratch);
  } else {
    encoding::appendJsonEscaped(out, scratch);
  }
  return true;
}

Result<std::vector<std::vector<size_t>>> orderCalls(const std::vector<CallTemplates>& calls) {
  std::vector<std::vector<size_t>> deps(calls.size());
  std::optional<Error> error;
  for (size_t i = 0; i < calls.size() && !error; ++i) {
    for (const tmpl::Template* t : calls[i].templates) {
      t->forEachVariable([&](const tmpl::Variable& v) {
        if (error || (v.field != tmpl::Field::kCallBody && v.field != tmpl::Field::kCallStatus)) {
          return;
        }
        size_t j = 0;
        while (j < calls.size() && calls[j].name != v.key)
          ++j;
        if (j == calls.size()) {
          error = planError("calls[" + std::to_string(i) + "] '" + calls[i].name +
                            "': reads unknown call '" + v.key + "'");
        } else if (j == i) {
          error = planError("calls[" + std::to_string(i) + "] '" + calls[i].name +
                            "': reads its own answer");
        } else if (std::find(deps[i].begin(), deps[i].end(), j) == deps[i].end()) {
          deps[i].push_back(j);
        }
      });
    }
  }
  if (error) return *error;
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

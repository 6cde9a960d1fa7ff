// Builder: documents in, a Validator out (control thread).
#include <utility>

#include "jsonschema/compile_state.h"
#include "jsonschema/uri.h"

namespace gatehouse::jsonschema {

Builder::Builder(Options options) : state_(std::make_unique<CompileState>()) {
  state_->options = options;
  state_->out = std::make_unique<Validator>();
}
Builder::~Builder() = default;
Builder::Builder(Builder&&) noexcept = default;
Builder& Builder::operator=(Builder&&) noexcept = default;

Status Builder::addDocument(std::string uri, nlohmann::json document) {
  if (!state_) return schemaError("builder already finished");
  uri = withoutFragment(uri);
  auto& doc = state_->documents.emplace_back(std::make_unique<Json>(std::move(document)));
  state_->resources.emplace(uri, doc.get());
  Location at{uri, state_->options.dialect, state_->newResource()};
  state_->scan(*doc, at);
  return {};
}

Result<SchemaId> Builder::compile(std::string_view reference) {
  if (!state_) return schemaError("builder already finished");
  Location from{withoutFragment(reference), state_->options.dialect, 0};
  auto id = state_->compileReference(reference, from);
  if (!id.ok()) return id.error();
  return SchemaId{*id};
}

Result<std::shared_ptr<const Validator>> Builder::finish() {
  if (!state_) return schemaError("builder already finished");
  if (auto s = state_->compileDynamicAnchors(); !s.ok()) return s.error();
  if (auto s = state_->checkCycles(); !s.ok()) return s.error();
  std::shared_ptr<const Validator> v(std::move(state_->out));
  state_.reset();
  return v;
}

Result<std::pair<std::shared_ptr<const Validator>, SchemaId>> compileSchema(
    const nlohmann::json& schema, Options options, std::string uri) {
  Builder b(options);
  if (auto s = b.addDocument(uri, schema); !s.ok()) return s.error();
  auto id = b.compile(uri);
  if (!id.ok()) return id.error();
  auto v = b.finish();
  if (!v.ok()) return v.error();
  return std::pair{std::move(*v), *id};
}

}  // namespace gatehouse::jsonschema

#include "config/tracing_loader.h"

#include <string>

namespace gatehouse::config {
namespace {

constexpr std::string_view kTracingKeys[] = {
    "enabled",          "endpoint",       "service_name",         "propagation",
    "sample_ratio",     "parent_based",   "always_sample_errors", "max_batch_spans",
    "max_queued_spans", "export_timeout", "resource_attributes"};
// In the order of Tracing::Propagation.
constexpr std::string_view kPropagations[] = {"w3c", "b3", "b3_multi"};

// http://host:port/path; https is not spoken by the exporter (a local collector or agent is
// the usual target).
bool plainHttpUrl(const std::string& url) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind(kScheme, 0) != 0) return false;
  const std::string rest = url.substr(kScheme.size());
  if (rest.empty() || rest[0] == '/') return false;
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

void readTracing(Diagnostics& diag, const YAML::Node& node, Tracing& t) {
  MapReader m(diag, node, "tracing", kTracingKeys);
  if (!m.isMap()) return;
  t.line = node.Mark().line + 1;
  t.enabled = true;
  m.read("enabled", t.enabled);
  m.read("endpoint", t.endpoint);
  if (m.has("endpoint") && !plainHttpUrl(t.endpoint)) {
    diag.add(*m.find("endpoint"), m.path("endpoint"),
             "expected an http:// URL of an OTLP/HTTP receiver (e.g. "
             "http://127.0.0.1:4318/v1/traces), got '" +
                 t.endpoint + "'");
  } else if (t.enabled && !m.has("endpoint")) {
    diag.add(node, "tracing", "tracing needs an 'endpoint' (the OTLP/HTTP traces URL)");
  }
  m.read("service_name", t.service_name);
  readEnum(m, "propagation", kPropagations, t.propagation);
  if (const YAML::Node* v = m.find("sample_ratio")) {
    std::optional<std::string> text = readString(diag, *v, m.path("sample_ratio"));
    std::optional<double> d = text ? parseDecimal(*text) : std::nullopt;
    if (text && (!d || *d > 1.0)) {
      diag.add(*v, m.path("sample_ratio"),
               "expected a ratio from 0 to 1 (e.g. 0.01), got '" + *text + "'");
    } else if (d) {
      t.sample_ratio = *d;
    }
  }
  m.read("parent_based", t.parent_based);
  m.read("always_sample_errors", t.always_sample_errors);
  m.readInt("max_batch_spans", 1, 100000, t.max_batch_spans);
  m.readInt("max_queued_spans", 1, 10000000, t.max_queued_spans);
  m.readDuration("export_timeout", Millis(1), Millis(60000), t.export_timeout);
  if (const YAML::Node* v = m.find("resource_attributes")) {
    const std::string path = m.path("resource_attributes");
    if (!v->IsMap()) {
      diag.add(*v, path, "expected a map of attribute names to strings");
    } else {
      for (const auto& kv : *v) {
        const std::string key = kv.first.as<std::string>("");
        std::optional<std::string> value = readString(diag, kv.second, path + "." + key);
        if (value) t.resource_attributes.emplace_back(key, std::move(*value));
      }
    }
  }
}

}  // namespace gatehouse::config

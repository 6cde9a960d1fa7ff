#include "metrics/registry.h"

#include <cinttypes>
#include <cstdio>
#include <iterator>

#include "core/enum_names.h"
#include "core/log.h"

namespace gatehouse::metrics {
namespace {

std::string_view typeName(Type t) {
  static constexpr std::string_view kNames[] = {"counter", "gauge", "histogram"};
  static_assert(std::size(kNames) == static_cast<size_t>(Type::kHistogram) + 1);
  return enumName(t, kNames, "untyped");
}

// The shortest form that round-trips like Prometheus clients print (%g: 0.0005, 2.5, 10).
void appendDouble(std::string& out, double v) {
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%g", v);
  out.append(buf, static_cast<size_t>(n));
}

}  // namespace

size_t Family::labelCount() const {
  size_t n = 0;
  while (n < labels.size() && !labels[n].empty())
    ++n;
  return n;
}

std::string escapeLabel(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void FamilySamples::labels(std::string_view suffix, std::initializer_list<std::string_view> values,
                           std::string_view le) {
  text_.append(family_.name).append(suffix);
  const size_t names = family_.labelCount();
  if (GH_BUG_IF(values.size() != names)) {
    log::error("metrics: ", family_.name, " takes ", names, " label values, got ", values.size());
  }
  if (names == 0 && le.empty()) {
    text_ += ' ';
    return;
  }
  text_ += '{';
  size_t i = 0;
  for (std::string_view v : values) {
    if (i >= names) break;
    if (i > 0) text_ += ',';
    text_.append(family_.labels[i]).append("=\"").append(escapeLabel(v)).append("\"");
    ++i;
  }
  if (!le.empty()) {
    if (i > 0) text_ += ',';
    text_.append("le=\"").append(le).append("\"");
  }
  text_.append("} ");
}

void FamilySamples::add(std::initializer_list<std::string_view> values, uint64_t v) {
  labels("", values, {});
  text_.append(std::to_string(v)).append("\n");
}

void FamilySamples::add(std::initializer_list<std::string_view> values, int64_t v) {
  labels("", values, {});
  text_.append(std::to_string(v)).append("\n");
}

void FamilySamples::add(std::initializer_list<std::string_view> values, double v) {
  labels("", values, {});
  appendDouble(text_, v);
  text_ += '\n';
}

void FamilySamples::addFormatted(std::initializer_list<std::string_view> values,
                                 std::string_view v) {
  labels("", values, {});
  text_.append(v).append("\n");
}

void FamilySamples::addBuckets(std::initializer_list<std::string_view> values,
                               std::span<const uint64_t> bounds_us,
                               std::span<const uint64_t> buckets, uint64_t sum_us, uint64_t count) {
  uint64_t cumulative = 0;
  std::string le;
  for (size_t b = 0; b < buckets.size(); ++b) {
    cumulative += buckets[b];
    le.clear();
    if (b < bounds_us.size()) {
      appendDouble(le, static_cast<double>(bounds_us[b]) / 1e6);
    } else {
      le = "+Inf";
    }
    labels("_bucket", values, le);
    text_.append(std::to_string(cumulative)).append("\n");
  }
  labels("_sum", values, {});
  appendDouble(text_, static_cast<double>(sum_us) / 1e6);
  text_ += '\n';
  labels("_count", values, {});
  text_.append(std::to_string(count)).append("\n");
}

Scrape::Scrape() = default;
Scrape::~Scrape() = default;

FamilySamples& Scrape::family(const Family& f) {
  for (auto& fam : families_) {
    if (fam->family_.name != f.name) continue;
    if (GH_BUG_IF(fam->family_.type != f.type || fam->family_.help != f.help)) {
      log::error("metrics: family ", f.name, " declared twice with different help or type");
    }
    return *fam;
  }
  families_.push_back(std::make_unique<FamilySamples>(f));
  return *families_.back();
}

std::string Scrape::text() const {
  std::string out;
  for (const auto& fam : families_) {
    const Family& f = fam->family_;
    out.append("# HELP ").append(f.name).append(" ").append(f.help).append("\n");
    out.append("# TYPE ").append(f.name).append(" ").append(typeName(f.type)).append("\n");
    out.append(fam->text_);
  }
  return out;
}

Registry& Registry::process() {
  static Registry r;  // function-local: safe to use from static initialisers and at exit
  return r;
}

void Registry::add(std::string_view key, Collector c) {
  std::lock_guard lock(mu_);
  for (auto& [k, existing] : collectors_) {
    if (k == key) {
      existing = std::move(c);
      return;
    }
  }
  collectors_.emplace_back(std::string(key), std::move(c));
}

void Registry::remove(std::string_view key) {
  std::lock_guard lock(mu_);
  std::erase_if(collectors_, [&](const auto& kc) { return kc.first == key; });
}

void Registry::collect(Scrape& scrape) const {
  std::lock_guard lock(mu_);
  for (const auto& [key, c] : collectors_)
    c(scrape);
}

std::string Registry::render() const {
  Scrape scrape;
  collect(scrape);
  return scrape.text();
}

}  // namespace gatehouse::metrics

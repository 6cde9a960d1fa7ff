#pragma once
// A finished (or recording) span as the OTLP encoder reads it. Attribute and event names are
// static strings (the OpenTelemetry semantic-convention names), so a span stores views to them
// and owns only the values. Built and finished on a worker, then moved to the exporter thread
// inside a batch; never shared.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "trace/context.h"

namespace gatehouse::trace {

// The OTLP enum values.
enum class SpanKind : uint8_t { kInternal = 1, kServer = 2, kClient = 3 };
enum class StatusCode : uint8_t { kUnset = 0, kOk = 1, kError = 2 };

struct Attribute {
  enum class Type : uint8_t { kString, kInt, kBool };
  std::string_view key;  // static
  Type type = Type::kString;
  std::string str;
  int64_t num = 0;

  static Attribute text(std::string_view key, std::string_view value) {
    return {key, Type::kString, std::string(value), 0};
  }
  static Attribute integer(std::string_view key, int64_t value) {
    return {key, Type::kInt, {}, value};
  }
  static Attribute boolean(std::string_view key, bool value) {
    return {key, Type::kBool, {}, value ? 1 : 0};
  }
};

struct Event {
  std::string_view name;  // static
  uint64_t time_unix_ns = 0;
  std::vector<Attribute> attributes;
};

struct SpanData {
  TraceId trace;
  SpanId span;
  SpanId parent;  // all zero: a root span
  std::string trace_state;
  std::string name;
  SpanKind kind = SpanKind::kServer;
  uint64_t start_unix_ns = 0;
  uint64_t end_unix_ns = 0;
  StatusCode status = StatusCode::kUnset;
  std::string status_message;
  std::vector<Attribute> attributes;
  std::vector<Event> events;

  void text(std::string_view key, std::string_view value) {
    attributes.push_back(Attribute::text(key, value));
  }
  void integer(std::string_view key, int64_t value) {
    attributes.push_back(Attribute::integer(key, value));
  }
  void boolean(std::string_view key, bool value) {
    attributes.push_back(Attribute::boolean(key, value));
  }
};

// Wall-clock time in nanoseconds since the Unix epoch (OTLP timestamps).
uint64_t unixNowNs();

}  // namespace gatehouse::trace

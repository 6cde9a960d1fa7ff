#include "trace/otlp.h"

#include <chrono>

namespace gatehouse::trace {
namespace {

// Protobuf wire types.
constexpr uint32_t kVarint = 0, kFixed64 = 1, kLengthDelimited = 2;

void putVarint(std::string& out, uint64_t v) {
  char buf[10];  // one append per varint, not a push_back per byte
  size_t n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

void putTag(std::string& out, uint32_t field, uint32_t wire) {
  putVarint(out, field << 3 | wire);
}

void putBytes(std::string& out, uint32_t field, std::string_view bytes) {
  putTag(out, field, kLengthDelimited);
  putVarint(out, bytes.size());
  out.append(bytes);
}

void putFixed64(std::string& out, uint32_t field, uint64_t v) {
  putTag(out, field, kFixed64);
  char buf[8];
  for (int i = 0; i < 8; ++i)
    buf[i] = static_cast<char>(v >> (8 * i));
  out.append(buf, 8);
}

void putUint(std::string& out, uint32_t field, uint64_t v) {
  if (v == 0) return;  // proto3 default: omitted
  putTag(out, field, kVarint);
  putVarint(out, v);
}

// A nested message, written in place: its length goes in a fixed four-byte varint (the
// redundant form, continuation bits set on the first three bytes, which every protobuf parser
// accepts, as Perfetto's protozero writes them), patched once the body is written. No scratch
// string per level; a message stays far below the 2^28 bytes four bytes can say.
template <typename Fill>
void putMessage(std::string& out, uint32_t field, Fill&& fill) {
  putTag(out, field, kLengthDelimited);
  const size_t at = out.size();
  out.append(4, '\0');
  fill(out);
  const size_t len = out.size() - at - 4;
  out[at] = static_cast<char>((len & 0x7f) | 0x80);
  out[at + 1] = static_cast<char>(((len >> 7) & 0x7f) | 0x80);
  out[at + 2] = static_cast<char>(((len >> 14) & 0x7f) | 0x80);
  out[at + 3] = static_cast<char>((len >> 21) & 0x7f);
}

// KeyValue { string key = 1; AnyValue value = 2; }
// AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3; }
void putAttribute(std::string& out, uint32_t field, const Attribute& a) {
  putMessage(out, field, [&](std::string& kv) {
    putBytes(kv, 1, a.key);
    putMessage(kv, 2, [&](std::string& any) {
      switch (a.type) {
        case Attribute::Type::kString:
          putBytes(any, 1, a.str);
          break;
        case Attribute::Type::kBool:
          putTag(any, 2, kVarint);
          putVarint(any, a.num != 0 ? 1 : 0);
          break;
        case Attribute::Type::kInt:
          putTag(any, 3, kVarint);
          putVarint(any, static_cast<uint64_t>(a.num));
          break;
      }
    });
  });
}

void putStringAttribute(std::string& out, uint32_t field, std::string_view key,
                        std::string_view value) {
  putAttribute(out, field, Attribute::text(key, value));
}

std::string_view bytesOf(const auto& id) {
  return {reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size()};
}

// Span (opentelemetry/proto/trace/v1/trace.proto).
void putSpan(std::string& out, const SpanData& s) {
  putMessage(out, 2, [&](std::string& m) {
    putBytes(m, 1, bytesOf(s.trace));
    putBytes(m, 2, bytesOf(s.span));
    if (!s.trace_state.empty()) putBytes(m, 3, s.trace_state);
    if (s.parent.valid()) putBytes(m, 4, bytesOf(s.parent));
    putBytes(m, 5, s.name);
    putUint(m, 6, static_cast<uint64_t>(s.kind));
    putFixed64(m, 7, s.start_unix_ns);
    putFixed64(m, 8, s.end_unix_ns);
    for (const auto& a : s.attributes)
      putAttribute(m, 9, a);
    for (const auto& e : s.events) {
      // Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
      putMessage(m, 11, [&](std::string& ev) {
        putFixed64(ev, 1, e.time_unix_ns);
        putBytes(ev, 2, e.name);
        for (const auto& a : e.attributes)
          putAttribute(ev, 3, a);
      });
    }
    if (s.status != StatusCode::kUnset) {
      // Status { string message = 2; StatusCode code = 3; }
      putMessage(m, 15, [&](std::string& st) {
        if (!s.status_message.empty()) putBytes(st, 2, s.status_message);
        putUint(st, 3, static_cast<uint64_t>(s.status));
      });
    }
  });
}

}  // namespace

uint64_t unixNowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void encodeExportRequest(const Resource& resource, std::span<const SpanData> spans,
                         std::string& out) {
  // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
  putMessage(out, 1, [&](std::string& rs) {
    // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
    putMessage(rs, 1, [&](std::string& res) {
      // Resource { repeated KeyValue attributes = 1; }
      putStringAttribute(res, 1, "service.name", resource.service_name);
      if (!resource.service_version.empty()) {
        putStringAttribute(res, 1, "service.version", resource.service_version);
      }
      for (const auto& [k, v] : resource.attributes)
        putStringAttribute(res, 1, k, v);
    });
    putMessage(rs, 2, [&](std::string& ss) {
      // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
      putMessage(ss, 1, [&](std::string& scope) { putBytes(scope, 1, "gatehouse"); });
      for (const auto& s : spans)
        putSpan(ss, s);
    });
  });
}

}  // namespace gatehouse::trace

// Tracing below the proxy: trace-context headers (W3C, B3), sampling, the OTLP protobuf
// encoder (decoded back by a small wire-format reader written here from the protobuf spec),
// propagation headers, the per-worker span ring and the `tracing:` config section.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "config_test_util.h"
#include "trace/context.h"
#include "trace/exporter.h"
#include "trace/otlp.h"
#include "trace/request_trace.h"
#include "trace/sampler.h"

namespace gatehouse::trace {
namespace {

TraceId traceFromHex(std::string_view hex) {
  TraceId t;
  EXPECT_TRUE(fromHex(hex, t.bytes.data(), 16));
  return t;
}

TEST(TraceContext, ParsesAndFormatsTraceparent) {
  auto in = parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(in);
  EXPECT_EQ(toHex(in->trace), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(toHex(in->parent), "00f067aa0ba902b7");
  EXPECT_TRUE(in->sampled);
  char out[kTraceparentSize];
  formatTraceparent(in->trace, in->parent, false, out);
  EXPECT_EQ(std::string_view(out, sizeof out),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  // Other flag bits are ignored; only bit 0 is "sampled".
  EXPECT_FALSE(
      parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02")->sampled);
  // A later version may append fields after a dash.
  EXPECT_TRUE(parseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-xyz"));
}

TEST(TraceContext, MalformedTraceparentIsIgnored) {
  for (std::string_view bad :
       {"", "00", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // v00 has no more
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01"}) {
    EXPECT_FALSE(parseTraceparent(bad)) << bad;
  }
}

TEST(TraceContext, ParsesB3SingleAndMulti) {
  auto s = parseB3Single("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90");
  ASSERT_TRUE(s);
  EXPECT_EQ(toHex(s->trace), "80f198ee56343ba864fe8b2a57d3eff7");
  EXPECT_EQ(toHex(s->parent), "e457b5a2e4d86bd1");
  EXPECT_TRUE(s->sampled && s->sampled_known);
  auto deferred = parseB3Single("a3ce929d0e0e4736-00f067aa0ba902b7");  // 64-bit trace id
  ASSERT_TRUE(deferred);
  EXPECT_EQ(toHex(deferred->trace), "0000000000000000a3ce929d0e0e4736");
  EXPECT_FALSE(deferred->sampled_known);
  for (std::string_view bad : {"0", "x-y-1", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-7",
                               "80f198ee56343ba864fe8b2a57d3eff7--1"}) {
    EXPECT_FALSE(parseB3Single(bad)) << bad;
  }
  auto m = parseB3Multi("463ac35c9f6413ad48485a3953bb6124", "0020000000000001", "0", "");
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->sampled);
  EXPECT_TRUE(parseB3Multi("463ac35c9f6413ad", "0020000000000001", "", "1")->sampled);  // debug
  EXPECT_FALSE(parseB3Multi("463ac35c9f6413ad", "0020000000000001", "maybe", ""));
  EXPECT_FALSE(parseB3Multi("463ac35c9f6413ad", "", "1", ""));
}

TEST(TraceContext, ExtractPrefersW3cAndFallsBackOnMalformed) {
  IncomingHeaders h;
  h.traceparent = "garbage";
  h.b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0";
  auto in = extract(h);
  ASSERT_TRUE(in);
  EXPECT_EQ(toHex(in->trace), "80f198ee56343ba864fe8b2a57d3eff7");
  h.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  EXPECT_EQ(toHex(extract(h)->trace), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_FALSE(extract(IncomingHeaders{}));
}

TEST(TraceSampler, RatioParentAndErrors) {
  config::Tracing cfg;
  const TraceId low = traceFromHex("ffffffffffffffff0000000000000001");
  const TraceId high = traceFromHex("0000000000000000fffffffffffffff0");
  cfg.sample_ratio = 0.5;
  const uint64_t half = ratioThreshold(0.5);
  EXPECT_EQ(decide(cfg, half, std::nullopt, low), Decision::kSample);
  EXPECT_EQ(decide(cfg, half, std::nullopt, high), Decision::kDrop);
  EXPECT_EQ(decide(cfg, ratioThreshold(0), std::nullopt, low), Decision::kDrop);
  EXPECT_EQ(decide(cfg, ratioThreshold(1), std::nullopt, high), Decision::kSample);
  Incoming parent;
  parent.trace = high;
  parent.sampled = true;
  EXPECT_EQ(decide(cfg, ratioThreshold(0), parent, high), Decision::kSample);
  parent.sampled = false;
  EXPECT_EQ(decide(cfg, ratioThreshold(1), parent, low), Decision::kDrop);
  parent.sampled_known = false;  // B3 "defer": the ratio decides
  EXPECT_EQ(decide(cfg, ratioThreshold(1), parent, low), Decision::kSample);
  cfg.parent_based = false;
  parent.sampled_known = true;
  EXPECT_EQ(decide(cfg, ratioThreshold(1), parent, low), Decision::kSample);
  cfg.always_sample_errors = true;
  EXPECT_EQ(decide(cfg, ratioThreshold(0), std::nullopt, low), Decision::kRecordOnly);
  // About 1% of random ids at ratio 0.01.
  int sampled = 0;
  for (uint64_t i = 0; i < 100000; ++i) {
    sampled += ratioSamples(makeTraceId(i, i * 0x9e3779b97f4a7c15ULL), ratioThreshold(0.01));
  }
  EXPECT_GT(sampled, 800);
  EXPECT_LT(sampled, 1200);
}

// A protobuf wire-format reader (varint, fixed64, length-delimited), enough to walk the
// encoder's output: field number -> list of raw values.
struct Field {
  uint64_t varint = 0;
  std::string bytes;
};
using Message = std::multimap<uint32_t, Field>;

bool readVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64 && !in.empty(); shift += 7) {
    const auto b = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

Message decode(std::string_view in) {
  Message m;
  while (!in.empty()) {
    uint64_t tag = 0;
    if (!readVarint(in, tag)) break;
    Field f;
    switch (tag & 7) {
      case 0:
        EXPECT_TRUE(readVarint(in, f.varint));
        break;
      case 1:
        EXPECT_GE(in.size(), 8u);
        for (int i = 0; i < 8; ++i)
          f.varint |= static_cast<uint64_t>(static_cast<uint8_t>(in[static_cast<size_t>(i)]))
                      << (8 * i);
        in.remove_prefix(8);
        break;
      case 2: {
        uint64_t n = 0;
        EXPECT_TRUE(readVarint(in, n));
        EXPECT_LE(n, in.size());
        f.bytes = std::string(in.substr(0, n));
        in.remove_prefix(n);
        break;
      }
      default:
        ADD_FAILURE() << "unexpected wire type " << (tag & 7);
        return m;
    }
    m.emplace(static_cast<uint32_t>(tag >> 3), std::move(f));
  }
  return m;
}

std::vector<Message> all(const Message& m, uint32_t field) {
  std::vector<Message> out;
  auto [b, e] = m.equal_range(field);
  for (auto it = b; it != e; ++it)
    out.push_back(decode(it->second.bytes));
  return out;
}

const Field& one(const Message& m, uint32_t field) {
  static const Field kNone;
  auto it = m.find(field);
  return it == m.end() ? kNone : it->second;
}

// KeyValue list -> key: "s:<string>" / "i:<int>" / "b:<bool>".
std::map<std::string, std::string> attributes(const Message& m, uint32_t field) {
  std::map<std::string, std::string> out;
  for (const Message& kv : all(m, field)) {
    Message any = decode(one(kv, 2).bytes);
    std::string v;
    if (any.count(1)) v = "s:" + one(any, 1).bytes;
    if (any.count(2)) v = "b:" + std::to_string(one(any, 2).varint);
    if (any.count(3)) v = "i:" + std::to_string(static_cast<int64_t>(one(any, 3).varint));
    out[one(kv, 1).bytes] = v;
  }
  return out;
}

TEST(TraceOtlp, EncodesARequestTheWireFormatDecodesBack) {
  SpanData server;
  server.trace = traceFromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  server.span = makeSpanId(0x1122334455667788ULL);
  server.parent = makeSpanId(0x00f067aa0ba902b7ULL);
  server.trace_state = "vendor=abc";
  server.name = "GET /api*";
  server.kind = SpanKind::kServer;
  server.start_unix_ns = 1700000000123456789ULL;
  server.end_unix_ns = 1700000000223456789ULL;
  server.text("http.request.method", "GET");
  server.integer("http.response.status_code", 503);
  server.integer("negative", -5);
  server.boolean("flag", true);
  server.status = StatusCode::kError;
  server.status_message = "upstream down";
  server.events.push_back(
      {"auth", 1700000000133456789ULL, {Attribute::text("auth.result", "allowed")}});
  SpanData client;
  client.trace = server.trace;
  client.span = makeSpanId(42);
  client.parent = server.span;
  client.kind = SpanKind::kClient;
  client.name = std::string(300, 'x');  // a length that needs a two-byte varint
  Resource res;
  res.service_name = "gh";
  res.attributes = {{"deployment.environment", "test"}};
  std::string out;
  const std::vector<SpanData> spans{server, client};
  encodeExportRequest(res, spans, out);

  Message req = decode(out);
  auto rs = all(req, 1);
  ASSERT_EQ(rs.size(), 1u);
  auto resource = decode(one(rs[0], 1).bytes);
  auto rattrs = attributes(resource, 1);
  EXPECT_EQ(rattrs["service.name"], "s:gh");
  EXPECT_EQ(rattrs["deployment.environment"], "s:test");
  auto scope_spans = all(rs[0], 2);
  ASSERT_EQ(scope_spans.size(), 1u);
  EXPECT_EQ(one(decode(one(scope_spans[0], 1).bytes), 1).bytes, "gatehouse");
  auto decoded = all(scope_spans[0], 2);
  ASSERT_EQ(decoded.size(), 2u);
  const Message& s = decoded[0];
  EXPECT_EQ(one(s, 1).bytes,
            std::string(reinterpret_cast<const char*>(server.trace.bytes.data()), 16));
  EXPECT_EQ(one(s, 2).bytes.size(), 8u);
  EXPECT_EQ(static_cast<uint8_t>(one(s, 2).bytes[0]), 0x11);
  EXPECT_EQ(one(s, 3).bytes, "vendor=abc");
  EXPECT_EQ(static_cast<uint8_t>(one(s, 4).bytes[7]), 0xb7);
  EXPECT_EQ(one(s, 5).bytes, "GET /api*");
  EXPECT_EQ(one(s, 6).varint, 2u);
  EXPECT_EQ(one(s, 7).varint, 1700000000123456789ULL);
  EXPECT_EQ(one(s, 8).varint, 1700000000223456789ULL);
  auto attrs = attributes(s, 9);
  EXPECT_EQ(attrs["http.request.method"], "s:GET");
  EXPECT_EQ(attrs["http.response.status_code"], "i:503");
  EXPECT_EQ(attrs["negative"], "i:-5");
  EXPECT_EQ(attrs["flag"], "b:1");
  auto events = all(s, 11);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(one(events[0], 1).varint, 1700000000133456789ULL);
  EXPECT_EQ(one(events[0], 2).bytes, "auth");
  EXPECT_EQ(attributes(events[0], 3)["auth.result"], "s:allowed");
  auto status = decode(one(s, 15).bytes);
  EXPECT_EQ(one(status, 3).varint, 2u);
  EXPECT_EQ(one(status, 2).bytes, "upstream down");
  const Message& c = decoded[1];
  EXPECT_EQ(one(c, 5).bytes, std::string(300, 'x'));
  EXPECT_EQ(one(c, 6).varint, 3u);
  EXPECT_EQ(one(c, 4).bytes, one(s, 2).bytes);  // parent = the server span
  EXPECT_EQ(c.count(3), 0u);                    // no trace_state
  EXPECT_EQ(c.count(15), 0u);                   // unset status is omitted
}

TEST(TracePropagation, HeadersPerFormat) {
  CallTrace t;
  t.trace = traceFromHex("4bf92f3577b34da6a3ce929d0e0e4736");
  t.parent = makeSpanId(0x00f067aa0ba902b7ULL);
  t.sampled = true;
  t.tracestate = "a=b";
  const SpanId span = makeSpanId(0x1111111111111111ULL);
  auto w3c = propagationHeaders(t, span);
  ASSERT_EQ(w3c.count, 2u);
  EXPECT_EQ(w3c.fields[0].second, "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01");
  EXPECT_EQ(w3c.fields[1].first, "tracestate");
  t.propagation = config::Tracing::Propagation::kB3;
  t.sampled = false;
  auto b3 = propagationHeaders(t, span);
  ASSERT_EQ(b3.count, 1u);
  EXPECT_EQ(b3.fields[0].second, "4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-0");
  t.propagation = config::Tracing::Propagation::kB3Multi;
  auto multi = propagationHeaders(t, span);
  ASSERT_EQ(multi.count, 4u);
  EXPECT_EQ(multi.fields[2].first, "x-b3-parentspanid");
  EXPECT_EQ(multi.fields[2].second, "00f067aa0ba902b7");
  EXPECT_TRUE(isPropagationHeader("TraceParent"));
  EXPECT_TRUE(isPropagationHeader("X-B3-Sampled"));
  EXPECT_FALSE(isPropagationHeader("traceparents"));
}

TEST(TraceRequest, RecordOnlyKeepsChildrenUntilTheEndDecision) {
  config::Tracing cfg;
  cfg.enabled = true;
  cfg.sample_ratio = 0;
  cfg.always_sample_errors = true;
  cfg.max_batch_spans = 100;
  SpanRing ring;
  WorkerTracer out;
  out.attach(&ring);
  RequestTrace rt;
  rt.begin(cfg, ratioThreshold(0), out, {}, 1, 2, 3);
  ASSERT_TRUE(rt.recording());
  EXPECT_FALSE(rt.sampled());
  CallTrace call = rt.callTrace("proxy", true);
  EXPECT_TRUE(call.record);
  EXPECT_FALSE(call.sampled);
  EXPECT_FALSE(rt.callTrace("aggregate", false).record);  // a sub-request: sampled only
  call.finished(SpanData{});
  rt.event("auth", {Attribute::text("auth.result", "allowed")});
  rt.finish(200);
  EXPECT_EQ(out.pending(), 0u);  // a 200: nothing kept
  rt.begin(cfg, ratioThreshold(0), out, {}, 4, 5, 6);
  rt.callTrace("proxy", true).finished(SpanData{});
  rt.finish(503);
  EXPECT_EQ(out.pending(), 2u);  // the server span and its client span
  out.flush(&cfg);
  std::vector<SpanData> batch;
  ASSERT_TRUE(ring.pop(batch));
  EXPECT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch.back().kind, SpanKind::kServer);
  EXPECT_EQ(rt.traceIdHex().size(), 0u);  // ended
}

TEST(TraceRing, BoundedBySpansAndSlots) {
  SpanRing ring;
  std::vector<SpanData> batch(10);
  EXPECT_TRUE(ring.push(batch, 15));
  EXPECT_TRUE(batch.empty());
  batch.resize(10);
  EXPECT_FALSE(ring.push(batch, 15));  // would hold 20 > 15
  EXPECT_EQ(batch.size(), 10u);
  std::vector<SpanData> got;
  ASSERT_TRUE(ring.pop(got));
  EXPECT_EQ(got.size(), 10u);
  EXPECT_FALSE(ring.pop(got));
  std::vector<SpanData> single(1);
  for (size_t i = 0; i < SpanRing::kSlots; ++i) {
    single.resize(1);
    ASSERT_TRUE(ring.push(single, 1000000));
  }
  single.resize(1);
  EXPECT_FALSE(ring.push(single, 1000000));  // every slot taken
  WorkerTracer w;
  w.attach(&ring);
  w.add(SpanData{}, 1, 1000000);  // a full batch of one: handed over, ring full, dropped
  EXPECT_EQ(ring.dropped_full.get(), 1u);
}

TEST(TraceConfig, TracingSection) {
  using config::test_util::loadOk;
  using config::test_util::onlyError;
  config::Config c = loadOk(R"(
tracing:
  endpoint: http://127.0.0.1:4318/v1/traces
  propagation: b3_multi
  sample_ratio: 0.01
  always_sample_errors: true
  resource_attributes: {deployment.environment: prod}
routes:
  - {name: quiet, match: {path_prefix: /health}, cluster: c, tracing: false}
clusters:
  - {name: c, endpoints: ["127.0.0.1:1"]}
)");
  EXPECT_TRUE(c.tracing.enabled);
  EXPECT_EQ(c.tracing.propagation, config::Tracing::Propagation::kB3Multi);
  EXPECT_DOUBLE_EQ(c.tracing.sample_ratio, 0.01);
  EXPECT_TRUE(c.tracing.always_sample_errors && c.tracing.parent_based);
  ASSERT_EQ(c.tracing.resource_attributes.size(), 1u);
  EXPECT_FALSE(c.virtual_hosts.at(0).routes.at(0).tracing);
  EXPECT_EQ(c.access_log.fields.back(), "trace_id");  // default fields gain the trace id
  EXPECT_FALSE(loadOk("{}").tracing.enabled);
  auto e = onlyError("tracing:\n  endpoint: https://collector:4318/v1/traces\n");
  EXPECT_EQ(e.path, "tracing.endpoint");
  e = onlyError("tracing:\n  endpoint: http://c/v1/traces\n  sample_ratio: 2\n");
  EXPECT_EQ(e.path, "tracing.sample_ratio");
  e = onlyError("tracing:\n  service_name: x\n");
  EXPECT_EQ(e.path, "tracing");
  e = onlyError("tracing:\n  endpoint: http://c/v1/traces\n  propagation: jaeger\n");
  EXPECT_EQ(e.path, "tracing.propagation");
}

}  // namespace
}  // namespace gatehouse::trace

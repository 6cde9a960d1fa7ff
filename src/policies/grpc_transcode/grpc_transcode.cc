#include "policies/grpc_transcode/grpc_transcode.h"

#include <yaml-cpp/yaml.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "metrics/registry.h"
#include "policies/grpc_transcode/codec.h"
#include "policies/grpc_transcode/transcoder.h"
#include "policies/policy_yaml.h"
#include "proxy/grpc.h"

namespace gatehouse::policies::grpc_transcode {
namespace {

metrics::PerThread<Counters>& cells() {
  return metrics::processCells<Counters>();
}

enum class Streaming { kJsonArray, kNdjson };

struct Options {
  TranscoderOptions transcoder;
  bool reject_unmatched = false;
  Streaming streaming = Streaming::kJsonArray;
  uint64_t max_request_bytes = 1 << 20;
  uint64_t max_response_message_bytes = 4 << 20;  // gRPC's default receive limit
};

void collectMetrics(metrics::Scrape& scrape) {
  static constexpr metrics::Family kRequests{"gatehouse_grpc_transcode_requests_total",
                                             "Requests seen by grpc_transcode, by outcome.",
                                             metrics::Type::kCounter,
                                             {"result"}};
  const std::pair<const char*, metrics::Counter Counters::*> rows[] = {
      {"transcoded", &Counters::transcoded},  {"passed", &Counters::passed},
      {"unmatched", &Counters::unmatched},    {"bad_request", &Counters::bad_request},
      {"grpc_error", &Counters::grpc_errors}, {"bad_response", &Counters::bad_response}};
  auto& samples = scrape.family(kRequests);
  for (const auto& [name, field] : rows)
    samples.add({name}, cells().sum(field));
}

Result<Options> parseOptions(const YAML::Node& config) {
  if (auto st = checkKeys(
          config, {"descriptor_set", "services", "unannotated_methods", "unmatched", "streaming",
                   "print_options", "ignore_unknown_query_parameters", "ignore_unknown_json_fields",
                   "max_request_bytes", "max_response_message_bytes"});
      !st.ok()) {
    return st.error();
  }
  Options o;
  auto& t = o.transcoder;
  if (!config["descriptor_set"]) return configError("descriptor_set: required (a path)");
  auto ds = readString(config["descriptor_set"], "descriptor_set");
  if (!ds.ok()) return ds.error();
  t.descriptor_set = *ds;
  const YAML::Node services = config["services"];
  if (!services || !services.IsSequence() || services.size() == 0) {
    return configError("services: expected a non-empty list of full service names");
  }
  for (const auto& s : services) {
    auto name = readString(s, "services[]");
    if (!name.ok()) return name.error();
    t.services.push_back(*name);
  }
  auto choice = [&](const char* key, std::initializer_list<std::string_view> allowed,
                    std::string& out) -> Status {
    if (!config[key]) return {};
    auto v = readString(config[key], key);
    if (!v.ok()) return v.error();
    for (auto a : allowed) {
      if (*v == a) {
        out = *v;
        return {};
      }
    }
    std::string list;
    for (auto a : allowed)
      list.append(list.empty() ? "" : ", ").append(a);
    return configError(std::string(key) + ": expected one of " + list);
  };
  std::string v;
  if (auto st = choice("unannotated_methods", {"error", "post", "skip"}, v); !st.ok()) {
    return st.error();
  }
  t.unannotated = v == "post"   ? Unannotated::kPost
                  : v == "skip" ? Unannotated::kSkip
                                : Unannotated::kError;
  v.clear();
  if (auto st = choice("unmatched", {"pass", "reject"}, v); !st.ok()) return st.error();
  o.reject_unmatched = v == "reject";
  v.clear();
  if (auto st = choice("streaming", {"json_array", "ndjson"}, v); !st.ok()) return st.error();
  o.streaming = v == "ndjson" ? Streaming::kNdjson : Streaming::kJsonArray;
  if (auto st = readOptional(config, "ignore_unknown_query_parameters",
                             t.ignore_unknown_query_parameters);
      !st.ok()) {
    return st.error();
  }
  if (auto st = readOptional(config, "ignore_unknown_json_fields", t.parse.ignore_unknown_fields);
      !st.ok()) {
    return st.error();
  }
  if (const YAML::Node p = config["print_options"]) {
    if (auto st = checkKeys(p, {"add_whitespace", "always_print_primitive_fields",
                                "always_print_enums_as_ints", "preserve_proto_field_names"});
        !st.ok()) {
      return configError("print_options: " + st.error().message);
    }
    const std::pair<const char*, bool*> flags[] = {
        {"add_whitespace", &t.print.add_whitespace},
        {"always_print_primitive_fields", &t.print.always_print_primitive_fields},
        {"always_print_enums_as_ints", &t.print.always_print_enums_as_ints},
        {"preserve_proto_field_names", &t.print.preserve_proto_field_names}};
    for (const auto& [key, out] : flags) {
      if (auto st = readOptional(p, key, *out, std::string("print_options.") + key); !st.ok()) {
        return st.error();
      }
    }
  }
  const std::pair<const char*, uint64_t*> sizes[] = {
      {"max_request_bytes", &o.max_request_bytes},
      {"max_response_message_bytes", &o.max_response_message_bytes}};
  for (const auto& [key, out] : sizes) {
    if (!config[key]) continue;
    auto n = readInt(config[key], key, 1, 1 << 30);
    if (!n.ok()) return n.error();
    *out = static_cast<uint64_t>(*n);
  }
  return o;
}

class TranscodeFactory final : public http::FilterFactory {
 public:
  TranscodeFactory(Options o, std::unique_ptr<const Transcoder> t)
      : opts_(std::move(o)), transcoder_(std::move(t)) {}
  http::FilterRef create() const override;
  bool wantsResponseBody() const override { return true; }
  const Options& options() const { return opts_; }
  const Transcoder& transcoder() const { return *transcoder_; }

 private:
  Options opts_;
  std::unique_ptr<const Transcoder> transcoder_;
};

bool isGrpcContentType(std::string_view ct) {
  constexpr std::string_view kGrpc = "application/grpc";
  return ct.size() >= kGrpc.size() && http::iequals(ct.substr(0, kGrpc.size()), kGrpc) &&
         (ct.size() == kGrpc.size() || ct[kGrpc.size()] == '+' || ct[kGrpc.size()] == ';');
}

class TranscodeFilter final : public http::Filter {
 public:
  explicit TranscodeFilter(const TranscodeFactory& f) : f_(f) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    auto& req = ctx.request;
    if (proxy::grpc::isGrpc(req)) {  // a native gRPC client on the same route
      cells().local().passed.inc();
      return http::Verdict::kContinue;
    }
    binding_ = f_.transcoder().match(req.method, req.path, captures_);
    if (!binding_) {
      if (f_.options().reject_unmatched) {
        cells().local().unmatched.inc();
        return ctx.respond(
            404, errorJson(5, "no gRPC method is bound to " + req.method + " " + req.path),
            "application/json");
      }
      cells().local().passed.inc();
      return http::Verdict::kContinue;
    }
    // The whole body is needed to build the message (the core runs the body phase even for a
    // request without one, so GETs get their message too).
    ctx.buffer_request_body = f_.options().max_request_bytes;
    query_ = req.query;
    had_content_type_ = req.headers.has("content-type");
    content_type_.assign(req.headers.get("content-type"));
    req.method = "POST";
    req.path = f_.transcoder().method(*binding_).grpc_path;
    req.query.clear();
    req.headers.set("content-type", "application/grpc");
    req.headers.remove("content-length");
    return http::Verdict::kContinue;
  }

  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!binding_ || !end) return http::Verdict::kContinue;
    auto msg = f_.transcoder().buildRequest(*binding_, captures_, query_, chunk);
    if (!msg.ok()) {
      cells().local().bad_request.inc();
      restoreContentType(ctx);
      return ctx.respond(400, errorJson(3, msg.error().message), "application/json");
    }
    chunk = grpcFrame(*msg);
    cells().local().transcoded.inc();
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    if (!binding_) return http::Verdict::kContinue;
    // The client speaks JSON: a reply the gateway makes must not turn into a gRPC one.
    restoreContentType(ctx);
    auto& h = ctx.response.headers;
    if (converting_ || !isGrpcContentType(h.get("content-type"))) {
      return http::Verdict::kContinue;  // a gateway reply, or a non-gRPC upstream: as it is
    }
    converting_ = true;
    streaming_ = f_.transcoder().method(*binding_).server_streaming;
    ctx.hold_response_head = true;
    ctx.drop_response_trailers = true;
    setJsonType(ctx, streaming_ && f_.options().streaming == Streaming::kNdjson);
    for (const char* name : {"content-length", "grpc-encoding", "grpc-accept-encoding"})
      h.remove(name);
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!converting_) return http::Verdict::kContinue;
    if (failure_.empty()) pending_.append(chunk);
    chunk.clear();
    while (failure_.empty()) {
      if (pending_.size() >= 5) {
        auto b = [&](size_t i) { return static_cast<uint8_t>(pending_[i]); };
        uint64_t len = uint64_t{b(1)} << 24 | uint64_t{b(2)} << 16 | uint64_t{b(3)} << 8 | b(4);
        if (len > f_.options().max_response_message_bytes) {
          fail("response message larger than max_response_message_bytes");
          break;
        }
      }
      auto frame = nextFrame(pending_);
      if (!frame) break;
      if (frame->compressed) {
        fail("compressed gRPC response messages are not supported");
        break;
      }
      auto json = f_.transcoder().responseJson(*binding_, frame->message);
      if (!json.ok()) {
        fail(json.error().message);
        break;
      }
      emit(*json, chunk);
      pending_.erase(0, frame->size);
    }
    if (end) finish(ctx, chunk);
    return http::Verdict::kContinue;
  }

 private:
  void restoreContentType(http::RequestContext& ctx) {
    auto& h = ctx.request.headers;
    if (had_content_type_) {
      h.set("content-type", content_type_);
    } else {
      h.remove("content-type");
    }
  }

  static void setJsonType(http::RequestContext& ctx, bool ndjson) {
    ctx.response.headers.set("content-type", ndjson ? "application/x-ndjson" : "application/json");
  }

  void fail(std::string why) {
    failure_ = std::move(why);
    pending_.clear();
    cells().local().bad_response.inc();
  }

  void emit(const std::string& json, std::string& out) {
    if (!streaming_) {
      if (messages_++ == 0) unary_json_ = json;
      return;
    }
    if (f_.options().streaming == Streaming::kNdjson) {
      out.append(json).append("\n");
    } else {
      out.append(messages_ == 0 ? "[" : ",").append(json);
    }
    ++messages_;
  }

  // The end of the gRPC response: its status decides the HTTP status (unless messages of a
  // stream already went out with a 200, then the error is the stream's last element).
  void finish(http::RequestContext& ctx, std::string& out) {
    if (failure_.empty() && !pending_.empty()) fail("truncated gRPC message");
    auto& h = ctx.response.headers;
    std::string_view status_text;
    std::string message;
    if (ctx.response_trailers && ctx.response_trailers->has("grpc-status")) {
      status_text = ctx.response_trailers->get("grpc-status");
      message = decodeGrpcMessage(ctx.response_trailers->get("grpc-message"));
    } else {
      status_text = h.get("grpc-status");  // trailers-only response
      message = decodeGrpcMessage(h.get("grpc-message"));
    }
    int code = 2;
    if (status_text.size() == 1 || status_text.size() == 2) {
      code = 0;
      for (char c : status_text)
        code = c >= '0' && c <= '9' ? code * 10 + (c - '0') : 2;
    } else {
      message = "upstream sent no grpc-status";
    }
    for (const char* name : {"grpc-status", "grpc-message", "grpc-status-details-bin"})
      h.remove(name);
    int http_status = httpStatusForGrpc(code);
    if (!failure_.empty()) {
      code = 13;
      message = failure_;
      http_status = 502;
    } else if (code == 0 && !streaming_ && messages_ == 0) {
      code = 13;
      message = "upstream sent no response message";
      http_status = 502;
      cells().local().bad_response.inc();
    } else if (code != 0) {
      cells().local().grpc_errors.inc();
    }
    const bool ndjson = f_.options().streaming == Streaming::kNdjson;
    if (streaming_ && messages_ > 0) {  // the head goes (or went) out with a 200
      if (code != 0) {
        out.append(ndjson ? "" : ",").append("{\"error\":").append(errorJson(code, message));
        out.append(ndjson ? "}\n" : "}");
      }
      if (!ndjson) out.append("]");
      return;
    }
    if (code != 0) {
      ctx.response.status = http_status;
      ctx.response.reason.clear();
      setJsonType(ctx, false);
      out = errorJson(code, message);
      return;
    }
    if (streaming_) {
      if (!ndjson) out = "[]";
    } else {
      out = unary_json_;
    }
  }

  const TranscodeFactory& f_;
  const Binding* binding_ = nullptr;
  std::vector<Capture> captures_;
  std::string query_;
  std::string content_type_;
  bool had_content_type_ = false;
  bool converting_ = false;
  bool streaming_ = false;
  std::string pending_;  // response bytes short of a whole gRPC frame
  size_t messages_ = 0;
  std::string unary_json_;
  std::string failure_;  // set when a response message could not be converted
};

http::FilterRef TranscodeFactory::create() const {
  return http::FilterRef::own(std::make_unique<TranscodeFilter>(*this));
}

}  // namespace

const metrics::PerThread<Counters>& counters() {
  return cells();
}

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  auto o = parseOptions(config);
  if (!o.ok()) return o.error();
  auto t = Transcoder::load(o->transcoder);
  if (!t.ok()) return t.error();
  metrics::Registry::process().add("grpc_transcode", &collectMetrics);
  return http::FilterFactoryPtr(std::make_shared<TranscodeFactory>(std::move(*o), std::move(*t)));
}

}  // namespace gatehouse::policies::grpc_transcode

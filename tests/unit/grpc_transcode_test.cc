// Policy `grpc_transcode`: path templates, the gRPC -> HTTP status mapping, the descriptor set
// loader's config errors, request building (path, query, JSON body) and the filter's response
// conversion, on a descriptor set built in the test.
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "http/filter.h"
#include "policies/grpc_transcode/codec.h"
#include "policies/grpc_transcode/path_template.h"
#include "policies/grpc_transcode/transcoder.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

namespace gt = policies::grpc_transcode;
namespace pb = google::protobuf;

// --- path templates -------------------------------------------------------------------------

gt::PathTemplate parse(std::string_view t) {
  auto r = gt::parsePathTemplate(t);
  EXPECT_TRUE(r.ok()) << t << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : gt::PathTemplate{};
}

std::vector<std::string> match(const gt::PathTemplate& t, std::string_view path) {
  std::vector<gt::Capture> caps;
  if (!gt::matchPath(t, path, caps)) return {"<no match>"};
  std::vector<std::string> out;
  for (const auto& c : caps)
    out.push_back(c.variable->field_path + "=" + c.value);
  return out;
}

using V = std::vector<std::string>;

TEST(GrpcTranscodePathTemplate, LiteralsAndSingleVariables) {
  auto t = parse("/v1/shelves/{shelf}/books/{book.id}");
  EXPECT_EQ(match(t, "/v1/shelves/7/books/9"), (V{"shelf=7", "book.id=9"}));
  EXPECT_EQ(match(t, "/v1/shelves/7/books"), V{"<no match>"});
  EXPECT_EQ(match(t, "/v1/shelves/7/books/9/x"), V{"<no match>"});
  EXPECT_EQ(match(t, "/v1/shelves//books/9"), V{"<no match>"});  // '*' needs a segment
  EXPECT_EQ(match(t, "/v2/shelves/7/books/9"), V{"<no match>"});
  // A single-segment capture is fully percent-decoded.
  EXPECT_EQ(match(t, "/v1/shelves/a%20b/books/x%2Fy"), (V{"shelf=a b", "book.id=x/y"}));
}

TEST(GrpcTranscodePathTemplate, MultiSegmentVariablesAndDoubleWildcard) {
  auto t = parse("/v1/{name=shelves/*/books/*}");
  EXPECT_EQ(match(t, "/v1/shelves/1/books/2"), V{"name=shelves/1/books/2"});
  EXPECT_EQ(match(t, "/v1/shelves/1/books"), V{"<no match>"});
  EXPECT_EQ(match(t, "/v1/shelves/1/notbooks/2"), V{"<no match>"});
  // "%2F" stays encoded inside a multi-segment capture (it is not a separator).
  EXPECT_EQ(match(t, "/v1/shelves/a%2Fb/books/2"), V{"name=shelves/a%2Fb/books/2"});

  auto rest = parse("/files/{path=**}");
  EXPECT_EQ(match(rest, "/files/a/b/c.txt"), V{"path=a/b/c.txt"});
  EXPECT_EQ(match(rest, "/files"), V{"path="});
  auto tail = parse("/v1/{name=projects/*}/**");
  EXPECT_EQ(match(tail, "/v1/projects/p1/x/y"), V{"name=projects/p1"});
}

TEST(GrpcTranscodePathTemplate, Verbs) {
  auto t = parse("/v1/{name=shelves/*}:publish");
  EXPECT_EQ(t.verb, "publish");
  EXPECT_EQ(match(t, "/v1/shelves/3:publish"), V{"name=shelves/3"});
  EXPECT_EQ(match(t, "/v1/shelves/3"), V{"<no match>"});
  EXPECT_EQ(match(t, "/v1/shelves/3:unpublish"), V{"<no match>"});
  auto plain = parse("/v1/things:batchGet");
  EXPECT_EQ(match(plain, "/v1/things:batchGet"), V{});
}

TEST(GrpcTranscodePathTemplate, RejectsMalformedTemplates) {
  for (const char* bad : {"", "v1/x", "/v1/{x", "/v1/{x=a/{y}}", "/v1/**/x", "/v1/a*", "/v1/{1bad}",
                          "/v1//x", "/v1/{a.}", "/v1/x:", "/v1/{a}/{a}"}) {
    auto r = gt::parsePathTemplate(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.error().message.find("path template"), std::string::npos);
    }
  }
}

TEST(GrpcTranscodePathTemplate, MoreSpecificTemplatesSortFirst) {
  EXPECT_TRUE(parse("/v1/a/b").moreSpecificThan(parse("/v1/a/{x}")));
  EXPECT_TRUE(parse("/v1/{x}:do").moreSpecificThan(parse("/v1/{x}")));
  EXPECT_TRUE(parse("/v1/{x}").moreSpecificThan(parse("/v1/{x=**}")));
  EXPECT_FALSE(parse("/v1/{x}").moreSpecificThan(parse("/v1/a")));
}

TEST(GrpcTranscodeCodec, StatusMapping) {
  const std::pair<int, int> expected[] = {{0, 200},  {1, 499},  {2, 500},  {3, 400},  {4, 504},
                                          {5, 404},  {6, 409},  {7, 403},  {8, 429},  {9, 400},
                                          {10, 409}, {11, 400}, {12, 501}, {13, 500}, {14, 503},
                                          {15, 500}, {16, 401}, {17, 500}, {-1, 500}};
  for (auto [code, http] : expected)
    EXPECT_EQ(gt::httpStatusForGrpc(code), http) << code;
  EXPECT_EQ(gt::grpcCodeName(5), "NOT_FOUND");
  EXPECT_EQ(gt::errorJson(5, "no \"book\""), R"({"code":5,"message":"no \"book\""})");
  EXPECT_EQ(gt::errorJson(2, std::string("bad \xff utf8")),
            "{\"code\":2,\"message\":\"bad \xEF\xBF\xBD utf8\"}");
  EXPECT_EQ(gt::decodeGrpcMessage("caf%C3%A9 100%25 %zz"),
            "caf\xC3\xA9"
            " 100% %zz");
}

TEST(GrpcTranscodeCodec, FramesAndWireReader) {
  std::string f = gt::grpcFrame("abc");
  ASSERT_EQ(f.size(), 8u);
  EXPECT_FALSE(gt::nextFrame(f.substr(0, 7)).has_value());
  const std::string more = f + "xx";  // the frame's views point into it
  auto fr = gt::nextFrame(more);
  ASSERT_TRUE(fr.has_value());
  EXPECT_EQ(fr->message, "abc");
  EXPECT_EQ(fr->size, 8u);
  std::string msg;
  gt::appendLengthDelimited(3, "hi", msg);
  gt::WireReader r(msg);
  gt::WireReader::Field field;
  ASSERT_TRUE(r.next(field));
  EXPECT_EQ(field.number, 3u);
  EXPECT_EQ(field.bytes, "hi");
  EXPECT_FALSE(r.next(field));
  EXPECT_FALSE(r.failed());
  gt::WireReader bad(
      std::string_view("\x1a\x05"
                       "ab",
                       4));  // length past the end
  EXPECT_FALSE(bad.next(field));
  EXPECT_TRUE(bad.failed());
}

// --- a descriptor set built in the test -----------------------------------------------------

std::string rule(std::initializer_list<std::pair<int, std::string>> fields) {
  std::string out;
  for (const auto& [n, v] : fields)
    gt::appendLengthDelimited(static_cast<uint32_t>(n), v, out);
  return out;
}

void addField(pb::DescriptorProto* m, const char* name, int number,
              pb::FieldDescriptorProto::Type type, const char* type_name = nullptr,
              bool repeated = false) {
  auto* f = m->add_field();
  f->set_name(name);
  f->set_number(number);
  f->set_type(type);
  f->set_label(repeated ? pb::FieldDescriptorProto::LABEL_REPEATED
                        : pb::FieldDescriptorProto::LABEL_OPTIONAL);
  if (type_name) f->set_type_name(type_name);
}

void addMethod(pb::ServiceDescriptorProto* s, const char* name, const std::string& http_rule,
               bool server_streaming = false) {
  auto* m = s->add_method();
  m->set_name(name);
  m->set_input_type(".t.Req");
  m->set_output_type(".t.Req");
  m->set_server_streaming(server_streaming);
  if (!http_rule.empty()) {
    m->mutable_options()->mutable_unknown_fields()->AddLengthDelimited(72295728, http_rule);
  }
}

class DescriptorSet {
 public:
  explicit DescriptorSet(const std::string& get_path = "/v1/{name=things/*}") {
    pb::FileDescriptorProto file;
    file.set_name("t.proto");
    file.set_package("t");
    file.set_syntax("proto3");
    auto* sub = file.add_message_type();
    sub->set_name("Sub");
    addField(sub, "id", 1, pb::FieldDescriptorProto::TYPE_INT64);
    auto* req = file.add_message_type();
    req->set_name("Req");
    addField(req, "name", 1, pb::FieldDescriptorProto::TYPE_STRING);
    addField(req, "n", 2, pb::FieldDescriptorProto::TYPE_INT32);
    addField(req, "sub", 3, pb::FieldDescriptorProto::TYPE_MESSAGE, ".t.Sub");
    addField(req, "tags", 4, pb::FieldDescriptorProto::TYPE_STRING, nullptr, true);
    addField(req, "flag", 5, pb::FieldDescriptorProto::TYPE_BOOL);
    addField(req, "s", 6, pb::FieldDescriptorProto::TYPE_SINT64);
    addField(req, "page_token", 7, pb::FieldDescriptorProto::TYPE_STRING);
    auto* svc = file.add_service();
    svc->set_name("Svc");
    addMethod(svc, "Get", rule({{2, get_path}, {11, rule({{2, "/v1/sub/{sub.id}"}})}}));
    addMethod(svc, "Put", rule({{3, "/v1/{name=things/*}"}, {7, "*"}}));
    addMethod(svc, "SetSub", rule({{4, "/v1/{name=things/*}:sub"}, {7, "sub"}}));
    addMethod(svc, "List", rule({{2, "/v1/list"}}), true);
    addMethod(svc, "Bare", "");
    pb::FileDescriptorSet set;
    *set.add_file() = file;
    char tmpl[] = "/tmp/gh_transcode_XXXXXX";
    int fd = mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
    std::ofstream(path_, std::ios::binary) << set.SerializeAsString();
    // A pool to decode what the transcoder produced.
    pool_.BuildFile(file);
  }
  ~DescriptorSet() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

  // The request message bytes as text format, for readable assertions.
  std::string decode(const std::string& bytes) {
    const pb::Descriptor* d = pool_.FindMessageTypeByName("t.Req");
    std::unique_ptr<pb::Message> m(factory_.GetPrototype(d)->New());
    EXPECT_TRUE(m->ParseFromString(bytes));
    return m->ShortDebugString();
  }

 private:
  std::string path_;
  pb::DescriptorPool pool_;
  pb::DynamicMessageFactory factory_;
};

gt::TranscoderOptions options(const DescriptorSet& ds, gt::Unannotated u = gt::Unannotated::kSkip) {
  gt::TranscoderOptions o;
  o.descriptor_set = ds.path();
  o.services = {"t.Svc"};
  o.unannotated = u;
  return o;
}

std::string loadError(const gt::TranscoderOptions& o) {
  auto t = gt::Transcoder::load(o);
  return t.ok() ? "<loaded>" : t.error().message;
}

TEST(GrpcTranscodeLoad, ConfigErrorsNameTheOption) {
  DescriptorSet ds;
  auto o = options(ds);
  o.descriptor_set = "/nonexistent/api.pb";
  EXPECT_EQ(loadError(o).rfind("descriptor_set: cannot read '/nonexistent/api.pb'", 0), 0u)
      << loadError(o);

  char tmpl[] = "/tmp/gh_garbage_XXXXXX";
  int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "\xff\xff\xff", 3), 3);
  close(fd);
  o.descriptor_set = tmpl;
  EXPECT_NE(loadError(o).find("is not a descriptor set"), std::string::npos) << loadError(o);
  std::remove(tmpl);

  o = options(ds);
  o.services = {"t.Nope"};
  EXPECT_EQ(loadError(o).rfind("services: no service 't.Nope'", 0), 0u) << loadError(o);

  o = options(ds, gt::Unannotated::kError);
  std::string e = loadError(o);
  EXPECT_NE(e.find("'t.Svc.Bare' has no google.api.http annotation"), std::string::npos) << e;

  DescriptorSet bad_var("/v1/{nope}");
  e = loadError(options(bad_var));
  EXPECT_NE(e.find("t.Svc.Get"), std::string::npos) << e;
  EXPECT_NE(e.find("path variable 'nope'"), std::string::npos) << e;
  DescriptorSet bad_tmpl("/v1/{name");
  e = loadError(options(bad_tmpl));
  EXPECT_NE(e.find("unclosed '{'"), std::string::npos) << e;
  DescriptorSet msg_var("/v1/{sub}");
  e = loadError(options(msg_var));
  EXPECT_NE(e.find("must name a singular scalar field"), std::string::npos) << e;
}

TEST(GrpcTranscodeLoad, BindingsIncludingAdditionalAndUnannotated) {
  DescriptorSet ds;
  auto t = gt::Transcoder::load(options(ds, gt::Unannotated::kPost));
  ASSERT_TRUE(t.ok()) << t.error().message;
  std::vector<gt::Capture> caps;
  const auto* b = (*t)->match("GET", "/v1/things/x", caps);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ((*t)->method(*b).grpc_path, "/t.Svc/Get");
  b = (*t)->match("GET", "/v1/sub/42", caps);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ((*t)->method(*b).grpc_path, "/t.Svc/Get");
  b = (*t)->match("POST", "/v1/things/x:sub", caps);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ((*t)->method(*b).grpc_path, "/t.Svc/SetSub");
  b = (*t)->match("POST", "/t.Svc/Bare", caps);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->body, gt::Binding::Body::kAll);
  EXPECT_EQ((*t)->match("DELETE", "/v1/things/x", caps), nullptr);
  EXPECT_EQ((*t)->match("GET", "/v1/other/x", caps), nullptr);
}

TEST(GrpcTranscodeRequest, PathQueryAndBodyMerge) {
  DescriptorSet ds;
  auto t = gt::Transcoder::load(options(ds));
  ASSERT_TRUE(t.ok()) << t.error().message;
  std::vector<gt::Capture> caps;
  const auto* get = (*t)->match("GET", "/v1/things/a%20b", caps);
  ASSERT_NE(get, nullptr);
  auto r = (*t)->buildRequest(*get, caps,
                              "n=-5&tags=x&tags=y+z&flag=true&sub.id=9&s=-3&pageToken=p", "");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ds.decode(*r),
            R"(name: "things/a b" n: -5 sub { id: 9 } tags: "x" tags: "y z" flag: true s: -3 )"
            R"(page_token: "p")");
  // The path wins over a query parameter for the same field.
  r = (*t)->buildRequest(*get, caps, "name=other", "");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(ds.decode(*r), R"(name: "things/a b")");

  for (auto [query, needle] : {std::pair{"n=abc", "field 'n': 'abc' is not an integer"},
                               {"n=99999999999", "field 'n'"},
                               {"flag=maybe", "true or false"},
                               {"nope=1", "query parameter 'nope'"},
                               {"sub=1", "names a message field"},
                               {"n=%zz", "percent-encoding"}}) {
    auto bad = (*t)->buildRequest(*get, caps, query, "");
    ASSERT_FALSE(bad.ok()) << query;
    EXPECT_NE(bad.error().message.find(needle), std::string::npos) << bad.error().message;
  }

  const auto* put = (*t)->match("PUT", "/v1/things/k", caps);
  ASSERT_NE(put, nullptr);
  r = (*t)->buildRequest(*put, caps, "n=7", R"({"name": "ignored", "n": 3, "sub": {"id": "12"}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ds.decode(*r), R"(name: "things/k" n: 3 sub { id: 12 })");  // body "*": no query
  for (const char* body : {"{not json", R"({"unknown": 1})", R"({"n": "x"})", "[1]"}) {
    auto bad = (*t)->buildRequest(*put, caps, "", body);
    ASSERT_FALSE(bad.ok()) << body;
    EXPECT_EQ(bad.error().message.rfind("invalid JSON body", 0), 0u) << bad.error().message;
  }
  const auto* set_sub = (*t)->match("POST", "/v1/things/k:sub", caps);
  ASSERT_NE(set_sub, nullptr);
  r = (*t)->buildRequest(*set_sub, caps, "n=4", R"({"id": 77})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ds.decode(*r), R"(name: "things/k" n: 4 sub { id: 77 })");
}

TEST(GrpcTranscodeResponse, InvalidUtf8InAStringBecomesReplacementCharacters) {
  // protobuf copies the bytes of a proto3 string into the JSON as they are (found by
  // grpc_transcode_json_fuzz); the client gets valid UTF-8.
  DescriptorSet ds;
  auto t = gt::Transcoder::load(options(ds));
  ASSERT_TRUE(t.ok()) << t.error().message;
  std::vector<gt::Capture> caps;
  const auto* get = (*t)->match("GET", "/v1/things/k", caps);
  ASSERT_NE(get, nullptr);
  std::string message;
  gt::appendLengthDelimited(4,
                            "a\xC1\x86"
                            "b",
                            message);  // tags: an overlong form
  gt::appendLengthDelimited(4, "caf\xC3\xA9", message);
  auto json = (*t)->responseJson(*get, message);
  ASSERT_TRUE(json.ok()) << json.error().message;
  EXPECT_EQ(*json,
            "{\"tags\":[\"a\xEF\xBF\xBD\xEF\xBF\xBD"
            "b\",\"caf\xC3\xA9\"]}");
}

TEST(GrpcTranscodeRequest, FieldBodyIsOneJsonValue) {
  // With body: "sub" the body is wrapped as {"sub": <body>}; a body that closes that value
  // early must not set other fields (found by grpc_transcode_json_fuzz).
  DescriptorSet ds;
  auto t = gt::Transcoder::load(options(ds));
  ASSERT_TRUE(t.ok()) << t.error().message;
  std::vector<gt::Capture> caps;
  const auto* set_sub = (*t)->match("POST", "/v1/things/k:sub", caps);
  ASSERT_NE(set_sub, nullptr);
  for (const char* body :
       {R"({"id": 77}, "n": 5)", R"({"id": 1}, "tags": ["x"])", R"(null, "flag": true)"}) {
    auto bad = (*t)->buildRequest(*set_sub, caps, "", body);
    ASSERT_FALSE(bad.ok()) << body << " -> " << ds.decode(*bad);
    EXPECT_EQ(bad.error().message.rfind("invalid JSON body", 0), 0u) << bad.error().message;
  }
  auto r = (*t)->buildRequest(*set_sub, caps, "", " {\"id\": \"5\"} ");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(ds.decode(*r), R"(name: "things/k" sub { id: 5 })");
}

// --- the filter, phase by phase -------------------------------------------------------------

struct FilterRun {
  http::FilterFactoryPtr factory;
  http::FilterRef ref;
  http::RequestContext ctx;
};

TEST(GrpcTranscodeFilter, UnaryRequestAndResponseConversion) {
  DescriptorSet ds;
  std::string error;
  auto f = testutil::buildPolicy(
      "grpc_transcode",
      "{descriptor_set: " + ds.path() + ", services: [t.Svc], unannotated_methods: skip}", &error);
  ASSERT_NE(f, nullptr) << error;
  EXPECT_TRUE(f->wantsResponseBody());
  http::RequestContext ctx;
  ctx.request.method = "GET";
  ctx.request.path = "/v1/things/abc";
  ctx.request.query = "n=2";
  auto ref = f->create();
  ASSERT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.request.method, "POST");
  EXPECT_EQ(ctx.request.path, "/t.Svc/Get");
  EXPECT_EQ(ctx.request.query, "");
  EXPECT_EQ(ctx.request.headers.get("content-type"), "application/grpc");
  EXPECT_GT(ctx.buffer_request_body, 0u);
  std::string body;
  ASSERT_EQ(ref.filter->onRequestBody(ctx, body, true), http::Verdict::kContinue);
  auto frame = gt::nextFrame(body);
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(ds.decode(std::string(frame->message)), R"(name: "things/abc" n: 2)");

  ctx.response.status = 200;
  ctx.response.headers.add("content-type", "application/grpc");
  ASSERT_EQ(ref.filter->onResponseHeaders(ctx), http::Verdict::kContinue);
  EXPECT_TRUE(ctx.hold_response_head);
  EXPECT_TRUE(ctx.drop_response_trailers);
  EXPECT_EQ(ctx.response.headers.get("content-type"), "application/json");
  EXPECT_EQ(ctx.request.headers.get("content-type"), "");  // gateway errors stay HTTP ones
  // The reply arrives split across chunks; nothing is emitted before the end.
  std::string reply = gt::grpcFrame(frame->message);
  std::string chunk = reply.substr(0, 3);
  ref.filter->onResponseBody(ctx, chunk, false);
  EXPECT_EQ(chunk, "");
  chunk = reply.substr(3);
  ref.filter->onResponseBody(ctx, chunk, false);
  EXPECT_EQ(chunk, "");
  http::HeaderMap trailers;
  trailers.add("grpc-status", "0");
  ctx.response_trailers = &trailers;
  chunk.clear();
  ref.filter->onResponseBody(ctx, chunk, true);
  EXPECT_EQ(nlohmann::json::parse(chunk), nlohmann::json::parse(R"({"name":"things/abc","n":2})"));
  EXPECT_EQ(ctx.response.status, 200);
}

TEST(GrpcTranscodeFilter, ErrorsAndBadInput) {
  DescriptorSet ds;
  auto f = testutil::buildPolicy("grpc_transcode", "{descriptor_set: " + ds.path() +
                                                       ", services: [t.Svc], unmatched: reject,"
                                                       " unannotated_methods: skip}");
  ASSERT_NE(f, nullptr);
  {  // trailers-only error: grpc-status in the head
    http::RequestContext ctx;
    ctx.request.method = "GET";
    ctx.request.path = "/v1/things/x";
    auto ref = f->create();
    ref.filter->onRequestHeaders(ctx);
    std::string body;
    ref.filter->onRequestBody(ctx, body, true);
    ctx.response.status = 200;
    ctx.response.headers.add("content-type", "application/grpc");
    ctx.response.headers.add("grpc-status", "5");
    ctx.response.headers.add("grpc-message", "thing%20not%20found");
    ref.filter->onResponseHeaders(ctx);
    std::string chunk;
    ref.filter->onResponseBody(ctx, chunk, true);
    EXPECT_EQ(ctx.response.status, 404);
    EXPECT_EQ(chunk, R"({"code":5,"message":"thing not found"})");
    EXPECT_FALSE(ctx.response.headers.has("grpc-status"));
  }
  {  // bad JSON: a 400 that stays HTTP (the request's content-type is restored)
    http::RequestContext ctx;
    ctx.request.method = "PUT";
    ctx.request.path = "/v1/things/x";
    ctx.request.headers.add("content-type", "application/json");
    auto ref = f->create();
    ref.filter->onRequestHeaders(ctx);
    std::string body = "{oops";
    EXPECT_EQ(ref.filter->onRequestBody(ctx, body, true), http::Verdict::kRespond);
    EXPECT_EQ(ctx.local_reply.status, 400);
    EXPECT_NE(ctx.local_reply.body.find("invalid JSON body"), std::string::npos);
    EXPECT_EQ(ctx.request.headers.get("content-type"), "application/json");
  }
  {  // unmatched: reject
    http::RequestContext ctx;
    ctx.request.method = "GET";
    ctx.request.path = "/elsewhere";
    auto ref = f->create();
    EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kRespond);
    EXPECT_EQ(ctx.local_reply.status, 404);
  }
  {  // native gRPC passes untouched
    http::RequestContext ctx;
    ctx.request.method = "POST";
    ctx.request.path = "/v1/things/x";
    ctx.request.headers.add("content-type", "application/grpc");
    auto ref = f->create();
    EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
    EXPECT_EQ(ctx.buffer_request_body, 0u);
  }
}

TEST(GrpcTranscodeFilter, ServerStreamingArrayThenError) {
  DescriptorSet ds;
  auto f = testutil::buildPolicy(
      "grpc_transcode",
      "{descriptor_set: " + ds.path() + ", services: [t.Svc]," + " unannotated_methods: skip}");
  ASSERT_NE(f, nullptr);
  http::RequestContext ctx;
  ctx.request.method = "GET";
  ctx.request.path = "/v1/list";
  auto ref = f->create();
  ref.filter->onRequestHeaders(ctx);
  ctx.response.status = 200;
  ctx.response.headers.add("content-type", "application/grpc+proto");
  ref.filter->onResponseHeaders(ctx);
  std::string m1;
  gt::appendLengthDelimited(1, "a", m1);
  std::string chunk = gt::grpcFrame(m1) + gt::grpcFrame(m1);
  ref.filter->onResponseBody(ctx, chunk, false);
  EXPECT_EQ(chunk, R"([{"name":"a"},{"name":"a"})");  // emitted as the messages arrive
  http::HeaderMap trailers;
  trailers.add("grpc-status", "14");
  trailers.add("grpc-message", "gone");
  ctx.response_trailers = &trailers;
  chunk.clear();
  ref.filter->onResponseBody(ctx, chunk, true);
  EXPECT_EQ(chunk, R"(,{"error":{"code":14,"message":"gone"}}])");
  EXPECT_EQ(ctx.response.status, 200);  // already sent with the first message
}

TEST(GrpcTranscodeFilter, BuilderErrorsNameTheOption) {
  DescriptorSet ds;
  std::string e;
  EXPECT_EQ(testutil::buildPolicy("grpc_transcode", "{services: [t.Svc]}", &e), nullptr);
  EXPECT_NE(e.find("descriptor_set: required"), std::string::npos) << e;
  EXPECT_EQ(testutil::buildPolicy("grpc_transcode", "{descriptor_set: " + ds.path() + "}", &e),
            nullptr);
  EXPECT_NE(e.find("services:"), std::string::npos) << e;
  EXPECT_EQ(testutil::buildPolicy(
                "grpc_transcode",
                "{descriptor_set: " + ds.path() + ", services: [t.Svc], streaming: xml}", &e),
            nullptr);
  EXPECT_NE(e.find("streaming: expected one of json_array, ndjson"), std::string::npos) << e;
  EXPECT_EQ(
      testutil::buildPolicy(
          "grpc_transcode",
          "{descriptor_set: " + ds.path() + ", services: [t.Svc], print_options: {indent: 2}}", &e),
      nullptr);
  EXPECT_NE(e.find("print_options: unknown option 'indent'"), std::string::npos) << e;
}

}  // namespace
}  // namespace gatehouse

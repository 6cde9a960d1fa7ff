// grpc_transcode's JSON side on a descriptor set built here: the first byte picks the binding
// (body "*", body "sub", no body) or a raw response message; the rest is "query\nJSON body".
//   - buildRequest never crashes, and its errors are the client's (a 400);
//   - with body "sub" the request sets no top-level field but the ones the body, the query
//     and the path bind;
//   - an accepted request converts back to JSON, and that JSON converts to the same message
//     again (compared by content: the wire repeats a field the path also binds);
//   - any bytes as a response message either fail cleanly or give JSON that round-trips too.
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/unknown_field_set.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "policies/grpc_transcode/codec.h"
#include "policies/grpc_transcode/transcoder.h"

namespace {

namespace gt = gatehouse::policies::grpc_transcode;
namespace pb = google::protobuf;

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

void addMethod(pb::ServiceDescriptorProto* s, const char* name, const std::string& http_rule) {
  auto* m = s->add_method();
  m->set_name(name);
  m->set_input_type(".t.Req");
  m->set_output_type(".t.Req");
  // google.api.http (extension 72295728 of MethodOptions), as protoc writes it.
  m->mutable_options()->mutable_unknown_fields()->AddLengthDelimited(72295728, http_rule);
}

pb::FileDescriptorProto fileDescriptor() {
  pb::FileDescriptorProto file;
  file.set_name("t.proto");
  file.set_package("t");
  file.set_syntax("proto3");
  auto* color = file.add_enum_type();
  color->set_name("Color");
  for (const char* v : {"COLOR_UNSET", "RED", "GREEN"}) {
    auto* ev = color->add_value();
    ev->set_name(v);
    ev->set_number(color->value_size() - 1);
  }
  auto* sub = file.add_message_type();
  sub->set_name("Sub");
  addField(sub, "id", 1, pb::FieldDescriptorProto::TYPE_INT64);
  addField(sub, "ratio", 2, pb::FieldDescriptorProto::TYPE_DOUBLE);
  auto* req = file.add_message_type();
  req->set_name("Req");
  addField(req, "name", 1, pb::FieldDescriptorProto::TYPE_STRING);
  addField(req, "n", 2, pb::FieldDescriptorProto::TYPE_INT32);
  addField(req, "sub", 3, pb::FieldDescriptorProto::TYPE_MESSAGE, ".t.Sub");
  addField(req, "tags", 4, pb::FieldDescriptorProto::TYPE_STRING, nullptr, true);
  addField(req, "flag", 5, pb::FieldDescriptorProto::TYPE_BOOL);
  addField(req, "s", 6, pb::FieldDescriptorProto::TYPE_SINT64);
  addField(req, "data", 7, pb::FieldDescriptorProto::TYPE_BYTES);
  addField(req, "color", 8, pb::FieldDescriptorProto::TYPE_ENUM, ".t.Color");
  addField(req, "f", 9, pb::FieldDescriptorProto::TYPE_FLOAT);
  addField(req, "u", 10, pb::FieldDescriptorProto::TYPE_FIXED64);
  addField(req, "subs", 11, pb::FieldDescriptorProto::TYPE_MESSAGE, ".t.Sub", true);
  auto* svc = file.add_service();
  svc->set_name("Svc");
  addMethod(svc, "Put", rule({{3, "/v1/{name=things/*}"}, {7, "*"}}));
  addMethod(svc, "SetSub", rule({{4, "/v1/{name=things/*}:sub"}, {7, "sub"}}));
  addMethod(svc, "Get", rule({{2, "/v1/{name=things/*}"}}));
  return file;
}

struct Fixture {
  std::unique_ptr<const gt::Transcoder> transcoder;
  // The same types, to compare messages by content (the wire may repeat a singular field).
  pb::DescriptorPool pool;
  pb::DynamicMessageFactory factory;
  const pb::Message* req_prototype = nullptr;
  const gt::Binding* put = nullptr;
  const gt::Binding* set_sub = nullptr;
  const gt::Binding* get = nullptr;
  std::vector<gt::Capture> put_caps, set_sub_caps, get_caps;
};

const Fixture& fixture() {
  static const Fixture* f = [] {
    char path[] = "/tmp/gh_transcode_fuzz_XXXXXX";
    const int fd = mkstemp(path);
    FUZZ_CHECK(fd >= 0);
    close(fd);
    pb::FileDescriptorSet set;
    *set.add_file() = fileDescriptor();
    std::ofstream(path, std::ios::binary) << set.SerializeAsString();
    gt::TranscoderOptions opts;
    opts.descriptor_set = path;
    opts.services = {"t.Svc"};
    auto loaded = gt::Transcoder::load(opts);
    std::remove(path);
    FUZZ_CHECK(loaded.ok());
    auto* fx = new Fixture;
    fx->transcoder = std::move(*loaded);
    fx->put = fx->transcoder->match("PUT", "/v1/things/k", fx->put_caps);
    fx->set_sub = fx->transcoder->match("POST", "/v1/things/k:sub", fx->set_sub_caps);
    fx->get = fx->transcoder->match("GET", "/v1/things/k", fx->get_caps);
    FUZZ_CHECK(fx->put && fx->set_sub && fx->get);
    FUZZ_CHECK(fx->pool.BuildFile(set.file(0)) != nullptr);
    fx->req_prototype = fx->factory.GetPrototype(fx->pool.FindMessageTypeByName("t.Req"));
    return fx;
  }();
  return *f;
}

// Top-level field numbers a SetSub request may carry: sub (body), name (path) and whatever the
// query names.
bool onlyBoundFields(std::string_view message, std::string_view query) {
  gt::WireReader r(message);
  gt::WireReader::Field field;
  while (r.next(field)) {
    if (field.number == 1 || field.number == 3) continue;
    if (query.empty()) return false;  // nothing else can bind it
  }
  return !r.failed();
}

// The message's content, serialised deterministically (last singular occurrence wins); nullopt
// when it does not parse (a proto3 string that is not UTF-8).
std::optional<std::string> canonical(const Fixture& fx, const std::string& wire) {
  std::unique_ptr<pb::Message> m(fx.req_prototype->New());
  if (!m->ParseFromString(wire)) return std::nullopt;
  std::string out;
  m->ByteSizeLong();  // caches the sizes SerializeWithCachedSizes writes
  {
    pb::io::StringOutputStream stream(&out);
    pb::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m->SerializeWithCachedSizes(&coded);
  }
  return out;
}

// JSON -> message -> JSON -> message through the body "*" binding gives the same message.
void checkRoundTrip(const Fixture& fx, const std::string& json) {
  auto wire = fx.transcoder->buildRequest(*fx.put, fx.put_caps, "", json);
  if (!wire.ok()) {
    std::fprintf(stderr, "JSON %s refused: %s\n", json.c_str(), wire.error().message.c_str());
  }
  FUZZ_CHECK(wire.ok());
  const std::optional<std::string> first = canonical(fx, *wire);
  if (!first) return;
  auto again = fx.transcoder->responseJson(*fx.put, *first);
  FUZZ_CHECK(again.ok());
  auto wire2 = fx.transcoder->buildRequest(*fx.put, fx.put_caps, "", *again);
  FUZZ_CHECK(wire2.ok());
  FUZZ_CHECK(canonical(fx, *wire2) == first);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const Fixture& fx = fixture();
  const uint8_t mode = data[0] % 4;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);

  if (mode == 3) {  // an upstream's response message
    auto json = fx.transcoder->responseJson(*fx.get, in);
    if (json.ok()) checkRoundTrip(fx, *json);
    return 0;
  }
  const size_t nl = in.find('\n');
  const std::string_view query = nl == std::string_view::npos ? "" : in.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? in : in.substr(nl + 1);
  const gt::Binding* b = mode == 0 ? fx.put : mode == 1 ? fx.set_sub : fx.get;
  const auto& caps = mode == 0 ? fx.put_caps : mode == 1 ? fx.set_sub_caps : fx.get_caps;
  auto wire = fx.transcoder->buildRequest(*b, caps, query, body);
  if (!wire.ok()) {
    FUZZ_CHECK(wire.error().code == gatehouse::ErrorCode::kInvalidArgument);
    FUZZ_CHECK(!wire.error().message.empty());
    return 0;
  }
  if (mode == 1) FUZZ_CHECK(onlyBoundFields(*wire, query));
  auto json = fx.transcoder->responseJson(*b, *wire);
  FUZZ_CHECK(json.ok());
  checkRoundTrip(fx, *json);
  return 0;
}

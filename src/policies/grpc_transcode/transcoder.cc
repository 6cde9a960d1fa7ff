#include "policies/grpc_transcode/transcoder.h"

#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/unknown_field_set.h>
#include <google/protobuf/util/type_resolver_util.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "core/encoding.h"
#include "policies/grpc_transcode/codec.h"
#include "policies/policy_yaml.h"

namespace gatehouse::policies::grpc_transcode {

namespace pb = google::protobuf;

namespace {

constexpr uint32_t kHttpExtension = 72295728;  // google.api.http on MethodOptions
constexpr std::string_view kUrlPrefix = "type.googleapis.com";

class FirstError : public pb::DescriptorPool::ErrorCollector {
 public:
  void AddError(const std::string& filename, const std::string& element, const pb::Message*,
                ErrorLocation, const std::string& message) override {
    if (text.empty()) text = filename + ": " + element + ": " + message;
  }
  std::string text;
};

std::string url(const pb::Descriptor* d) {
  return std::string(kUrlPrefix) + "/" + d->full_name();
}

bool blank(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

Error clientError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kDownstream, std::move(msg));
}

// True when every top-level field of `message` is `field`.
bool onlyField(std::string_view message, const pb::FieldDescriptor* field) {
  WireReader r(message);
  WireReader::Field f;
  while (r.next(f)) {
    if (f.number != static_cast<uint32_t>(field->number())) return false;
  }
  return !r.failed();
}

// Appends `json` with each byte that is not part of well-formed UTF-8 replaced by U+FFFD:
// protobuf copies a proto3 string's bytes as they are, and a client's JSON parser may refuse
// (or a browser mangle) the whole document for one bad byte. Only strings can hold such bytes.
void appendValidUtf8(std::string& out, std::string_view json) {
  size_t i = 0;
  while (i < json.size()) {
    const size_t n = encoding::utf8SequenceLength(json.substr(i));
    if (n > 0) {
      out.append(json.substr(i, n));
      i += n;
    } else {
      out.append("\xEF\xBF\xBD");
      ++i;
    }
  }
}

}  // namespace

Result<std::unique_ptr<const Transcoder>> Transcoder::load(const TranscoderOptions& opts) {
  auto t = std::make_unique<Transcoder>();
  t->opts_ = opts;
  const std::string& file = opts.descriptor_set;
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return configError("descriptor_set: cannot read '" + file + "': " + std::strerror(errno));
  }
  std::stringstream bytes;
  bytes << in.rdbuf();
  pb::FileDescriptorSet fds;
  if (!fds.ParseFromString(bytes.str()) || fds.file_size() == 0) {
    return configError("descriptor_set: '" + file +
                       "' is not a descriptor set (protoc --include_imports "
                       "--descriptor_set_out=FILE)");
  }
  t->pool_ = std::make_unique<pb::DescriptorPool>();
  std::unordered_map<std::string, std::string> rules;  // method full name -> HttpRule bytes
  for (const auto& fdp : fds.file()) {
    FirstError errors;
    if (!t->pool_->BuildFileCollectingErrors(fdp, &errors)) {
      return configError("descriptor_set: '" + file + "': cannot load " + fdp.name() + " (" +
                         errors.text + "); was it compiled with --include_imports?");
    }
    std::string prefix = fdp.package().empty() ? "" : fdp.package() + ".";
    for (const auto& svc : fdp.service()) {
      for (const auto& m : svc.method()) {
        const auto& unknown = m.options().GetReflection()->GetUnknownFields(m.options());
        for (int i = 0; i < unknown.field_count(); ++i) {
          const auto& f = unknown.field(i);
          if (f.number() == static_cast<int>(kHttpExtension) &&
              f.type() == pb::UnknownField::TYPE_LENGTH_DELIMITED) {
            rules[prefix + svc.name() + "." + m.name()] = f.length_delimited();
          }
        }
      }
    }
  }
  t->resolver_.reset(
      pb::util::NewTypeResolverForDescriptorPool(std::string(kUrlPrefix), t->pool_.get()));
  for (const auto& name : opts.services) {
    const pb::ServiceDescriptor* svc = t->pool_->FindServiceByName(name);
    if (!svc) {
      return configError("services: no service '" + name + "' in descriptor_set '" + file +
                         "' (use the full name, package included)");
    }
    for (int i = 0; i < svc->method_count(); ++i) {
      const pb::MethodDescriptor* md = svc->method(i);
      auto rule = rules.find(md->full_name());
      if (md->client_streaming()) {
        if (rule != rules.end()) {
          return configError("services: method '" + md->full_name() +
                             "' is client streaming; only unary and server-streaming methods "
                             "can be transcoded");
        }
        continue;  // left to native gRPC clients
      }
      MethodInfo mi;
      mi.grpc_path = "/" + svc->full_name() + "/" + md->name();
      mi.full_name = md->full_name();
      mi.input = md->input_type();
      mi.output = md->output_type();
      mi.input_url = url(md->input_type());
      mi.output_url = url(md->output_type());
      mi.server_streaming = md->server_streaming();
      t->methods_.push_back(std::move(mi));
      const size_t idx = t->methods_.size() - 1;
      if (rule != rules.end()) {
        if (auto st = t->addRule(idx, rule->second, false); !st.ok()) return st.error();
      } else if (opts.unannotated == Unannotated::kPost) {
        std::string path = t->methods_[idx].grpc_path;
        if (auto st = t->addBinding(idx, "POST", path, "*", ""); !st.ok()) return st.error();
      } else if (opts.unannotated == Unannotated::kError) {
        return configError("services: method '" + md->full_name() +
                           "' has no google.api.http annotation (set unannotated_methods: post "
                           "to expose it as POST " +
                           t->methods_[idx].grpc_path + ", or skip)");
      }
    }
  }
  if (t->bindings_.empty()) {
    return configError("services: no method of the listed services can be transcoded");
  }
  std::stable_sort(t->bindings_.begin(), t->bindings_.end(),
                   [](const auto& a, const auto& b) { return a.path.moreSpecificThan(b.path); });
  return std::unique_ptr<const Transcoder>(std::move(t));
}

// google.api.HttpRule: get=2 put=3 post=4 delete=5 patch=6 body=7 custom=8 {kind=1 path=2}
// additional_bindings=11 response_body=12.
Status Transcoder::addRule(size_t method, std::string_view rule, bool nested) {
  const std::string& name = methods_[method].full_name;
  std::string http_method;
  std::string_view pattern;
  std::string_view body;
  std::string_view response_body;
  std::vector<std::string_view> additional;
  WireReader r(rule);
  WireReader::Field f;
  static constexpr std::string_view kMethods[] = {"GET", "PUT", "POST", "DELETE", "PATCH"};
  while (r.next(f)) {
    if (f.wire_type != 2) continue;
    if (f.number >= 2 && f.number <= 6) {
      http_method = kMethods[f.number - 2];
      pattern = f.bytes;
    } else if (f.number == 8) {
      WireReader c(f.bytes);
      WireReader::Field cf;
      while (c.next(cf)) {
        if (cf.number == 1 && cf.wire_type == 2) http_method.assign(cf.bytes);
        if (cf.number == 2 && cf.wire_type == 2) pattern = cf.bytes;
      }
    } else if (f.number == 7) {
      body = f.bytes;
    } else if (f.number == 12) {
      response_body = f.bytes;
    } else if (f.number == 11 && !nested) {
      additional.push_back(f.bytes);
    }
  }
  if (r.failed()) return configError("services: method '" + name + "': malformed google.api.http");
  if (http_method.empty() || pattern.empty()) {
    return configError("services: method '" + name + "': google.api.http rule has no pattern");
  }
  if (auto st = addBinding(method, std::move(http_method), pattern, body, response_body);
      !st.ok()) {
    return st;
  }
  for (auto a : additional) {
    if (auto st = addRule(method, a, true); !st.ok()) return st;
  }
  return {};
}

Status Transcoder::addBinding(size_t method, std::string http_method, std::string_view pattern,
                              std::string_view body, std::string_view response_body) {
  const MethodInfo& mi = methods_[method];
  auto fail = [&](std::string why) {
    return configError("services: method '" + mi.full_name + "' (" + http_method + " " +
                       std::string(pattern) + "): " + why);
  };
  Binding b;
  b.http_method = std::move(http_method);
  b.pattern.assign(pattern);
  b.method = method;
  auto tmpl = parsePathTemplate(pattern);
  if (!tmpl.ok()) return fail(tmpl.error().message);
  b.path = std::move(*tmpl);
  for (const auto& var : b.path.variables) {
    std::string why;
    auto fp = resolveFieldPath(mi.input, var.field_path, why);
    if (fp.empty()) return fail("path variable '" + var.field_path + "': " + why);
    if (!bindableField(fp.back()) || fp.back()->is_repeated()) {
      return fail("path variable '" + var.field_path + "' must name a singular scalar field");
    }
    b.variable_fields.push_back(std::move(fp));
  }
  if (body == "*") {
    b.body = Binding::Body::kAll;
  } else if (!body.empty()) {
    b.body = Binding::Body::kField;
    b.body_field = mi.input->FindFieldByName(std::string(body));
    if (!b.body_field) {
      return fail("body field '" + std::string(body) + "' is not a field of " +
                  mi.input->full_name());
    }
  }
  if (!response_body.empty()) {
    b.response_body = mi.output->FindFieldByName(std::string(response_body));
    if (!b.response_body || b.response_body->type() != pb::FieldDescriptor::TYPE_MESSAGE ||
        b.response_body->is_map()) {
      return fail("response_body '" + std::string(response_body) +
                  "' must name a message field of the response");
    }
    b.response_body_url = url(b.response_body->message_type());
  }
  bindings_.push_back(std::move(b));
  return {};
}

const Binding* Transcoder::match(std::string_view method, std::string_view path,
                                 std::vector<Capture>& captures) const {
  for (const auto& b : bindings_) {
    if (b.http_method == method && matchPath(b.path, path, captures)) return &b;
  }
  return nullptr;
}

Result<std::string> Transcoder::buildRequest(const Binding& b, const std::vector<Capture>& captures,
                                             std::string_view query, std::string_view body) const {
  const MethodInfo& mi = methods_[b.method];
  std::string out;
  if (b.body != Binding::Body::kNone && !blank(body)) {
    std::string json;
    if (b.body == Binding::Body::kField) {
      // The body is the value of one field: parse it as {"field": <body>} of the request type.
      json.reserve(body.size() + b.body_field->name().size() + 8);
      json.append("{\"").append(b.body_field->name()).append("\":").append(body).append("}");
      body = json;
    }
    auto st =
        pb::util::JsonToBinaryString(resolver_.get(), mi.input_url,
                                     pb::StringPiece(body.data(), body.size()), &out, opts_.parse);
    if (!st.ok()) {
      std::string why(st.message());
      why.resize(std::min(why.find('\n'), why.size()));  // drop the parser's context lines
      return clientError("invalid JSON body: " + why);
    }
    if (b.body == Binding::Body::kField && !onlyField(out, b.body_field)) {
      // `1, "n": 5` would otherwise set fields the rule does not bind to the body.
      return clientError("invalid JSON body: not a single JSON value");
    }
  }
  // Query parameters bind fields the body does not cover (none when the body is "*").
  if (b.body != Binding::Body::kAll && !query.empty()) {
    std::string key;
    std::string value;
    size_t start = 0;
    while (start <= query.size()) {
      size_t amp = query.find('&', start);
      if (amp == std::string_view::npos) amp = query.size();
      std::string_view pair = query.substr(start, amp - start);
      start = amp + 1;
      if (pair.empty()) continue;
      size_t eq = pair.find('=');
      std::string_view raw_value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
      if (!percentDecode(pair.substr(0, eq), key, true, false) ||
          !percentDecode(raw_value, value, true, false)) {
        return clientError("malformed percent-encoding in the query string");
      }
      std::string why;
      auto fp = resolveFieldPath(mi.input, key, why);
      if (fp.empty() || !bindableField(fp.back())) {
        if (opts_.ignore_unknown_query_parameters) continue;
        if (!fp.empty()) why = "it names a message field";
        return clientError("query parameter '" + key + "': " + why);
      }
      if (auto st = appendFieldValue(fp, value, out); !st.ok()) {
        return clientError("query parameter '" + key + "': " + st.error().message);
      }
    }
  }
  for (size_t i = 0; i < captures.size() && i < b.variable_fields.size(); ++i) {
    if (auto st = appendFieldValue(b.variable_fields[i], captures[i].value, out); !st.ok()) {
      return clientError("path: " + st.error().message);
    }
  }
  return out;
}

Result<std::string> Transcoder::responseJson(const Binding& b, std::string_view message) const {
  const MethodInfo& mi = methods_[b.method];
  std::string json;
  auto convert = [&](const std::string& type_url, std::string_view bytes) -> Status {
    std::string one;
    auto st = pb::util::BinaryToJsonString(resolver_.get(), type_url, std::string(bytes), &one,
                                           opts_.print);
    if (!st.ok()) {
      return Error::make(ErrorCode::kProtocol, ErrorSource::kUpstream,
                         "response message: " + std::string(st.message()));
    }
    appendValidUtf8(json, one);
    return {};
  };
  if (!b.response_body) {
    if (auto st = convert(mi.output_url, message); !st.ok()) return st.error();
    return json;
  }
  // Only the named field: its occurrences, merged (singular) or listed (repeated).
  const auto number = static_cast<uint32_t>(b.response_body->number());
  const bool repeated = b.response_body->is_repeated();
  std::string merged;
  size_t count = 0;
  WireReader r(message);
  WireReader::Field f;
  if (repeated) json.push_back('[');
  while (r.next(f)) {
    if (f.number != number || f.wire_type != 2) continue;
    if (!repeated) {
      merged.append(f.bytes);
      continue;
    }
    if (count++ > 0) json.push_back(',');
    if (auto st = convert(b.response_body_url, f.bytes); !st.ok()) return st.error();
  }
  if (r.failed()) {
    return Error::make(ErrorCode::kProtocol, ErrorSource::kUpstream, "malformed response message");
  }
  if (repeated) {
    json.push_back(']');
  } else if (auto st = convert(b.response_body_url, merged); !st.ok()) {
    return st.error();
  }
  return json;
}

}  // namespace gatehouse::policies::grpc_transcode

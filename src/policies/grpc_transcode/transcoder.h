#pragma once
// The config half of grpc_transcode: a descriptor set (protoc --include_imports
// --descriptor_set_out) loaded into its own DescriptorPool, the google.api.http rules of the
// configured services compiled into bindings (HTTP method + path template -> gRPC method), and
// the JSON <-> protobuf conversions. Built once on the control thread; immutable afterwards and
// read by every worker (DescriptorPool lookups without a fallback database take no lock).
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/type_resolver.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "policies/grpc_transcode/path_template.h"

namespace gatehouse::policies::grpc_transcode {

enum class Unannotated { kError, kPost, kSkip };

struct TranscoderOptions {
  std::string descriptor_set;
  std::vector<std::string> services;
  Unannotated unannotated = Unannotated::kError;
  google::protobuf::util::JsonPrintOptions print;
  google::protobuf::util::JsonParseOptions parse;
  bool ignore_unknown_query_parameters = false;
};

struct MethodInfo {
  std::string grpc_path;  // "/pkg.Service/Method"
  std::string full_name;  // "pkg.Service.Method"
  std::string input_url;  // "type.googleapis.com/pkg.Request"
  std::string output_url;
  const google::protobuf::Descriptor* input = nullptr;
  const google::protobuf::Descriptor* output = nullptr;
  bool server_streaming = false;
};

using FieldPath = std::vector<const google::protobuf::FieldDescriptor*>;

struct Binding {
  enum class Body { kNone, kAll, kField };
  std::string http_method;
  std::string pattern;  // the template as written, for logs and errors
  PathTemplate path;
  size_t method = 0;  // index into Transcoder::methods()
  Body body = Body::kNone;
  const google::protobuf::FieldDescriptor* body_field = nullptr;
  const google::protobuf::FieldDescriptor* response_body = nullptr;  // null: the whole message
  std::string response_body_url;
  std::vector<FieldPath> variable_fields;  // one per path.variables entry
};

class Transcoder {
 public:
  // Errors name the option ("descriptor_set: ...", "services: ...").
  static Result<std::unique_ptr<const Transcoder>> load(const TranscoderOptions& opts);

  // The most specific binding for the request, with its path captures; null when none.
  const Binding* match(std::string_view method, std::string_view path,
                       std::vector<Capture>& captures) const;
  const MethodInfo& method(const Binding& b) const { return methods_[b.method]; }
  const std::vector<Binding>& bindings() const { return bindings_; }

  // The request message in wire format: the JSON body per the binding's body rule, then the
  // query parameters, then the path variables (later ones win). Errors are the client's and
  // say what is wrong (they become a 400).
  Result<std::string> buildRequest(const Binding& b, const std::vector<Capture>& captures,
                                   std::string_view query, std::string_view body) const;
  // One response message as JSON (only the response_body field when the rule names one).
  Result<std::string> responseJson(const Binding& b, std::string_view message) const;

  Transcoder() = default;
  Transcoder(const Transcoder&) = delete;
  Transcoder& operator=(const Transcoder&) = delete;

 private:
  Status addRule(size_t method, std::string_view rule, bool nested);
  Status addBinding(size_t method, std::string http_method, std::string_view pattern,
                    std::string_view body, std::string_view response_body);

  TranscoderOptions opts_;
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
  std::unique_ptr<google::protobuf::util::TypeResolver> resolver_;
  std::vector<MethodInfo> methods_;
  std::vector<Binding> bindings_;
};

}  // namespace gatehouse::policies::grpc_transcode

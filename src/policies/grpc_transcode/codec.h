#pragma once
// Protobuf wire-format and gRPC framing helpers for transcoding. Request fields bound from the
// path and query are encoded straight to the wire format and appended to the body's encoding:
// protobuf merges concatenated messages (last scalar wins, sub-messages merge, repeated
// fields append), so no message object is built and no descriptor-pool lock is taken.
#include <google/protobuf/descriptor.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gatehouse::policies::grpc_transcode {

// Resolves "a.b.c" against `type` (proto names or JSON names): every element but the last is
// a singular message field. Empty on failure, with the reason in `why`.
std::vector<const google::protobuf::FieldDescriptor*> resolveFieldPath(
    const google::protobuf::Descriptor* type, std::string_view path, std::string& why);

// True when a path or query value can bind to this field: a scalar, an enum, a repeated scalar
// or a google.protobuf wrapper (Int32Value, StringValue, ...).
bool bindableField(const google::protobuf::FieldDescriptor* field);

// Appends `value` (text, as in a URL) for the field path in wire format. Errors name the field
// and say what was expected.
Status appendFieldValue(const std::vector<const google::protobuf::FieldDescriptor*>& path,
                        std::string_view value, std::string& out);

// A length-delimited field: tag, length, bytes.
void appendLengthDelimited(uint32_t number, std::string_view bytes, std::string& out);

// gRPC message framing: flag byte (0: not compressed), 4-byte big-endian length, message.
std::string grpcFrame(std::string_view message);
struct FrameView {
  bool compressed = false;
  std::string_view message;
  size_t size = 0;  // bytes the frame took from the input
};
// The first complete frame of `in`, or nullopt when more bytes are needed.
std::optional<FrameView> nextFrame(std::string_view in);

// A minimal reader for one message's top-level fields (length-delimited ones are exposed).
class WireReader {
 public:
  explicit WireReader(std::string_view in) : in_(in) {}
  struct Field {
    uint32_t number = 0;
    int wire_type = 0;
    std::string_view bytes;  // the payload of a length-delimited field
  };
  // False at the end of input or on malformed bytes (then failed() is true).
  bool next(Field& f);
  bool failed() const { return failed_; }

 private:
  bool varint(uint64_t& v);
  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

// gRPC status code -> HTTP status (google/rpc/code.proto's HTTP mapping).
int httpStatusForGrpc(int code);
// "NOT_FOUND" for 5; "UNKNOWN" for codes outside 0..16.
std::string_view grpcCodeName(int code);
// {"code":N,"message":"..."}: the google.rpc.Status shape. Invalid UTF-8 is replaced.
std::string errorJson(int code, std::string_view message);
// grpc-message is percent-encoded; malformed escapes are kept as they are.
std::string decodeGrpcMessage(std::string_view value);

}  // namespace gatehouse::policies::grpc_transcode

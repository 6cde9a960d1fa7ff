// gRPC-Web framing: the grpc-web-text body decoder, the trailer frame, gRPC message framing and
// the grpc-message escaping. The first byte picks how the rest is cut into pieces.
//   - Base64Decoder gives the same bytes (and the same verdict) however the body is split, and
//     decodes what base64Encode produced, padded segments concatenated and CRLF inserted;
//   - nextFrame walks length-prefixed frames: each lies inside the input, and grpcFrame of its
//     message rebuilds the same bytes;
//   - trailerFrame is 0x80, a big-endian length and "name:value\r\n" lines that read back to the
//     (lowercased) trailers;
//   - decodeGrpcMessage(encodeMessage(x)) == x, and the encoding is printable ASCII.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_util.h"
#include "http/headers.h"
#include "policies/grpc_transcode/codec.h"
#include "proxy/grpc.h"

namespace {

namespace grpc = gatehouse::proxy::grpc;
namespace gt = gatehouse::policies::grpc_transcode;

struct Decoded {
  bool ok = true;
  std::string bytes;
  bool finished = false;
};

Decoded decodeInPieces(std::string_view text, size_t piece) {
  grpc::Base64Decoder dec;
  Decoded d;
  if (piece == 0) piece = text.size() + 1;
  for (size_t from = 0; from < text.size() && d.ok; from += piece)
    d.ok = dec.feed(text.substr(from, piece), d.bytes);
  d.finished = dec.finished();
  return d;
}

void checkBase64(std::string_view in, size_t piece) {
  // Arbitrary text: splitting never changes the outcome.
  const Decoded whole = decodeInPieces(in, 0);
  const Decoded split = decodeInPieces(in, piece);
  FUZZ_CHECK(whole.ok == split.ok);
  if (whole.ok) FUZZ_CHECK(whole.bytes == split.bytes && whole.finished == split.finished);

  // Encoded segments (as a server flushes them), CRLF between: decode to the concatenation.
  std::string text;
  std::string want;
  for (size_t from = 0, k = 0; from < in.size(); from += piece + k, ++k) {
    const std::string_view seg = in.substr(from, piece + k);
    text += grpc::base64Encode(seg);
    if (k % 3 == 1) text += "\r\n";
    want += seg;
  }
  const Decoded round = decodeInPieces(text, piece + 1);
  FUZZ_CHECK(round.ok && round.finished && round.bytes == want);
}

size_t frameLength(std::string_view in) {
  auto b = [&](size_t i) { return static_cast<size_t>(static_cast<unsigned char>(in[i])); };
  return b(1) << 24 | b(2) << 16 | b(3) << 8 | b(4);
}

void checkMessageFields(std::string_view message) {
  gt::WireReader reader(message);
  gt::WireReader::Field field;
  for (int guard = 0; guard < 1 << 16 && reader.next(field); ++guard) {
    FUZZ_CHECK(field.number > 0 && gatehouse::fuzz::within(field.bytes, message));
  }
}

void checkFrames(std::string_view in) {
  std::string_view rest = in;
  for (int guard = 0; guard < 1 << 16; ++guard) {
    const std::optional<gt::FrameView> f = gt::nextFrame(rest);
    if (!f) {
      FUZZ_CHECK(rest.size() < 5 || rest.size() - 5 < frameLength(rest));
      return;
    }
    FUZZ_CHECK(f->size == 5 + f->message.size() && f->size <= rest.size());
    FUZZ_CHECK(f->message.size() == frameLength(rest));
    FUZZ_CHECK(gatehouse::fuzz::within(f->message, rest));
    FUZZ_CHECK(f->compressed == ((static_cast<unsigned char>(rest[0]) & 1) != 0));
    if (rest[0] == 0) FUZZ_CHECK(gt::grpcFrame(f->message) == rest.substr(0, f->size));
    checkMessageFields(f->message);
    rest.remove_prefix(f->size);
  }
}

bool isTokenChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.';
}

// Trailers as an upstream could send them (HTTP/2 forbids CR, LF and NUL in values): each
// line of the input is "name:value".
void checkTrailerFrame(std::string_view in) {
  gatehouse::http::HeaderMap trailers;
  std::vector<std::string> want;
  size_t start = 0;
  for (int guard = 0; guard < 64 && start < in.size(); ++guard) {
    size_t end = in.find('\n', start);
    if (end == std::string_view::npos) end = in.size();
    const std::string_view line = in.substr(start, end - start);
    start = end + 1;
    const size_t colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = line.substr(colon + 1);
    bool valid = true;
    for (const char c : name)
      valid = valid && isTokenChar(c);
    for (const char c : value)
      valid = valid && c != '\r' && c != '\n' && c != '\0';
    if (!valid) continue;
    trailers.add(name, value);
    std::string lower;
    for (const char c : name)
      lower.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
    want.push_back(lower + ":" + std::string(value));
  }
  const std::string frame = grpc::trailerFrame(trailers);
  FUZZ_CHECK(frame.size() >= 5 && static_cast<unsigned char>(frame[0]) == 0x80);
  const size_t n = (static_cast<size_t>(static_cast<unsigned char>(frame[1])) << 24) |
                   (static_cast<size_t>(static_cast<unsigned char>(frame[2])) << 16) |
                   (static_cast<size_t>(static_cast<unsigned char>(frame[3])) << 8) |
                   static_cast<unsigned char>(frame[4]);
  FUZZ_CHECK(n == frame.size() - 5);
  std::vector<std::string> got;
  std::string_view block = std::string_view(frame).substr(5);
  while (!block.empty()) {
    const size_t crlf = block.find("\r\n");
    FUZZ_CHECK(crlf != std::string_view::npos);
    got.emplace_back(block.substr(0, crlf));
    block.remove_prefix(crlf + 2);
  }
  FUZZ_CHECK(got == want);
}

void checkMessage(std::string_view in) {
  const std::string encoded = grpc::encodeMessage(in);
  for (const char c : encoded)
    FUZZ_CHECK(c >= 0x20 && c <= 0x7e);
  FUZZ_CHECK(gt::decodeGrpcMessage(encoded) == in);
  (void)gt::decodeGrpcMessage(in);  // any header value: must not crash
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t piece = 1 + data[0] % 16;
  const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
  checkBase64(in, piece);
  checkFrames(in);
  checkTrailerFrame(in);
  checkMessage(in);
  (void)grpc::parseTimeout(in);
  (void)grpc::upstreamContentType(in);
  return 0;
}

// brotli through libbrotlienc's streaming API: BROTLI_OPERATION_FLUSH after every write, so a
// client can decode each chunk as it comes, and BROTLI_OPERATION_FINISH at the end. The decoder
// (libbrotlidec) stops at the output bound, and refuses bytes after the end of the stream.
#include <brotli/decode.h>
#include <brotli/encode.h>

#include "compress/codecs.h"

namespace gatehouse::compress::detail {
namespace {

constexpr size_t kStep = 16 * 1024;

class BrotliEncoder final : public Encoder {
 public:
  BrotliEncoder() = default;
  ~BrotliEncoder() override {
    if (state_) BrotliEncoderDestroyInstance(state_);
  }
  BrotliEncoder(const BrotliEncoder&) = delete;
  BrotliEncoder& operator=(const BrotliEncoder&) = delete;

  Status init(int level) {
    state_ = BrotliEncoderCreateInstance(nullptr, nullptr, nullptr);
    if (!state_ ||
        !BrotliEncoderSetParameter(state_, BROTLI_PARAM_QUALITY, static_cast<uint32_t>(level))) {
      return codecError(ErrorCode::kIo, "brotli: cannot create an encoder");
    }
    // The default 4 MiB window is for whole files; a 1 MiB one bounds the memory each
    // response in flight holds, at the same ratio for bodies under a megabyte.
    BrotliEncoderSetParameter(state_, BROTLI_PARAM_LGWIN, 20);
    return {};
  }
  Status write(std::string_view in, std::string& out) override {
    if (in.empty()) return {};
    return run(in, out, BROTLI_OPERATION_FLUSH);
  }
  Status finish(std::string& out) override { return run({}, out, BROTLI_OPERATION_FINISH); }

 private:
  Status run(std::string_view in, std::string& out, BrotliEncoderOperation op) {
    size_t avail_in = in.size();
    const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    size_t used = out.size();
    for (;;) {
      size_t avail_out = kStep;
      auto* next_out = reinterpret_cast<uint8_t*>(spareRoom(out, used, kStep));
      const bool ok = BrotliEncoderCompressStream(state_, op, &avail_in, &next_in, &avail_out,
                                                  &next_out, nullptr);
      used += kStep - avail_out;
      if (!ok) {
        out.resize(used);
        return codecError(ErrorCode::kIo, "brotli: compression failed");
      }
      const bool settled = op == BROTLI_OPERATION_FINISH ? BrotliEncoderIsFinished(state_)
                                                         : !BrotliEncoderHasMoreOutput(state_);
      if (settled && avail_in == 0) break;
    }
    out.resize(used);
    return {};
  }

  BrotliEncoderState* state_ = nullptr;
};

class BrotliDecoder final : public Decoder {
 public:
  explicit BrotliDecoder(uint64_t max_output) : max_output_(max_output) {}
  ~BrotliDecoder() override {
    if (state_) BrotliDecoderDestroyInstance(state_);
  }
  BrotliDecoder(const BrotliDecoder&) = delete;
  BrotliDecoder& operator=(const BrotliDecoder&) = delete;

  Status init() {
    state_ = BrotliDecoderCreateInstance(nullptr, nullptr, nullptr);
    if (!state_) return codecError(ErrorCode::kIo, "brotli: cannot create a decoder");
    return {};
  }

  Status write(std::string_view in, std::string& out) override {
    size_t avail_in = in.size();
    const auto* next_in = reinterpret_cast<const uint8_t*>(in.data());
    size_t used = out.size();
    while (avail_in > 0 || BrotliDecoderHasMoreOutput(state_)) {
      if (ended_) return corruptBody(out, used);  // bytes after the end of the stream
      const size_t room = decodeRoom(max_output_, total_, kStep);
      size_t avail_out = room;
      auto* next_out = reinterpret_cast<uint8_t*>(spareRoom(out, used, room));
      const BrotliDecoderResult rc = BrotliDecoderDecompressStream(state_, &avail_in, &next_in,
                                                                   &avail_out, &next_out, nullptr);
      const size_t produced = room - avail_out;
      used += produced;
      total_ += produced;
      if (total_ > max_output_) {
        return bodyOverLimit(out, used);
      }
      if (rc == BROTLI_DECODER_RESULT_ERROR) return corruptBody(out, used);
      if (rc == BROTLI_DECODER_RESULT_SUCCESS) ended_ = true;
      if (rc == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT) break;  // consumed everything
    }
    out.resize(used);
    return {};
  }

  Status finish() override { return endedOrTruncated(ended_); }

 private:
  BrotliDecoderState* state_ = nullptr;
  uint64_t max_output_;
  uint64_t total_ = 0;
  bool ended_ = false;
};

}  // namespace

Result<std::unique_ptr<Decoder>> makeBrotliDecoder(uint64_t max_output) {
  return initialized<Decoder>(std::make_unique<BrotliDecoder>(max_output));
}

Result<std::unique_ptr<Encoder>> makeBrotliEncoder(int level) {
  return initialized<Encoder>(std::make_unique<BrotliEncoder>(), level);
}

}  // namespace gatehouse::compress::detail

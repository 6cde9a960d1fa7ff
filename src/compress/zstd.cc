// zstd through ZSTD_compressStream2: ZSTD_e_flush after every write (each chunk decodable as
// it comes), ZSTD_e_end at the end. The frame carries a checksum. The decoder takes concatenated
// frames, stops at the output bound and refuses windows over 8 MiB (2^23).
#include <zstd.h>

#include "compress/codecs.h"

namespace gatehouse::compress::detail {
namespace {

class ZstdEncoder final : public Encoder {
 public:
  ZstdEncoder() = default;
  ~ZstdEncoder() override { ZSTD_freeCCtx(cctx_); }  // accepts null
  ZstdEncoder(const ZstdEncoder&) = delete;
  ZstdEncoder& operator=(const ZstdEncoder&) = delete;

  Status init(int level) {
    cctx_ = ZSTD_createCCtx();
    if (!cctx_ || ZSTD_isError(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1))) {
      return codecError(ErrorCode::kIo, "zstd: cannot create an encoder");
    }
    return {};
  }
  Status write(std::string_view in, std::string& out) override {
    if (in.empty()) return {};
    return run(in, out, ZSTD_e_flush);
  }
  Status finish(std::string& out) override { return run({}, out, ZSTD_e_end); }

 private:
  Status run(std::string_view in, std::string& out, ZSTD_EndDirective mode) {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    size_t used = out.size();
    const size_t step = ZSTD_CStreamOutSize();
    for (;;) {
      ZSTD_outBuffer output{spareRoom(out, used, step), step, 0};
      const size_t remaining = ZSTD_compressStream2(cctx_, &output, &input, mode);
      used += output.pos;
      if (ZSTD_isError(remaining)) {
        out.resize(used);
        return codecError(ErrorCode::kIo, "zstd: compression failed");
      }
      if (remaining == 0 && input.pos == input.size) break;  // flushed (or ended) completely
    }
    out.resize(used);
    return {};
  }

  ZSTD_CCtx* cctx_ = nullptr;
};

constexpr int kMaxWindowLog = 23;

class ZstdDecoder final : public Decoder {
 public:
  explicit ZstdDecoder(uint64_t max_output) : max_output_(max_output) {}
  ~ZstdDecoder() override { ZSTD_freeDCtx(dctx_); }  // accepts null
  ZstdDecoder(const ZstdDecoder&) = delete;
  ZstdDecoder& operator=(const ZstdDecoder&) = delete;

  Status init() {
    dctx_ = ZSTD_createDCtx();
    if (!dctx_ || ZSTD_isError(ZSTD_DCtx_setParameter(dctx_, ZSTD_d_windowLogMax, kMaxWindowLog))) {
      return codecError(ErrorCode::kIo, "zstd: cannot create a decoder");
    }
    return {};
  }

  Status write(std::string_view in, std::string& out) override {
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    size_t used = out.size();
    const size_t step = ZSTD_DStreamOutSize();
    // Until the input is consumed and the decoder holds nothing more (a full output buffer may
    // leave decoded bytes inside it).
    bool more = input.pos < input.size;
    while (more) {
      const size_t room = decodeRoom(max_output_, total_, step);
      ZSTD_outBuffer output{spareRoom(out, used, room), room, 0};
      const size_t rc = ZSTD_decompressStream(dctx_, &output, &input);
      used += output.pos;
      total_ += output.pos;
      if (total_ > max_output_) {
        return bodyOverLimit(out, used);
      }
      if (ZSTD_isError(rc)) {
        return corruptBody(out, used);
      }
      frame_done_ = rc == 0;
      more = input.pos < input.size || output.pos == output.size;
    }
    out.resize(used);
    return {};
  }

  Status finish() override { return endedOrTruncated(frame_done_); }

 private:
  ZSTD_DCtx* dctx_ = nullptr;
  uint64_t max_output_;
  uint64_t total_ = 0;
  bool frame_done_ = false;  // the last frame ended and everything decoded was handed out
};

}  // namespace

Result<std::unique_ptr<Decoder>> makeZstdDecoder(uint64_t max_output) {
  return initialized<Decoder>(std::make_unique<ZstdDecoder>(max_output));
}

Result<std::unique_ptr<Encoder>> makeZstdEncoder(int level) {
  return initialized<Encoder>(std::make_unique<ZstdEncoder>(), level);
}

}  // namespace gatehouse::compress::detail

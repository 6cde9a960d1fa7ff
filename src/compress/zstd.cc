// zstd through ZSTD_compressStream2: ZSTD_e_flush after every write (each chunk decodable as
// it comes), ZSTD_e_end at the end. The frame carries a checksum.
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

}  // namespace

Result<std::unique_ptr<Encoder>> makeZstdEncoder(int level) {
  return initialized<Encoder>(std::make_unique<ZstdEncoder>(), level);
}

}  // namespace gatehouse::compress::detail

// gzip through zlib: the encoder writes the gzip wrapper (RFC 1952) and flushes with
// Z_SYNC_FLUSH after every write; the decoder reads gzip or the zlib format ("deflate").
#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "compress/codecs.h"

namespace gatehouse::compress::detail {
namespace {

constexpr int kGzipWindow = 15 + 16;  // 32 KiB window, gzip wrapper
constexpr size_t kStep = 16 * 1024;

class GzipEncoder final : public Encoder {
 public:
  GzipEncoder() { std::memset(&zs_, 0, sizeof zs_); }
  ~GzipEncoder() override {
    if (ready_) deflateEnd(&zs_);
  }
  GzipEncoder(const GzipEncoder&) = delete;
  GzipEncoder& operator=(const GzipEncoder&) = delete;

  Status init(int level) {
    if (deflateInit2(&zs_, level, Z_DEFLATED, kGzipWindow, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return codecError(ErrorCode::kIo, "gzip: deflateInit2 failed");
    }
    ready_ = true;
    return {};
  }
  Status write(std::string_view in, std::string& out) override {
    if (in.empty()) return {};  // a sync flush of nothing would still cost 5 bytes
    return run(in, out, Z_SYNC_FLUSH);
  }
  Status finish(std::string& out) override { return run({}, out, Z_FINISH); }

 private:
  Status run(std::string_view in, std::string& out, int flush) {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    size_t used = out.size();
    for (;;) {
      const size_t room = std::max<size_t>(kStep, deflateBound(&zs_, zs_.avail_in) + 16);
      zs_.next_out = reinterpret_cast<Bytef*>(spareRoom(out, used, room));
      zs_.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&zs_, flush);
      used += room - zs_.avail_out;
      if (rc == Z_STREAM_ERROR) {
        out.resize(used);
        return codecError(ErrorCode::kIo, "gzip: deflate failed");
      }
      const bool done = flush == Z_FINISH ? rc == Z_STREAM_END : zs_.avail_out != 0;
      if (done && zs_.avail_in == 0) break;
    }
    out.resize(used);
    return {};
  }

  z_stream zs_;
  bool ready_ = false;
};

class ZlibDecoder final : public Decoder {
 public:
  explicit ZlibDecoder(uint64_t max_output) : max_output_(max_output) {
    std::memset(&zs_, 0, sizeof zs_);
  }
  ~ZlibDecoder() override {
    if (ready_) inflateEnd(&zs_);
  }
  ZlibDecoder(const ZlibDecoder&) = delete;
  ZlibDecoder& operator=(const ZlibDecoder&) = delete;

  Status init(DecodeCoding c) {
    gzip_ = c == DecodeCoding::kGzip;
    if (inflateInit2(&zs_, gzip_ ? kGzipWindow : 15) != Z_OK) {
      return codecError(ErrorCode::kIo, "inflateInit2 failed");
    }
    ready_ = true;
    return {};
  }

  Status write(std::string_view in, std::string& out) override {
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    size_t used = out.size();
    while (zs_.avail_in > 0) {
      if (ended_) {
        // Another gzip member follows (RFC 1952 §2.2); after a zlib stream nothing may.
        if (!gzip_ || inflateReset(&zs_) != Z_OK) return corruptBody(out, used);
        ended_ = false;
      }
      const size_t room = decodeRoom(max_output_, total_, kStep);
      zs_.next_out = reinterpret_cast<Bytef*>(spareRoom(out, used, room));
      zs_.avail_out = static_cast<uInt>(room);
      const int rc = inflate(&zs_, Z_NO_FLUSH);
      const size_t produced = room - zs_.avail_out;
      used += produced;
      total_ += produced;
      if (total_ > max_output_) {
        return bodyOverLimit(out, used);
      }
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && produced == 0 && zs_.avail_in == 0)) {
        return corruptBody(out, used);
      }
    }
    out.resize(used);
    return {};
  }

  Status finish() override { return endedOrTruncated(ended_); }

 private:
  z_stream zs_;
  uint64_t max_output_;
  uint64_t total_ = 0;
  bool ready_ = false;
  bool gzip_ = true;
  bool ended_ = false;
};

}  // namespace

Result<std::unique_ptr<Encoder>> makeGzipEncoder(int level) {
  return initialized<Encoder>(std::make_unique<GzipEncoder>(), level);
}

Result<std::unique_ptr<Decoder>> makeZlibDecoder(DecodeCoding c, uint64_t max_output) {
  return initialized<Decoder>(std::make_unique<ZlibDecoder>(max_output), c);
}

}  // namespace gatehouse::compress::detail

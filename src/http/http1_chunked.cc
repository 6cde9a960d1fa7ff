// ChunkedDecoder (RFC 9112 §7.1). A byte-driven state machine: every byte it is given is
// consumed (partial trailer lines are buffered), except that it stops after each data span and
// at the end of the trailer section, so splitting the input anywhere gives the same result.
#include <algorithm>
#include <cstring>

#include "http/http1_parser.h"
#include "http/http1_scan.h"

namespace gatehouse::http1 {

namespace {

constexpr size_t kMaxSizeDigits = 16;        // 64 bits; more digits is an overflow attempt
constexpr size_t kMaxExtensionBytes = 4096;  // per chunk-size line, after the digits

uint64_t hexValue(char c) {
  if (c >= '0' && c <= '9') return static_cast<uint64_t>(c - '0');
  return static_cast<uint64_t>(scan::toLower(c) - 'a' + 10);
}

}  // namespace

void ChunkedDecoder::reset(uint64_t max_body) {
  state_ = State::kSize;
  remaining_ = 0;
  announced_ = 0;
  max_body_ = max_body;
  size_digits_ = 0;
  ext_bytes_ = 0;
  trailer_bytes_ = 0;
  trailer_line_.clear();
  trailers_.clear();
  error_ = {};
}

ChunkedDecoder::Step ChunkedDecoder::fail(int status, std::string_view reason, ParseError& err) {
  state_ = State::kError;
  error_ = ParseError{status, reason};
  err = error_;
  return Step{ParseStatus::kError, 0, {}};
}

// Judges one complete trailer line (buffered with its CRLF) the way a header field is judged.
bool ChunkedDecoder::finishTrailerLine(ParseError& err) {
  const std::string_view line = trailer_line_;
  if (line.size() < 2 || line[line.size() - 2] != '\r') {
    fail(400, "bare lf in trailer section", err);
    return false;
  }
  const std::string_view content = line.substr(0, line.size() - 2);
  if (content.empty()) {
    state_ = State::kDone;
    trailer_line_.clear();
    return true;
  }
  if (scan::isOws(content.front())) {
    fail(400, "obs-fold in trailer section", err);
    return false;
  }
  std::string_view name;
  std::string_view value;
  if (!scan::splitFieldLine(content, name, value)) {
    fail(400, "invalid trailer field", err);
    return false;
  }
  trailers_.add(name, value);
  trailer_line_.clear();
  return true;
}

ChunkedDecoder::Step ChunkedDecoder::feed(std::string_view in, ParseError& err) {
  if (state_ == State::kError) {
    err = error_;
    return Step{ParseStatus::kError, 0, {}};
  }
  if (state_ == State::kDone) return Step{ParseStatus::kComplete, 0, {}};

  const char* p = in.data();
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    const char c = p[i];
    switch (state_) {
      case State::kSize:
        if (scan::is(c, scan::kHex)) {
          if (++size_digits_ > kMaxSizeDigits) return fail(400, "chunk size too long", err);
          remaining_ = (remaining_ << 4) | hexValue(c);
          if (max_body_ > 0 && remaining_ > max_body_ - announced_) {
            return fail(413, "chunked body larger than max_body_bytes", err);
          }
        } else if (size_digits_ == 0) {
          return fail(400, "invalid chunk size", err);
        } else if (c == '\r') {
          state_ = State::kSizeLf;
        } else if (c == ';') {
          state_ = State::kSizeExt;
        } else if (scan::isOws(c)) {
          state_ = State::kSizeWs;
        } else {
          return fail(400, "invalid chunk size", err);
        }
        ++i;
        break;

      case State::kSizeWs:
        // BWS is only legal before ';': "5 \r\n" is read as 5 by some parsers and refused by
        // others, a disagreement that smuggling builds on.
        if (++ext_bytes_ > kMaxExtensionBytes) return fail(400, "chunk extension too long", err);
        if (c == ';') {
          state_ = State::kSizeExt;
        } else if (c == '\r') {
          return fail(400, "whitespace after chunk size", err);
        } else if (!scan::isOws(c)) {
          return fail(400, "invalid chunk extension", err);
        }
        ++i;
        break;

      case State::kSizeExt: {
        // Validated loosely: any field-value byte. CR ends the line; a bare LF or other CTL
        // (the lever of chunk-extension smuggling) is an error.
        const size_t limit = std::min(n, i + (kMaxExtensionBytes + 1 - ext_bytes_));
        const size_t j = scan::scanFieldValue(p, i, limit);
        ext_bytes_ += j - i;
        i = j;
        if (ext_bytes_ > kMaxExtensionBytes) return fail(400, "chunk extension too long", err);
        if (i == n) break;
        if (p[i] != '\r') return fail(400, "invalid chunk extension", err);
        state_ = State::kSizeLf;
        ++i;
        break;
      }

      case State::kSizeLf:
        if (c != '\n') return fail(400, "bare cr in chunk size line", err);
        ++i;
        size_digits_ = 0;
        ext_bytes_ = 0;
        announced_ += remaining_;
        state_ = remaining_ == 0 ? State::kTrailer : State::kData;
        break;

      case State::kData: {
        const size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, n - i));
        remaining_ -= take;
        if (remaining_ == 0) state_ = State::kDataCr;
        return Step{ParseStatus::kIncomplete, i + take, in.substr(i, take)};
      }

      case State::kDataCr:
        if (c != '\r') return fail(400, "missing crlf after chunk data", err);
        state_ = State::kDataLf;
        ++i;
        break;

      case State::kDataLf:
        if (c != '\n') return fail(400, "missing crlf after chunk data", err);
        state_ = State::kSize;
        ++i;
        break;

      case State::kTrailer: {
        const void* lf = std::memchr(p + i, '\n', n - i);
        const size_t end = lf ? static_cast<size_t>(static_cast<const char*>(lf) - p) + 1 : n;
        trailer_bytes_ += end - i;
        if (trailer_bytes_ > max_trailer_bytes_) return fail(431, "trailer section too large", err);
        trailer_line_.append(p + i, end - i);
        i = end;
        if (lf == nullptr) break;
        if (!finishTrailerLine(err)) return Step{ParseStatus::kError, 0, {}};
        if (state_ == State::kDone) return Step{ParseStatus::kComplete, i, {}};
        break;
      }

      case State::kDone:
      case State::kError:
        // Unreachable: both return before the loop, and the loop returns on entering them.
        return Step{ParseStatus::kError, 0, {}};
    }
  }
  return Step{ParseStatus::kIncomplete, i, {}};
}

}  // namespace gatehouse::http1

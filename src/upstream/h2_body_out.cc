#include "upstream/h2_body_out.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace gatehouse::upstream {

void H2BodyOut::clear() {
  data.clear();
  pos = 0;
  end = false;
  deferred = false;
  trailers.clear();
}

void H2BodyOut::append(std::string_view bytes) {
  if (pos > 0 && pos == data.size()) {
    data.clear();
    pos = 0;
  }
  data.append(bytes);
}

void H2BodyOut::finish(const http::HeaderMap* trailer_fields) {
  if (trailer_fields) {
    for (const auto& f : trailer_fields->fields()) {
      std::string name(f.name);
      for (auto& c : name)
        c = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
      trailers.add(name, f.value);
    }
  }
  end = true;
}

void H2BodyOut::resume(nghttp2_session* session, int32_t id) {
  if (!deferred) return;
  deferred = false;
  nghttp2_session_resume_data(session, id);
}

ssize_t H2BodyOut::read(nghttp2_session* session, int32_t id, uint8_t* buf, size_t length,
                        uint32_t* data_flags) {
  const size_t avail = pending();
  if (avail == 0) {
    if (!end) {
      deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (trailers.size() > 0) {
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      std::vector<nghttp2_nv> nva;
      nva.reserve(trailers.size());
      for (const auto& f : trailers.fields()) {
        nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(f.name.data())),
                       reinterpret_cast<uint8_t*>(const_cast<char*>(f.value.data())), f.name.size(),
                       f.value.size(), NGHTTP2_NV_FLAG_NONE});
      }
      nghttp2_submit_trailer(session, id, nva.data(), nva.size());
    }
    return 0;
  }
  const size_t n = std::min(avail, length);
  std::memcpy(buf, data.data() + pos, n);
  pos += n;
  if (pos == data.size()) {
    data.clear();
    pos = 0;
  }
  if (pos == data.size() && end && trailers.size() == 0) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  return static_cast<ssize_t>(n);
}

}  // namespace gatehouse::upstream

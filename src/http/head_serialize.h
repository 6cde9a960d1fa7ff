#pragma once
// Writing HTTP/1 field lines into a head buffer (both directions of the proxy).
#include <cstring>
#include <string>

#include "http/headers.h"

namespace gatehouse::http {

// Appends "name: value\r\n" for every field. One size computation and one resize, then plain
// copies: four std::string appends per field (each with its own capacity check) cost about
// twice as much, and this runs for every request and every response.
inline void appendFieldLines(std::string& out, const HeaderMap& h) {
  size_t n = 0;
  for (const auto& f : h.fields())
    n += f.name.size() + f.value.size() + 4;
  const size_t at = out.size();
  out.resize(at + n);
  char* p = out.data() + at;
  for (const auto& f : h.fields()) {
    if (!f.name.empty()) std::memcpy(p, f.name.data(), f.name.size());
    p += f.name.size();
    *p++ = ':';
    *p++ = ' ';
    if (!f.value.empty()) std::memcpy(p, f.value.data(), f.value.size());
    p += f.value.size();
    *p++ = '\r';
    *p++ = '\n';
  }
}

}  // namespace gatehouse::http

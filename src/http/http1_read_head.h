#pragma once
// Reading one HTTP/1 request head off a connection, for the small servers beside the proxy
// (the admin listener, `gatehouse demo`'s echo upstreams). The proxy's session reads its own
// heads: it answers bad ones with a status and counts them. Header-only: the fuzz build takes
// http/*.cc but no coroutines.
#include <cstddef>

#include "core/buffer.h"
#include "http/http1_parser.h"
#include "net/tcp.h"
#include "runtime/task.h"

namespace gatehouse::http1 {

// Reads from `s` into `in` until `head` parses from its front (nothing is consumed). Each read
// makes room for `read_size` bytes and may wait `idle` for them. False on a malformed head, a
// read error or timeout, or the end of the stream: the caller closes the connection.
inline runtime::Task<bool> readRequestHead(net::TcpStream& s, Buffer& in, const ParseLimits& limits,
                                           RequestHead& head, size_t read_size,
                                           runtime::Duration idle) {
  for (;;) {
    ParseError err;
    const ParseStatus st =
        in.empty() ? ParseStatus::kIncomplete : parseRequestHead(in.readable(), limits, head, err);
    if (st == ParseStatus::kComplete) co_return true;
    if (st == ParseStatus::kError) co_return false;
    in.reserve(read_size);
    auto n = co_await s.read(in.writePtr(), in.writable(), s.loop().now() + idle);
    if (!n.ok() || *n == 0) co_return false;
    in.commit(*n);
  }
}

}  // namespace gatehouse::http1

#pragma once
// A per-thread allocator for nghttp2 sessions. nghttp2 allocates a few small objects for each
// stream (stream state, header buffers, outbound frames): size-classed free lists on the
// worker's thread serve them without glibc's malloc locking and bookkeeping. A session must
// be created and destroyed on one thread (true for ours: a connection stays on its worker).
#include <nghttp2/nghttp2.h>

namespace gatehouse::http {

// The allocator to pass to nghttp2_session_{server,client}_new3; null (nghttp2's default) in
// AddressSanitizer builds, so that ASan sees every nghttp2 object.
nghttp2_mem* nghttp2Allocator();

}  // namespace gatehouse::http

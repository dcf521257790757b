#pragma once

#include <nghttp2/nghttp2.h>

namespace blitz::http2 {

/// The allocator nghttp2 sessions use: per-thread free lists for its small per-stream and
/// per-header blocks, malloc for the rest.
///
/// Thread: any (each thread has its own lists; a block may be freed on another thread). Lifetime:
/// static.
nghttp2_mem* session_memory() noexcept;

}  // namespace blitz::http2

#pragma once

#include <cstddef>

namespace blitz::http2 {

/// Memory a codec needs only while one call runs (a header block being encoded, Huffman
/// output handed to a sink): one buffer per thread serves every connection and grows to the
/// largest need seen. Each use keeps its own thread_local instance.
///
/// Trivially destructible on purpose: a thread_local with a destructor is reached through a
/// guard variable, which in a shared library costs a __tls_get_addr call on every access. The
/// buffer is freed at the thread's end by an owner that only grow() touches.
///
/// Thread: one per thread. Lifetime: the thread's.
class Scratch {
public:
    /// Room for `n` bytes; whatever the buffer held before is lost.
    char* reserve(std::size_t n) { return n <= cap_ ? buf_ : grow(n); }

private:
    char* grow(std::size_t n);

    char* buf_ = nullptr;
    std::size_t cap_ = 0;
};

}  // namespace blitz::http2

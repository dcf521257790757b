#pragma once

#include <algorithm>
#include <cstddef>
#include <memory>

namespace blitz::http2 {

/// Memory a codec needs only while one call runs (a header block being encoded, Huffman
/// output handed to a sink): one buffer per thread serves every connection and grows to the
/// largest need seen. Each use keeps its own thread_local instance.
///
/// Thread: one per thread. Lifetime: the thread's.
class Scratch {
public:
    /// Room for `n` bytes; whatever the buffer held before is lost.
    char* reserve(std::size_t n) {
        if (n > cap_) {
            cap_ = std::max({n, cap_ * 2, std::size_t{256}});
            buf_ = std::make_unique_for_overwrite<char[]>(cap_);
        }
        return buf_.get();
    }

private:
    std::unique_ptr<char[]> buf_;
    std::size_t cap_ = 0;
};

}  // namespace blitz::http2

#include "tls/output.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace blitz::tls {

namespace {
constexpr std::size_t kPoolChunks = 2;
}  // namespace

bool OutputQueue::push(bool from_pool) noexcept {
    const std::size_t bytes = source_->buffer_bytes();
    Chunk c;
    c.cap = static_cast<std::uint32_t>(bytes);
    c.pooled = from_pool;
    if (from_pool) {
        c.data = pooled_ < kPoolChunks ? source_->take_buffer() : nullptr;
    } else {
        c.data = static_cast<char*>(std::malloc(bytes));
    }
    if (c.data == nullptr) {
        return false;
    }
    // The vector keeps its capacity across clear(): after the first connection on this
    // session object, pushing does not allocate.
    if (chunks_.capacity() == 0) {
        chunks_.reserve(4);
    }
    chunks_.push_back(c);
    pooled_ += c.pooled ? 1 : 0;
    return true;
}

void OutputQueue::release(Chunk& c) noexcept {
    if (c.pooled) {
        source_->give_buffer(c.data);
        --pooled_;
    } else {
        std::free(c.data);
    }
    c.data = nullptr;
}

bool OutputQueue::append(const char* data, std::size_t len) noexcept {
    while (len > 0) {
        if (chunks_.empty() || chunks_.back().tail == chunks_.back().cap) {
            // A pool buffer while fewer than two are held and nothing has spilled yet (bytes
            // stay in order), else the heap.
            const bool spilled = !chunks_.empty() && !chunks_.back().pooled;
            const bool pooled = !spilled && push(true);
            if (!pooled && !push(false)) {
                return false;
            }
        }
        Chunk& c = chunks_.back();
        const std::size_t n = std::min<std::size_t>(len, c.cap - c.tail);
        std::memcpy(c.data + c.tail, data, n);
        c.tail += static_cast<std::uint32_t>(n);
        data += n;
        len -= n;
    }
    return true;
}

std::size_t OutputQueue::room(std::size_t wanted) noexcept {
    if (!chunks_.empty()) {
        const Chunk& c = chunks_.back();
        if (!c.pooled) {
            return 0;
        }
        const std::size_t left = c.cap - c.tail;
        if (left >= std::min(wanted, kMinRoom) || c.tail == 0 || pooled_ >= kPoolChunks) {
            return left;
        }
    }
    if (pooled_ >= kPoolChunks || !push(true)) {
        return 0;
    }
    const Chunk& c = chunks_.back();
    return c.cap - c.tail;
}

void OutputQueue::trim() noexcept {
    if (!chunks_.empty() && chunks_.back().tail == 0) {
        release(chunks_.back());
        chunks_.pop_back();
    }
}

std::string_view OutputQueue::front() const noexcept {
    if (chunks_.empty()) {
        return {};
    }
    const Chunk& c = chunks_.front();
    return {c.data + c.head, static_cast<std::size_t>(c.tail - c.head)};
}

void OutputQueue::consume(std::size_t n) noexcept {
    while (!chunks_.empty()) {
        Chunk& c = chunks_.front();
        const std::size_t step = std::min<std::size_t>(n, c.tail - c.head);
        c.head += static_cast<std::uint32_t>(step);
        n -= step;
        if (c.head != c.tail) {
            return;
        }
        release(c);
        chunks_.erase(chunks_.begin());
        if (n == 0) {
            return;
        }
    }
}

void OutputQueue::clear() noexcept {
    for (Chunk& c : chunks_) {
        release(c);
    }
    chunks_.clear();
}

}  // namespace blitz::tls

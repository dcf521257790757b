#pragma once

#include <cstdint>
#include <vector>

struct io_uring;
struct io_uring_buf_ring;

namespace blitz::io {

/// Receive buffers for one reactor. With io_uring they are a provided-buffer ring the kernel
/// picks from (multishot recv); with epoll the backend takes them itself. Buffers are added in
/// batches as connections need them, up to a maximum: memory follows active connections, and an
/// idle connection holds none.
///
/// Thread: reactor-local. Lifetime: owned by the backend; the ring is unregistered with it.
class BufferPool {
public:
    BufferPool(std::uint32_t buffer_bytes, std::uint32_t max_buffers) noexcept;
    BufferPool(const BufferPool&) = delete;
    BufferPool& operator=(const BufferPool&) = delete;
    ~BufferPool();

    /// Registers the pool as buffer group 0 of `ring`. Returns 0 or -errno.
    int attach_ring(io_uring* ring) noexcept;

    char* data(std::uint16_t bid) const noexcept {
        return chunks_[bid / kBatch] + static_cast<std::size_t>(bid % kBatch) * buffer_bytes_;
    }
    std::uint32_t buffer_bytes() const noexcept { return buffer_bytes_; }
    /// Gives a buffer back (to the ring, or to the free list).
    void release(std::uint16_t bid) noexcept;
    /// Takes a free buffer for user space: every buffer in epoll mode, decrypted input with
    /// io_uring (from a spare list beside the ring). -1 when none is free and the pool cannot grow.
    int take() noexcept;
    /// Adds a batch of buffers; false at the maximum or when memory is short.
    bool grow() noexcept;
    /// Publishes released buffers to the kernel (once per loop turn).
    void flush() noexcept;

    std::uint32_t total() const noexcept { return total_; }
    std::uint32_t in_use() const noexcept { return in_use_; }
    void note_taken_by_kernel() noexcept { ++in_use_; }

private:
    static constexpr std::uint32_t kBatch = 64;
    static constexpr std::uint32_t kSpareTarget = 16;

    bool grow_into(bool ring) noexcept;

    std::uint32_t buffer_bytes_;
    std::uint32_t max_buffers_;
    std::uint32_t total_ = 0;
    std::uint32_t in_use_ = 0;
    std::vector<char*> chunks_;
    std::vector<std::uint16_t> free_;  // epoll mode; with io_uring the spare list for take()
    std::uint32_t spare_target_ = 0;   // io_uring: releases refill free_ up to this
    io_uring* ring_ = nullptr;
    io_uring_buf_ring* br_ = nullptr;
    std::uint32_t ring_entries_ = 0;
    int pending_adds_ = 0;
};

}  // namespace blitz::io

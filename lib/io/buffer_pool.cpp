#include "io/buffer_pool.hpp"

#include <liburing.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>

namespace blitz::io {

BufferPool::BufferPool(std::uint32_t buffer_bytes, std::uint32_t max_buffers) noexcept
    : buffer_bytes_(buffer_bytes), max_buffers_(max_buffers < kBatch ? kBatch : max_buffers) {}

BufferPool::~BufferPool() {
    if (br_ != nullptr) {
        if (ring_ != nullptr) {
            io_uring_unregister_buf_ring(ring_, 0);
        }
        munmap(br_, ring_entries_ * sizeof(io_uring_buf));
    }
    for (char* c : chunks_) {
        munmap(c, static_cast<std::size_t>(kBatch) * buffer_bytes_);
    }
}

int BufferPool::attach_ring(io_uring* ring) noexcept {
    // The ring has room for every buffer the pool may ever hold (a power of two), so growth
    // only adds entries and never re-registers.
    std::uint32_t entries = 1;
    while (entries < max_buffers_) {
        entries <<= 1;
    }
    if (entries > 32768) {
        entries = 32768;
    }
    void* mem = mmap(nullptr, entries * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        return -errno;
    }
    br_ = static_cast<io_uring_buf_ring*>(mem);
    ring_entries_ = entries;
    max_buffers_ = std::min(max_buffers_, entries);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(br_);
    reg.ring_entries = entries;
    reg.bgid = 0;
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc != 0) {
        munmap(br_, entries * sizeof(io_uring_buf));
        br_ = nullptr;
        return rc;
    }
    ring_ = ring;
    io_uring_buf_ring_init(br_);
    // Buffers that existed before attaching go to the ring.
    for (std::uint16_t bid : free_) {
        io_uring_buf_ring_add(br_, data(bid), buffer_bytes_, bid, io_uring_buf_ring_mask(entries),
                              pending_adds_++);
    }
    free_.clear();
    flush();
    return 0;
}

bool BufferPool::grow() noexcept {
    return grow_into(br_ != nullptr);
}

bool BufferPool::grow_into(bool ring) noexcept {
    if (total_ + kBatch > max_buffers_ || total_ + kBatch > 65536) {
        return false;
    }
    void* mem = mmap(nullptr, static_cast<std::size_t>(kBatch) * buffer_bytes_,
                     PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) {
        return false;
    }
    chunks_.push_back(static_cast<char*>(mem));
    const std::uint32_t first = total_;
    total_ += kBatch;
    free_.reserve(total_);  // release() never allocates
    for (std::uint32_t i = 0; i < kBatch; ++i) {
        auto bid = static_cast<std::uint16_t>(first + i);
        if (ring) {
            io_uring_buf_ring_add(br_, data(bid), buffer_bytes_, bid,
                                  io_uring_buf_ring_mask(ring_entries_), pending_adds_++);
        } else {
            free_.push_back(bid);
        }
    }
    flush();
    return true;
}

void BufferPool::release(std::uint16_t bid) noexcept {
    --in_use_;
    if (br_ != nullptr && free_.size() >= spare_target_) {
        io_uring_buf_ring_add(br_, data(bid), buffer_bytes_, bid,
                              io_uring_buf_ring_mask(ring_entries_), pending_adds_++);
    } else {
        free_.push_back(bid);
    }
}

int BufferPool::take() noexcept {
    if (br_ != nullptr) {
        // Buffers taken by user space (decrypted TLS input) come from a small spare list kept
        // beside the ring, refilled by releases, so the kernel's share is not raided.
        spare_target_ = kSpareTarget;
    }
    if (free_.empty() && !grow_into(false)) {
        return -1;
    }
    std::uint16_t bid = free_.back();
    free_.pop_back();
    ++in_use_;
    return bid;
}

void BufferPool::flush() noexcept {
    if (br_ != nullptr && pending_adds_ > 0) {
        io_uring_buf_ring_advance(br_, pending_adds_);
        pending_adds_ = 0;
    }
}

}  // namespace blitz::io

#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace blitz::tls {

/// Where a session's output buffers come from (the reactor's pool), so that sending does not
/// allocate per response. Every buffer is `buffer_bytes()` long.
///
/// Thread: the reactor's. Lifetime: outlives every session that uses it.
class BufferSource {
public:
    virtual char* take_buffer() noexcept = 0;  ///< nullptr when memory is short
    virtual void give_buffer(char* buffer) noexcept = 0;
    virtual std::size_t buffer_bytes() const noexcept = 0;

protected:
    ~BufferSource() = default;
};

/// Ciphertext waiting to be sent, in buffers from a BufferSource.
///
/// A FIFO of chunks of `buffer_bytes()`. Bytes are appended after the end of the last chunk, so
/// what front() exposed (and the kernel may be reading) never moves. At most two chunks come
/// from the source: the front one, being sent, and one filling behind it. A library write that
/// does not fit there (a handshake flight larger than both, or the pool being empty) spills into
/// heap chunks, which are freed when sent. A drained chunk goes back at once, so an idle queue
/// holds no buffer.
///
/// Thread: one reactor. Lifetime: owned by its Session.
class OutputQueue {
public:
    explicit OutputQueue(BufferSource& source) noexcept : source_(&source) {}
    ~OutputQueue() { clear(); }
    OutputQueue(const OutputQueue&) = delete;
    OutputQueue& operator=(const OutputQueue&) = delete;

    /// Appends every byte (spilling if needed); false only when heap memory is short.
    bool append(const char* data, std::size_t len) noexcept;
    /// Free bytes in the chunk being filled, for application data. When that chunk has less
    /// than min(`wanted`, 2 KiB) left and fewer than two pool buffers are held, a new one is
    /// taken. 0 when both pool buffers are full or a spill is waiting.
    std::size_t room(std::size_t wanted) noexcept;
    /// Gives back a last chunk that room() took but nothing was written to.
    void trim() noexcept;

    std::string_view front() const noexcept;
    /// `n` bytes of front() were sent.
    void consume(std::size_t n) noexcept;
    bool empty() const noexcept { return front().empty(); }
    /// Drops everything and gives every buffer back.
    void clear() noexcept;
    /// Pool buffers held (0 when idle).
    std::size_t pooled() const noexcept { return pooled_; }

private:
    struct Chunk {
        char* data = nullptr;
        std::uint32_t head = 0;
        std::uint32_t tail = 0;
        std::uint32_t cap = 0;
        bool pooled = false;
    };
    static constexpr std::size_t kMinRoom = 2048;

    bool push(bool allow_pool) noexcept;
    void release(Chunk& c) noexcept;

    BufferSource* source_;
    std::vector<Chunk> chunks_;
    std::size_t pooled_ = 0;
};

}  // namespace blitz::tls

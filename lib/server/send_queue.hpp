#pragma once

#include <cstdint>
#include <cstring>

#include <sys/uio.h>

namespace blitz::server {

class ReactorImpl;

/// Bytes waiting to be written to one socket, in order: blocks the connection filled (heads,
/// local responses) and spans of receive buffers forwarded untouched (proxied bodies). Buffers
/// are reference-counted by the reactor, so a span keeps its receive buffer until written.
/// Copies into an empty queue go to a small area inside it first: an HTTP/2 connection's
/// SETTINGS, ACKs, WINDOW_UPDATEs and a small response's frames take no reactor block.
///
/// With `retain` on, written segments are kept (and still count as queued bytes) so the bytes
/// can be sent again on another connection (a retried request) until release_written().
///
/// Thread: its reactor's. Lifetime: owned by an exchange or connection; release_all() before
/// it goes.
class SendQueue {
public:
    /// Segments kept without a heap allocation; more grow the table (kept when the queue is
    /// pooled), so forwarded bytes are never copied because the table was full.
    static constexpr unsigned kInlineSegments = 8;
    static constexpr unsigned kMaxIov = 16;
    /// Bytes copied into the queue itself before a reactor block is taken.
    static constexpr unsigned kSmallBytes = 256;

    explicit SendQueue(ReactorImpl& reactor) noexcept : reactor_(&reactor) {}
    SendQueue(const SendQueue&) = delete;
    SendQueue& operator=(const SendQueue&) = delete;
    ~SendQueue();

    /// Appends a span of receive buffer `bid` (taking a reference on it).
    void push_buffer(const char* data, std::uint32_t len, std::uint16_t bid);
    /// Appends a copy of `bytes`.
    void push_copy(const char* data, std::uint32_t len);
    /// Appends bytes that outlive the queue (an arena, a literal); nothing is released.
    void push_static(const char* data, std::uint32_t len);
    /// Takes ownership of an output buffer holding `len` bytes: a reactor block when `cap` is
    /// ReactorImpl::kOutBlockBytes, else malloc'd memory.
    void push_block(char* block, std::uint32_t len, std::uint32_t cap);

    /// Moves the first `n` bytes to the end of `to` (buffer spans by reference). For a queue
    /// that is only ever drained this way (an HTTP/2 stream's pending body): never prepared,
    /// consumed or retained.
    void move_to(SendQueue& to, std::uint32_t n);

    /// Appends the next `n` unwritten bytes to `to` (buffer spans by reference, handler-made
    /// blocks copied) and marks them written here: an HTTP/2 request body going into its
    /// session's queue, still retained for a retry when retaining.
    void share_to(SendQueue& to, std::uint32_t n);
    /// Fills iov() with what is still unwritten; returns the count (0: nothing to write). The
    /// vector stays valid until the next prepare().
    unsigned prepare() noexcept;
    const iovec* iov() const noexcept { return iov_; }
    /// Marks `n` bytes written, releasing fully written segments unless retaining.
    void consume(std::uint32_t n) noexcept;

    /// Bytes queued and not yet written (plus retained ones).
    std::uint64_t bytes() const noexcept { return bytes_; }
    std::uint64_t unwritten() const noexcept { return bytes_ - written_; }
    bool empty() const noexcept { return unwritten() == 0; }

    void set_retain(bool on) noexcept;
    bool retaining() const noexcept { return retain_; }
    /// Makes every retained byte unwritten again (a retry sends them anew).
    void rewind() noexcept;
    /// Releases what is queued.
    void release_all() noexcept;

private:
    enum class Kind : std::uint8_t { Static, Buffer, Block, Heap, Small };
    struct Segment {
        const char* data;
        std::uint32_t len;
        std::uint16_t bid;
        Kind kind;
    };

    void push(Segment s);
    void grow();
    Segment& at(unsigned i) noexcept { return segs_[(head_ + i) & (cap_ - 1)]; }
    const Segment& at(unsigned i) const noexcept { return segs_[(head_ + i) & (cap_ - 1)]; }
    void release(const Segment& s) noexcept;
    void drop_written() noexcept;
    char* tail_space(std::uint32_t need);

    ReactorImpl* reactor_;
    Segment inline_[kInlineSegments];
    Segment* segs_ = inline_;     // a ring of cap_ (a power of two) segments
    unsigned cap_ = kInlineSegments;
    unsigned head_ = 0;    // first segment kept
    unsigned count_ = 0;   // segments kept
    unsigned cursor_ = 0;  // segments (from head_) fully written
    std::uint32_t offset_ = 0;  // bytes of segment head_+cursor_ written
    std::uint64_t bytes_ = 0;
    std::uint64_t written_ = 0;
    bool retain_ = false;
    // Copy target: the tail block/heap/small segment's capacity.
    std::uint32_t tail_cap_ = 0;
    bool small_used_ = false;  // a segment views small_
    iovec iov_[kMaxIov];
    char small_[kSmallBytes];
};

}  // namespace blitz::server

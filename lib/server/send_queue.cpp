#include "server/send_queue.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>

#include "server/reactor.hpp"

namespace blitz::server {

SendQueue::~SendQueue() {
    release_all();
    if (segs_ != inline_) {
        delete[] segs_;
    }
}

void SendQueue::grow() {
    auto* bigger = new Segment[cap_ * 2];
    for (unsigned i = 0; i < count_; ++i) {
        bigger[i] = at(i);
    }
    if (segs_ != inline_) {
        delete[] segs_;
    }
    segs_ = bigger;
    cap_ *= 2;
    head_ = 0;
}

void SendQueue::push(Segment s) {
    if (s.len == 0) {
        return;
    }
    if (count_ > 0 && s.kind == Kind::Buffer) {
        Segment& t = at(count_ - 1);
        if (t.kind == Kind::Buffer && t.bid == s.bid && t.data + t.len == s.data) {
            t.len += s.len;  // the next bytes of the same buffer (chunked framing passed through)
            bytes_ += s.len;
            return;
        }
    }
    if (count_ == cap_) {
        grow();
    }
    if (s.kind == Kind::Buffer) {
        reactor_->hold_buffer(s.bid);
    }
    at(count_) = s;
    ++count_;
    bytes_ += s.len;
    tail_cap_ = 0;
}

// Room for `need` more bytes at the end of the last segment, or in a new one. The caller writes
// there and adds `need` to that segment's length.
char* SendQueue::tail_space(std::uint32_t need) {
    if (count_ > cursor_) {
        Segment& t = at(count_ - 1);
        // Appending behind a segment being sent is safe: the send covers its old length. A
        // segment already written (cursor_ past it) is not appended to: its new bytes would be
        // skipped.
        const bool writable = t.kind == Kind::Block || t.kind == Kind::Heap || t.kind == Kind::Small;
        if (writable && t.len + need <= tail_cap_) {
            return const_cast<char*>(t.data) + t.len;
        }
    }
    char* block;
    std::uint32_t cap;
    Kind kind;
    if (!small_used_ && need <= kSmallBytes) {
        block = small_;
        cap = kSmallBytes;
        kind = Kind::Small;
        small_used_ = true;
    } else if (need <= ReactorImpl::kOutBlockBytes) {
        block = reactor_->take_out_block();
        cap = ReactorImpl::kOutBlockBytes;
        kind = Kind::Block;
    } else {
        block = static_cast<char*>(std::malloc(need));
        if (block == nullptr) {
            throw std::bad_alloc();
        }
        cap = need;
        kind = Kind::Heap;
    }
    if (count_ == cap_) {
        grow();
    }
    at(count_) = Segment{block, 0, 0, kind};
    ++count_;
    tail_cap_ = cap;
    return block;
}

void SendQueue::push_buffer(const char* data, std::uint32_t len, std::uint16_t bid) {
    push(Segment{data, len, bid, Kind::Buffer});
}

void SendQueue::push_copy(const char* data, std::uint32_t len) {
    if (len == 0) {
        return;
    }
    char* dst = tail_space(len);
    std::memcpy(dst, data, len);
    at(count_ - 1).len += len;
    bytes_ += len;
}

void SendQueue::push_static(const char* data, std::uint32_t len) {
    push(Segment{data, len, 0, Kind::Static});
}

void SendQueue::push_block(char* block, std::uint32_t len, std::uint32_t cap) {
    const Kind kind = cap == ReactorImpl::kOutBlockBytes ? Kind::Block : Kind::Heap;
    if (len == 0) {
        release(Segment{block, len, 0, kind});
        return;
    }
    push(Segment{block, len, 0, kind});
    tail_cap_ = cap;
}

// The first segment's bytes already moved are counted by offset_ (a queue drained only this
// way never writes): the segment keeps the pointer it releases.
void SendQueue::move_to(SendQueue& to, std::uint32_t n) {
    while (n > 0 && count_ > 0) {
        Segment& s = segs_[head_];
        const std::uint32_t k = std::min(n, s.len - offset_);
        const char* from = s.data + offset_;
        switch (s.kind) {
            case Kind::Buffer:
                to.push_buffer(from, k, s.bid);
                break;
            case Kind::Static:
                to.push_static(from, k);
                break;
            case Kind::Block:
            case Kind::Heap:
            case Kind::Small:
                to.push_copy(from, k);  // bytes a handler produced: copied once
                break;
        }
        n -= k;
        bytes_ -= k;
        if (offset_ + k < s.len) {
            offset_ += k;
            continue;
        }
        offset_ = 0;
        release(s);
        head_ = (head_ + 1) & (cap_ - 1);
        --count_;
    }
    if (count_ == 0) {
        head_ = 0;
        tail_cap_ = 0;
    }
}

void SendQueue::share_to(SendQueue& to, std::uint32_t n) {
    const std::uint32_t total = n;
    std::uint32_t offset = offset_;
    for (unsigned i = cursor_; i < count_ && n > 0; ++i) {
        const Segment& s = at(i);
        const std::uint32_t k = std::min(n, s.len - offset);
        switch (s.kind) {
            case Kind::Buffer:
                to.push_buffer(s.data + offset, k, s.bid);
                break;
            case Kind::Static:
                to.push_static(s.data + offset, k);
                break;
            case Kind::Block:
            case Kind::Heap:
            case Kind::Small:
                to.push_copy(s.data + offset, k);
                break;
        }
        n -= k;
        offset = 0;
    }
    consume(total - n);
}

unsigned SendQueue::prepare() noexcept {
    iovec* iov = iov_;
    unsigned n = 0;
    std::uint32_t offset = offset_;
    for (unsigned i = cursor_; i < count_ && n < kMaxIov; ++i) {
        const Segment& s = at(i);
        iov[n].iov_base = const_cast<char*>(s.data + offset);
        iov[n].iov_len = s.len - offset;
        offset = 0;
        ++n;
    }
    return n;
}

void SendQueue::consume(std::uint32_t n) noexcept {
    written_ += n;
    while (n > 0 && cursor_ < count_) {
        const Segment& s = at(cursor_);
        const std::uint32_t left = s.len - offset_;
        if (n < left) {
            offset_ += n;
            return;
        }
        n -= left;
        offset_ = 0;
        ++cursor_;
    }
    if (!retain_) {
        drop_written();
    }
}

void SendQueue::drop_written() noexcept {
    while (cursor_ > 0) {
        const Segment& s = segs_[head_];
        bytes_ -= s.len;
        written_ -= s.len;
        release(s);
        head_ = (head_ + 1) & (cap_ - 1);
        --count_;
        --cursor_;
    }
    if (count_ == 0) {
        tail_cap_ = 0;
    }
}

void SendQueue::set_retain(bool on) noexcept {
    retain_ = on;
    if (!on) {
        drop_written();
    }
}

void SendQueue::rewind() noexcept {
    cursor_ = 0;
    offset_ = 0;
    written_ = 0;
}

void SendQueue::release(const Segment& s) noexcept {
    switch (s.kind) {
        case Kind::Static:
            break;
        case Kind::Buffer:
            reactor_->put_buffer(s.bid);
            break;
        case Kind::Block:
            reactor_->give_out_block(const_cast<char*>(s.data));
            break;
        case Kind::Heap:
            std::free(const_cast<char*>(s.data));
            break;
        case Kind::Small:
            small_used_ = false;
            break;
    }
}

void SendQueue::release_all() noexcept {
    while (count_ > 0) {
        release(segs_[head_]);
        head_ = (head_ + 1) & (cap_ - 1);
        --count_;
    }
    head_ = 0;
    cursor_ = 0;
    offset_ = 0;
    bytes_ = 0;
    written_ = 0;
    tail_cap_ = 0;
}

}  // namespace blitz::server

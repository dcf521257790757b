// The output side of a downstream connection: its response buffers, the streamed output
// queue of proxied responses, sends and their completions.

#include <sys/socket.h>

#include <cstdlib>
#include <cstring>
#include <new>

#include "server/connection.hpp"
#include "server/connection_active.hpp"
#include "server/proxy.hpp"
#include "server/reactor.hpp"
#include "server/send_queue.hpp"

namespace blitz::server {

char* Connection::reserve_out(std::size_t n) {
    if (out_ == nullptr) {
        out_ = reactor_.take_out_block();
        out_cap_ = ReactorImpl::kOutBlockBytes;
        out_len_ = 0;
    }
    if (out_len_ + n > out_cap_) {
        // Rare: a large local body or a long pipelined burst. Move to a heap buffer.
        std::size_t cap = std::max<std::size_t>(out_cap_ * 2, out_len_ + n);
        auto* grown = static_cast<char*>(std::malloc(cap));
        if (grown == nullptr) {
            throw std::bad_alloc();
        }
        std::memcpy(grown, out_, out_len_);
        if (out_cap_ == ReactorImpl::kOutBlockBytes) {
            reactor_.give_out_block(out_);
        } else {
            std::free(out_);
        }
        out_ = grown;
        out_cap_ = static_cast<std::uint32_t>(cap);
    }
    return out_ + out_len_;
}

void Connection::append(std::string_view bytes) {
    char* dst = reserve_out(bytes.size());
    std::memcpy(dst, bytes.data(), bytes.size());
    out_len_ += static_cast<std::uint32_t>(bytes.size());
    queued_ += bytes.size();
}

// Gives an output buffer back: a reactor block, or heap memory a large output grew into.
void Connection::release_out(ReactorImpl& reactor, char*& buf, std::uint32_t& cap) noexcept {
    if (buf == nullptr) {
        return;
    }
    if (cap == ReactorImpl::kOutBlockBytes) {
        reactor.give_out_block(buf);
    } else {
        std::free(buf);
    }
    buf = nullptr;
    cap = 0;
}

void Connection::flush() {
    if (send_inflight_ || closing_) {
        return;
    }
    if (tls_ != nullptr && tls_send_control()) {
        return;  // handshake flights, tickets and alerts go out before more data
    }
    if (queue_ != nullptr) {
        // Streaming: what was written into out_ goes behind the queued spans, in order.
        if (out_len_ > 0) {
            queue_->push_block(out_, out_len_, out_cap_);
            out_ = nullptr;
            out_len_ = 0;
            out_cap_ = 0;
        }
        const unsigned n = queue_->prepare();
        if (n == 0) {
            return;
        }
        queue_send_ = true;
        submit(queue_->iov(), n);
        return;
    }
    if (out_len_ == 0) {
        return;
    }
    std::swap(out_, sending_);
    std::swap(out_cap_, sending_cap_);
    sending_len_ = out_len_;
    out_len_ = 0;
    sent_ = 0;
    iov_.iov_base = sending_;
    iov_.iov_len = sending_len_;
    submit(&iov_, 1);
}

void Connection::flush_later() {
    if (!flush_queued_) {
        flush_queued_ = true;
        reactor_.flush_later(this);
    }
}

void Connection::submit(const iovec* iov, unsigned count) {
    send_inflight_ = true;
    if (tls_ == nullptr) {
        reactor_.io().send(fd_, iov, count, io::pack(io::Op::Send, generation_, slot_));
        return;
    }
    tls_submit(iov, count);
}

void Connection::on_send(const io::Completion& c) {
    send_inflight_ = false;
    if (closing_) {
        maybe_recycle();
        return;
    }
    if (c.res < 0) {
        note_close(CloseReason::Error);
        close_now();
        maybe_recycle();
        return;
    }
    last_activity_ms_ = reactor_.now_ms();
    std::int32_t res = c.res;
    if (tls_ != nullptr) {
        res = tls_sent(res);  // the plaintext the finished ciphertext carried
        if (res < 0) {
            maybe_recycle();
            return;
        }
    }
    reactor_.metrics().bytes_sent.add(static_cast<std::uint64_t>(res));
    if (queue_send_) {
        queue_send_ = false;
        queue_->consume(static_cast<std::uint32_t>(res));
        if (h2_ != nullptr) {
            h2_sent();
            return;
        }
        if (active_ != nullptr && active_->proxy != nullptr) {
            active_->proxy->downstream_drained();
        }
        if (!queue_->empty() || out_len_ > 0) {
            flush();
            return;
        }
        if (active_ == nullptr || active_->proxy == nullptr) {
            reactor_.give_queue(queue_);
            queue_ = nullptr;
        }
        if (close_after_send_) {
            begin_linger();
            maybe_recycle();
            return;
        }
        resume_input();
        maybe_recycle();
        return;
    }
    sent_ += static_cast<std::uint32_t>(res);
    if (sent_ < sending_len_) {
        iov_.iov_base = sending_ + sent_;
        iov_.iov_len = sending_len_ - sent_;
        submit(&iov_, 1);
        return;
    }
    sending_len_ = 0;
    release_out(reactor_, sending_, sending_cap_);
    if (out_len_ > 0) {
        flush();
        return;
    }
    if (out_ != nullptr && out_len_ == 0) {
        release_out(reactor_, out_, out_cap_);  // an idle connection holds no output buffer
    }
    if (close_after_send_) {
        begin_linger();
        maybe_recycle();
        return;
    }
    if (partial_len_ > 0 && active_ == nullptr) {
        process(partial_, partial_len_);  // input held back while output was queued
    }
    rearm_recv();
    maybe_recycle();
}

void Connection::begin_linger() {
    if (tls_close_notify()) {
        return;  // back here once the close_notify alert is out
    }
    state_ = State::Linger;
    partial_len_ = 0;
    drained_ = 0;
    ::shutdown(fd_, SHUT_WR);
    last_activity_ms_ = reactor_.now_ms();
    arm_timer();
    if (!recv_armed_) {
        rearm_recv();
    }
}

}  // namespace blitz::server

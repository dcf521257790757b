#include "server/upstream_h2.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>

#include "server/reactor.hpp"

namespace blitz::server {

UpstreamH2Session::UpstreamH2Session(ReactorImpl& reactor, EndpointPool& pool) noexcept
    : reactor_(reactor), pool_(pool), codec_(*this, http2::ClientLimits{}), out_(reactor) {
    reap_timer_.fire = &UpstreamH2Session::on_reap;
    reap_timer_.owner = this;
}

UpstreamH2Session::~UpstreamH2Session() {
    reactor_.timers().cancel(reap_timer_);
    out_.release_all();
}

bool UpstreamH2Session::open(int& error) {
    if (!codec_.start()) {
        error = ENOMEM;
        return false;
    }
    conn_ = reactor_.proxy().connect(pool_, error);
    if (conn_ == nullptr) {
        return false;
    }
    conn_->set_owner(this);
    conn_->arm_timer(reactor_.now_ms() +
                     static_cast<std::uint64_t>(pool_.cluster->cluster().options().pool.connect_timeout.count()));
    pool_.h2.push_back(this);
    return true;
}

bool UpstreamH2Session::submit(UpstreamCall& call, std::string_view method, std::string_view scheme,
                               std::string_view authority, std::string_view path, Headers fields, bool has_body) {
    if (codec_.submit(call, method, scheme, authority, path, fields, has_body) == 0) {
        return false;
    }
    call.session = this;
    calls_.push_back(&call);
    if (conn_->connected()) {
        conn_->cancel_timer();  // the idle timer; while connecting it is the connect timeout
    }
    flush();
    return true;
}

void UpstreamH2Session::resume_body(UpstreamCall& call) {
    codec_.resume_body(call);
    flush();
}

void UpstreamH2Session::consume(UpstreamCall& call) noexcept {
    codec_.consume(call);
    if (!in_flush_) {
        flush();
    }
}

void UpstreamH2Session::cancel(UpstreamCall& call) noexcept {
    codec_.cancel(call);
    forget(call);
    if (!closed_) {
        flush();
        idle_check();
    }
}

void UpstreamH2Session::forget(UpstreamCall& call) noexcept {
    call.owner = nullptr;
    call.session = nullptr;
    calls_.erase(std::remove(calls_.begin(), calls_.end(), &call), calls_.end());
    if (!pool_.waiters.empty() && !closed_ && !reactor_.stopping()) {
        // A stream slot came free: the oldest request waiting at the connection limit picks
        // again (from its timer, not inside this callback).
        UpstreamOwner* next = pool_.waiters.front();
        pool_.waiters.erase(pool_.waiters.begin());
        next->upstream_available(nullptr);
    }
}

void UpstreamH2Session::flush() {
    if (closed_ || in_flush_ || conn_ == nullptr || !conn_->connected()) {
        return;
    }
    in_flush_ = true;
    const bool ok = codec_.send();
    in_flush_ = false;
    if (closed_) {
        return;  // a callback ended the session (its last stream closed after a GOAWAY)
    }
    if (!ok) {
        fail(H2Failure::Reset);
        return;
    }
    if (!out_.empty()) {
        conn_->send_from(&out_);
    }
}

void UpstreamH2Session::h2c_write(const std::uint8_t* data, std::size_t len) {
    out_.push_copy(reinterpret_cast<const char*>(data), static_cast<std::uint32_t>(len));
}

std::size_t UpstreamH2Session::h2c_body_ready(http2::ClientStream& s, std::size_t max, bool& last) {
    auto& call = static_cast<UpstreamCall&>(s);
    return call.owner != nullptr ? call.owner->h2_body_ready(max, last) : 0;
}

void UpstreamH2Session::h2c_write_data(http2::ClientStream& s, const std::uint8_t* frame_head, std::size_t len) {
    out_.push_copy(reinterpret_cast<const char*>(frame_head), 9);
    auto& call = static_cast<UpstreamCall&>(s);
    if (call.owner != nullptr) {
        call.owner->h2_body_take(out_, len);
    }
}

void UpstreamH2Session::h2c_head(http2::ClientStream& s, bool end_stream) {
    auto& call = static_cast<UpstreamCall&>(s);
    H2StreamOwner* owner = call.owner;
    if (owner == nullptr) {
        return;
    }
    if (end_stream) {
        forget(call);  // complete: the owner's detach must not reset it
    }
    owner->h2_head(call, end_stream);
    if (end_stream) {
        idle_check();
    }
}

void UpstreamH2Session::h2c_data(http2::ClientStream& s, const char* data, std::size_t len) {
    auto& call = static_cast<UpstreamCall&>(s);
    if (call.owner != nullptr) {
        call.owner->h2_data(data, len, bid_);
    }
}

void UpstreamH2Session::h2c_end(http2::ClientStream& s) {
    auto& call = static_cast<UpstreamCall&>(s);
    if (call.owner != nullptr) {
        H2StreamOwner* owner = call.owner;
        forget(call);
        owner->h2_end(call.in_trailers ? Headers({call.fields, call.count}) : Headers());
        idle_check();
    }
}

void UpstreamH2Session::h2c_closed(http2::ClientStream& s, std::uint32_t error) {
    auto& call = static_cast<UpstreamCall&>(s);
    call.id = 0;
    if (call.owner == nullptr) {
        return;
    }
    H2StreamOwner* owner = call.owner;
    forget(call);
    // Closed without its response's end: refused streams were never processed (RFC 9113
    // §8.7), so any request may go elsewhere; a broken response is the upstream's fault.
    if (error == NGHTTP2_REFUSED_STREAM) {
        owner->h2_failed(H2Failure::Refused);
    } else if (error == NGHTTP2_PROTOCOL_ERROR || call.too_large) {
        owner->h2_failed(H2Failure::BadResponse);
    } else {
        owner->h2_failed(H2Failure::Reset);
    }
    idle_check();
}

void UpstreamH2Session::upstream_connected(UpstreamConn& /*c*/, int error) {
    if (error != 0) {
        fail(error == UpstreamConn::kTlsFailed ? H2Failure::TlsFailure : H2Failure::ConnectFailure);
        return;
    }
    conn_->cancel_timer();
    flush();
    idle_check();
}

void UpstreamH2Session::upstream_data(UpstreamConn& /*c*/, char* data, std::size_t len, std::uint16_t bid) {
    bid_ = bid;
    in_flush_ = true;  // window updates go out once, after the whole buffer
    const bool ok = codec_.receive(data, len);
    in_flush_ = false;
    if (closed_) {
        return;
    }
    if (!ok) {
        flush();  // the GOAWAY
        fail(H2Failure::BadResponse);
        return;
    }
    flush();
    if (codec_.closing() && calls_.empty()) {
        fail(H2Failure::Reset);  // the server's GOAWAY with nothing left to finish
    }
}


void UpstreamH2Session::upstream_closed(UpstreamConn& /*c*/, int /*error*/) { fail(H2Failure::Reset); }

void UpstreamH2Session::upstream_drained(UpstreamConn& /*c*/) { flush(); }

void UpstreamH2Session::upstream_timer(UpstreamConn& c) {
    if (c.state() == UpstreamConn::State::Connecting) {
        fail(H2Failure::ConnectTimeout);
    } else if (calls_.empty()) {
        fail(H2Failure::Reset);  // idle longer than the pool keeps connections
    }
}

void UpstreamH2Session::upstream_available(UpstreamConn* /*c*/) {}

// No call left: the connection waits for the next one up to the pool's idle timeout, or
// closes at once when the endpoint left or the reactor stops.
void UpstreamH2Session::idle_check() noexcept {
    if (closed_ || !calls_.empty() || conn_ == nullptr || !conn_->connected()) {
        return;
    }
    if (pool_.orphaned || reactor_.stopping() || codec_.closing()) {
        fail(H2Failure::Reset);
        return;
    }
    conn_->arm_timer(reactor_.now_ms() +
                     static_cast<std::uint64_t>(pool_.cluster->cluster().options().pool.idle_timeout.count()));
}

void UpstreamH2Session::close_if_idle() noexcept {
    if (calls_.empty()) {
        fail(H2Failure::Reset);
    }
}

void UpstreamH2Session::fail(H2Failure why) noexcept {
    if (closed_) {
        return;
    }
    closed_ = true;
    auto& list = pool_.h2;
    list.erase(std::remove(list.begin(), list.end(), this), list.end());
    std::vector<UpstreamCall*> calls;
    calls.swap(calls_);
    for (UpstreamCall* call : calls) {
        H2StreamOwner* owner = call->owner;
        call->owner = nullptr;
        call->session = nullptr;
        call->id = 0;
        if (owner != nullptr) {
            owner->h2_failed(why);
        }
    }
    if (conn_ != nullptr) {
        UpstreamConn* c = conn_;
        conn_ = nullptr;
        c->set_owner(nullptr);
        c->close();
    }
    // Deleted from the timer: this may run inside the connection's or the codec's callbacks.
    reactor_.timers().arm(reap_timer_, reactor_.now_ms());
}

void UpstreamH2Session::on_reap(detail::TimerWheel::Timer* t) {
    auto* self = static_cast<UpstreamH2Session*>(t->owner);
    self->reactor_.proxy().h2_gone(self);
    delete self;
}

}  // namespace blitz::server

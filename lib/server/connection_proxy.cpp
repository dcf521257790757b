// The downstream side of proxied exchanges: how a Connection hands a response that streams in
// from an upstream to its client (see server/proxy.cpp for the upstream side).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

#include <blitz/log.hpp>

#include "server/connection.hpp"
#include "server/connection_active.hpp"
#include "server/gateway_error.hpp"
#include "server/proxy.hpp"
#include "server/reactor.hpp"
#include "server/send_queue.hpp"

namespace blitz::server {

// The peer's address, fetched once per connection (not per request).
bool Connection::fetch_peer() noexcept {
    if (peer_family_ != 0) {
        return true;
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (getpeername(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        return false;
    }
    if (ss.ss_family == AF_INET) {
        std::memcpy(peer_, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, 4);
        peer_port_ = ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        std::memcpy(peer_, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, 16);
        peer_port_ = ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    } else {
        return false;
    }
    peer_family_ = static_cast<std::uint8_t>(ss.ss_family);
    return true;
}

bool Connection::peer_trusted() noexcept {
    const net::CidrSet& trusted = config().trusted_proxies;
    if (trusted.empty() || !fetch_peer()) {
        return false;
    }
    sockaddr_storage ss{};
    if (peer_family_ == AF_INET) {
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        in->sin_family = AF_INET;
        std::memcpy(&in->sin_addr, peer_, 4);
    } else {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        in6->sin6_family = AF_INET6;
        std::memcpy(&in6->sin6_addr, peer_, 16);
    }
    return trusted.contains(reinterpret_cast<const sockaddr*>(&ss));
}

void Connection::proxy_error(int status, const char* reason, const char* cause) {
    Active* a = active_;
    respond_gateway_error(a->ex, status, reason, cause);
    const Route* route = a->ex.route();
    a->phase = Phase::ResponseHeaders;
    a->filter_index = static_cast<std::uint16_t>(route->filters.size());
    if (!a->in_advance) {
        advance();
        resume_input();
    }
}

HeadOutcome Connection::proxy_head(const http1::ResponseHead& head, bool upgrade) {
    Active& a = *active_;
    Response& r = a.ex.response();
    const Headers upstream_fields(head.headers);
    r.set_status(head.status);
    const Route* route = a.ex.route();
    // The fields view the upstream's receive buffer, which outlives this call only when no
    // filter may read them later (on_log, or after holding the head): with filters they are
    // copied into the arena.
    const bool copy = !route->filters.empty();
    for (const Header& h : upstream_fields) {
        if (!http1::is_hop_by_hop(h.name, upstream_fields)) {
            if (copy) {
                r.add_header(a.arena.copy(h.name), a.arena.copy(h.value));
            } else {
                r.add_header(h.name, h.value);
            }
        }
    }
    if (upgrade) {
        const std::string_view protocol = upstream_fields.get("Upgrade");
        r.add_header("Upgrade", copy ? a.arena.copy(protocol) : protocol);
    }
    ReactorObserver::echo(a.ex, a.obs);
    a.upstream_reason = copy ? a.arena.copy(head.reason) : head.reason;
    a.upstream_framing = head.body;
    a.upstream_length = head.content_length;
    a.upgrade = upgrade;
    a.phase = Phase::ProxyHead;
    a.filter_index = static_cast<std::uint16_t>(route->filters.size());
    switch (proxy_filters(a)) {
        case Flow::Pause:
            return {.passthrough = proxied_passthrough(a)};
        case Flow::Respond:
            return {.replaced = true};
        case Flow::Continue:
            break;
    }
    if (!send_proxied_head()) {
        return {.replaced = true};  // by the 502 set in its place
    }
    return {.passthrough = proxied_passthrough(a)};
}

Flow Connection::proxy_filters(Active& a) {
    const Flow f = run_response_filters(a.ex, {a.filter_index, a.in_advance, a.resume_requested}, a.upgrade);
    a.paused = f == Flow::Pause;
    return f;
}

// An HTTP/1.0 client cannot read chunked: it gets the body decoded (close-delimited).
bool Connection::proxied_passthrough(const Active& a) noexcept {
    return a.upstream_framing == http1::Framing::Chunked && a.ex.request().version != Version::Http10;
}

// Returns false when the head cannot be written (a filter set a field the wire cannot carry):
// the response is then a 502 answered in the upstream's place, as the filters' would be.
bool Connection::send_proxied_head() {
    Active& a = *active_;
    const Response& r = a.ex.response();
    const Route* route = a.ex.route();
    bool keep = keep_alive_allowed() && !a.upgrade;
    http1::Framing framing = a.upstream_framing;
    if (framing == http1::Framing::Chunked && !proxied_passthrough(a)) {
        framing = http1::Framing::UntilClose;
    }
    if (framing == http1::Framing::UntilClose) {
        keep = false;
    }
    a.keep_alive = keep;
    std::size_t need = 512;
    for (const Header& h : r.headers()) {
        need += h.name.size() + h.value.size() + 4;
    }
    char* dst = reserve_out(need);
    const std::string_view via = route->proxy.via ? std::string_view("1.1 blitz") : std::string_view{};
    std::size_t n = http1::write_proxied_response_head({dst, need}, r.status(), a.upstream_reason, r.headers(),
                                                       framing, a.upstream_length, keep, a.ex.request().version,
                                                       via, reactor_.date());
    if (n == 0) {
        log(LogLevel::Warn, "route \"%s\": upstream response head cannot be written; answering 502",
            route->name.c_str());
        respond_gateway_error(a.ex, 502, "invalid upstream response", "bad_response");
        return false;
    }
    out_len_ += static_cast<std::uint32_t>(n);
    queued_ += n;
    a.phase = Phase::Streaming;
    if (queue_ == nullptr) {
        queue_ = reactor_.take_queue();
    }
    flush_later();  // with the body bytes that follow in this turn
    return true;
}

void Connection::proxy_replaced() {
    active_->phase = Phase::Done;
    finish_response();  // ends the exchange: its ProxyState closes the upstream connection
    resume_input();
    maybe_recycle();
}

// The filter that held a proxied response's head resumed: the other filters run, then the
// head goes out with the body bytes that arrived meanwhile, or a filter's answer does.
void Connection::release_proxy_head() {
    Active& a = *active_;
    const Flow f = proxy_filters(a);
    if (f == Flow::Pause) {
        return;
    }
    if (f == Flow::Respond || !send_proxied_head()) {
        a.phase = Phase::Done;
        finish_response();
        return;
    }
    if (a.held != nullptr) {
        const std::uint64_t n = a.held->bytes();
        a.held->move_to(body_queue(), static_cast<std::uint32_t>(n));
        queued_ += n;
        reactor_.give_queue(a.held);
        a.held = nullptr;
    }
    if (a.held_end) {
        proxy_done(a.held_clean);
        return;
    }
    a.proxy->response_released();
}

// The output queue a proxied body goes to, behind what the connection wrote before it.
SendQueue& Connection::body_queue() {
    if (queue_ == nullptr) {
        queue_ = reactor_.take_queue();
    }
    if (out_len_ > 0) {
        queue_->push_block(out_, out_len_, out_cap_);
        out_ = nullptr;
        out_len_ = 0;
        out_cap_ = 0;
    }
    return *queue_;
}

void Connection::proxy_body(const char* data, std::uint32_t len, std::int32_t bid) {
    if (closing_ || len == 0) {
        return;
    }
    const bool held = active_ != nullptr && active_->phase == Phase::ProxyHead;
    if (held && active_->held == nullptr) {
        active_->held = reactor_.take_queue();
    }
    // While a filter holds the head the bytes wait (the upstream is not read meanwhile).
    SendQueue& q = held ? *active_->held : body_queue();
    if (bid >= 0) {
        q.push_buffer(data, len, static_cast<std::uint16_t>(bid));
    } else {
        q.push_copy(data, len);
    }
    if (held) {
        return;
    }
    queued_ += len;
    last_activity_ms_ = reactor_.now_ms();
    flush_later();
}

void Connection::proxy_continue() {
    if (active_ == nullptr || active_->continue_sent) {
        return;
    }
    active_->continue_sent = true;
    append("HTTP/1.1 100 Continue\r\n\r\n");
    flush();
}

// Only an HTTP/1.0 client gets a chunked response decoded (close-delimited), and HTTP/1.0 has
// no trailer section to carry the fields in: they are dropped (RFC 9110 §6.5.1 allows it).
void Connection::proxy_trailers(Headers /*fields*/) {}

void Connection::proxy_tunnel() {
    state_ = State::Tunnel;
    if (partial_len_ > 0) {
        // Bytes the client sent behind its upgrade request belong to the new protocol.
        active_->proxy->tunnel_data(partial_, partial_len_, -1);
        partial_len_ = 0;
    }
    rearm_recv();
}

void Connection::proxy_done(bool clean) {
    if (active_ == nullptr) {
        return;
    }
    if (active_->phase == Phase::ProxyHead) {
        active_->held_end = true;  // told when the held head goes out
        active_->held_clean = clean;
        return;
    }
    const bool keep = clean && active_->keep_alive && keep_alive_allowed();
    if (!clean) {
        // A cut response must not look complete: the connection closes after what is queued.
        close_after_send_ = true;
    }
    complete_exchange(keep);
    if (close_after_send_ && !send_inflight_ && output_backlog() == 0 && !closing_) {
        begin_linger();  // nothing left to send: the client sees the close now
    }
    resume_input();
    maybe_recycle();
}

void Connection::proxy_block_input() {
    input_blocked_ = true;
    if (recv_armed_) {
        reactor_.io().cancel_recv(fd_, io::pack(io::Op::Recv, generation_, slot_));
    }
}

void Connection::proxy_unblock_input() {
    input_blocked_ = false;
    resume_input();
}

std::uint64_t Connection::response_backlog() const noexcept {
    return active_ != nullptr && active_->phase == Phase::ProxyHead ? kHeldBacklog : output_backlog();
}

std::uint64_t Connection::output_backlog() const noexcept {
    return (queue_ != nullptr ? queue_->unwritten() : 0) + out_len_ +
           (sending_len_ > sent_ ? sending_len_ - sent_ : 0);
}

// Takes up input held back (a pipelined request, or a proxied body that waited for its
// upstream), unless processing is already under way.
void Connection::resume_input() {
    if (in_process_ || closing_ || input_blocked_ || state_ == State::Linger || state_ == State::Closed) {
        return;
    }
    if (partial_len_ > 0 && (active_ == nullptr || (active_->proxy != nullptr && state_ != State::Head))) {
        process(partial_, partial_len_);
    }
    rearm_recv();
}

}  // namespace blitz::server

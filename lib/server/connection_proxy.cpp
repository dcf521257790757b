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

bool Connection::proxy_head(const http1::ResponseHead& head, bool upgrade) {
    Active& a = *active_;
    Response& r = a.ex.response();
    const Headers upstream_fields(head.headers);
    r.set_status(head.status);
    const Route* route = a.ex.route();
    // The fields view the upstream's receive buffer, which outlives this call only when no
    // filter may read them later (on_log): with filters they are copied into the arena.
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
    for (std::size_t i = route->filters.size(); i > 0; --i) {
        // Response filters of a streamed response run synchronously: the upstream's bytes are
        // not held back for them (Pause counts as Continue here; see docs/architecture.md).
        (void)route->filters[i - 1]->on_response_headers(a.ex);
    }
    bool keep = keep_alive_allowed() && !upgrade;
    const bool http10 = a.ex.request().version == Version::Http10;
    http1::Framing framing = head.body;
    bool passthrough = false;
    if (framing == http1::Framing::Chunked) {
        if (http10) {
            framing = http1::Framing::UntilClose;  // an HTTP/1.0 client cannot read chunked
        } else {
            passthrough = true;
        }
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
    std::size_t n = http1::write_proxied_response_head({dst, need}, r.status(), head.reason, r.headers(), framing,
                                                       head.content_length, keep, a.ex.request().version, via,
                                                       reactor_.date());
    if (n == 0) {
        log(LogLevel::Warn, "route \"%s\": response head cannot be written; closing", route->name.c_str());
        close_now();
        return passthrough;
    }
    out_len_ += static_cast<std::uint32_t>(n);
    queued_ += n;
    a.phase = Phase::Streaming;
    if (queue_ == nullptr) {
        queue_ = reactor_.take_queue();
    }
    flush();
    return passthrough;
}

void Connection::proxy_body(const char* data, std::uint32_t len, std::int32_t bid) {
    if (closing_ || len == 0) {
        return;
    }
    if (queue_ == nullptr) {
        queue_ = reactor_.take_queue();
    }
    if (out_len_ > 0) {
        queue_->push_block(out_, out_len_, out_cap_);
        out_ = nullptr;
        out_len_ = 0;
        out_cap_ = 0;
    }
    queued_ += len;
    if (bid >= 0) {
        queue_->push_buffer(data, len, static_cast<std::uint16_t>(bid));
    } else {
        queue_->push_copy(data, len);
    }
    last_activity_ms_ = reactor_.now_ms();
    flush();
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

#include "server/connection.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <blitz/log.hpp>

#include "http/uri.hpp"
#include "router/rewrite.hpp"
#include "server/h2_connection.hpp"
#include "server/proxy.hpp"
#include "server/reactor.hpp"
#include "server/send_queue.hpp"
#include "server/tls_state.hpp"
#include "server/connection_active.hpp"
#include "server/route_response.hpp"

namespace blitz::server {

namespace {

// Output queued beyond this stops reading further requests until the peer catches up.
constexpr std::uint32_t kMaxPendingOutput = 64 * 1024;
// Input held back (while an exchange runs or output backs up) beyond this stops reading.
constexpr std::uint32_t kMaxPendingInput = 64 * 1024;
// How long a closing connection keeps reading (and dropping) what the client still sends, so
// the kernel does not answer unread bytes with a RST that destroys our last response.
constexpr std::uint64_t kLingerMs = 2000;
// Draining: how long an idle keep-alive connection stays open for a request already on its way,
// and how long it then waits for the client's FIN (a shutdown is not held up by slow clients).
constexpr std::uint64_t kDrainIdleGraceMs = 500;
constexpr std::uint64_t kDrainLingerMs = 500;
// Draining: how often a connection that still has work checks that its client is still there.
constexpr std::uint64_t kDrainProbeMs = 500;
// ...and at most this many bytes, so a flooding client cannot keep us busy reading.
constexpr std::uint64_t kLingerBytes = 256 * 1024;
// RFC 9113 §3.4: what an HTTP/2 client with prior knowledge sends first.
constexpr std::string_view kH2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

bool status_has_body(int status) noexcept {
    return status >= 200 && status != 204 && status != 304;
}

}  // namespace

std::string_view allow_list(const MethodSet& allowed, std::span<char, 128> buf) noexcept {
    std::size_t n = 0;
    for (unsigned i = 0; i < kMethodCount; ++i) {
        auto method = static_cast<Method>(i);
        if (method != Method::Other && allowed.contains(method)) {
            std::string_view tok = method_token(method);
            if (n + tok.size() + 2 < buf.size()) {
                if (n > 0) {
                    buf[n++] = ',';
                    buf[n++] = ' ';
                }
                std::memcpy(buf.data() + n, tok.data(), tok.size());
                n += tok.size();
            }
        }
    }
    return {buf.data(), n};
}

void respond_from_route(const Route& route, Exchange& ex) {
    Response& r = ex.response();
    if (route.redirect) {
        r.set_status(route.redirect->status);
        r.add_header("Location", router::redirect_location(route, ex.request(), ex.arena()));
        return;
    }
    const DirectResponse& d = route.direct;
    r.set_status(d.status);
    r.set_body(d.body);
    if (!d.body.empty() && !d.content_type.empty()) {
        r.add_header("Content-Type", d.content_type);
    }
    for (const auto& h : d.headers) {
        r.add_header(h.first, h.second);
    }
}

bool Connection::h2_preface(const char* data, std::size_t len) const noexcept {
    return std::memcmp(data, kH2Preface.data(), std::min(len, kH2Preface.size())) == 0;
}

std::size_t Connection::active_bytes() noexcept { return sizeof(Active); }

Connection::Connection(ReactorImpl& reactor) noexcept : reactor_(reactor) {
    timer_.fire = &Connection::on_timer;
    timer_.owner = this;
}

Connection::~Connection() {
    std::free(partial_);
    delete h2_;   // only when the reactor is torn down with the connection still open
    delete tls_;
}

void Connection::open(int fd, ListenerSlot& listener, std::uint32_t slot, std::uint32_t generation) {
    fd_ = fd;
    listener_ = &listener;
    config_ = reactor_.pin(listener);
    routes_ = config().routes.get();
    slot_ = slot;
    generation_ = generation;
    state_ = config().tls ? State::Handshake : State::Head;
    recv_armed_ = false;
    send_inflight_ = false;
    close_after_send_ = false;
    close_noted_ = false;
    close_reason_ = CloseReason::Server;
    closing_ = false;
    draining_ = false;
    requests_ = 0;
    accepted_ms_ = reactor_.now_ms();
    last_activity_ms_ = accepted_ms_;
    head_started_ms_ = 0;
    drained_ = 0;
    partial_len_ = 0;
    out_len_ = 0;
    sending_len_ = 0;
    sent_ = 0;
    if (state_ == State::Handshake && !config().options.tls->detect && !tls_start()) {
        return;
    }
    rearm_recv();
    arm_timer();
}

// ---------------------------------------------------------------------------------------------
// Input

void Connection::rearm_recv() {
    // Held-back input at the limit keeps reading stopped (back-pressure) until it is consumed.
    if (recv_armed_ || closing_ || state_ == State::Closed || partial_len_ >= kMaxPendingInput || input_blocked_) {
        return;
    }
    recv_armed_ = true;
    reactor_.io().recv(fd_, io::pack(io::Op::Recv, generation_, slot_));
}

void Connection::on_recv(const io::Completion& c) {
    if (!c.more) {
        recv_armed_ = false;
    }
    if (c.res > 0) {
        auto bid = static_cast<std::uint16_t>(c.buffer);
        char* data = reactor_.io().buffers().data(bid);
        auto len = static_cast<std::size_t>(c.res);
        if (closing_ || state_ == State::Closed || state_ == State::Linger) {
            reactor_.io().buffers().release(bid);  // lingering: read and drop
            drained_ += len;
            if (state_ == State::Linger && drained_ > kLingerBytes) {
                close_now();
            }
        } else {
            last_activity_ms_ = reactor_.now_ms();
            if (state_ == State::Handshake && tls_ == nullptr && !detect_protocol(data, len)) {
                reactor_.io().buffers().release(bid);
            } else if (tls_ != nullptr) {
                tls_input(data, len);  // decrypts into buffers of its own
                reactor_.io().buffers().release(bid);
            } else {
                consume_input(data, len, bid);
            }
        }
        rearm_recv();  // in case the multishot ended on its own (e.g. CQ pressure)
    } else if (c.res == 0 || (c.res < 0 && c.res != -ENOBUFS && c.res != -ECANCELED)) {
        // Peer closed or the socket failed: nothing more can be answered.
        if (!closing_) {
            if (state_ == State::Handshake && tls_ != nullptr) {
                reactor_.metrics().tls_handshake_failures[kTlsFailEof].add();
            }
            note_close(c.res == 0 ? CloseReason::Client : CloseReason::Error);
            close_now();
        }
    } else if (c.res == -ENOBUFS) {
        reactor_.rearm_recv_later(this);
    } else if (c.res == -ECANCELED && !closing_) {
        rearm_recv();  // reading was stopped for back-pressure, which may be over already
    }
    maybe_recycle();
}

void Connection::consume_input(char* data, std::size_t len, std::uint16_t bid) {
    reactor_.metrics().bytes_received.add(len);
    if (h2_ != nullptr) {
        reactor_.own_buffer(bid);
        h2_input(data, len, bid);
        reactor_.put_buffer(bid);
        return;
    }
    if (partial_len_ > 0) {
        // Bytes are already waiting (a partial head, or input held back): keep order.
        stash_partial_head(data, len);
        reactor_.io().buffers().release(bid);
        process(partial_, partial_len_);
        return;
    }
    reactor_.own_buffer(bid);
    current_bid_ = bid;
    process(data, len);
    current_bid_ = -1;
    reactor_.put_buffer(bid);
}

void Connection::stash_partial_head(const char* p, std::size_t n) {
    if (n == 0) {
        return;
    }
    if (active_ != nullptr && !active_->detached) {
        detach_exchange();  // its views may point into partial_, which may move
    }
    if (partial_len_ + n > partial_cap_) {
        std::size_t cap = std::max<std::size_t>(partial_cap_ * 2, std::max<std::size_t>(4096, partial_len_ + n));
        auto* grown = static_cast<char*>(std::realloc(partial_, cap));
        if (grown == nullptr) {
            note_close(CloseReason::Error);
            close_now();
            return;
        }
        partial_ = grown;
        partial_cap_ = static_cast<std::uint32_t>(cap);
    }
    std::memmove(partial_ + partial_len_, p, n);
    partial_len_ += static_cast<std::uint32_t>(n);
}

// Processes `len` bytes at `data` (a receive buffer, or partial_ itself). What cannot be used now
// (an incomplete head, or input held back while an exchange runs) ends up at the start of
// partial_.
void Connection::process(char* data, std::size_t len) {
    const bool from_partial = data == partial_;
    if (from_partial) {
        current_bid_ = -1;  // these bytes are copies: forwarding them copies again
    }
    if (state_ == State::Head && requests_ == 0 && active_ == nullptr && tls_ == nullptr &&
        config().options.http2.enabled && h2_preface(data, len)) {
        // h2c with prior knowledge (RFC 9113 §3.3). The whole preface may not be here yet.
        if (len < kH2Preface.size()) {
            if (!from_partial) {
                stash_partial_head(data, len);
            }
            return;
        }
        partial_len_ = 0;
        if (h2_begin()) {
            h2_input(data, len, from_partial ? -1 : current_bid_);
        }
        return;
    }
    char* p = data;
    char* end = data + len;
    in_process_ = true;
    while (p < end && !closing_ && !input_blocked_ &&
           (state_ == State::Head || state_ == State::Body || state_ == State::Drain || state_ == State::Tunnel)) {
        if (state_ == State::Tunnel) {
            active_->proxy->tunnel_data(p, static_cast<std::size_t>(end - p), from_partial ? -1 : current_bid_);
            p = end;
            break;
        }
        if (state_ == State::Body && active_ != nullptr && active_->ex.route() != nullptr &&
            active_->ex.route()->proxy.upstream && active_->proxy == nullptr &&
            active_->phase < Phase::AwaitResponse) {
            break;  // a proxied body waits (held back) until its upstream request starts
        }
        if (state_ == State::Head) {
            if (active_ != nullptr || out_len_ >= kMaxPendingOutput) {
                break;  // responses go out in order: the next request waits
            }
            refresh_config();
            if (!process_head(p, end)) {
                break;
            }
        } else {
            process_body(p, end);
        }
    }
    in_process_ = false;
    if (active_ != nullptr && !active_->detached) {
        // The exchange outlives this call (paused, or its body is still arriving): its views
        // into the receive buffer and the reactor's header scratch must be copied now.
        detach_exchange();
    }
    if (closing_ || state_ == State::Linger || state_ == State::Closed) {
        partial_len_ = 0;
        flush();
        return;
    }
    const auto rest = static_cast<std::size_t>(end - p);
    if (from_partial) {
        if (p != partial_) {
            std::memmove(partial_, p, rest);
            partial_len_ = static_cast<std::uint32_t>(rest);
        }
    } else {
        stash_partial_head(p, rest);
    }
    if (partial_len_ == 0 && partial_cap_ > 16 * 1024) {
        std::free(partial_);  // do not keep a large buffer on an idle connection
        partial_ = nullptr;
        partial_cap_ = 0;
    }
    if (partial_len_ >= kMaxPendingInput && recv_armed_) {
        // The client keeps sending while we cannot consume: stop reading until we can.
        reactor_.io().cancel_recv(fd_, io::pack(io::Op::Recv, generation_, slot_));
    }
    flush();
}

// Parses one request head from [p, end). Returns false when it needs more bytes (or failed).
bool Connection::process_head(char*& p, char* end) {
    const HttpLimits& limits = config().options.limits;
    if (head_started_ms_ == 0) {
        head_started_ms_ = reactor_.now_ms();
        tighten_timer(head_started_ms_ + static_cast<std::uint64_t>(limits.request_head_timeout.count()));
    }
    http1::Limits lim{limits.max_request_head_bytes, limits.max_headers, limits.max_path_bytes};
    http1::RequestHead head;
    auto storage = reactor_.header_scratch(limits.max_headers);
    auto r = http1::parse_request_head({p, static_cast<std::size_t>(end - p)}, storage, lim, head);
    if (r.status == http1::ParseStatus::Incomplete) {
        return false;
    }
    if (r.status == http1::ParseStatus::Error) {
        local_error(r.error_status, r.reason, true);
        return false;
    }
    p += r.consumed;
    head_started_ms_ = 0;
    start_exchange(head, r.consumed);
    return true;
}

void Connection::process_body(char*& p, char* end) {
    while (p < end && (state_ == State::Body || state_ == State::Drain) && !closing_ && !input_blocked_) {
        auto step = body_.decode({p, static_cast<std::size_t>(end - p)});
        p += step.consumed;
        if (step.error_status != 0) {
            if (state_ == State::Body && active_ != nullptr && active_->phase < Phase::ResponseHeaders) {
                local_error(step.error_status, step.reason, true);
            } else {
                note_close(CloseReason::ProtocolError);
                close_now();
            }
            return;
        }
        if (state_ == State::Drain) {
            drained_ += step.data.size();
            if (drained_ > config().options.limits.max_drain_bytes) {
                close_now();
                return;
            }
            if (step.done) {
                state_ = State::Head;
                return;
            }
        } else {
            if (active_ != nullptr && active_->proxy != nullptr) {
                const char* raw = p - step.consumed;
                ProxyState* proxy = active_->proxy;
                deliver_body(step.data, step.done);
                if (active_ != nullptr && active_->proxy == proxy && state_ == State::Body) {
                    if (framed_upstream_body(active_->ex.route()->proxy)) {
                        proxy->request_body(raw, step.consumed, current_bid_, step.done);
                    } else {
                        if (!step.trailer.empty()) {
                            proxy->request_trailer_bytes(step.trailer);
                        }
                        proxy->request_body(step.data.data(), step.data.size(), current_bid_, step.done);
                    }
                }
            } else {
                deliver_body(step.data, step.done);
            }
            if (step.done && state_ == State::Body) {
                state_ = State::Head;
            }
            if (state_ != State::Body) {
                return;
            }
        }
        if (step.consumed == 0) {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exchanges

void Connection::start_exchange(http1::RequestHead& head, std::size_t head_bytes) {
    ++requests_;
    void* mem = reactor_.take_active_memory();
    active_ = new (mem) Active(*this, reactor_.blocks());
    active_->started_us = reactor_.now_us();
    active_->head_bytes = static_cast<std::uint32_t>(head_bytes);
    active_->queued_at_start = queued_;
    reactor_.metrics().in_flight.add();
    Active& a = *active_;
    Request& req = a.ex.mutable_request();
    req.method = head.method;
    req.method_name = head.method_name;
    req.version = head.version;
    req.scheme = tls_ != nullptr ? std::string_view("https") : head.scheme;
    req.authority = head.authority;
    req.path = head.path;
    req.query = head.query;
    req.raw_target = head.raw_target;
    req.headers = Headers(head.headers);
    req.has_body = head.body != http1::BodyKind::None;
    req.content_length = head.body == http1::BodyKind::Length ? static_cast<std::int64_t>(head.content_length) : -1;
    a.keep_alive = head.keep_alive;
    a.expect_continue = head.expect_continue;
    a.is_head = head.method == Method::Head;
    a.body_done = !req.has_body;

    if (head.body == http1::BodyKind::Length) {
        body_.reset_length(head.content_length);
    } else if (head.body == http1::BodyKind::Chunked) {
        body_.reset_chunked();
    }
    state_ = req.has_body ? State::Body : State::Head;

    if (tls_ != nullptr) {
        tls_->info.early_data = tls_->session.in_early_data();
        if (tls_->info.early_data && req.method != Method::Get && req.method != Method::Head &&
            req.method != Method::Options) {
            // RFC 8470 §5.2: 0-RTT data can be replayed; only safe methods are served from it.
            local_error(425, "request in early data", false);
            return;
        }
    }
    reactor_.exchange_started(a.ex, a.obs, config());
    // The TLS details are formatted (once per connection) only for tables that match on them.
    RouteMatch m = routes_->match(req, routes_->uses_client_cert() ? exchange_tls() : nullptr);
    if (m.route == nullptr) {
        if (m.allowed.empty()) {
            local_error(404, "no route", false);
        } else {
            char allow[128];
            local_error(405, "method not allowed", false, allow_list(m.allowed, allow));
        }
        return;
    }
    a.ex.set_route(m.route);
    // A route's own limit applies; without one, a locally answered route takes the listener's,
    // and a proxied one streams without a limit (uploads are the upstream's to judge).
    std::uint64_t limit = m.route->max_body_bytes;
    if (limit == 0) {
        limit = m.route->proxy.upstream ? ~std::uint64_t{0} : config().options.limits.max_body_bytes;
    }
    a.body_limit = limit;
    if (head.body == http1::BodyKind::Length && head.content_length > limit) {
        // RFC 9110 §15.5.14: refuse before reading; the unread body makes the connection unusable.
        local_error(413, "request body too large", true);
        return;
    }
    advance();
}

void Connection::advance() {
    Active* a = active_;
    if (a == nullptr) {
        return;
    }
    a->in_advance = true;
    const Route* route = a->ex.route();
    for (;;) {
        a->paused = false;
        a->resume_requested = false;
        switch (a->phase) {
            case Phase::RequestHeaders: {
                // A filter that paused may have answered before it resumed.
                Flow f = a->ex.responded() ? Flow::Respond : Flow::Continue;
                while (a->filter_index < route->filters.size() && f == Flow::Continue) {
                    f = route->filters[a->filter_index++]->on_request_headers(a->ex);
                }
                if (f == Flow::Respond) {
                    a->phase = Phase::ResponseHeaders;
                    a->filter_index = static_cast<std::uint16_t>(route->filters.size());
                    continue;
                }
                if (f == Flow::Pause) {
                    a->paused = true;
                    break;
                }
                a->phase = Phase::AwaitBody;
                continue;
            }
            case Phase::AwaitBody:
                // A configured response answers a complete request: its body is read (and
                // checked against the route's limit) first. Handlers decide for themselves.
                if (!route->handler && !route->proxy.upstream && !a->body_done) {
                    a->wants_body = true;
                    break;
                }
                a->phase = Phase::Action;
                continue;
            case Phase::Action: {
                a->phase = Phase::AwaitResponse;
                if (!route->handler && route->proxy.upstream) {
                    void* mem = a->arena.allocate(sizeof(ProxyState), alignof(ProxyState));
                    a->proxy = new (mem) ProxyState(*this, a->ex, a->obs, route->proxy, reactor_);
                    a->proxy->start();
                    continue;  // waits in AwaitResponse, or answers an error at once
                }
                if (route->handler) {
                    Flow f = route->handler(a->ex);
                    if (f == Flow::Pause && !a->resume_requested) {
                        a->paused = true;
                        break;
                    }
                    if (a->ex.response().status() == 0) {
                        a->ex.respond_static(500, "{\"error\":\"handler produced no response\"}\n",
                                             "application/json");
                    }
                } else {
                    respond_from_route(*route, a->ex);
                }
                a->phase = Phase::ResponseHeaders;
                a->filter_index = static_cast<std::uint16_t>(route->filters.size());
                continue;
            }
            case Phase::AwaitResponse:
                if (a->proxy != nullptr) {
                    break;  // the upstream answers through proxy_head()
                }
                if (a->ex.response().status() == 0) {
                    a->paused = true;
                    break;
                }
                a->phase = Phase::ResponseHeaders;
                a->filter_index = static_cast<std::uint16_t>(route->filters.size());
                continue;
            case Phase::ResponseHeaders: {
                Flow f = Flow::Continue;
                if (a->filter_index == route->filters.size()) {
                    ReactorObserver::echo(a->ex, a->obs);  // before the filters, which may edit it
                }
                // Response phases run in reverse order.
                while (a->filter_index > 0 && f != Flow::Pause) {
                    f = route->filters[--a->filter_index]->on_response_headers(a->ex);
                }
                if (f == Flow::Pause) {
                    a->paused = true;
                    break;
                }
                a->phase = Phase::Done;
                continue;
            }
            case Phase::ProxyHead:
            case Phase::Done:
            case Phase::Streaming:
                break;
        }
        if (a->paused && a->resume_requested) {
            continue;  // resume() was called from inside the callback that paused
        }
        break;
    }
    a->in_advance = false;
    if (a->phase == Phase::Done) {
        finish_response();
        return;
    }
    if ((a->paused || a->phase == Phase::AwaitBody) && a->wants_body && a->expect_continue && !a->body_started && !a->continue_sent) {
        send_continue();
    }
}

void Connection::deliver_body(std::span<const char> chunk, bool end) {
    Active* a = active_;
    if (a == nullptr) {
        return;
    }
    a->body_started = true;
    a->body_seen += chunk.size();
    if (a->body_seen > a->body_limit) {
        if (a->phase < Phase::ResponseHeaders) {
            local_error(413, "request body too large", true);
        } else {
            note_close(CloseReason::ProtocolError);
            close_now();
        }
        return;
    }
    if (end) {
        a->body_done = true;
    }
    const Route* route = a->ex.route();
    auto bytes = std::as_bytes(chunk);
    for (const auto& f : route->filters) {
        if (f->on_request_body(a->ex, bytes, end) == Flow::Respond) {
            a->phase = Phase::ResponseHeaders;
            a->filter_index = static_cast<std::uint16_t>(route->filters.size());
            advance();
            return;
        }
    }
    if (a->ex.body_reader()) {
        a->ex.body_reader()(bytes, end);
    }
    if (end && active_ == a && a->phase == Phase::AwaitBody) {
        advance();
    }
}

void Connection::send_continue() {
    active_->continue_sent = true;
    append("HTTP/1.1 100 Continue\r\n\r\n");
    flush();
}

// A local error response. With `close`, the connection closes after it (framing is unknown).
void Connection::local_error(int status, const char* reason, bool close, std::string_view allow) {
    if (close) {
        note_close(status == 408 ? CloseReason::Timeout : CloseReason::ProtocolError);
    }
    char body[192];
    int n = std::snprintf(body, sizeof body, "{\"error\":\"%s\"}", reason);
    const std::string_view text{body, static_cast<std::size_t>(std::max(n, 0))};
    if (active_ != nullptr && active_->paused) {
        // A handler still holds this exchange: answer without it, and let its resume() end it.
        active_->aborted = true;
        char* dst = reserve_out(256 + text.size());
        std::array<Header, 1> type{Header{"Content-Type", "application/json"}};
        std::size_t w = http1::write_response_head({dst, 256}, status, Headers(type), text.size(),
                                                   false, reactor_.date());
        std::memcpy(dst + w, text.data(), text.size());
        out_len_ += static_cast<std::uint32_t>(w + text.size());
        queued_ += w + text.size();
        close_after_send_ = true;
        state_ = State::Linger;
        if (!in_process_) {
            flush();
        }
        return;
    }
    if (active_ == nullptr) {
        void* mem = reactor_.take_active_memory();
        active_ = new (mem) Active(*this, reactor_.blocks());
        active_->started_us = reactor_.now_us();
        active_->ex.mutable_request().method = Method::Other;  // no request head could be read
        reactor_.metrics().in_flight.add();
        active_->body_done = true;
        active_->keep_alive = false;
        state_ = State::Head;
    }
    Active& a = *active_;
    a.ex.respond(status, text, "application/json");
    if (!allow.empty()) {
        a.ex.response().add_header("Allow", a.arena.copy(allow));
    }
    if (close) {
        a.keep_alive = false;
        close_after_send_ = true;
    }
    const Route* route = a.ex.route();
    a.phase = Phase::ResponseHeaders;
    a.filter_index = route != nullptr ? static_cast<std::uint16_t>(route->filters.size()) : 0;
    if (route == nullptr) {
        ReactorObserver::echo(a.ex, a.obs);  // no route's filters will: a 404 carries its id too
        a.phase = Phase::Done;
        finish_response();
    } else {
        advance();
    }
}

void Connection::finish_response() {
    Active& a = *active_;
    Response& r = a.ex.response();
    bool keep = keep_alive_allowed();
    if (keep && a.ex.request().version == Version::Http10) {
        r.add_header("Connection", "keep-alive");
    }
    std::string_view body = r.body();
    bool send_body = !a.is_head && status_has_body(r.status());
    std::size_t need = 256 + body.size();
    for (const Header& h : r.headers()) {
        need += h.name.size() + h.value.size() + 4;
    }
    char* dst = reserve_out(need);
    std::size_t n = http1::write_response_head({dst, need}, r.status(), r.headers(),
                                               status_has_body(r.status()) ? body.size() : 0, keep,
                                               reactor_.date());
    if (n == 0) {
        // A handler or filter set a header the wire cannot carry (CR, LF or NUL in a value, a
        // non-token name, an invalid status): never send it; answer 500 instead.
        log(LogLevel::Warn, "invalid response from route \"%s\": answering 500",
            a.ex.route() != nullptr ? a.ex.route()->name.c_str() : "");
        static constexpr std::string_view kBody = "{\"error\":\"invalid response\"}";
        static const std::array<Header, 1> kType{Header{"Content-Type", "application/json"}};
        keep = false;
        body = kBody;
        send_body = !a.is_head;
        n = http1::write_response_head({dst, need}, 500, Headers(kType), kBody.size(), false,
                                       reactor_.date());
    }
    out_len_ += static_cast<std::uint32_t>(n);
    queued_ += n;
    if (send_body && !body.empty()) {
        std::memcpy(out_ + out_len_, body.data(), body.size());
        out_len_ += static_cast<std::uint32_t>(body.size());
        queued_ += body.size();
    }
    complete_exchange(keep);
}

// Ends the exchange once its response is queued: on_log, then the connection goes on (or
// drains the unread body, or closes after the send).
void Connection::complete_exchange(bool keep) {
    Active& a = *active_;
    const HttpLimits& limits = config().options.limits;
    if (const Route* route = a.ex.route()) {
        for (const auto& f : route->filters) {
            f->on_log(a.ex);
        }
    }
    reactor_.exchange_ended(a.ex, {a.started_us, a.head_bytes + a.body_seen, queued_ - a.queued_at_start, a.proxy,
                                   &config(), &a.obs, this});
    if (!keep || draining_) {
        close_after_send_ = true;
    }
    const bool body_pending = !a.body_done && state_ == State::Body;
    end_exchange();
    tighten_timer(reactor_.now_ms() + static_cast<std::uint64_t>(limits.idle_timeout.count()));
    if (close_after_send_) {
        state_ = State::Linger;  // nothing more is read as requests
    } else if (body_pending) {
        state_ = State::Drain;
        drained_ = 0;
    }
    if (!in_process_) {
        flush();  // inside process(), one send goes out for the whole batch at its end
    }
}

bool Connection::keep_alive_allowed() const noexcept {
    const Active& a = *active_;
    const HttpLimits& limits = config().options.limits;
    const std::uint64_t now = reactor_.now_ms();
    // A plain client redirected to https has no more business on this connection.
    const bool redirecting = routes_ == config().plain_routes.get();
    bool keep = a.keep_alive && !close_after_send_ && !reactor_.stopping() && !draining_ && !redirecting &&
                (limits.max_requests_per_connection == 0 || requests_ < limits.max_requests_per_connection) &&
                now - accepted_ms_ < static_cast<std::uint64_t>(limits.max_connection_age.count());
    if (!a.body_done) {
        // The body is still on the wire. If the client waits for 100-continue it may never send
        // it; if it is longer than we are willing to drain, reading on is not worth it.
        const std::int64_t length = a.ex.request().content_length;
        const bool known_large =
            length >= 0 && static_cast<std::uint64_t>(length) - a.body_seen > limits.max_drain_bytes;
        if ((a.expect_continue && !a.body_started) || known_large) {
            keep = false;
        }
    }
    return keep;
}

void Connection::end_exchange() noexcept {
    if (active_ == nullptr) {
        return;
    }
    if (active_->held != nullptr) {
        reactor_.give_queue(active_->held);
    }
    if (active_->proxy != nullptr) {
        active_->proxy->~ProxyState();
        active_->proxy = nullptr;
        if (input_blocked_) {
            input_blocked_ = false;
            rearm_recv();
        }
    }
    active_->~Active();
    reactor_.give_active_memory(active_);
    reactor_.metrics().in_flight.sub();
    active_ = nullptr;
    last_activity_ms_ = reactor_.now_ms();
}

// Copies the request's views into the exchange arena so they survive the receive buffer.
void Connection::detach_exchange() {
    Active& a = *active_;
    a.detached = true;
    Request& req = a.ex.mutable_request();
    Arena& arena = a.arena;
    req.method_name = arena.copy(req.method_name);
    req.scheme = arena.copy(req.scheme);
    req.authority = arena.copy(req.authority);
    req.path = arena.copy(req.path);
    req.query = arena.copy(req.query);
    req.raw_target = arena.copy(req.raw_target);
    const std::size_t n = req.headers.size();
    auto* fields = static_cast<Header*>(arena.allocate(sizeof(Header) * (n + 1), alignof(Header)));
    std::size_t i = 0;
    for (const Header& h : req.headers) {
        fields[i++] = Header{arena.copy(h.name), arena.copy(h.value)};
    }
    req.headers = Headers({fields, n});
}

void Connection::exchange_resume() {
    Active* a = active_;
    if (a == nullptr) {
        return;
    }
    if (a->in_advance) {
        a->resume_requested = true;
        return;
    }
    if (a->aborted) {
        // The connection went away while the exchange was paused: drop it now.
        end_exchange();
        maybe_recycle();
        return;
    }
    if (!a->paused) {
        return;
    }
    if (a->phase == Phase::ProxyHead) {
        a->paused = false;
        release_proxy_head();
    } else {
        advance();
    }
    if ((active_ == nullptr || active_->proxy != nullptr) && !send_inflight_) {
        // Resumed from outside process() (a task): take up the input held back (the next
        // request, or a proxied body). From inside it, the running process() goes on by itself.
        resume_input();
    }
    rearm_recv();
    maybe_recycle();
}

void Connection::exchange_read_body() {
    Active* a = active_;
    if (a == nullptr) {
        return;
    }
    a->wants_body = true;
    if (a->expect_continue && !a->body_started && !a->continue_sent && !a->body_done && !a->in_advance) {
        send_continue();
    }
}

Reactor& Connection::exchange_reactor() noexcept { return reactor_; }

std::string_view Connection::exchange_client_address() noexcept {
    Active* a = active_;
    if (a == nullptr) {
        return {};
    }
    if (a->client_address.empty() && fetch_peer()) {
        char buf[64];
        if (const std::size_t n = net::format_ip(peer_family_, peer_, buf, sizeof buf); n != 0) {
            a->client_address = a->arena.copy(std::string_view(buf, n));
        }
    }
    return a->client_address;
}

std::size_t Connection::format_client_ip(char* buf, std::size_t len) noexcept {
    return fetch_peer() ? net::format_ip(peer_family_, peer_, buf, len) : 0;
}

bool Connection::exchange_aborted() const noexcept { return active_ != nullptr && active_->aborted; }

// ---------------------------------------------------------------------------------------------
// Timers and closing

void Connection::arm_timer() {
    const HttpLimits& limits = config().options.limits;
    std::uint64_t deadline;
    if (state_ == State::Linger) {
        deadline = last_activity_ms_ + (draining_ ? kDrainLingerMs : kLingerMs);
    } else if (state_ == State::Handshake) {
        deadline = accepted_ms_ + static_cast<std::uint64_t>(config().options.tls->handshake_timeout.count());
    } else if (state_ == State::H2) {
        // The session's own deadlines (zero-window stalls) tighten the timer as they appear.
        deadline = std::min(last_activity_ms_ + static_cast<std::uint64_t>(limits.idle_timeout.count()),
                            accepted_ms_ + static_cast<std::uint64_t>(limits.max_connection_age.count()));
    } else if (head_started_ms_ != 0 && active_ == nullptr) {
        deadline = head_started_ms_ + static_cast<std::uint64_t>(limits.request_head_timeout.count());
    } else {
        deadline = last_activity_ms_ + static_cast<std::uint64_t>(limits.idle_timeout.count());
        if (active_ == nullptr) {
            // An idle connection past its maximum age is closed then, not at its idle timeout.
            deadline = std::min(deadline, accepted_ms_ + static_cast<std::uint64_t>(limits.max_connection_age.count()));
        }
    }
    if (draining_ && state_ != State::Linger) {
        deadline = std::min(deadline, reactor_.now_ms() + kDrainProbeMs);
    }
    reactor_.timers().arm(timer_, deadline);
}

// Arms the timer for `deadline_ms` unless it already fires earlier (it re-arms itself from the
// connection's state when it does), so the common path rarely touches the wheel.
void Connection::tighten_timer(std::uint64_t deadline_ms) {
    if (!timer_.armed() || timer_.deadline_ms > deadline_ms) {
        reactor_.timers().arm(timer_, deadline_ms);
    }
}

void Connection::on_timer(detail::TimerWheel::Timer* t) {
    auto* self = static_cast<Connection*>(t->owner);
    self->timer_fired();
    self->maybe_recycle();
}

void Connection::timer_fired() {
    if (closing_ || state_ == State::Closed) {
        return;
    }
    if (draining_ && recv_armed_ && peer_gone()) {
        note_close(CloseReason::Client);
        close_now();
        return;
    }
    const HttpLimits& limits = config().options.limits;
    const std::uint64_t now = reactor_.now_ms();
    if (draining_ && now >= drain_idle_ms_ && active_ == nullptr && !send_inflight_ && partial_len_ == 0 &&
        head_started_ms_ == 0) {
        if (state_ == State::Head) {
            begin_linger();  // FIN, then read and drop until EOF: never a reset under a request
            return;
        }
        if (state_ == State::Handshake) {
            close_now();  // nothing was asked yet
            return;
        }
    }
    if (state_ == State::Linger) {
        if (now >= last_activity_ms_ + (draining_ ? kDrainLingerMs : kLingerMs)) {
            close_now();
        } else {
            arm_timer();
        }
        return;
    }
    if (state_ == State::H2) {
        const std::uint64_t next = h2_->check_timers(now);
        h2_check_done();
        if (!closing_ && state_ == State::H2) {
            arm_timer();
            if (next != 0) {
                tighten_timer(next);
            }
        }
        return;
    }
    if (state_ == State::Handshake) {
        // No first byte, or no finished handshake, in time: nothing was asked, nothing to answer.
        if (now >= accepted_ms_ + static_cast<std::uint64_t>(config().options.tls->handshake_timeout.count())) {
            if (tls_ != nullptr) {
                reactor_.metrics().tls_handshake_failures[kTlsFailTimeout].add();
            }
            note_close(CloseReason::Timeout);
            close_now();
        } else {
            arm_timer();
        }
        return;
    }
    if (active_ != nullptr && ((active_->paused && !send_inflight_) || active_->proxy != nullptr)) {
        arm_timer();  // a paused exchange is its handler's to finish; a proxied one has its own timers
        return;
    }
    if (head_started_ms_ != 0 && active_ == nullptr) {
        if (now >= head_started_ms_ + static_cast<std::uint64_t>(limits.request_head_timeout.count())) {
            // RFC 9110 §15.5.9: the request head did not arrive in time (slowloris).
            partial_len_ = 0;
            local_error(408, "request head timeout", true);
            return;
        }
        arm_timer();
        return;
    }
    const bool too_old =
        now >= accepted_ms_ + static_cast<std::uint64_t>(limits.max_connection_age.count());
    if (too_old && active_ == nullptr && state_ == State::Head && partial_len_ == 0 && !send_inflight_) {
        close_now();  // idle and past its maximum age: no request is lost
        return;
    }
    if (now >= last_activity_ms_ + static_cast<std::uint64_t>(limits.idle_timeout.count())) {
        if (state_ == State::Body && active_ != nullptr && active_->phase < Phase::ResponseHeaders) {
            local_error(408, "request body timeout", true);
        } else {
            note_close(CloseReason::Timeout);
            close_now();
        }
        return;
    }
    arm_timer();
}

// Asks the socket itself whether the client left. A multishot receive parked in the kernel
// sometimes misses the end of a connection reset or closed right after data arrived (seen on
// Linux 6.18 under load: the receive stays armed on a socket already closed), and a drain would
// then wait for that client until its deadline. A pending end reads as 0, a reset as an error.
bool Connection::peer_gone() const noexcept {
    char byte;
    const ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

void Connection::drain() noexcept {
    if (closing_ || state_ == State::Closed || draining_) {
        return;
    }
    draining_ = true;
    note_close(CloseReason::Drain);
    if (state_ == State::H2) {
        // The final GOAWAY follows after the same grace an idle HTTP/1.1 connection gets: time
        // for streams the client sent before it saw the notice.
        h2_->begin_shutdown(reactor_.now_ms() + kDrainIdleGraceMs);
        tighten_timer(reactor_.now_ms() + kDrainIdleGraceMs);
        return;
    }
    // A request may already be on the wire towards an idle connection: it gets a grace to
    // arrive and be answered (with Connection: close) before the connection is closed.
    drain_idle_ms_ = reactor_.now_ms() + kDrainIdleGraceMs;
    tighten_timer(drain_idle_ms_);
}

void Connection::refresh_config() noexcept {
    ListenerConfig* next = listener_->config;
    if (next == config_ || listener_->removed) {
        return;
    }
    const bool plain = routes_ == config().plain_routes.get();
    ListenerConfig* previous = config_;
    config_ = reactor_.pin(*listener_);
    routes_ = plain && config().plain_routes ? config().plain_routes.get() : config().routes.get();
    reactor_.unpin(previous);
}

const ListenerShared& Connection::config() const noexcept { return *config_->shared; }

void Connection::close_now() noexcept {
    if (closing_ || state_ == State::Closed) {
        return;
    }
    closing_ = true;
    state_ = State::Closed;
    reactor_.timers().cancel(timer_);
    if (h2_ != nullptr) {
        h2_->abort_all();
    }
    if (active_ != nullptr) {
        if (active_->paused) {
            active_->aborted = true;  // its handler still holds it: ended by resume()
        } else {
            end_exchange();
        }
    }
    if (queue_ != nullptr && !send_inflight_) {
        reactor_.give_queue(queue_);
        queue_ = nullptr;
    }
    if (recv_armed_ || send_inflight_) {
        reactor_.io().cancel(fd_);
    }
}

bool Connection::recyclable() const noexcept {
    return closing_ && !recv_armed_ && !send_inflight_ && active_ == nullptr && (h2_ == nullptr || h2_->streams() == 0);
}

void Connection::maybe_recycle() noexcept {
    // Never from inside process(): its caller still uses this object and recycles it after.
    if (!recyclable() || fd_ < 0 || in_process_) {
        return;
    }
    ::close(fd_);
    fd_ = -1;
    delete h2_;
    h2_ = nullptr;
    release_out(reactor_, out_, out_cap_);
    release_out(reactor_, sending_, sending_cap_);
    if (queue_ != nullptr) {
        reactor_.give_queue(queue_);
        queue_ = nullptr;
    }
    queue_send_ = false;
    input_blocked_ = false;
    peer_family_ = 0;
    tls_release();
    out_len_ = 0;
    sending_len_ = 0;
    partial_len_ = 0;
    if (partial_cap_ > 16 * 1024) {
        std::free(partial_);
        partial_ = nullptr;
        partial_cap_ = 0;
    }
    routes_ = nullptr;
    reactor_.connection_closed(this);
}

}  // namespace blitz::server

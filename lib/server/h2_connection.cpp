// HTTP/2 downstream: the session a Connection hands its plaintext to after the preface (or ALPN
// h2), and the streams that carry exchanges through the same routes, filters and proxy as
// HTTP/1.1.

#include "server/h2_connection.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>
#include <new>

#include <blitz/log.hpp>

#include "server/connection.hpp"
#include "server/gateway_error.hpp"
#include "server/reactor.hpp"
#include "server/route_response.hpp"
#include "server/send_queue.hpp"
#include "server/tls_state.hpp"

namespace blitz::server {

namespace {

// Output queued on the connection beyond this stops reading frames until the client reads:
// a client that sends requests (or PINGs) without reading their answers cannot make us buffer
// without bound (CVE-2019-9517).
constexpr std::uint64_t kMaxConnectionBacklog = 256 * 1024;

bool status_has_body(int status) noexcept { return status >= 200 && status != 204 && status != 304; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// H2Stream

H2Stream::H2Stream(H2Session& session, detail::BlockPool& blocks) noexcept
    : session_(session),
      config_(session.connection().reactor_.pin(*session.connection().listener_)),
      arena_(&blocks),
      ex_(*this, arena_) {
    arena = &arena_;
    session.connection().reactor_.metrics().in_flight.add();
    session.connection().reactor_.metrics().h2_streams.add();
}

H2Stream::~H2Stream() {
    end_exchange();
    ReactorImpl& reactor = session_.connection().reactor_;
    for (SendQueue** q : {&body_, &held_}) {
        if (*q != nullptr) {
            (*q)->release_all();
            reactor.give_queue(*q);
            *q = nullptr;
        }
    }
    reactor.unpin(config_);
    reactor.metrics().in_flight.sub();
}

std::size_t H2Stream::bytes() noexcept { return sizeof(H2Stream); }

SendQueue& H2Stream::body_queue() {
    if (body_ == nullptr) {
        body_ = session_.connection().reactor_.take_queue();
    }
    return *body_;
}

void H2Stream::start(http2::RequestHead& head, int status, const char* reason) {
    Connection& conn = session_.connection();
    started_us_ = conn.reactor_.now_us();
    Request& req = ex_.mutable_request();
    req.method = head.method;
    req.method_name = head.method_name;
    req.version = Version::Http2;
    // The scheme the connection really has (the client's :scheme is not trusted for
    // X-Forwarded-Proto or redirects).
    req.scheme = conn.tls_ != nullptr ? std::string_view("https") : std::string_view("http");
    req.authority = head.authority;
    req.path = head.path;
    req.query = head.query;
    req.raw_target = head.raw_target;
    req.headers = Headers(head.headers);
    req.has_body = !head.end_stream;
    req.content_length = head.content_length;
    body_done_ = head.end_stream;
    is_head_ = head.method == Method::Head;
    chunked_ = req.has_body && head.content_length < 0;
    // RFC 9110 §10.1.1: the client holds its body back until 100 (or a final status).
    expect_continue_ = req.has_body && iequals(req.headers.get("expect"), "100-continue");
    if (status != 0) {
        local_error(status, reason);
        return;
    }
    if (conn.tls_ != nullptr && conn.tls_->session.in_early_data() && req.method != Method::Get &&
        req.method != Method::Head && req.method != Method::Options) {
        // RFC 8470 §5.2: only safe methods are served from replayable early data.
        local_error(425, "request in early data");
        return;
    }
    const ListenerShared& config = *config_->shared;
    conn.reactor_.exchange_started(ex_, obs_, config);
    // A plaintext client redirected to https (h2c on a detecting listener) stays redirected.
    const bool plain = conn.routes_ == conn.config().plain_routes.get() && config.plain_routes;
    const RouteTable& table = *(plain ? config.plain_routes : config.routes);
    // The TLS details are formatted (once per connection) only for tables that match on them.
    RouteMatch m = table.match(req, table.uses_client_cert() ? conn.exchange_tls() : nullptr);
    if (m.route == nullptr) {
        if (m.allowed.empty()) {
            local_error(404, "no route");
        } else {
            char buf[128];
            const std::string_view allow = allow_list(m.allowed, buf);
            local_error(405, "method not allowed", arena_.copy(allow));
        }
        return;
    }
    ex_.set_route(m.route);
    std::uint64_t limit = m.route->max_body_bytes;
    if (limit == 0) {
        limit = m.route->proxy.upstream ? ~std::uint64_t{0} : config.options.limits.max_body_bytes;
    }
    body_limit_ = limit;
    if (head.content_length >= 0 && static_cast<std::uint64_t>(head.content_length) > limit) {
        local_error(413, "request body too large");
        return;
    }
    advance();
}

void H2Stream::advance() {
    const Route* route = ex_.route();
    in_advance_ = true;
    for (;;) {
        paused_ = false;
        resume_requested_ = false;
        switch (phase_) {
            case Phase::RequestHeaders: {
                // A filter that paused may have answered before it resumed.
                Flow f = ex_.responded() ? Flow::Respond : Flow::Continue;
                while (filter_index_ < route->filters.size() && f == Flow::Continue) {
                    f = route->filters[filter_index_++]->on_request_headers(ex_);
                }
                if (f == Flow::Respond) {
                    phase_ = Phase::ResponseHeaders;
                    filter_index_ = static_cast<std::uint16_t>(route->filters.size());
                    continue;
                }
                if (f == Flow::Pause) {
                    paused_ = true;
                    break;
                }
                phase_ = Phase::AwaitBody;
                continue;
            }
            case Phase::AwaitBody:
                if (!route->handler && !route->proxy.upstream && !body_done_) {
                    send_continue();
                    break;  // a configured response answers the complete request
                }
                phase_ = Phase::Action;
                continue;
            case Phase::Action: {
                phase_ = Phase::AwaitResponse;
                if (!route->handler && route->proxy.upstream) {
                    void* mem = arena_.allocate(sizeof(ProxyState), alignof(ProxyState));
                    proxy_ = new (mem) ProxyState(*this, ex_, obs_, route->proxy, session_.connection().reactor_);
                    ProxyState* p = proxy_;
                    p->start();
                    if (proxy_ == p && held_ != nullptr) {
                        // The body (and trailers) that came while request filters ran.
                        if (!request_trailers_.empty()) {
                            p->request_trailers(request_trailers_);
                        }
                        p->request_body_from(*held_, body_done_);
                    }
                    continue;
                }
                if (route->handler) {
                    Flow f = route->handler(ex_);
                    if (f == Flow::Pause && !resume_requested_) {
                        paused_ = true;
                        break;
                    }
                    if (ex_.response().status() == 0) {
                        ex_.respond_static(500, "{\"error\":\"handler produced no response\"}\n", "application/json");
                    }
                } else {
                    respond_from_route(*route, ex_);
                }
                phase_ = Phase::ResponseHeaders;
                filter_index_ = static_cast<std::uint16_t>(route->filters.size());
                continue;
            }
            case Phase::AwaitResponse:
                if (proxy_ != nullptr) {
                    break;
                }
                if (ex_.response().status() == 0) {
                    paused_ = true;
                    break;
                }
                phase_ = Phase::ResponseHeaders;
                filter_index_ = static_cast<std::uint16_t>(route->filters.size());
                continue;
            case Phase::ResponseHeaders: {
                Flow f = Flow::Continue;
                if (filter_index_ == route->filters.size()) {
                    ReactorObserver::echo(ex_, obs_);  // before the filters, which may edit it
                }
                while (filter_index_ > 0 && f != Flow::Pause) {
                    f = route->filters[--filter_index_]->on_response_headers(ex_);
                }
                if (f == Flow::Pause) {
                    paused_ = true;
                    break;
                }
                phase_ = Phase::Done;
                continue;
            }
            case Phase::ProxyHead:
            case Phase::Done:
            case Phase::Streaming:
                break;
        }
        if (paused_ && resume_requested_) {
            continue;
        }
        break;
    }
    in_advance_ = false;
    if (phase_ == Phase::Done && !head_sent_) {
        finish_response();
    }
}

void H2Stream::local_error(int status, const char* reason, std::string_view allow) {
    char body[192];
    const int n = std::snprintf(body, sizeof body, "{\"error\":\"%s\"}", reason);
    ex_.respond(status, {body, static_cast<std::size_t>(std::max(n, 0))}, "application/json");
    if (!allow.empty()) {
        ex_.response().add_header("Allow", allow);
    }
    const Route* route = ex_.route();
    if (route == nullptr) {
        ReactorObserver::echo(ex_, obs_);  // no route's filters will: a 404 carries its id too
        phase_ = Phase::Done;
        finish_response();
        return;
    }
    phase_ = Phase::ResponseHeaders;
    filter_index_ = static_cast<std::uint16_t>(route->filters.size());
    advance();
}

void H2Stream::finish_response() {
    head_sent_ = true;
    if (closed_) {
        complete();  // the client reset the stream meanwhile
        return;
    }
    Response& r = ex_.response();
    http2::ServerSession& codec = session_.codec();
    std::string_view body = r.body();
    bool has_body = !is_head_ && status_has_body(r.status()) && !body.empty();
    // Date and Content-Length go straight into the head, as HTTP/1.1 writes them.
    const http2::ServerFields own{
        session_.connection().reactor_.date(),
        status_has_body(r.status()) ? static_cast<std::int64_t>(body.size()) : -1};
    bool body_sent = false;
    if (!(has_body ? codec.respond_whole(*this, r.status(), r.headers(), body, own, body_sent)
                   : codec.respond(*this, r.status(), r.headers(), false, own))) {
        // A handler or filter set a field HTTP/2 cannot carry: never send it; answer 500.
        log(LogLevel::Warn, "invalid response from route \"%s\": answering 500",
            ex_.route() != nullptr ? ex_.route()->name.c_str() : "");
        static constexpr std::string_view kBody = "{\"error\":\"invalid response\"}";
        static const std::array<Header, 2> kFields{Header{"content-type", "application/json"},
                                                   Header{"content-length", "28"}};
        body = kBody;
        has_body = !is_head_;
        if (!codec.respond(*this, 500, Headers(kFields), has_body)) {
            codec.reset(*this, http2::kInternalError);
            complete();
            return;
        }
    }
    if (has_body) {
        bytes_sent_ += body.size();
        if (!body_sent) {
            body_queue().push_copy(body.data(), static_cast<std::uint32_t>(body.size()));
            watch_stall();
        }
    }
    body_end_ = true;
    complete();
}

// Ends the exchange once its response is handed to the codec: on_log, then the stream only
// waits for its frames to go out.
void H2Stream::complete() {
    if (exchange_done_) {
        return;
    }
    if (const Route* route = ex_.route()) {
        for (const auto& f : route->filters) {
            f->on_log(ex_);
        }
    }
    ReactorImpl& reactor = session_.connection().reactor_;
    reactor.exchange_ended(ex_, {started_us_, blocks_in + bytes_received_, blocks_out + bytes_sent_, proxy_,
                                 config_->shared.get(), &obs_, &session_.connection()});
    end_exchange();
    session_.stream_done(*this);
}

void H2Stream::end_exchange() noexcept {
    if (exchange_done_) {
        return;
    }
    exchange_done_ = true;
    drop_proxy();
}

void H2Stream::drop_proxy() noexcept {
    if (proxy_ != nullptr) {
        ProxyState* p = proxy_;
        proxy_ = nullptr;
        p->~ProxyState();
    }
}

void H2Stream::request_data(const char* data, std::size_t len, std::int32_t bid) {
    bytes_received_ += len;
    if (exchange_done_) {
        give_window(len);
        return;
    }
    unconsumed_ += len;
    deliver_body({data, len}, false);
    if (!exchange_done_ && ex_.route() != nullptr && ex_.route()->proxy.upstream) {
        // Framed for the upstream without copying the payload; until the proxy starts (request
        // filters still run) the bytes wait here, bounded by the stream window.
        SendQueue& q = upstream_body();
        const bool chunked = chunked_ && framed_upstream_body(ex_.route()->proxy);
        if (chunked) {
            char hd[20];
            const int n = std::snprintf(hd, sizeof hd, "%zx\r\n", len);
            q.push_copy(hd, static_cast<std::uint32_t>(n));
        }
        if (bid >= 0) {
            q.push_buffer(data, static_cast<std::uint32_t>(len), static_cast<std::uint16_t>(bid));
        } else {
            q.push_copy(data, static_cast<std::uint32_t>(len));
        }
        if (chunked) {
            q.push_copy("\r\n", 2);
        }
        if (proxy_ == nullptr) {
            return;
        }
        proxy_->request_body_from(q, false);
    }
    if (!input_blocked_) {
        give_window(unconsumed_);
    }
}

void H2Stream::request_end(std::span<const Header> trailers) {
    body_done_ = true;
    if (exchange_done_) {
        return;
    }
    if (error_status != 0) {
        // The trailers broke the head limits (the codec kept only part of them): the request
        // is refused like an oversized head, or cut if its answer has begun.
        session_.limit_hit(H2StreamLimit::RequestHead);
        if (!head_sent_ && phase_ < Phase::ResponseHeaders) {
            drop_proxy();
            local_error(431, "request trailer fields too large");
        } else {
            session_.codec().reset(*this, http2::kCancel);
            complete();
        }
        return;
    }
    deliver_body({}, true);
    if (exchange_done_) {
        return;
    }
    if (ex_.route() != nullptr && ex_.route()->proxy.upstream) {
        SendQueue& q = upstream_body();
        if (chunked_ && framed_upstream_body(ex_.route()->proxy)) {
            // RFC 9112 §7.1.2: the trailers travel in the last chunk's trailer section. A body
            // with content-length goes upstream as it is, so its trailers are dropped.
            q.push_copy("0\r\n", 3);
            for (const Header& h : trailers) {
                if (!http1::trailer_forbidden(h.name)) {
                    q.push_copy(h.name.data(), static_cast<std::uint32_t>(h.name.size()));
                    q.push_copy(": ", 2);
                    q.push_copy(h.value.data(), static_cast<std::uint32_t>(h.value.size()));
                    q.push_copy("\r\n", 2);
                }
            }
            q.push_copy("\r\n", 2);
        } else if (!framed_upstream_body(ex_.route()->proxy)) {
            request_trailers_ = trailers;  // an HTTP/2 upstream gets them as HEADERS
        }
        if (proxy_ != nullptr) {
            if (!request_trailers_.empty()) {
                proxy_->request_trailers(request_trailers_);
            }
            proxy_->request_body_from(q, true);
        }
    } else if (phase_ == Phase::AwaitBody && !paused_) {
        advance();
    }
}

SendQueue& H2Stream::upstream_body() {
    if (held_ == nullptr) {
        held_ = session_.connection().reactor_.take_queue();
    }
    return *held_;
}

void H2Stream::deliver_body(std::span<const char> chunk, bool end) {
    body_seen_ += chunk.size();
    if (body_seen_ > body_limit_) {
        if (!head_sent_ && phase_ < Phase::ResponseHeaders) {
            drop_proxy();
            local_error(413, "request body too large");
        } else {
            session_.codec().reset(*this, http2::kCancel);
            complete();
        }
        return;
    }
    const Route* route = ex_.route();
    if (route == nullptr) {
        return;
    }
    auto bytes = std::as_bytes(chunk);
    for (const auto& f : route->filters) {
        if (f->on_request_body(ex_, bytes, end) == Flow::Respond) {
            if (!head_sent_) {
                drop_proxy();
            }
            phase_ = Phase::ResponseHeaders;
            filter_index_ = static_cast<std::uint16_t>(route->filters.size());
            advance();
            return;
        }
    }
    if (ex_.body_reader()) {
        ex_.body_reader()(bytes, end);
    }
}

void H2Stream::send_continue() {
    if (!expect_continue_ || continue_sent_ || head_sent_ || closed_ || body_done_ || bytes_received_ > 0) {
        return;
    }
    continue_sent_ = true;
    (void)session_.codec().informational(*this, 100);
    if (!in_advance_) {
        session_.flush();
    }
}

void H2Stream::give_window(std::size_t n) noexcept {
    if (n == 0) {
        return;
    }
    session_.codec().consume(*this, n);
    unconsumed_ -= std::min<std::uint64_t>(unconsumed_, n);
}

void H2Stream::codec_closed() {
    closed_ = true;
    if (unconsumed_ > 0) {
        session_.codec().consume_connection(unconsumed_);
        unconsumed_ = 0;
    }
    if (!exchange_done_) {
        if (paused_) {
            aborted_ = true;  // its handler still holds it: ended by resume()
        } else {
            end_exchange();
        }
    }
    session_.stream_done(*this);
}

std::size_t H2Stream::body_ready(std::size_t max, bool& last) noexcept {
    const std::uint64_t pending = body_ != nullptr ? body_->bytes() : 0;
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(pending, max));
    last = body_end_ && n == pending;
    return n;
}

void H2Stream::write_data(SendQueue& out, std::size_t len) {
    if (len > 0) {
        body_->move_to(out, static_cast<std::uint32_t>(len));
    }
    stalled_since_ms_ = 0;
}

void H2Stream::drained() {
    if (proxy_ != nullptr) {
        ProxyState* p = proxy_;
        p->downstream_drained();
    }
}

// ---- Downstream

bool H2Stream::peer_trusted() noexcept { return session_.connection().peer_trusted(); }

std::string_view H2Stream::client_cert_xfcc() noexcept { return session_.connection().client_cert_xfcc(); }

void H2Stream::proxy_error(int status, const char* reason, const char* cause) {
    respond_gateway_error(ex_, status, reason, cause);
    const Route* route = ex_.route();
    phase_ = Phase::ResponseHeaders;
    filter_index_ = static_cast<std::uint16_t>(route->filters.size());
    if (!in_advance_) {
        advance();
        session_.flush();
    }
}

HeadOutcome H2Stream::proxy_head(const http1::ResponseHead& head, bool /*upgrade*/) {
    if (closed_) {
        head_sent_ = true;
        phase_ = Phase::Streaming;
        return {};
    }
    Response& r = ex_.response();
    const Headers upstream_fields(head.headers);
    r.set_status(head.status);
    const Route* route = ex_.route();
    // The fields view the upstream's receive buffer; they are copied for filters that read
    // them later (on_log, or after holding the head), as HTTP/1.1 does.
    const bool copy = !route->filters.empty();
    for (const Header& h : upstream_fields) {
        if (!http1::is_hop_by_hop(h.name, upstream_fields)) {
            if (copy) {
                r.add_header(arena_.copy(h.name), arena_.copy(h.value));
            } else {
                r.add_header(h.name, h.value);
            }
        }
    }
    if (route->proxy.via) {
        r.add_header("Via", "2 blitz");
    }
    ReactorObserver::echo(ex_, obs_);
    upstream_body_ = head.body != http1::Framing::None;
    phase_ = Phase::ProxyHead;
    filter_index_ = static_cast<std::uint16_t>(route->filters.size());
    switch (proxy_filters()) {
        case Flow::Pause:
            return {};
        case Flow::Respond:
            return {.replaced = true};
        case Flow::Continue:
            break;
    }
    if (!send_proxied_head()) {
        return {.replaced = true};  // by the 502 set in its place
    }
    return {};  // bodies arrive decoded: DATA frames carry the framing
}

Flow H2Stream::proxy_filters() {
    const Flow f = run_response_filters(ex_, {filter_index_, in_advance_, resume_requested_}, false);
    paused_ = f == Flow::Pause;
    return f;
}

// Returns false when the head cannot be sent (a filter set a field HTTP/2 cannot carry, or
// the stream is closing): the response is then a 502 answered in the upstream's place, as the
// filters' would be, and the upstream is not read on.
bool H2Stream::send_proxied_head() {
    const Response& r = ex_.response();
    const bool has_body = !is_head_ && status_has_body(r.status()) && upstream_body_;
    if (!session_.codec().respond(*this, r.status(), r.headers(), has_body)) {
        log(LogLevel::Warn, "route \"%s\": upstream response head cannot be sent over HTTP/2; answering 502",
            ex_.route()->name.c_str());
        respond_gateway_error(ex_, 502, "invalid upstream response", "bad_response");
        return false;
    }
    head_sent_ = true;
    phase_ = Phase::Streaming;
    session_.connection().flush_later();  // with the body bytes that follow in this turn
    return true;
}

void H2Stream::proxy_replaced() {
    phase_ = Phase::Done;
    finish_response();  // ends the exchange: its ProxyState drops the upstream's response
    session_.flush();
}

// The filter that held a proxied response's head resumed: the other filters run, then the
// head goes out and the body bytes that arrived meanwhile follow, or a filter's answer does.
void H2Stream::release_proxy_head() {
    const Flow f = proxy_filters();
    if (f == Flow::Pause) {
        return;
    }
    if (f == Flow::Respond || !send_proxied_head()) {
        if (body_ != nullptr) {
            body_->release_all();
        }
        drop_proxy();
        phase_ = Phase::Done;
        finish_response();
        return;
    }
    if (body_ != nullptr && body_->bytes() > 0) {
        bytes_sent_ += body_->bytes();
        session_.codec().resume_body(*this);
        watch_stall();
    }
    if (held_end_) {
        proxy_done(held_clean_);
        return;
    }
    proxy_->response_released();  // the caller flushes
}

void H2Stream::proxy_body(const char* data, std::uint32_t len, std::int32_t bid) {
    if (closed_ || len == 0) {
        return;
    }
    SendQueue& q = body_queue();
    if (bid >= 0) {
        q.push_buffer(data, len, static_cast<std::uint16_t>(bid));
    } else {
        q.push_copy(data, len);
    }
    if (phase_ == Phase::ProxyHead) {
        return;  // a filter holds the head: the bytes wait in body_ (the upstream is not read)
    }
    bytes_sent_ += len;
    session_.codec().resume_body(*this);
    watch_stall();
    session_.connection().flush_later();
}

// Body bytes wait on a closed stream window: the connection's timer checks for a stall once
// zero_window_timeout_ms could have passed.
void H2Stream::watch_stall() {
    if (session_.codec().send_window(*this) > 0) {
        return;
    }
    Connection& c = session_.connection();
    const auto timeout = static_cast<std::uint64_t>(c.config().options.http2.zero_window_timeout.count());
    c.tighten_timer(c.reactor_.now_ms() + timeout);
}

void H2Stream::proxy_done(bool clean) {
    if (phase_ == Phase::ProxyHead) {
        held_end_ = true;  // told when the held head goes out
        held_clean_ = clean;
        return;
    }
    if (!clean && !closed_) {
        // A cut response must not look complete to the client.
        session_.codec().reset(*this, http2::kInternalError);
    } else {
        body_end_ = true;
        session_.codec().resume_body(*this);
    }
    complete();
    session_.flush();
}

// The upstream's trailer fields, as the last HEADERS frame of the stream. Fields that may
// not travel in a trailer section are left out (RFC 9110 §6.5.1); the codec lower-cases the
// names and drops what HTTP/2 cannot carry.
void H2Stream::proxy_trailers(Headers fields) {
    auto* kept = static_cast<Header*>(arena_.allocate(sizeof(Header) * fields.size(), alignof(Header)));
    std::size_t n = 0;
    for (const Header& h : fields) {
        if (!http1::trailer_forbidden(h.name)) {
            kept[n++] = h;
        }
    }
    response_trailers = Headers({kept, n});
}

void H2Stream::proxy_unblock_input() {
    input_blocked_ = false;
    give_window(unconsumed_);
    session_.flush();
}

std::uint64_t H2Stream::response_backlog() const noexcept {
    if (phase_ == Phase::ProxyHead) {
        return kHeldBacklog;
    }
    return (body_ != nullptr ? body_->bytes() : 0) + session_.connection().output_backlog();
}

// ---- ExchangeDriver

void H2Stream::exchange_resume() {
    if (in_advance_) {
        resume_requested_ = true;
        return;
    }
    if (aborted_) {
        // The connection went away while the exchange was paused: drop it now.
        paused_ = false;
        end_exchange();
        Connection& c = session_.connection();
        session_.stream_done(*this);  // may free this stream
        c.maybe_recycle();
        return;
    }
    if (!paused_) {
        return;
    }
    if (phase_ == Phase::ProxyHead) {
        paused_ = false;
        release_proxy_head();
    } else {
        advance();
    }
    session_.flush();
}

void H2Stream::exchange_read_body() { send_continue(); }

Reactor& H2Stream::exchange_reactor() noexcept { return session_.connection().reactor_; }

std::string_view H2Stream::exchange_client_address() noexcept {
    if (client_address_.empty()) {
        Connection& c = session_.connection();
        char buf[64];
        if (c.fetch_peer() && net::format_ip(c.peer_family_, c.peer_, buf, sizeof buf) != 0) {
            client_address_ = arena_.copy(buf);
        }
    }
    return client_address_;
}

const TlsInfo* H2Stream::exchange_tls() noexcept { return session_.connection().exchange_tls(); }

// ---------------------------------------------------------------------------------------------
// H2Session

H2Session::H2Session(Connection& conn, const http2::Limits& limits) noexcept : conn_(conn), codec_(*this, limits) {}

H2Session::~H2Session() { abort_all(); }

bool H2Session::start() { return codec_.start(); }

void H2Session::input(const char* data, std::size_t len, std::int32_t bid) {
    ++depth_;
    bid_ = bid;
    const bool ok = codec_.receive(data, len, conn_.reactor_.now_ms());
    bid_ = -1;
    if (!ok && codec_.flood() != http2::Flood::None) {
        const std::string_view kind = http2::flood_name(codec_.flood());
        log(LogLevel::Info, "http2: %.*s flood from a client; GOAWAY ENHANCE_YOUR_CALM", static_cast<int>(kind.size()),
            kind.data());
        conn_.reactor_.metrics().h2_floods[static_cast<std::size_t>(codec_.flood()) - 1].add();
        conn_.note_close(CloseReason::Flood);
    } else if (!ok) {
        conn_.note_close(CloseReason::ProtocolError);
    }
    --depth_;
    flush();
    if (conn_.output_backlog() >= kMaxConnectionBacklog) {
        conn_.proxy_block_input();  // read on once the client took its answers
    }
}

void H2Session::flush() {
    ++depth_;
    if (!codec_.send() && !codec_.going_away()) {
        codec_.terminate(http2::kInternalError);
        (void)codec_.send();
    }
    --depth_;
    conn_.flush();
    reap();
}

void H2Session::sent() {
    ++depth_;
    for (H2Stream* s = head_; s != nullptr; s = s->next_) {
        s->drained();
    }
    --depth_;
    if (conn_.input_blocked_ && conn_.output_backlog() < kMaxConnectionBacklog / 2) {
        conn_.proxy_unblock_input();
    }
    flush();
}

std::uint64_t H2Session::check_timers(std::uint64_t now_ms) {
    const Http2Options& h2 = conn_.config().options.http2;
    const HttpLimits& limits = conn_.config().options.limits;
    std::uint64_t next = 0;
    auto earliest = [&next](std::uint64_t t) { next = next == 0 ? t : std::min(next, t); };
    ++depth_;
    for (H2Stream* s = head_; s != nullptr; s = s->next_) {
        if (s->closed_ || s->body_ == nullptr || s->body_->bytes() == 0 || codec_.send_window(*s) > 0) {
            s->stalled_since_ms_ = 0;
            continue;
        }
        if (s->stalled_since_ms_ == 0) {
            s->stalled_since_ms_ = now_ms;
        }
        const std::uint64_t due = s->stalled_since_ms_ + static_cast<std::uint64_t>(h2.zero_window_timeout.count());
        if (now_ms >= due) {
            // The client keeps the window shut and our buffers full: give up on this stream.
            limit_hit(H2StreamLimit::ZeroWindow);
            codec_.reset(*s, http2::kCancel);
        } else {
            earliest(due);
        }
    }
    --depth_;
    // Idle: no exchange runs (streams left only drain an upload or wait on the client).
    bool idle = true;
    for (H2Stream* s = head_; s != nullptr && idle; s = s->next_) {
        idle = s->exchange_done_;
    }
    const std::uint64_t idle_due = conn_.last_activity_ms_ + static_cast<std::uint64_t>(limits.idle_timeout.count());
    if (final_goaway_ms_ != 0 && !codec_.going_away()) {
        if (now_ms >= final_goaway_ms_) {
            codec_.goaway();
        } else {
            earliest(final_goaway_ms_);
        }
    }
    if (idle && streams_ > 0 && now_ms >= idle_due) {
        codec_.terminate(http2::kNoError);  // a GOAWAY alone would wait for those streams
    } else if (!codec_.going_away()) {
        const std::uint64_t age_due = conn_.accepted_ms_ + static_cast<std::uint64_t>(limits.max_connection_age.count());
        if (now_ms >= age_due || (idle && now_ms >= idle_due)) {
            goaway();
        } else {
            earliest(idle ? std::min(age_due, idle_due) : age_due);
        }
    }
    flush();
    return next;
}

void H2Session::goaway() {
    codec_.goaway();
    flush();
}

void H2Session::begin_shutdown(std::uint64_t final_ms) {
    codec_.shutdown_notice();
    final_goaway_ms_ = final_ms;
    flush();
}

void H2Session::abort_all() noexcept {
    codec_.abandon();
    ++depth_;
    H2Stream* s = head_;
    while (s != nullptr) {
        H2Stream* next = s->next_;
        if (!s->closed_) {
            s->closed_ = true;
            s->unconsumed_ = 0;
            if (!s->exchange_done_) {
                if (s->paused_) {
                    s->aborted_ = true;
                } else {
                    s->end_exchange();
                }
            }
        }
        s = next;
    }
    --depth_;
    dead_ = true;
    reap();
}

void H2Session::stream_done(H2Stream& s) {
    if (s.reapable()) {
        dead_ = true;
        if (depth_ == 0) {
            reap();
        }
    }
}

void H2Session::reap() noexcept {
    if (depth_ > 0 || !dead_) {
        return;
    }
    dead_ = false;
    H2Stream* s = head_;
    while (s != nullptr) {
        H2Stream* next = s->next_;
        if (s->reapable()) {
            free_stream(s);
        }
        s = next;
    }
}

void H2Session::free_stream(H2Stream* s) noexcept {
    if (s->prev_ != nullptr) {
        s->prev_->next_ = s->next_;
    } else {
        head_ = s->next_;
    }
    if (s->next_ != nullptr) {
        s->next_->prev_ = s->prev_;
    }
    --streams_;
    ReactorImpl& reactor = conn_.reactor_;
    s->~H2Stream();
    reactor.give_stream_memory(s);
}

// ---- http2::Handler

http2::Stream* H2Session::h2_open(std::int32_t /*id*/) {
    if (conn_.closing_) {
        return nullptr;
    }
    void* mem = conn_.reactor_.take_stream_memory();
    auto* s = new (mem) H2Stream(*this, conn_.reactor_.blocks());
    s->next_ = head_;
    if (head_ != nullptr) {
        head_->prev_ = s;
    }
    head_ = s;
    ++streams_;
    return s;
}

void H2Session::h2_refused() {
    limit_hit(H2StreamLimit::ConcurrentStreams);
}

void H2Session::limit_hit(H2StreamLimit limit) noexcept {
    conn_.reactor_.metrics().h2_stream_limits[static_cast<std::size_t>(limit)].add();
}

void H2Session::h2_request(http2::Stream& st, http2::RequestHead& head, int status, const char* reason) {
    auto& s = static_cast<H2Stream&>(st);
    ++depth_;
    if (status == 431) {
        limit_hit(H2StreamLimit::RequestHead);
    }
    ++conn_.requests_;
    conn_.last_activity_ms_ = conn_.reactor_.now_ms();
    const std::uint32_t max = conn_.config().options.limits.max_requests_per_connection;
    if ((max != 0 && conn_.requests_ >= max) || conn_.reactor_.stopping()) {
        codec_.goaway();  // this stream is served; the client opens a new connection for more
    }
    s.start(head, status, reason);
    --depth_;
}

void H2Session::h2_data(http2::Stream& st, const char* data, std::size_t len) {
    ++depth_;
    static_cast<H2Stream&>(st).request_data(data, len, bid_);
    --depth_;
}

void H2Session::h2_request_end(http2::Stream& st, std::span<const Header> trailers) {
    ++depth_;
    static_cast<H2Stream&>(st).request_end(trailers);
    --depth_;
}

void H2Session::h2_closed(http2::Stream& st, std::uint32_t /*error*/) {
    ++depth_;
    static_cast<H2Stream&>(st).codec_closed();
    --depth_;
}

void H2Session::h2_write(const std::uint8_t* data, std::size_t len) {
    conn_.output_queue().push_copy(reinterpret_cast<const char*>(data), static_cast<std::uint32_t>(len));
}

std::size_t H2Session::h2_body_ready(http2::Stream& st, std::size_t max, bool& last) {
    return static_cast<H2Stream&>(st).body_ready(max, last);
}

void H2Session::h2_write_data(http2::Stream& st, const std::uint8_t* frame_head, std::size_t len) {
    SendQueue& out = conn_.output_queue();
    out.push_copy(reinterpret_cast<const char*>(frame_head), 9);
    static_cast<H2Stream&>(st).write_data(out, len);
}

// ---------------------------------------------------------------------------------------------
// Connection: its HTTP/2 mode

bool Connection::h2_begin() {
    const ListenerOptions& o = config().options;
    http2::Limits limits;
    limits.h2 = o.http2;
    limits.max_head_bytes = o.limits.max_request_head_bytes;
    limits.max_headers = o.limits.max_headers;
    limits.max_path_bytes = o.limits.max_path_bytes;
    limits.max_drain_bytes = o.limits.max_drain_bytes;
    h2_ = new (std::nothrow) H2Session(*this, limits);
    if (h2_ == nullptr || !h2_->start()) {
        close_now();
        return false;
    }
    state_ = State::H2;
    last_activity_ms_ = reactor_.now_ms();
    arm_timer();
    h2_->flush();  // the server preface: our SETTINGS go out at once (RFC 9113 §3.4)
    return true;
}

void Connection::h2_input(const char* data, std::size_t len, std::int32_t bid) {
    if (state_ != State::H2) {
        return;
    }
    last_activity_ms_ = reactor_.now_ms();
    h2_->input(data, len, bid);
    h2_check_done();
}

// An HTTP/2 connection's deferred flush writes the sessions' frames first.
void Connection::deferred_flush() {
    flush_queued_ = false;
    if (closing_ || state_ == State::Closed) {
        return;
    }
    if (state_ == State::H2 && h2_ != nullptr) {
        h2_->flush();
    } else {
        flush();
    }
}

void Connection::h2_sent() {
    h2_->sent();
    if (!send_inflight_ && queue_ != nullptr && queue_->empty()) {
        reactor_.give_queue(queue_);  // an idle HTTP/2 connection holds no output buffer
        queue_ = nullptr;
    }
    h2_check_done();
    if (!closing_ && state_ == State::H2) {
        rearm_recv();
    }
    maybe_recycle();
}

void Connection::h2_check_done() {
    if (closing_ || state_ != State::H2 || send_inflight_ || output_backlog() > 0 || !h2_->codec().done()) {
        return;
    }
    // GOAWAY went out and nothing is left to read or write: streams still waiting for an
    // upstream were refused by it (or the session was terminated) and are dropped.
    h2_->abort_all();
    begin_linger();
}

SendQueue& Connection::output_queue() {
    if (queue_ == nullptr) {
        queue_ = reactor_.take_queue();
    }
    return *queue_;
}

}  // namespace blitz::server

#include "server/proxy.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>

#include <blitz/log.hpp>

#include "router/rewrite.hpp"
#include "server/reactor.hpp"

namespace blitz::server {

namespace {

// Request bytes queued for an upstream beyond this stop reading from the client.
constexpr std::uint64_t kMaxRequestBacklog = 64 * 1024;
// Response bytes queued for the client beyond this stop reading from the upstream.
constexpr std::uint64_t kMaxResponseBacklog = 64 * 1024;
// A request body is kept for a retry while it is at most this large.
constexpr std::uint64_t kMaxRetainBytes = 64 * 1024;
constexpr std::size_t kMaxResponseHeadBytes = 64 * 1024;

bool idempotent(Method m) noexcept {
    // RFC 9110 §9.2.2.
    switch (m) {
        case Method::Get:
        case Method::Head:
        case Method::Put:
        case Method::Delete:
        case Method::Options:
        case Method::Trace:
            return true;
        default:
            return false;
    }
}

std::uint64_t jitter(std::uint64_t max) noexcept {
    thread_local std::minstd_rand rng{std::random_device{}()};
    return max == 0 ? 0 : rng() % (max + 1);
}

}  // namespace

ProxyState::ProxyState(Downstream& conn, Exchange& ex, const ExchangeObs& obs, const ProxyAction& action,
                       ReactorImpl& reactor)
    : conn_(conn), ex_(ex), obs_(obs), action_(action), reactor_(reactor), request_(reactor) {
    retry_timer_.fire = &ProxyState::on_retry_timer;
    retry_timer_.owner = this;
}

ProxyState::~ProxyState() {
    abort();
    std::free(partial_);
}

void ProxyState::stop_waiting() noexcept {
    if (!waiting_) {
        return;
    }
    waiting_ = false;
    --cluster_->pending;
    series_->requests_pending.sub();
    auto& w = pool_->waiters;
    w.erase(std::remove(w.begin(), w.end(), static_cast<UpstreamOwner*>(this)), w.end());
}

void ProxyState::upstream_available(UpstreamConn* c) {
    // Already out of the pool's waiters (the pool removed us).
    waiting_ = false;
    --cluster_->pending;
    series_->requests_pending.sub();
    reactor_.timers().cancel(retry_timer_);
    if (c == nullptr) {
        // Connect (or pick again) from the timer, outside the pool's own bookkeeping.
        reactor_.timers().arm(retry_timer_, reactor_.now_ms());
        return;
    }
    if (tried_count_ < std::size(tried_)) {
        tried_[tried_count_++] = endpoint_;
    }
    attach(c);
    c->send_from(&request_);
}

void ProxyState::abort() noexcept {
    if (span_open_) {
        end_span(0, "client_aborted");
    }
    reactor_.timers().cancel(retry_timer_);
    stop_waiting();
    if (up_ != nullptr) {
        UpstreamConn* c = up_;
        detach(false);
        c->close();
    }
    detach(false);  // an HTTP/2 stream is reset
    if (cluster_ != nullptr) {
        if (counted_request_) {
            --cluster_->requests;
            series_->requests_active.sub();
            counted_request_ = false;
        }
        if (counted_retry_) {
            --cluster_->retries;
            series_->retries_active.sub();
            counted_retry_ = false;
        }
    }
    request_.release_all();
}

bool ProxyState::replayable() const noexcept {
    const Request& req = ex_.request();
    if (!(idempotent(req.method) || action_.retry.non_idempotent ||
          req.headers.has("Idempotency-Key"))) {
        return false;
    }
    // The head and any body must still be whole in the queue to be sent again.
    return request_.retaining() && (!req.has_body || body_done_);
}

void ProxyState::start() {
    started_ = true;
    const Request& req = ex_.request();
    body_done_ = !req.has_body;
    request_done_ms_ = reactor_.now_ms();
    h2_ = !framed_upstream_body(action_);
    // An HTTP/2 upstream gets no Upgrade (RFC 9113 §8.6): the request goes as a plain one, and
    // the client sees the ordinary response a server that ignores Upgrade gives.
    upgrade_ = !h2_ && !http1::requested_upgrade(req.headers, req.version).empty();
    cluster_ = &reactor_.proxy().cluster(action_.upstream->cluster());
    series_ = &reactor_.metrics().upstream(*action_.upstream);
    if (!cluster_->can_start_request()) {
        series_->errors[static_cast<std::size_t>(UpstreamError::CircuitOpen)].add();
        give_up(503, "upstream request limit reached", "overflow");
        return;
    }
    ++cluster_->requests;
    series_->requests_active.add();
    counted_request_ = true;
    if (!build_head()) {
        give_up(500, "request cannot be forwarded", "invalid_request");
        return;
    }
    if (!h2_) {
        request_.push_static(request_head_.data(), static_cast<std::uint32_t>(request_head_.size()));
    }
    // Kept for a retry or the keep-alive race (the head always, a body while it is small).
    request_.set_retain(!upgrade_);
    attempt();
}

bool ProxyState::build_head() {
    const Request& req = ex_.request();
    Arena& arena = ex_.arena();
    std::string_view path = router::rewrite_path(*ex_.route(), req.path, arena);
    std::string_view target = path;
    if (!req.query.empty()) {
        char* t = static_cast<char*>(arena.allocate(path.size() + 1 + req.query.size(), 1));
        std::memcpy(t, path.data(), path.size());
        t[path.size()] = '?';
        std::memcpy(t + path.size() + 1, req.query.data(), req.query.size());
        target = {t, path.size() + 1 + req.query.size()};
    }
    if (req.method == Method::Options && req.path == "*") {
        target = "*";
    }
    Header extra[9];
    std::size_t n_extra = 0;
    if (action_.forwarded_headers) {
        const bool trusted = conn_.peer_trusted();
        const std::string_view client = ex_.client_address();
        std::string_view xff = client;
        if (trusted) {
            // A trusted peer's list is kept and extended; its field lines form one list
            // (RFC 9110 §5.3).
            std::size_t len = client.size();
            for (const Header& h : req.headers) {
                if (iequals(h.name, "X-Forwarded-For")) {
                    len += h.value.size() + 2;
                }
            }
            if (len > client.size()) {
                char* joined = static_cast<char*>(arena.allocate(len, 1));
                std::size_t n = 0;
                for (const Header& h : req.headers) {
                    if (iequals(h.name, "X-Forwarded-For")) {
                        std::memcpy(joined + n, h.value.data(), h.value.size());
                        n += h.value.size();
                        std::memcpy(joined + n, ", ", 2);
                        n += 2;
                    }
                }
                std::memcpy(joined + n, client.data(), client.size());
                xff = {joined, len};
            }
        }
        extra[n_extra++] = Header{"X-Forwarded-For", xff};
        std::string_view proto = trusted ? req.headers.get("X-Forwarded-Proto") : std::string_view{};
        extra[n_extra++] = Header{"X-Forwarded-Proto", proto.empty() ? req.scheme : proto};
        std::string_view fhost = trusted ? req.headers.get("X-Forwarded-Host") : std::string_view{};
        if (fhost.empty()) {
            fhost = req.authority;
        }
        if (!fhost.empty()) {
            extra[n_extra++] = Header{"X-Forwarded-Host", fhost};
        }
    }
    if (action_.via) {
        // RFC 9110 §7.6.3: the protocol version the request was received with.
        const std::string_view via = req.version == Version::Http10 ? "1.0 blitz"
                                     : req.version == Version::Http2 ? "2 blitz"
                                                                      : "1.1 blitz";
        extra[n_extra++] = Header{"Via", via};
    }
    // What the client sent of these is replaced (X-Forwarded-*) or never trusted (a client
    // certificate and early data are the TLS layer's word, not the client's).
    std::string_view drop[8];
    std::size_t n_drop = 0;
    if (action_.forwarded_headers) {
        for (std::string_view name : {"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"}) {
            drop[n_drop++] = name;
        }
    }
    drop[n_drop++] = "X-Forwarded-Client-Cert";  // only ever ours (Envoy's "sanitize")
    if (const TlsInfo* tls = ex_.tls(); tls != nullptr) {
        if (std::string_view xfcc = conn_.client_cert_xfcc(); !xfcc.empty()) {
            extra[n_extra++] = Header{"X-Forwarded-Client-Cert", xfcc};
        }
        if (tls->early_data) {
            drop[n_drop++] = "Early-Data";
            extra[n_extra++] = Header{"Early-Data", "1"};  // RFC 8470 §5.1
        }
    }
    if (obs_.request_id_generated) {
        // Ours replaces whatever the client sent (an untrusted or invalid id).
        drop[n_drop++] = obs_.request_id_options->header;
        extra[n_extra++] = Header{obs_.request_id_options->header, obs_.request_id};
    }
    char* traceparent = nullptr;
    if (obs_.traced) {
        // W3C Trace Context §3.2: our span becomes the upstream's parent; each attempt writes
        // its own span id into the same field (see attempt()).
        drop[n_drop++] = "traceparent";
        drop[n_drop++] = "tracestate";
        traceparent = static_cast<char*>(arena.allocate(trace::kTraceParentSize, 1));
        trace::format_traceparent(std::span<char, trace::kTraceParentSize>(traceparent, trace::kTraceParentSize),
                                  obs_.trace, obs_.span, obs_.sampled ? trace::kSampledFlag : 0);
        extra[n_extra++] = Header{"traceparent", {traceparent, trace::kTraceParentSize}};
        if (!obs_.tracestate.empty()) {
            extra[n_extra++] = Header{"tracestate", obs_.tracestate};
        }
    }
    const std::string_view host = action_.host_rewrite.empty() ? req.authority : std::string_view(action_.host_rewrite);
    if (h2_) {
        if (http1::accepts_trailers(req.headers)) {
            extra[n_extra++] = Header{"te", "trailers"};  // the only TE HTTP/2 carries (RFC 9113 §8.2.2)
        }
        h2_path_ = target;
        h2_authority_ = host;
        build_h2_fields(req.headers, {drop, n_drop}, Headers({extra, n_extra}));
        // W3C Trace Context: each attempt writes its span id here before its HEADERS go out.
        traceparent_span_ = traceparent != nullptr ? traceparent + 36 : nullptr;
        return true;
    }
    http1::UpstreamRequest r;
    r.method = req.method_name;
    r.target = target;
    r.host = host;
    r.headers = req.headers;
    r.drop = {drop, n_drop};
    r.extra = Headers({extra, n_extra});
    if (!req.has_body) {
        r.body = http1::BodyKind::None;
    } else if (req.content_length >= 0) {
        r.body = http1::BodyKind::Length;
        r.content_length = static_cast<std::uint64_t>(req.content_length);
    } else {
        r.body = http1::BodyKind::Chunked;
    }
    r.upgrade = http1::requested_upgrade(req.headers, req.version);
    r.te_trailers = http1::accepts_trailers(req.headers);
    std::size_t need = 256 + target.size() + r.host.size();
    for (const Header& h : req.headers) {
        need += h.name.size() + h.value.size() + 4;
    }
    for (std::size_t i = 0; i < n_extra; ++i) {
        need += extra[i].name.size() + extra[i].value.size() + 4;
    }
    char* dst = static_cast<char*>(arena.allocate(need, 1));
    const std::size_t len = http1::write_request_head({dst, need}, r);
    request_head_ = {dst, len};
    if (traceparent != nullptr && len != 0) {
        const std::size_t at = request_head_.find(std::string_view(traceparent, trace::kTraceParentSize));
        // "00-" + 32 hex digits of trace id + "-": the parent id's 16 digits follow.
        traceparent_span_ = at == std::string_view::npos ? nullptr : dst + at + 36;
    }
    return len != 0;
}

void ProxyState::build_h2_fields(Headers headers, std::span<const std::string_view> drop, Headers extra) {
    const std::size_t n = extra.size() + headers.size();
    auto* fields = static_cast<Header*>(ex_.arena().allocate(sizeof(Header) * n, alignof(Header)));
    std::uint16_t k = 0;
    for (const Header& h : headers) {
        // Hop-by-hop fields end here (RFC 9110 §7.6.1), TE included (re-added as "trailers"
        // when the client accepts them), and Host travels as :authority.
        const bool dropped = std::any_of(drop.begin(), drop.end(), [&](std::string_view d) { return iequals(h.name, d); });
        if (dropped || http1::is_hop_by_hop(h.name, headers) || iequals(h.name, "te") || iequals(h.name, "host")) {
            continue;
        }
        fields[k++] = h;
    }
    for (const Header& h : extra) {
        fields[k++] = h;
    }
    h2_fields_ = fields;
    h2_count_ = k;
}

void ProxyState::attempt() {
    got_bytes_ = false;
    try_started_ms_ = reactor_.now_ms();
    try_started_us_ = reactor_.now_us();
    connect_started_us_ = 0;
    PickContext ctx;
    ctx.exchange = &ex_;
    ctx.attempt = attempt_;
    const UpstreamOptions& opts = cluster_->cluster().options();
    if (opts.balance == Balance::RingHash || opts.balance == Balance::Maglev) {
        ctx.has_hash = upstream::request_hash(opts.hash, ex_, ctx.hash);
    }
    const upstream::LocalCluster::Pick pick = cluster_->pick(ctx, {tried_, tried_count_}, reactor_.now_ms());
    endpoint_ = pick.index;
    if (pick.panic) {
        series_->panics.add();
    }
    if (endpoint_ < 0) {
        series_->errors[static_cast<std::size_t>(UpstreamError::NoEndpoint)].add();
        give_up(503, "no healthy upstream", "no_healthy_upstream");
        return;
    }
    if (tried_count_ < std::size(tried_)) {
        tried_[tried_count_++] = endpoint_;
    }
    pool_ = &reactor_.proxy().pool(*cluster_, endpoint_);
    if (traceparent_span_ != nullptr) {
        span_id_ = reactor_.observer().new_span_id();
        trace::format_hex(std::span<char, 16>(traceparent_span_, 16), span_id_);
        span_start_ns_ = unix_now_ns();
        span_open_ = obs_.sampled;
    }
    if (h2_) {
        attempt_h2();
        return;
    }
    UpstreamConn* c = fresh_only_ ? nullptr : reactor_.proxy().take_idle(*pool_);
    fresh_only_ = false;
    if (c == nullptr) {
        const std::uint32_t per_endpoint = opts.pool.max_connections_per_endpoint;
        if (!cluster_->can_open_connection() || (per_endpoint != 0 && pool_->open >= per_endpoint)) {
            wait_for_connection();
            return;
        }
        int error = 0;
        connect_started_us_ = reactor_.now_us();
        c = reactor_.proxy().connect(*pool_, error);
        if (c == nullptr) {
            log(LogLevel::Warn, "upstream \"%s\": socket: %s", opts.name.c_str(), std::strerror(error));
            failed(Cause::ConnectFailure);
            return;
        }
    }
    attach(c);
    if (c->connected()) {
        c->send_from(&request_);
    }
}

void ProxyState::attempt_h2() {
    UpstreamH2Session* s = fresh_only_ ? nullptr : reactor_.proxy().h2_session(*pool_);
    fresh_only_ = false;
    if (s == nullptr) {
        const UpstreamOptions& opts = cluster_->cluster().options();
        const std::uint32_t per_endpoint = opts.pool.max_connections_per_endpoint;
        if (!cluster_->can_open_connection() || (per_endpoint != 0 && pool_->open >= per_endpoint)) {
            wait_for_connection();  // every session is at its stream limit
            return;
        }
        int error = 0;
        connect_started_us_ = reactor_.now_us();
        s = reactor_.proxy().h2_connect(*pool_, error);
        if (s == nullptr) {
            log(LogLevel::Warn, "upstream \"%s\": socket: %s", opts.name.c_str(), std::strerror(error));
            failed(Cause::ConnectFailure);
            return;
        }
    }
    const Request& req = ex_.request();
    call_.owner = this;
    call_.arena = &ex_.arena();
    const std::string_view scheme = cluster_->cluster().tls() != nullptr ? "https" : "http";
    if (!s->submit(call_, req.method_name, scheme, h2_authority_, h2_path_, Headers({h2_fields_, h2_count_}),
                   req.has_body)) {
        call_.owner = nullptr;
        give_up(500, "request cannot be forwarded", "invalid_request");
        return;
    }
    h2_attached_ = true;
    count_active();
    arm_deadline();
}

// At the connection limit: the request waits (within the circuit breaker's pending share, at
// most the connect timeout) for a pooled connection, a connection slot, or an HTTP/2 stream
// slot; the pool hands it on (upstream_available) in arrival order.
void ProxyState::wait_for_connection() {
    if (!cluster_->can_queue()) {
        series_->errors[static_cast<std::size_t>(UpstreamError::CircuitOpen)].add();
        give_up(503, "upstream connection limit reached", "overflow");
        return;
    }
    --tried_count_;
    waiting_ = true;
    ++cluster_->pending;
    series_->requests_pending.add();
    pool_->waiters.push_back(this);
    reactor_.timers().arm(retry_timer_, reactor_.now_ms() + static_cast<std::uint64_t>(
                                                                cluster_->cluster().options().pool.connect_timeout.count()));
}

void ProxyState::attach(UpstreamConn* c) {
    up_ = c;
    c->set_owner(this);
    c->count_request();
    count_active();
    arm_deadline();
}

void ProxyState::count_active() noexcept {
    auto endpoints = cluster_->endpoints();
    if (static_cast<std::size_t>(endpoint_) < endpoints.size()) {
        ++endpoints[static_cast<std::size_t>(endpoint_)].active_requests;
    }
}

void ProxyState::uncount_active(const EndpointPool* pool) noexcept {
    if (cluster_ != nullptr && endpoint_ >= 0) {
        auto eps = cluster_->endpoints();
        // The set may have changed since the pick: count by pool, which is stable.
        for (auto& e : eps) {
            if (e.pool == pool && e.active_requests > 0) {
                --e.active_requests;
                break;
            }
        }
    }
}

void ProxyState::detach(bool reusable) noexcept {
    if (h2_attached_) {
        // An HTTP/2 stream: reset unless it completed; the session stays for other streams.
        h2_attached_ = false;
        uncount_active(pool_);
        reactor_.timers().cancel(retry_timer_);
        if (call_.session != nullptr) {
            call_.session->cancel(call_);
        }
        return;
    }
    UpstreamConn* c = up_;
    up_ = nullptr;
    if (c == nullptr) {
        return;
    }
    uncount_active(c->pool());
    c->cancel_timer();
    c->set_owner(nullptr);
    if (reusable) {
        c->release_to_pool();
    } else {
        c->close();
    }
}

// Like Envoy's, the per-try and total timeouts run from when the whole request was received
// (an upload's own duration is bounded by the idle timeout): UINT64_MAX until then or when off.
std::uint64_t ProxyState::per_try_deadline() const noexcept {
    if (head_sent_ || !body_done_ || action_.per_try_timeout.count() <= 0) {
        return ~std::uint64_t{0};
    }
    return std::max(try_started_ms_, request_done_ms_) + static_cast<std::uint64_t>(action_.per_try_timeout.count());
}

std::uint64_t ProxyState::total_deadline() const noexcept {
    if (!body_done_ || action_.timeout.count() <= 0) {
        return ~std::uint64_t{0};
    }
    return request_done_ms_ + static_cast<std::uint64_t>(action_.timeout.count());
}

// One timer per upstream connection carries the earliest of: connect timeout, per-try timeout
// (until the response head), idle timeout (once streaming), and the total timeout.
void ProxyState::arm_deadline() {
    if (up_ == nullptr && !h2_attached_) {
        return;
    }
    const std::uint64_t now = reactor_.now_ms();
    std::uint64_t deadline = ~std::uint64_t{0};
    const auto ms = [](std::chrono::milliseconds d) { return static_cast<std::uint64_t>(d.count()); };
    // An HTTP/2 stream's connect timeout is its session's (it fails every stream waiting).
    if (up_ != nullptr && up_->state() == UpstreamConn::State::Connecting) {
        deadline = try_started_ms_ + ms(cluster_->cluster().options().pool.connect_timeout);
    }
    deadline = std::min({deadline, per_try_deadline(), total_deadline()});
    if (idle_watched()) {
        deadline = std::min(deadline, std::max(last_io_ms_, try_started_ms_) + ms(action_.idle_timeout));
    }
    if (deadline == ~std::uint64_t{0}) {
        return;
    }
    if (up_ != nullptr) {
        up_->arm_timer(std::max(deadline, now));
    } else {
        reactor_.timers().arm(retry_timer_, std::max(deadline, now));
    }
}

void ProxyState::upstream_connected(UpstreamConn& c, int error) {
    if (error != 0) {
        failed(error == UpstreamConn::kTlsFailed ? Cause::TlsFailure : Cause::ConnectFailure);
        return;
    }
    if (connect_started_us_ != 0) {
        connect_us_ = static_cast<std::int64_t>(reactor_.now_us() - connect_started_us_);
        series_->connect.observe(static_cast<std::uint64_t>(connect_us_));
    }
    arm_deadline();
    c.send_from(&request_);
}

void ProxyState::upstream_drained(UpstreamConn& /*c*/) {
    if (input_blocked_ && request_.unwritten() < kMaxRequestBacklog / 2) {
        input_blocked_ = false;
        conn_.proxy_unblock_input();
    }
}

void ProxyState::request_body(const char* raw, std::size_t len, std::int32_t bid, bool end) {
    if (done_ || (len == 0 && !end)) {
        body_done_ = body_done_ || end;
        return;
    }
    if (bid >= 0) {
        request_.push_buffer(raw, static_cast<std::uint32_t>(len), static_cast<std::uint16_t>(bid));
    } else {
        request_.push_copy(raw, static_cast<std::uint32_t>(len));
    }
    body_queued(end);
}

void ProxyState::request_body_from(SendQueue& held, bool end) {
    if (done_) {
        held.release_all();
        body_done_ = body_done_ || end;
        return;
    }
    held.move_to(request_, static_cast<std::uint32_t>(held.bytes()));
    body_queued(end);
}

void ProxyState::body_queued(bool end) {
    last_io_ms_ = reactor_.now_ms();
    if (end) {
        body_done_ = true;
        request_done_ms_ = reactor_.now_ms();
        arm_deadline();  // the per-try and total timeouts run from here
    }
    if (request_.retaining() && request_.bytes() > kMaxRetainBytes) {
        request_.set_retain(false);  // too large to keep for a retry
    }
    if (up_ != nullptr && up_->connected()) {
        up_->send_from(&request_);
    } else if (call_.session != nullptr) {
        call_.session->resume_body(call_);
    }
    if (!body_done_ && request_.unwritten() >= kMaxRequestBacklog && !input_blocked_) {
        input_blocked_ = true;
        conn_.proxy_block_input();
    }
}

void ProxyState::tunnel_data(const char* data, std::size_t len, std::int32_t bid) {
    last_io_ms_ = reactor_.now_ms();
    if (bid >= 0) {
        request_.push_buffer(data, static_cast<std::uint32_t>(len), static_cast<std::uint16_t>(bid));
    } else {
        request_.push_copy(data, static_cast<std::uint32_t>(len));
    }
    if (up_ != nullptr) {
        up_->send_from(&request_);
    }
    if (request_.unwritten() >= kMaxRequestBacklog && !input_blocked_) {
        input_blocked_ = true;
        conn_.proxy_block_input();
    }
}

void ProxyState::upstream_data(UpstreamConn& /*c*/, char* data, std::size_t len, std::uint16_t bid) {
    last_io_ms_ = reactor_.now_ms();
    if (!got_bytes_) {
        got_bytes_ = true;
        first_byte_us_ = static_cast<std::int64_t>(reactor_.now_us() - try_started_us_);
        series_->first_byte.observe(static_cast<std::uint64_t>(first_byte_us_));
    }
    if (tunnel_) {
        conn_.proxy_body(data, static_cast<std::uint32_t>(len), bid);
        check_backpressure();
        return;
    }
    parse(data, len, bid);
}

void ProxyState::parse(char* data, std::size_t len, std::int32_t bid) {
    char* p = data;
    char* end = data + len;
    while (!head_sent_ && !done_) {
        char* base = p;
        std::size_t avail = static_cast<std::size_t>(end - p);
        if (partial_len_ > 0) {
            // Gather the rest of a split head (rare: heads are small).
            if (partial_len_ + avail > partial_cap_) {
                const std::size_t cap = std::min<std::size_t>(kMaxResponseHeadBytes + 16 * 1024,
                                                              std::max<std::size_t>(partial_cap_ * 2, partial_len_ + avail));
                if (partial_len_ + avail > cap) {
                    failed(Cause::BadResponse);
                    return;
                }
                auto* grown = static_cast<char*>(std::realloc(partial_, cap));
                if (grown == nullptr) {
                    failed(Cause::BadResponse);
                    return;
                }
                partial_ = grown;
                partial_cap_ = static_cast<std::uint32_t>(cap);
            }
            std::memcpy(partial_ + partial_len_, p, avail);
            partial_len_ += static_cast<std::uint32_t>(avail);
            p = end;
            base = partial_;
            avail = partial_len_;
            bid = -1;
        }
        http1::ResponseHead head;
        auto storage = reactor_.header_scratch(100);
        http1::ResponseLimits limits;
        auto r = http1::parse_response_head({base, avail}, storage, limits, ex_.request().method, head);
        if (r.status == http1::ParseStatus::Incomplete) {
            if (base != partial_) {
                // Keep what arrived for the next buffer.
                partial_len_ = 0;
                if (avail > partial_cap_) {
                    auto* grown = static_cast<char*>(std::realloc(partial_, std::max<std::size_t>(avail, 4096)));
                    if (grown == nullptr) {
                        failed(Cause::BadResponse);
                        return;
                    }
                    partial_ = grown;
                    partial_cap_ = static_cast<std::uint32_t>(std::max<std::size_t>(avail, 4096));
                }
                std::memcpy(partial_, base, avail);
                partial_len_ = static_cast<std::uint32_t>(avail);
            }
            return;
        }
        if (r.status == http1::ParseStatus::Error) {
            log(LogLevel::Warn, "upstream \"%s\": endpoint %s: bad response: %s",
                cluster_->cluster().options().name.c_str(), pool_->endpoint.text.c_str(), r.reason);
            failed(Cause::BadResponse);
            return;
        }
        char* after = base + r.consumed;
        char* after_end = base + avail;
        if (head.interim()) {
            // Interim responses: 100 Continue goes to a client that asked for it (HTTP/1.0
            // clients cannot: RFC 9110 §10.1.1).
            if (head.status == 100 && ex_.request().headers.has("Expect") &&
                ex_.request().version != Version::Http10) {
                conn_.proxy_continue();
            }
            if (base == partial_) {
                std::memmove(partial_, after, static_cast<std::size_t>(after_end - after));
                partial_len_ = static_cast<std::uint32_t>(after_end - after);
                p = end;
            } else {
                p = after;
            }
            if (p == end && partial_len_ == 0) {
                return;
            }
            continue;
        }
        if (!on_head(head)) {
            return;
        }
        if (base == partial_) {
            // The body's first bytes came in the gathered copy: forward them as a copy.
            forward_body(after, after_end, -1);
            partial_len_ = 0;
            return;
        }
        p = after;
    }
    if (!done_ && p < end) {
        forward_body(p, end, bid);
    }
}

// The response head is complete. Decides on retrying a 5xx, then hands the head to the client.
bool ProxyState::on_head(const http1::ResponseHead& head) {
    const int status = head.status;
    upstream_status_ = status;
    if (const int cls = status_class(status); cls >= 0) {
        pool_->metrics(true).responses[static_cast<std::size_t>(cls)].add();
    }
    if (status >= 500 && may_retry(Cause::Status, status)) {
        failed(Cause::Status, status);
        return false;
    }
    cluster_->cluster().report(pool_->endpoint,
                               status >= 500 ? upstream::Outcome::Status5xx : upstream::Outcome::Success,
                               reactor_.now_ms());
    request_.set_retain(false);
    head_ = head;
    if (status == 101) {
        if (!upgrade_) {
            failed(Cause::BadResponse);
            return false;
        }
        tunnel_ = true;
    }
    head_sent_ = true;
    const HeadOutcome outcome = conn_.proxy_head(head, tunnel_);
    if (outcome.replaced) {
        // A response filter answered instead: the upstream's response is not read on (its
        // connection closes with this state, which the downstream now ends).
        if (span_open_) {
            end_span(status, {});
        }
        series_->duration.observe(reactor_.now_us() - try_started_us_);
        done_ = true;
        conn_.proxy_replaced();
        return false;
    }
    passthrough_ = outcome.passthrough;
    if (head.body == http1::Framing::Length) {
        body_.reset_length(head.content_length);
    } else if (head.body == http1::Framing::Chunked) {
        body_.reset_chunked();
    }
    arm_deadline();
    if (tunnel_) {
        conn_.proxy_tunnel();
        return true;
    }
    if (head.body == http1::Framing::None ||
        (head.body == http1::Framing::Length && head.content_length == 0)) {
        finish();
        return false;
    }
    return true;
}

void ProxyState::forward_body(char* p, char* end, std::int32_t bid) {
    if (tunnel_) {
        conn_.proxy_body(p, static_cast<std::uint32_t>(end - p), bid);
        check_backpressure();
        return;
    }
    if (head_.body == http1::Framing::UntilClose) {
        body_filters({p, static_cast<std::size_t>(end - p)}, false);
        conn_.proxy_body(p, static_cast<std::uint32_t>(end - p), bid);
        check_backpressure();
        return;
    }
    while (p < end && !done_) {
        auto step = body_.decode({p, static_cast<std::size_t>(end - p)});
        if (step.error_status != 0) {
            log(LogLevel::Warn, "upstream \"%s\": endpoint %s: bad response body: %s",
                cluster_->cluster().options().name.c_str(), pool_->endpoint.text.c_str(), step.reason);
            detach(false);
            done_ = true;
            conn_.proxy_done(false);
            return;
        }
        if (!step.data.empty() || step.done) {
            body_filters(step.data, step.done);
        }
        if (passthrough_) {
            conn_.proxy_body(p, static_cast<std::uint32_t>(step.consumed), bid);
        } else if (!step.data.empty()) {
            conn_.proxy_body(step.data.data(), static_cast<std::uint32_t>(step.data.size()), bid);
        }
        if (!passthrough_ && !step.trailer.empty()) {
            keep_trailer(step.trailer);
        }
        p += step.consumed;
        if (step.done) {
            if (pass_trailers()) {
                finish();
            }
            return;
        }
        if (step.consumed == 0) {
            break;
        }
    }
    check_backpressure();
}

// A decoded chunked response's trailer section is copied as it arrives: it may span receive
// buffers, and the client gets it only after the last DATA. The decoder bounds it to
// kMaxTrailerBytes.
void ProxyState::keep_trailer(std::span<const char> bytes) { gather(trailer_, trailer_len_, bytes); }

void ProxyState::gather(char*& buf, std::uint32_t& len, std::span<const char> bytes) {
    if (buf == nullptr && bytes.size() == 2 && bytes[0] == '\r') {
        return;  // just the final CRLF (a field line starts with its name): no fields
    }
    if (buf == nullptr) {
        buf = static_cast<char*>(ex_.arena().allocate(http1::BodyDecoder::kMaxTrailerBytes, 1));
    }
    std::memcpy(buf + len, bytes.data(), bytes.size());
    len += static_cast<std::uint32_t>(bytes.size());
}

void ProxyState::request_trailers(std::span<const Header> fields) {
    auto* kept = static_cast<Header*>(ex_.arena().allocate(sizeof(Header) * fields.size(), alignof(Header)));
    std::uint16_t n = 0;
    for (const Header& h : fields) {
        if (!http1::trailer_forbidden(h.name)) {
            kept[n++] = h;
        }
    }
    request_trailers_ = kept;
    request_trailer_count_ = n;
}

void ProxyState::request_trailer_bytes(std::span<const char> bytes) {
    gather(request_section_, request_section_len_, bytes);
}

Headers ProxyState::outgoing_trailers() {
    if (request_section_len_ > 0) {
        // The decoder bounded the section to kMaxTrailerBytes; more fields than a response's
        // trailers may carry are dropped (the body itself goes on).
        const std::uint32_t max = http1::ResponseLimits{}.max_headers;
        auto* fields = static_cast<Header*>(ex_.arena().allocate(sizeof(Header) * max, alignof(Header)));
        const auto n = http1::parse_trailer_fields({request_section_, request_section_len_}, {fields, max});
        request_section_len_ = 0;
        request_trailers({fields, n.value_or(0)});
    }
    return Headers({request_trailers_, request_trailer_count_});
}

// Hands the response's trailer fields to the client. More fields than a response head may
// carry is a bad response: the head went out, so the client sees the message cut.
bool ProxyState::pass_trailers() {
    if (trailer_len_ == 0) {
        return true;
    }
    http1::ResponseLimits limits;
    auto* fields = static_cast<Header*>(ex_.arena().allocate(sizeof(Header) * limits.max_headers, alignof(Header)));
    const auto n = http1::parse_trailer_fields({trailer_, trailer_len_}, {fields, limits.max_headers});
    if (!n) {
        log(LogLevel::Warn, "upstream \"%s\": endpoint %s: bad response trailers: more than %u fields",
            cluster_->cluster().options().name.c_str(), pool_->endpoint.text.c_str(), limits.max_headers);
        detach(false);
        done_ = true;
        conn_.proxy_done(false);
        return false;
    }
    if (*n > 0) {
        conn_.proxy_trailers(Headers({fields, *n}));
    }
    return true;
}

// Response filters observe the body as it streams past (reverse order, like the head); the
// bytes themselves are forwarded untouched, so their Flow is not acted on.
void ProxyState::body_filters(std::span<const char> data, bool end) {
    const auto& filters = ex_.route()->filters;
    for (std::size_t i = filters.size(); i > 0; --i) {
        (void)filters[i - 1]->on_response_body(ex_, std::as_bytes(data), end);
    }
}

void ProxyState::check_backpressure() {
    if (up_ != nullptr && conn_.response_backlog() >= kMaxResponseBacklog) {
        up_->pause_recv();
    }
}

void ProxyState::downstream_drained() {
    if (conn_.response_backlog() >= kMaxResponseBacklog / 2) {
        return;
    }
    if (up_ != nullptr) {
        up_->resume_recv();
    } else if (call_.session != nullptr) {
        call_.session->consume(call_);
    }
}

Flow run_response_filters(Exchange& ex, FilterCursor cursor, bool fixed) {
    const auto& filters = ex.route()->filters;
    const bool outer = cursor.in_advance;
    cursor.in_advance = true;
    bool held = false;
    while (cursor.index > 0 && !held) {
        cursor.resume_requested = false;
        const Flow f = filters[--cursor.index]->on_response_headers(ex);
        held = !fixed && f == Flow::Pause && !cursor.resume_requested;
    }
    cursor.in_advance = outer;
    if (held) {
        return Flow::Pause;
    }
    return !fixed && ex.responded() ? Flow::Respond : Flow::Continue;
}

// A filter held the response head, so the upstream was not read meanwhile: its silence
// did not count, and from now on it does.
void ProxyState::response_released() {
    last_io_ms_ = reactor_.now_ms();
    arm_deadline();
    downstream_drained();
}

bool ProxyState::idle_watched() const noexcept {
    return action_.idle_timeout.count() > 0 && conn_.response_backlog() != Downstream::kHeldBacklog;
}

void ProxyState::finish() {
    done_ = true;
    if (span_open_) {
        end_span(head_.status, {});
    }
    series_->duration.observe(reactor_.now_us() - try_started_us_);
    // Reusable when the exchange ended cleanly on both sides: the response was framed, the
    // whole request went out, and the server did not ask to close.
    const bool reusable = head_.keep_alive && head_.body != http1::Framing::UntilClose && body_done_ &&
                          request_.empty() && !tunnel_;
    detach(reusable);
    conn_.proxy_done(true);
}

void ProxyState::upstream_closed(UpstreamConn& c, int error) {
    if (tunnel_) {
        detach(false);
        done_ = true;
        conn_.proxy_done(false);
        return;
    }
    if (head_sent_) {
        if (head_.body == http1::Framing::UntilClose && error == 0) {
            body_filters({}, true);
            finish();
            return;
        }
        // Cut mid-body: the client must see a truncated message, never a complete one.
        cluster_->cluster().report(pool_->endpoint, upstream::Outcome::Reset, reactor_.now_ms());
        detach(false);
        done_ = true;
        conn_.proxy_done(false);
        return;
    }
    if (!got_bytes_ && c.reused() && !race_retried_ && replayable()) {
        // RFC 9112 §9.3.1: a reused connection closed by the server just as we sent.
        resend_unprocessed();
        return;
    }
    failed(Cause::Reset);
}

void ProxyState::upstream_timer(UpstreamConn& c) { deadline_passed(c.state() == UpstreamConn::State::Connecting); }

void ProxyState::deadline_passed(bool connecting) {
    const std::uint64_t now = reactor_.now_ms();
    const auto ms = [](std::chrono::milliseconds d) { return static_cast<std::uint64_t>(d.count()); };
    if (now >= total_deadline()) {
        if (head_sent_) {
            detach(false);
            done_ = true;
            conn_.proxy_done(false);
        } else {
            cluster_->cluster().report(pool_->endpoint, upstream::Outcome::Timeout, now);
            give_up(504, "upstream request timeout", "request_timeout");
        }
        return;
    }
    if (connecting) {
        failed(Cause::ConnectTimeout);
        return;
    }
    if (now >= per_try_deadline()) {
        failed(Cause::Timeout);
        return;
    }
    if (idle_watched() && now >= std::max(last_io_ms_, try_started_ms_) + ms(action_.idle_timeout)) {
        if (head_sent_) {
            detach(false);
            done_ = true;
            conn_.proxy_done(false);
        } else {
            failed(Cause::Timeout);
        }
        return;
    }
    arm_deadline();
}

bool ProxyState::may_retry(Cause cause, int status) const noexcept {
    const RetryPolicy& p = action_.retry;
    if (attempt_ >= p.max_retries || upgrade_ || !cluster_->can_retry()) {
        return false;
    }
    switch (cause) {
        case Cause::ConnectFailure:
        case Cause::ConnectTimeout:
        case Cause::TlsFailure:
            // Nothing reached the upstream: any method may go elsewhere, if its body is whole.
            return p.on_connect_failure && request_.retaining() && (!ex_.request().has_body || body_done_);
        case Cause::Reset:
        case Cause::BadResponse:
            return p.on_reset && replayable();
        case Cause::Timeout:
            return p.on_per_try_timeout && replayable();
        case Cause::Status:
            return std::find(p.on_statuses.begin(), p.on_statuses.end(), status) != p.on_statuses.end() &&
                   replayable();
    }
    return false;
}

void ProxyState::failed(Cause cause, int status) {
    const std::uint64_t now = reactor_.now_ms();
    upstream::Outcome outcome = upstream::Outcome::Reset;
    switch (cause) {
        case Cause::ConnectFailure:
        case Cause::ConnectTimeout:
        case Cause::TlsFailure:
            outcome = upstream::Outcome::ConnectFailure;
            break;
        case Cause::Reset:
            outcome = upstream::Outcome::Reset;
            break;
        case Cause::Timeout:
            outcome = upstream::Outcome::Timeout;
            break;
        case Cause::Status:
            outcome = upstream::Outcome::Status5xx;
            break;
        case Cause::BadResponse:
            outcome = upstream::Outcome::Reset;
            break;
    }
    if (pool_ != nullptr) {
        cluster_->cluster().report(pool_->endpoint, outcome, now);
    }
    if (cause != Cause::Status) {
        constexpr UpstreamError kErrors[] = {UpstreamError::ConnectFailure, UpstreamError::ConnectTimeout,
                                             UpstreamError::Tls,            UpstreamError::Reset,
                                             UpstreamError::Timeout,        UpstreamError::Reset,
                                             UpstreamError::BadResponse};
        series_->errors[static_cast<std::size_t>(kErrors[static_cast<std::size_t>(cause)])].add();
        if (pool_ != nullptr) {
            pool_->metrics(true).errors.add();
        }
    }
    if (span_open_) {
        constexpr std::string_view kCauses[] = {"connect_failure", "connect_timeout", "tls_failure", "reset",
                                                "timeout",         "",                "bad_response"};
        end_span(status, kCauses[static_cast<std::size_t>(cause)]);
    }
    const bool retry = may_retry(cause, status);
    detach(false);
    partial_len_ = 0;
    if (retry) {
        schedule_retry();
        return;
    }
    switch (cause) {
        case Cause::ConnectFailure:
            give_up(502, "upstream connect failed", "connect_failed");
            break;
        case Cause::ConnectTimeout:
            give_up(504, "upstream connect timeout", "connect_timeout");
            break;
        case Cause::TlsFailure:
            give_up(502, "upstream TLS handshake failed", "tls_failed");
            break;
        case Cause::Reset:
            give_up(502, "upstream closed before responding", "upstream_reset");
            break;
        case Cause::Timeout:
            give_up(504, "upstream timeout", "upstream_timeout");
            break;
        case Cause::Status:
            give_up(502, "upstream failed", "upstream_5xx");
            break;
        case Cause::BadResponse:
            give_up(502, "bad upstream response", "bad_response");
            break;
    }
}

void ProxyState::schedule_retry() {
    ++attempt_;
    if (!counted_retry_) {
        ++cluster_->retries;
        series_->retries_active.add();
        counted_retry_ = true;
    }
    reactor_.metrics().retries.add();
    series_->retries.add();
    request_.rewind();
    // Jittered exponential back-off (full jitter), so retries from many requests spread out.
    const auto base = static_cast<std::uint64_t>(action_.retry.backoff_base.count());
    const auto cap = static_cast<std::uint64_t>(action_.retry.backoff_max.count());
    const std::uint64_t ceiling = std::min(cap, base << std::min<std::uint32_t>(attempt_ - 1, 16));
    reactor_.timers().arm(retry_timer_, reactor_.now_ms() + jitter(ceiling));
}

void ProxyState::on_retry_timer(detail::TimerWheel::Timer* t) {
    auto* self = static_cast<ProxyState*>(t->owner);
    if (self->h2_attached_) {
        self->deadline_passed(false);
        return;
    }
    if (self->waiting_) {
        self->stop_waiting();
        self->give_up(503, "no upstream connection became free in time", "pending_timeout");
        return;
    }
    if (self->reactor_.now_ms() >= self->total_deadline()) {
        self->give_up(504, "upstream request timeout", "request_timeout");
        return;
    }
    self->attempt();
}

// ---- HTTP/2 upstream streams ----

void ProxyState::h2_head(const http2::ClientStream& s, bool end_stream) {
    last_io_ms_ = reactor_.now_ms();
    if (!got_bytes_) {
        got_bytes_ = true;
        first_byte_us_ = static_cast<std::int64_t>(reactor_.now_us() - try_started_us_);
        series_->first_byte.observe(static_cast<std::uint64_t>(first_byte_us_));
    }
    if (s.status < 200) {
        // 100 Continue goes to a client that asked for it, as over HTTP/1.1; others are dropped.
        if (s.status == 100 && ex_.request().headers.has("Expect") && ex_.request().version != Version::Http10) {
            conn_.proxy_continue();
        }
        return;
    }
    http1::ResponseHead head;
    head.version = Version::Http2;
    head.status = s.status;
    head.headers = {s.fields, s.count};
    const std::string_view length = Headers(head.headers).get("content-length");
    if (!length.empty()) {
        // nghttp2 checked it is a number matching the DATA that follows (RFC 9113 §8.1.1).
        head.has_content_length = true;
        for (char c : length) {
            head.content_length = head.content_length * 10 + static_cast<std::uint64_t>(c - '0');
        }
    }
    if (end_stream) {
        head.body = http1::Framing::None;
    } else if (head.has_content_length && ex_.request().method != Method::Head) {
        head.body = http1::Framing::Length;
    } else {
        // Framed for an HTTP/1.1 client as chunks (h2_data), or as DATA for an HTTP/2 one.
        head.body = http1::Framing::Chunked;
    }
    (void)on_head(head);
}

void ProxyState::h2_data(const char* data, std::size_t len, std::uint16_t bid) {
    last_io_ms_ = reactor_.now_ms();
    if (done_ || !head_sent_) {
        return;
    }
    body_filters({data, len}, false);
    if (passthrough_ && len > 0) {
        // An HTTP/1.1 client gets the DATA as chunks (RFC 9112 §7.1): the size line and CRLF
        // are copied, the payload is forwarded from the receive buffer.
        char line[20];
        const int n = std::snprintf(line, sizeof line, "%zx\r\n", len);
        conn_.proxy_body(line, static_cast<std::uint32_t>(n), -1);
        conn_.proxy_body(data, static_cast<std::uint32_t>(len), bid);
        conn_.proxy_body("\r\n", 2, -1);
    } else {
        conn_.proxy_body(data, static_cast<std::uint32_t>(len), bid);
    }
    release_window();
}

void ProxyState::release_window() {
    if (call_.session != nullptr && conn_.response_backlog() < kMaxResponseBacklog) {
        call_.session->consume(call_);
    }
}

void ProxyState::h2_end(Headers trailers) {
    last_io_ms_ = reactor_.now_ms();
    if (done_ || !head_sent_) {
        return;
    }
    body_filters({}, true);
    if (passthrough_) {
        // The last chunk, then the trailer section (RFC 9112 §7.1.2).
        conn_.proxy_body("0\r\n", 3, -1);
        for (const Header& h : trailers) {
            if (!http1::trailer_forbidden(h.name)) {
                conn_.proxy_body(h.name.data(), static_cast<std::uint32_t>(h.name.size()), -1);
                conn_.proxy_body(": ", 2, -1);
                conn_.proxy_body(h.value.data(), static_cast<std::uint32_t>(h.value.size()), -1);
                conn_.proxy_body("\r\n", 2, -1);
            }
        }
        conn_.proxy_body("\r\n", 2, -1);
    } else if (trailers.size() > 0) {
        conn_.proxy_trailers(trailers);
    }
    finish();
}

void ProxyState::h2_failed(H2Failure why) {
    if (head_sent_) {
        // Cut mid-body: the client must see a truncated message, never a complete one.
        cluster_->cluster().report(pool_->endpoint, upstream::Outcome::Reset, reactor_.now_ms());
        detach(false);
        done_ = true;
        conn_.proxy_done(false);
        return;
    }
    // RFC 9113 §8.7: a refused stream was not processed, so any request may go again, once, on
    // another session, without blaming the endpoint (a GOAWAY race, a stream limit).
    if (why == H2Failure::Refused && !race_retried_ && request_.retaining() &&
        (!ex_.request().has_body || body_done_)) {
        resend_unprocessed();
        return;
    }
    constexpr Cause kCauses[] = {Cause::ConnectFailure, Cause::ConnectTimeout, Cause::TlsFailure,  // by H2Failure
                                 Cause::Reset,          Cause::Reset,          Cause::BadResponse};
    failed(kCauses[static_cast<std::size_t>(why)]);
}

// The request never reached the upstream's application (the keep-alive race, a refused stream):
// sent again once on a new connection, whatever the retry policy, the endpoint not blamed.
void ProxyState::resend_unprocessed() {
    race_retried_ = true;
    fresh_only_ = true;
    reactor_.metrics().keepalive_race_retries.add();
    detach(false);
    request_.rewind();
    --tried_count_;
    attempt();
}

std::size_t ProxyState::h2_body_ready(std::size_t max, bool& last) {
    const std::uint64_t n = std::min<std::uint64_t>(request_.unwritten(), max);
    last = body_done_ && n == request_.unwritten();
    if (last) {
        call_.request_trailers = outgoing_trailers();
    }
    return static_cast<std::size_t>(n);
}

void ProxyState::h2_body_take(SendQueue& out, std::size_t len) {
    request_.share_to(out, static_cast<std::uint32_t>(len));
    last_io_ms_ = reactor_.now_ms();
    if (input_blocked_ && request_.unwritten() < kMaxRequestBacklog / 2) {
        input_blocked_ = false;
        conn_.proxy_unblock_input();
    }
}

void ProxyState::end_span(int status, std::string_view error) {
    span_open_ = false;
    reactor_.observer().client_span(ex_, obs_, span_id_, span_start_ns_, action_.upstream->name(),
                                    pool_ != nullptr ? std::string_view(pool_->endpoint.text) : std::string_view(),
                                    status, error, attempt_);
}

void ProxyState::give_up(int status, const char* reason, const char* cause) {
    done_ = true;
    detach(false);
    log(LogLevel::Debug, "upstream \"%s\": %d %s", action_.upstream->name().c_str(), status, reason);
    conn_.proxy_error(status, reason, cause);
}

}  // namespace blitz::server

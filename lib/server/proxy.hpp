#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <blitz/exchange.hpp>
#include <blitz/router.hpp>

#include "core/timer_wheel.hpp"
#include "http1/parser.hpp"
#include "http1/proxy.hpp"
#include "server/engine_metrics.hpp"
#include "server/observe.hpp"
#include "server/send_queue.hpp"
#include "server/upstream_conn.hpp"
#include "server/upstream_h2.hpp"

namespace blitz::server {

/// What became of an upstream response head handed to the downstream.
struct HeadOutcome {
    /// Body bytes go on with their chunked framing (else as plain data).
    bool passthrough = false;
    /// A response filter answered in the upstream's place (Flow::Respond): the upstream's
    /// response is dropped and proxy_replaced() sends the filter's.
    bool replaced = false;
};

/// Where a downstream keeps its place in a proxied response's filter chain.
struct FilterCursor {
    std::uint16_t& index;     ///< the filters still to run are those below it
    bool& in_advance;         ///< set while they run: a resume() from inside one is only noted
    bool& resume_requested;
};

/// Runs a proxied response's on_response_headers from the cursor down (reverse order):
/// Continue when all ran, Pause while one holds the head, Respond when one answered in the
/// upstream's place (ex.responded()). With `fixed` (a 101) none can hold or replace it.
Flow run_response_filters(Exchange& ex, FilterCursor cursor, bool fixed);

/// Where a proxied exchange's response goes: an HTTP/1.1 connection or an HTTP/2 stream.
///
/// A response filter may hold the head (Flow::Pause) until it calls Exchange::resume(): the
/// downstream then keeps the body bytes and the end that arrive meanwhile and reports an
/// unbounded backlog, so the upstream is not read (nor its HTTP/2 window reopened) until the
/// head went out.
///
/// Thread: the reactor's. Lifetime: outlives the ProxyState it serves.
class Downstream {
public:
    /// Whether the client's own X-Forwarded-* may be kept (a trusted proxy).
    virtual bool peer_trusted() noexcept = 0;
    /// X-Forwarded-Client-Cert for a verified client certificate when the listener forwards it,
    /// else empty.
    virtual std::string_view client_cert_xfcc() noexcept = 0;
    /// No response will come: answer `status` with a JSON body naming `cause`.
    virtual void proxy_error(int status, const char* reason, const char* cause) = 0;
    /// Runs the response filters and sends the head (unless a filter holds it). The filters of
    /// a 101 run without holding or replacing it.
    virtual HeadOutcome proxy_head(const http1::ResponseHead& head, bool upgrade) = 0;
    /// Sends the response a filter set in place of the upstream's (proxy_head() said
    /// `replaced`); ends the exchange, and with it the ProxyState.
    virtual void proxy_replaced() = 0;
    virtual void proxy_body(const char* data, std::uint32_t len, std::int32_t bid) = 0;
    virtual void proxy_continue() = 0;
    /// The trailer fields of a chunked response whose body went out decoded (proxy_head()
    /// returned false), just before proxy_done(true). The views live in the exchange's arena.
    virtual void proxy_trailers(Headers fields) = 0;
    virtual void proxy_tunnel() = 0;
    /// The response ended (`clean`) or was cut (the client must not see it as complete).
    virtual void proxy_done(bool clean) = 0;
    /// Stop / resume taking request body bytes from the client (upstream back-pressure).
    virtual void proxy_block_input() = 0;
    virtual void proxy_unblock_input() = 0;
    /// Response bytes queued toward the client and not yet written; kHeldBacklog while a
    /// filter holds the head.
    virtual std::uint64_t response_backlog() const noexcept = 0;
    static constexpr std::uint64_t kHeldBacklog = ~std::uint64_t{0};

protected:
    ~Downstream() = default;
};

/// Whether the upstream of `action` takes request bodies with HTTP/1.1 framing (chunked as the
/// client sent it); an HTTP/2 upstream takes the plain bytes (DATA frames carry the framing).
inline bool framed_upstream_body(const ProxyAction& action) noexcept {
    return action.upstream->options().protocol == UpstreamProtocol::Http1;
}

/// One proxied exchange: picks endpoints, sends the request over pooled connections (one
/// exchange per HTTP/1.1 connection, or a stream of a multiplexed HTTP/2 session), retries what
/// may be retried, and streams the response back through its downstream Connection.
///
/// Thread: the reactor's. Lifetime: in the exchange's arena, destroyed with the exchange.
class ProxyState final : public UpstreamOwner, private H2StreamOwner {
public:
    ProxyState(Downstream& conn, Exchange& ex, const ExchangeObs& obs, const ProxyAction& action, ReactorImpl& reactor);
    ~ProxyState();
    ProxyState(const ProxyState&) = delete;
    ProxyState& operator=(const ProxyState&) = delete;

    /// Builds the upstream request head and sends the first attempt.
    void start();
    /// Request body bytes as received: `raw` is forwarded (with its HTTP/1.1 framing when
    /// framed_upstream_body(), else the plain bytes), `bid` is the receive buffer holding it or
    /// -1 (then it is copied).
    void request_body(const char* raw, std::size_t len, std::int32_t bid, bool end);
    /// Request body bytes held back (already framed for the upstream) before the proxy started.
    void request_body_from(SendQueue& held, bool end);
    /// Request trailers of an HTTP/2 client (viewing the exchange's arena), before the body's
    /// end: an HTTP/2 upstream gets them as a trailing HEADERS frame. (An HTTP/1.1 upstream gets
    /// them inside the chunked body, framed by the caller.)
    void request_trailers(std::span<const Header> fields);
    /// Trailer-section bytes of an HTTP/1.1 client's chunked body (BodyDecoder::Step::trailer,
    /// possibly in pieces), before the body's end, for an HTTP/2 upstream.
    void request_trailer_bytes(std::span<const char> bytes);
    /// Tunnel bytes from the client after a 101.
    void tunnel_data(const char* data, std::size_t len, std::int32_t bid);
    /// The client's output queue drained below the back-pressure mark.
    void downstream_drained();
    /// The head a response filter held went out: the upstream is read again.
    void response_released();
    /// The client went away: drop the upstream connection.
    void abort() noexcept;
    /// Whether the request body is still being forwarded (reading it is up to the proxy).
    bool wants_body() const noexcept { return started_ && !body_done_; }
    bool input_blocked() const noexcept { return input_blocked_; }
    bool response_started() const noexcept { return head_sent_; }

    /// What the access log and spans say of the upstream side (the last attempt's).
    struct Report {
        std::string_view endpoint;   ///< empty when no endpoint was picked
        int status = 0;              ///< the upstream's status, 0 without a response head
        std::int64_t connect_us = -1;
        std::int64_t first_byte_us = -1;
        std::uint32_t attempts = 0;
    };
    Report report() const noexcept {
        return {pool_ != nullptr ? std::string_view(pool_->endpoint.text) : std::string_view(), upstream_status_,
                connect_us_, first_byte_us_, started_ ? attempt_ + 1 : 0};
    }

    // UpstreamOwner
    void upstream_connected(UpstreamConn& c, int error) override;
    void upstream_data(UpstreamConn& c, char* data, std::size_t len, std::uint16_t bid) override;
    void upstream_closed(UpstreamConn& c, int error) override;
    void upstream_drained(UpstreamConn& c) override;
    void upstream_timer(UpstreamConn& c) override;
    void upstream_available(UpstreamConn* c) override;

private:
    // H2StreamOwner
    void h2_head(const http2::ClientStream& s, bool end_stream) override;
    void h2_data(const char* data, std::size_t len, std::uint16_t bid) override;
    void h2_end(Headers trailers) override;
    void h2_failed(H2Failure why) override;
    std::size_t h2_body_ready(std::size_t max, bool& last) override;
    void h2_body_take(SendQueue& out, std::size_t len) override;

    /// Why an attempt failed. Status: a response whose status the retry policy names;
    /// BadResponse: a response that could not be parsed (or a 101 nobody asked for).
    enum class Cause : std::uint8_t { ConnectFailure, ConnectTimeout, TlsFailure, Reset, Timeout, Status, BadResponse };

    bool build_head();
    /// The HTTP/2 request fields (build_head() for an HTTP/2 upstream).
    void build_h2_fields(Headers headers, std::span<const std::string_view> drop, Headers extra);
    void body_queued(bool end);
    void attempt();
    /// attempt() on an HTTP/2 upstream: a stream on a session to the picked endpoint.
    void attempt_h2();
    void wait_for_connection();
    void attach(UpstreamConn* c);
    void count_active() noexcept;
    void detach(bool reusable) noexcept;
    void uncount_active(const EndpointPool* pool) noexcept;
    /// The deadline timer (the connection's, or for an HTTP/2 stream retry_timer_) fired.
    void deadline_passed(bool connecting);
    /// Response bytes of an HTTP/2 stream handed on: its window reopens unless the client lags.
    void release_window();
    void arm_deadline();
    std::uint64_t per_try_deadline() const noexcept;
    std::uint64_t total_deadline() const noexcept;
    void failed(Cause cause, int status = 0);
    bool may_retry(Cause cause, int status) const noexcept;
    void schedule_retry();
    void resend_unprocessed();
    static void on_retry_timer(detail::TimerWheel::Timer* t);
    void give_up(int status, const char* reason, const char* cause);
    void parse(char* data, std::size_t len, std::int32_t bid);
    bool on_head(const http1::ResponseHead& head);
    void forward_body(char* p, char* end, std::int32_t bid);
    void finish();
    void check_backpressure();
    /// Whether upstream silence counts toward the idle timeout (not while a filter holds the
    /// response head: the upstream is not read then).
    bool idle_watched() const noexcept;
    void body_filters(std::span<const char> data, bool end);
    void keep_trailer(std::span<const char> bytes);
    /// Appends trailer-section bytes to `buf` (allocated in the arena on first use).
    void gather(char*& buf, std::uint32_t& len, std::span<const char> bytes);
    /// The request trailers an HTTP/2 upstream gets (the forbidden ones left out).
    Headers outgoing_trailers();
    bool pass_trailers();
    bool replayable() const noexcept;
    void stop_waiting() noexcept;
    void end_span(int status, std::string_view error);

    Downstream& conn_;
    Exchange& ex_;
    const ExchangeObs& obs_;
    const ProxyAction& action_;
    ReactorImpl& reactor_;
    upstream::LocalCluster* cluster_ = nullptr;
    UpstreamSeries* series_ = nullptr;
    UpstreamConn* up_ = nullptr;
    EndpointPool* pool_ = nullptr;
    int endpoint_ = -1;
    int tried_[8] = {};
    std::uint8_t tried_count_ = 0;
    std::uint32_t attempt_ = 0;
    bool started_ = false;
    bool counted_request_ = false;
    bool counted_retry_ = false;
    bool body_done_ = true;
    bool input_blocked_ = false;
    bool got_bytes_ = false;     // a response byte arrived on this attempt
    bool head_sent_ = false;     // the response head went to the client
    bool race_retried_ = false;  // the keep-alive race retry was used
    bool fresh_only_ = false;    // next attempt on a new connection
    bool tunnel_ = false;
    bool waiting_ = false;       // in pool_->waiters for a connection
    bool done_ = false;
    bool passthrough_ = false;   // response body bytes forwarded with their framing
    bool upgrade_ = false;       // the request asks for a protocol upgrade
    bool h2_ = false;            // the upstream speaks HTTP/2
    bool h2_attached_ = false;   // call_ counts as an active request of pool_'s endpoint
    std::uint64_t try_started_ms_ = 0;
    std::uint64_t try_started_us_ = 0;
    std::uint64_t connect_started_us_ = 0;  // 0: the attempt reuses a pooled connection
    std::int64_t connect_us_ = -1;
    std::int64_t first_byte_us_ = -1;
    int upstream_status_ = 0;
    // Tracing: the traceparent field's parent id in the request head, rewritten per attempt.
    char* traceparent_span_ = nullptr;
    trace::SpanId span_id_{};
    std::uint64_t span_start_ns_ = 0;
    bool span_open_ = false;  // a sampled attempt whose CLIENT span is not recorded yet
    std::uint64_t request_done_ms_ = 0;  // the whole request (body included) was received
    std::uint64_t last_io_ms_ = 0;
    http1::ResponseHead head_{};
    http1::BodyDecoder body_;
    std::string_view request_head_;
    // An HTTP/2 upstream's request: :path, :authority, :scheme and the fields, and the stream.
    std::string_view h2_path_;
    std::string_view h2_authority_;
    Header* h2_fields_ = nullptr;
    std::uint16_t h2_count_ = 0;
    UpstreamCall call_;
    SendQueue request_;
    // The trailer section of a chunked response going out decoded, gathered for the client.
    char* trailer_ = nullptr;
    std::uint32_t trailer_len_ = 0;
    // Request trailers for an HTTP/2 upstream: fields, or an HTTP/1.1 section still to parse.
    Header* request_trailers_ = nullptr;
    std::uint16_t request_trailer_count_ = 0;
    char* request_section_ = nullptr;
    std::uint32_t request_section_len_ = 0;
    // A response head split over receive buffers is gathered here.
    char* partial_ = nullptr;
    std::uint32_t partial_len_ = 0;
    std::uint32_t partial_cap_ = 0;
    detail::TimerWheel::Timer retry_timer_;
};

}  // namespace blitz::server

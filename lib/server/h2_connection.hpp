#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include <blitz/arena.hpp>
#include <blitz/exchange.hpp>

#include "core/block_pool.hpp"
#include "http/exchange_driver.hpp"
#include "http2/session.hpp"
#include "server/engine_metrics.hpp"
#include "server/proxy.hpp"

namespace blitz::server {

class Connection;
class H2Session;
class ReactorImpl;
class SendQueue;
struct ListenerConfig;

/// One HTTP/2 request stream: the codec's stream state, the exchange it carries through the
/// route's filters and action, and the Downstream a proxied response streams into.
///
/// Thread: its reactor's. Lifetime: from the stream's HEADERS until the codec closed it and its
/// exchange ended (a paused exchange keeps it until resume()); memory recycled by the reactor.
class H2Stream final : public http2::Stream, private Downstream, private detail::ExchangeDriver {
public:
    H2Stream(H2Session& session, detail::BlockPool& blocks) noexcept;
    ~H2Stream();
    H2Stream(const H2Stream&) = delete;
    H2Stream& operator=(const H2Stream&) = delete;

    /// Bytes the reactor reserves per pooled stream.
    static std::size_t bytes() noexcept;

private:
    friend class H2Session;
    enum class Phase : std::uint8_t {
        RequestHeaders, AwaitBody, Action, AwaitResponse, ResponseHeaders,
        ProxyHead,  // a proxied response's filters run (one may hold its head)
        Done, Streaming
    };

    // From the session (codec events).
    void start(http2::RequestHead& head, int status, const char* reason);
    void request_data(const char* data, std::size_t len, std::int32_t bid);
    void request_end(std::span<const Header> trailers);
    void codec_closed();
    std::size_t body_ready(std::size_t max, bool& last) noexcept;
    void write_data(SendQueue& out, std::size_t len);
    /// The connection wrote output: a proxy waiting on back-pressure may go on.
    void drained();
    /// Whether the session may free this stream now.
    bool reapable() const noexcept { return closed_ && exchange_done_; }

    // The exchange.
    void advance();
    void local_error(int status, const char* reason, std::string_view allow = {});
    void finish_response();
    void complete();
    void end_exchange() noexcept;
    void drop_proxy() noexcept;
    void deliver_body(std::span<const char> chunk, bool end);
    /// The request body framed for the upstream, waiting to be moved to the proxy's queue.
    SendQueue& upstream_body();
    void give_window(std::size_t n) noexcept;
    SendQueue& body_queue();
    void watch_stall();
    /// Sends 100 Continue when the client asked for it and is still waiting to send its body.
    void send_continue();

    // Downstream
    bool peer_trusted() noexcept override;
    std::string_view client_cert_xfcc() noexcept override;
    void proxy_error(int status, const char* reason, const char* cause) override;
    HeadOutcome proxy_head(const http1::ResponseHead& head, bool upgrade) override;
    void proxy_replaced() override;
    Flow proxy_filters();
    bool send_proxied_head();
    void release_proxy_head();
    void proxy_body(const char* data, std::uint32_t len, std::int32_t bid) override;
    void proxy_continue() override { send_continue(); }
    void proxy_trailers(Headers fields) override;
    void proxy_tunnel() override {}
    void proxy_done(bool clean) override;
    void proxy_block_input() override { input_blocked_ = true; }
    void proxy_unblock_input() override;
    std::uint64_t response_backlog() const noexcept override;

    // ExchangeDriver
    void exchange_resume() override;
    void exchange_read_body() override;
    Reactor& exchange_reactor() noexcept override;
    std::string_view exchange_client_address() noexcept override;
    bool exchange_aborted() const noexcept override { return aborted_; }
    const TlsInfo* exchange_tls() noexcept override;

    H2Session& session_;
    /// The listener generation this stream's request is routed with (new streams take up a
    /// reload; streams in flight keep theirs).
    ListenerConfig* config_;
    Arena arena_;
    Exchange ex_;
    ProxyState* proxy_ = nullptr;
    SendQueue* body_ = nullptr;  // response body waiting for DATA frames
    SendQueue* held_ = nullptr;  // request body framed for the upstream, not yet with the proxy
    std::span<const Header> request_trailers_;  // for an HTTP/2 upstream, in arena_
    Phase phase_ = Phase::RequestHeaders;
    std::uint16_t filter_index_ = 0;
    bool paused_ = false;
    bool in_advance_ = false;
    bool resume_requested_ = false;
    bool aborted_ = false;
    bool closed_ = false;          // the codec is done with the stream
    bool exchange_done_ = false;   // on_log ran, or the exchange was dropped
    bool body_done_ = true;        // the request body ended
    bool body_end_ = false;        // the response body's last byte is in body_
    bool head_sent_ = false;
    bool chunked_ = false;         // the upstream request body is sent chunked
    bool input_blocked_ = false;   // the upstream is behind: the window stays closed
    bool is_head_ = false;
    bool expect_continue_ = false;  // the request carries expect: 100-continue and a body
    bool continue_sent_ = false;
    bool upstream_body_ = false;  // the upstream's response head announced a body
    bool held_end_ = false;       // the response ended while a filter held its head
    bool held_clean_ = false;     // ... completely
    std::uint64_t body_limit_ = 0;
    std::uint64_t body_seen_ = 0;
    std::uint64_t unconsumed_ = 0;  // request bytes not yet given back to the client's window
    std::uint64_t stalled_since_ms_ = 0;  // a response waits on a closed window since then
    ExchangeObs obs_;
    std::uint64_t bytes_received_ = 0;    // DATA payload
    std::uint64_t bytes_sent_ = 0;        // DATA payload queued
    std::uint64_t started_us_ = 0;        // the reactor's clock when the request head was complete
    std::string_view client_address_;
    H2Stream* prev_ = nullptr;
    H2Stream* next_ = nullptr;
};

/// The HTTP/2 side of a downstream Connection: the codec session, the streams, and the frames
/// between them and the connection's output queue. The Connection keeps the socket, TLS,
/// timers and the send in flight.
///
/// Thread: its reactor's. Lifetime: owned by its Connection from the preface (or ALPN h2) until
/// the connection is recycled.
class H2Session final : private http2::Handler {
public:
    H2Session(Connection& conn, const http2::Limits& limits) noexcept;
    ~H2Session();
    H2Session(const H2Session&) = delete;
    H2Session& operator=(const H2Session&) = delete;

    bool start();
    /// Received plaintext in receive buffer `bid` (-1: a copy).
    void input(const char* data, std::size_t len, std::int32_t bid);
    /// Serialises due frames into the connection's queue and sends them.
    void flush();
    /// A send completed: streams waiting on back-pressure go on; more frames may be due.
    void sent();
    /// Timer: zero-window stalls, idle and age limits. Returns the next deadline (0: none).
    std::uint64_t check_timers(std::uint64_t now_ms);
    /// Graceful GOAWAY (age, request limit).
    void goaway();
    /// Draining (server stop, listener removed): the shutdown notice now, the final GOAWAY at
    /// `final_ms` (streams the client opened meanwhile are still served).
    void begin_shutdown(std::uint64_t final_ms);
    /// The connection closes: every exchange is aborted (paused ones end on resume()).
    void abort_all() noexcept;
    std::size_t streams() const noexcept { return streams_; }
    /// The input bytes currently being processed sit in this receive buffer (-1: a copy).
    std::int32_t current_bid() const noexcept { return bid_; }

    Connection& connection() noexcept { return conn_; }
    http2::ServerSession& codec() noexcept { return codec_; }
    void stream_done(H2Stream& s);
    /// A per-stream HTTP/2 limit was hit (counted in the reactor's metrics).
    void limit_hit(H2StreamLimit limit) noexcept;

private:
    // http2::Handler
    http2::Stream* h2_open(std::int32_t id) override;
    void h2_refused() override;
    void h2_request(http2::Stream& s, http2::RequestHead& head, int status, const char* reason) override;
    void h2_data(http2::Stream& s, const char* data, std::size_t len) override;
    void h2_request_end(http2::Stream& s, std::span<const Header> trailers) override;
    void h2_closed(http2::Stream& s, std::uint32_t error) override;
    void h2_write(const std::uint8_t* data, std::size_t len) override;
    std::size_t h2_body_ready(http2::Stream& s, std::size_t max, bool& last) override;
    void h2_write_data(http2::Stream& s, const std::uint8_t* frame_head, std::size_t len) override;

    void reap() noexcept;
    void free_stream(H2Stream* s) noexcept;

    // Kept by every idle HTTP/2 connection: packed.
    Connection& conn_;
    http2::ServerSession codec_;
    H2Stream* head_ = nullptr;  // live streams (intrusive list)
    std::uint64_t final_goaway_ms_ = 0;  // draining: when the shutdown notice becomes GOAWAY
    std::uint32_t streams_ = 0;
    std::int32_t bid_ = -1;
    std::uint32_t depth_ = 0;  // nested entry points: streams are freed only at the outermost
    bool dead_ = false;        // some stream is reapable
};

}  // namespace blitz::server

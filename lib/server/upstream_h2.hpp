#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include <blitz/http.hpp>

#include "core/timer_wheel.hpp"
#include "http2/client.hpp"
#include "server/send_queue.hpp"
#include "server/upstream_conn.hpp"

namespace blitz::server {

class UpstreamH2Session;

/// Why an HTTP/2 upstream stream ended without a complete response.
enum class H2Failure : std::uint8_t {
    ConnectFailure,  ///< the connection could not be made
    ConnectTimeout,
    TlsFailure,
    Refused,    ///< the server never processed the request (REFUSED_STREAM, beyond its GOAWAY)
    Reset,      ///< the stream or the connection broke after the request went out
    BadResponse,  ///< a response HTTP/2 forbids (nghttp2's messaging rules, too large a head)
};

/// What an HTTP/2 upstream stream reports to the exchange that opened it.
///
/// Thread: the reactor's. Lifetime: the owner cancels its stream (UpstreamH2Session::cancel)
/// before it goes.
class H2StreamOwner {
public:
    /// The response head (`end_stream`: it has no body). A 1xx head may come first.
    virtual void h2_head(const http2::ClientStream& s, bool end_stream) = 0;
    /// Response body bytes in receive buffer `bid` (hold it to keep them).
    virtual void h2_data(const char* data, std::size_t len, std::uint16_t bid) = 0;
    /// The response ended; `trailers` is empty without a trailing HEADERS frame.
    virtual void h2_end(Headers trailers) = 0;
    virtual void h2_failed(H2Failure why) = 0;
    /// Request body bytes ready to go (<= max), and whether they are the last.
    virtual std::size_t h2_body_ready(std::size_t max, bool& last) = 0;
    /// Moves the next `len` request body bytes to `out` (by reference).
    virtual void h2_body_take(SendQueue& out, std::size_t len) = 0;

protected:
    ~H2StreamOwner() = default;
};

/// One request on an HTTP/2 upstream session: the codec's stream plus who it reports to.
///
/// Thread: the reactor's. Lifetime: a member of its owner (ProxyState), reused per attempt.
struct UpstreamCall : http2::ClientStream {
    H2StreamOwner* owner = nullptr;
    UpstreamH2Session* session = nullptr;
};

/// One HTTP/2 connection to an upstream endpoint, multiplexing requests from many exchanges
/// (prior knowledge, or ALPN "h2" over TLS). It owns its UpstreamConn as transport; response
/// DATA is handed on from the receive buffers without a copy, request bodies are sent from the
/// exchanges' queues by reference, and both directions are paced by HTTP/2 flow control.
///
/// Thread: its reactor's. Lifetime: made by ProxyContext::h2_session(), listed in its
/// EndpointPool while it takes new streams; it deletes itself once its connection closed and no
/// call is left.
class UpstreamH2Session final : public UpstreamOwner, private http2::ClientHandler {
public:
    UpstreamH2Session(ReactorImpl& reactor, EndpointPool& pool) noexcept;
    ~UpstreamH2Session();
    UpstreamH2Session(const UpstreamH2Session&) = delete;
    UpstreamH2Session& operator=(const UpstreamH2Session&) = delete;

    /// Starts connecting; false (with `error` = errno) when no socket could be made.
    bool open(int& error);
    /// Whether another request may start on this session now.
    bool can_open() const noexcept { return !closed_ && codec_.can_open(); }
    bool connected() const noexcept { return conn_ != nullptr && conn_->connected(); }

    /// Sends a request head on `call` (fields as for http2::ClientSession::submit); the body, if
    /// any, follows through the owner's h2_body_ready()/h2_body_take(). False when the head
    /// cannot be sent.
    bool submit(UpstreamCall& call, std::string_view method, std::string_view scheme, std::string_view authority,
                std::string_view path, Headers fields, bool has_body);
    /// The owner's request body has more bytes (or its end).
    void resume_body(UpstreamCall& call);
    /// The response bytes of `call` received so far left for the client: its window reopens.
    void consume(UpstreamCall& call) noexcept;
    /// Ends `call` (RST_STREAM CANCEL unless it completed) and forgets its owner.
    void cancel(UpstreamCall& call) noexcept;
    /// Closes the session if no call uses it (the reactor stops, the endpoint left).
    void close_if_idle() noexcept;

    // UpstreamOwner
    void upstream_connected(UpstreamConn& c, int error) override;
    void upstream_data(UpstreamConn& c, char* data, std::size_t len, std::uint16_t bid) override;
    void upstream_closed(UpstreamConn& c, int error) override;
    void upstream_drained(UpstreamConn& c) override;
    void upstream_timer(UpstreamConn& c) override;
    void upstream_available(UpstreamConn* c) override;

private:
    // http2::ClientHandler
    void h2c_head(http2::ClientStream& s, bool end_stream) override;
    void h2c_data(http2::ClientStream& s, const char* data, std::size_t len) override;
    void h2c_end(http2::ClientStream& s) override;
    void h2c_closed(http2::ClientStream& s, std::uint32_t error) override;
    void h2c_write(const std::uint8_t* data, std::size_t len) override;
    std::size_t h2c_body_ready(http2::ClientStream& s, std::size_t max, bool& last) override;
    void h2c_write_data(http2::ClientStream& s, const std::uint8_t* frame_head, std::size_t len) override;

    /// Sends what the codec has due.
    void flush();
    /// Ends the session: every call fails with `why`, the connection closes.
    void fail(H2Failure why) noexcept;
    void forget(UpstreamCall& call) noexcept;
    void idle_check() noexcept;
    static void on_reap(detail::TimerWheel::Timer* t);

    ReactorImpl& reactor_;
    EndpointPool& pool_;
    UpstreamConn* conn_ = nullptr;
    http2::ClientSession codec_;
    SendQueue out_;
    std::vector<UpstreamCall*> calls_;
    std::uint16_t bid_ = 0;  // the receive buffer being parsed
    bool closed_ = false;
    bool in_flush_ = false;
    detail::TimerWheel::Timer reap_timer_;
};

}  // namespace blitz::server

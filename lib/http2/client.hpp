#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include <blitz/arena.hpp>
#include <blitz/http.hpp>

struct nghttp2_session;

/// HTTP/2 client codec (RFC 9113) over nghttp2, sans-I/O, for connections to upstreams: requests
/// go out as HEADERS (+ DATA taken from the caller by reference), responses come back as a head,
/// body chunks and trailers. One session multiplexes many streams; nghttp2 checks the messaging
/// rules (pseudo-headers, content-length against DATA) so a broken upstream response ends its
/// stream with PROTOCOL_ERROR instead of reaching the client.
namespace blitz::http2 {

/// One request stream of a ClientSession. The proxy's per-exchange object derives from it; the
/// codec fills the response head (and later the trailers) into `arena`.
///
/// Thread: its session's. Lifetime: from ClientSession::submit() until h2c_closed() or cancel().
struct ClientStream {
    std::int32_t id = 0;
    Arena* arena = nullptr;  ///< set before submit(): receives the response fields

    // Filled by the codec.
    int status = 0;
    Header* fields = nullptr;  ///< the response head's fields, then (in_trailers) the trailers'
    std::uint16_t count = 0;
    std::uint16_t capacity = 0;
    std::uint32_t head_bytes = 0;
    /// Response-body bytes received and not yet consume()d: the stream's window is that much
    /// smaller. Given back to the connection window when the stream ends.
    std::uint32_t unconsumed = 0;
    bool in_trailers = false;
    bool too_large = false;  ///< the head broke ClientLimits (the stream is reset)
    /// Request trailers, set by the caller by the time the body's last byte is reported: sent
    /// as a trailing HEADERS frame that ends the stream instead of the last DATA frame. Names in
    /// any case (lower-cased); fields HTTP/2 cannot carry are left out.
    Headers request_trailers;
};

/// What the codec asks of its connection.
///
/// Thread: the connection's. Lifetime: outlives the ClientSession.
class ClientHandler {
public:
    /// A complete response head: `s.status` (1xx included: informational heads come first) and
    /// its fields; `end_stream` when no body follows (the stream is then the handler's no more,
    /// as after h2c_end(): no h2c_closed() follows).
    virtual void h2c_head(ClientStream& s, bool end_stream) = 0;
    /// Response body bytes: a view into the buffer given to receive(). The stream's window
    /// reopens when the caller calls consume() (the connection's when the stream ends).
    virtual void h2c_data(ClientStream& s, const char* data, std::size_t len) = 0;
    /// The response ended: with trailers (`s.fields`, `s.in_trailers`) or after its last DATA.
    /// The codec forgets the stream first: `s` may be reused for another submit() at once.
    virtual void h2c_end(ClientStream& s) = 0;
    /// The stream closed; `error` is the RFC 9113 §7 code (0 after a complete exchange,
    /// REFUSED_STREAM when the server never processed it). The codec does not touch `s` again.
    virtual void h2c_closed(ClientStream& s, std::uint32_t error) = 0;
    /// Frame bytes to send; copy them (they live until the call returns).
    virtual void h2c_write(const std::uint8_t* data, std::size_t len) = 0;
    /// Request body for a DATA frame: how many bytes (<= max) are ready now (0 = none yet, ask
    /// again after resume_body()), and whether they are the last.
    virtual std::size_t h2c_body_ready(ClientStream& s, std::size_t max, bool& last) = 0;
    /// Writes one DATA frame: the 9-byte `frame_head` (copy it), then `len` bytes taken from the
    /// front of the stream's pending request body.
    virtual void h2c_write_data(ClientStream& s, const std::uint8_t* frame_head, std::size_t len) = 0;

protected:
    ~ClientHandler() = default;
};

/// Limits toward an upstream (a broken or hostile server must not make us hold much).
///
/// Thread: value type. Lifetime: copied into the session.
struct ClientLimits {
    std::uint32_t max_head_bytes = 64 * 1024;  ///< decoded response header list
    std::uint16_t max_headers = 100;
    std::uint32_t stream_window = 256 * 1024;        ///< SETTINGS_INITIAL_WINDOW_SIZE we send
    std::uint32_t connection_window = 16 * 1024 * 1024;
    /// Streams open at once, whatever the server allows (before its SETTINGS arrive nghttp2
    /// assumes 100, RFC 9113 §6.5.2's recommended minimum).
    std::uint32_t max_streams = 100;
};

/// One client-side HTTP/2 connection's protocol state.
///
/// Thread: its connection's. Lifetime: owned by the connection. Destroying it does not call
/// h2c_closed(): the owner fails the streams it still holds itself.
class ClientSession {
public:
    ClientSession(ClientHandler& handler, const ClientLimits& limits) noexcept;
    ~ClientSession();
    ClientSession(const ClientSession&) = delete;
    ClientSession& operator=(const ClientSession&) = delete;

    /// Creates nghttp2's session and queues the connection preface and our SETTINGS (no push).
    bool start();

    /// Feeds received bytes. False when the connection must end (a protocol error: GOAWAY is
    /// queued, send() it, then close).
    bool receive(const char* data, std::size_t len);
    /// Serialises what is due into h2c_write()/h2c_write_data(). False on a fatal error.
    bool send();
    bool want_write() const noexcept;
    /// Whether the connection is finished on both sides (after GOAWAY both ways, say).
    bool done() const noexcept;

    /// Opens stream `s` with a request head. `fields` may use any case (names are lower-cased)
    /// and lose connection-specific fields (RFC 9113 §8.2.2) except `te: trailers`. With
    /// `has_body` the body follows through h2c_body_ready(). Returns the stream id, or 0 when the
    /// request cannot be sent (a field HTTP/2 cannot carry, or no stream id left).
    std::int32_t submit(ClientStream& s, std::string_view method, std::string_view scheme,
                        std::string_view authority, std::string_view path, Headers fields, bool has_body);
    /// The request body has more bytes (or its end) ready.
    void resume_body(ClientStream& s);
    /// The response-body bytes of `s` received so far were handed on: the server may send that
    /// many more.
    void consume(ClientStream& s) noexcept;
    /// Resets `s` (RST_STREAM CANCEL) and forgets it: no callback names it again.
    void cancel(ClientStream& s) noexcept;
    /// Graceful GOAWAY: no new stream; those open finish.
    void goaway() noexcept;

    /// Whether another stream may be opened now: below the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS, no GOAWAY either way, stream ids left.
    bool can_open() const noexcept;
    /// Streams opened and not yet closed.
    std::uint32_t open_streams() const noexcept { return open_; }
    /// The server sent GOAWAY (or the session failed): no new stream may start.
    bool closing() const noexcept;

    struct Callbacks;

private:
    bool add_field(ClientStream& s, std::string_view name, std::string_view value);
    /// Submits `s.request_trailers`; false when none of them can be sent.
    bool submit_trailers(ClientStream& s);

    ClientHandler& handler_;
    ClientLimits limits_;
    nghttp2_session* session_ = nullptr;
    std::uint32_t open_ = 0;
    bool failed_ = false;
    bool goaway_received_ = false;
};

}  // namespace blitz::http2

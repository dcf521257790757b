#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <blitz/arena.hpp>
#include <blitz/http.hpp>
#include <blitz/listener.hpp>

#include "http2/hpack.hpp"

/// HTTP/2 server codec (RFC 9113), sans-I/O: bytes in, frames out through a Handler. Our own
/// frame layer and HPACK (no nghttp2 on the server side): an idle connection holds this object
/// and nothing else, no buffer and no table until a frame needs one. It validates requests the
/// way the HTTP/1.1 codec does (RFC 9113 §8's messaging rules, then the same path, query,
/// authority and head-size limits), translates them into the protocol-neutral Request fields,
/// and keeps the flood budgets of Http2Options.
namespace blitz::http2 {

/// RFC 9113 §7 error codes.
enum ErrorCode : std::uint32_t {
    kNoError = 0x0,
    kProtocolError = 0x1,
    kInternalError = 0x2,
    kFlowControlError = 0x3,
    kStreamClosed = 0x5,
    kFrameSizeError = 0x6,
    kRefusedStream = 0x7,
    kCancel = 0x8,
    kCompressionError = 0x9,
    kEnhanceYourCalm = 0xb,
};

/// Why the codec ended the connection on its own (counted by the server): streams reset faster
/// than they complete (Rapid Reset, MadeYouReset), control frames over budget (PING/SETTINGS/empty
/// frames), or a CONTINUATION flood. (A client that provokes frames without reading them is
/// not a flood here: the server stops reading once its output backs up.)
enum class Flood : std::uint8_t { None, Resets, ControlFrames, Continuation };
inline constexpr std::size_t kFloodKinds = 3;  // without None
/// The label of a flood other than None ("resets", "control_frames", "continuation").
std::string_view flood_name(Flood flood) noexcept;

/// The codec's part of one request stream. The server's stream object derives from it and
/// hands it out from Handler::h2_open(); the codec fills the request head into its arena.
///
/// Thread: its connection's. Lifetime: from h2_open() until h2_closed() returned.
struct Stream {
    std::int32_t id = 0;
    Arena* arena = nullptr;  ///< set by h2_open(): receives copies of the head's fields

    // Filled by the codec.
    std::string_view method;
    std::string_view scheme;
    std::string_view authority;
    std::string_view path;  ///< :path as sent
    Header* fields = nullptr;
    std::uint16_t count = 0;
    std::uint16_t capacity = 0;
    std::uint32_t head_bytes = 0;  ///< RFC 9113 §6.5.2 size: name + value + 32 per field
    std::uint16_t cookies = 0;
    bool in_trailers = false;
    bool request_done = false;   ///< END_STREAM was received
    bool response_done = false;  ///< END_STREAM was sent (or queued)
    bool upload_stopped = false;  ///< RST_STREAM NO_ERROR sent to end an unread upload
    std::uint64_t drained = 0;   ///< request-body bytes that came after the response
    std::uint32_t blocks_in = 0;   ///< request header blocks received (head, trailers), HPACK-encoded
    std::uint32_t blocks_out = 0;  ///< response header blocks sent (1xx, head, trailers), HPACK-encoded
    int error_status = 0;        ///< 431 when the head broke a limit (the head is incomplete)
    /// Set by the server before the response body's last byte is reported: sent as a trailing
    /// HEADERS frame that ends the stream instead of the last DATA frame (RFC 9113 §8.1).
    Headers response_trailers;

    // The codec's own state of the stream (session.cpp); the server leaves it alone.
    std::int64_t send_window = 0;      ///< DATA bytes the client lets us send
    std::int64_t recv_window = 0;      ///< DATA bytes the client may still send
    std::uint32_t unacked = 0;         ///< bytes handed on, not yet returned by WINDOW_UPDATE
    std::int64_t expected_length = -1;  ///< content-length of the request, -1: none
    std::uint64_t received = 0;        ///< request DATA payload so far
    Stream* open_next = nullptr;       ///< the session's open streams
    Stream* open_prev = nullptr;
    Stream* ready_next = nullptr;      ///< streams with response DATA to send
    Stream* ready_prev = nullptr;
    Stream* closing_next = nullptr;    ///< streams whose h2_closed() is due
    std::uint32_t close_error = 0;
    bool body_pending = false;  ///< the response has a body still to send (DATA or its end)
    bool in_ready = false;
    bool closing = false;       ///< reset or complete: only h2_closed() remains
};

/// A validated request head. Views live in the stream's arena (or are static).
///
/// Thread: value type. Lifetime: the stream's arena.
struct RequestHead {
    Method method = Method::Get;
    std::string_view method_name;
    std::string_view scheme;
    std::string_view authority;  ///< :authority, else the Host field
    std::string_view path;       ///< normalised, without query ("*" for OPTIONS *)
    std::string_view query;
    std::string_view raw_target;  ///< normalised path + "?" + query
    std::span<Header> headers;    ///< regular fields, lower-case names, cookies joined into one
    std::int64_t content_length = -1;
    bool end_stream = false;  ///< no body follows
};

/// What the codec asks of its connection.
///
/// Thread: the connection's. Lifetime: outlives the ServerSession.
class Handler {
public:
    /// A client opened stream `id`: returns its Stream (with `arena` set), or nullptr to refuse
    /// it (REFUSED_STREAM).
    virtual Stream* h2_open(std::int32_t id) = 0;
    /// A client opened a stream beyond max_concurrent_streams: it is refused (REFUSED_STREAM)
    /// without h2_open().
    virtual void h2_refused() = 0;
    /// The request head is complete. `status` is 0, or the 4xx the head earned (400 for a
    /// malformed path or authority, 431 beyond the head limits): the server answers it.
    virtual void h2_request(Stream& s, RequestHead& head, int status, const char* reason) = 0;
    /// Request body bytes: a view into the buffer given to receive(). The connection window is
    /// reopened when the server calls ServerSession::consume().
    virtual void h2_data(Stream& s, const char* data, std::size_t len) = 0;
    /// The request ended; `trailers` (possibly empty) live in the stream's arena.
    virtual void h2_request_end(Stream& s, std::span<const Header> trailers) = 0;
    /// The stream is closed (`error` is the RFC 9113 §7 code, 0 after a complete exchange);
    /// the codec does not touch `s` again.
    virtual void h2_closed(Stream& s, std::uint32_t error) = 0;
    /// Frame bytes to send; copy them (they live until the call returns).
    virtual void h2_write(const std::uint8_t* data, std::size_t len) = 0;
    /// Response body for a DATA frame: how many bytes (<= max) are ready now (0 = none yet,
    /// ask again after resume_body()), and whether they are the last.
    virtual std::size_t h2_body_ready(Stream& s, std::size_t max, bool& last) = 0;
    /// Writes one DATA frame: the 9-byte `frame_head` (copy it), then `len` bytes taken from the
    /// front of the stream's pending body.
    virtual void h2_write_data(Stream& s, const std::uint8_t* frame_head, std::size_t len) = 0;

protected:
    ~Handler() = default;
};

/// Limits of one connection: the listener's HTTP/2 options and its request-head limits.
///
/// Thread: value type. Lifetime: copied into the session.
struct Limits {
    Http2Options h2;
    std::uint32_t max_head_bytes = 16 * 1024;  ///< decoded header list (MAX_HEADER_LIST_SIZE)
    std::uint32_t max_headers = 100;
    std::uint32_t max_path_bytes = 8 * 1024;
    /// Request-body bytes still read (and dropped) after the response ended the stream.
    std::uint64_t max_drain_bytes = 64 * 1024;
};

/// Fields the server adds to a response head itself, after the handler's; a handler's field
/// of the same name is dropped. Their values are the server's own and not checked.
struct ServerFields {
    std::string_view date;             ///< empty: none
    std::int64_t content_length = -1;  ///< -1: none
};

/// One server-side HTTP/2 connection's protocol state.
///
/// Thread: its connection's. Lifetime: owned by the connection. Destroying it does not call
/// h2_closed(): the owner drops the streams it still holds itself.
class ServerSession {
public:
    ServerSession(Handler& handler, const Limits& limits) noexcept;
    ~ServerSession();
    ServerSession(const ServerSession&) = delete;
    ServerSession& operator=(const ServerSession&) = delete;

    /// Writes our SETTINGS (the server preface) and the connection window's first update.
    bool start();

    /// Feeds received bytes (`now_ms` refills the flood budgets). Returns false when the
    /// connection must end: a protocol error or a flood (GOAWAY is queued: send() it, then
    /// close).
    bool receive(const char* data, std::size_t len, std::uint64_t now_ms);
    /// Serialises what is due into h2_write()/h2_write_data(). False on a fatal error.
    bool send();
    /// Whether the connection is finished: nothing more to read and nothing to write.
    bool done() const noexcept;
    bool want_write() const noexcept;

    /// Sends the response head. `fields` may use any case (names are lower-cased) and lose
    /// connection-specific fields (RFC 9113 §8.2.2); `own` follows them. With `has_body` the
    /// body follows through h2_body_ready(); otherwise the head ends the stream. False when a
    /// field cannot be sent (CR, LF or NUL in a value, an invalid name) or the stream is gone.
    bool respond(Stream& s, int status, Headers fields, bool has_body, ServerFields own = {});
    /// respond() for a body that is at hand whole (not empty): when the windows and the frame
    /// size allow, it goes out at once in one DATA frame that ends the stream (copied), and
    /// `sent` is set; otherwise it is to come through h2_body_ready() as after respond() with
    /// `has_body`.
    bool respond_whole(Stream& s, int status, Headers fields, std::string_view body, ServerFields own,
                       bool& sent);
    /// Sends trailers and ends the stream (after the body's last byte was reported; a stream
    /// with response_trailers set has them sent this way by itself).
    bool trailers(Stream& s, Headers fields);
    /// Sends an informational (1xx) response head, e.g. 100 Continue (RFC 9110 §15.2); the
    /// final response follows with respond(). False when the stream is gone.
    bool informational(Stream& s, int status);
    /// The stream's body has more bytes (or its end) ready.
    void resume_body(Stream& s);
    /// Resets the stream (RST_STREAM with `error`).
    void reset(Stream& s, std::uint32_t error) noexcept;
    /// `n` request-body bytes of `s` were handed on: the client may send that many more.
    void consume(Stream& s, std::size_t n) noexcept;
    /// Request-body bytes of a stream that closed before they were handed on: the connection
    /// window gets them back.
    void consume_connection(std::size_t n) noexcept;
    /// Graceful GOAWAY (NO_ERROR): streams already opened finish, no new one is accepted.
    void goaway() noexcept;
    /// The first GOAWAY of a graceful shutdown (RFC 9113 §6.8): last stream id 2^31-1, so the
    /// client opens no new stream while those it already sent are still served; goaway()
    /// follows after a round trip with the real last stream id.
    void shutdown_notice() noexcept;
    /// Ends the connection with GOAWAY `error` at once.
    void terminate(std::uint32_t error) noexcept;

    /// Bytes the response of `s` may still send (the smaller of the stream's and the
    /// connection's window); 0: it waits for the client's WINDOW_UPDATE.
    std::int32_t send_window(const Stream& s) const noexcept;
    Flood flood() const noexcept { return flood_; }
    bool going_away() const noexcept { return goaway_sent_; }

    /// The owner drops every stream it holds (the connection is closing): the codec forgets
    /// them and takes no more input.
    void abandon() noexcept;

private:
    /// The limits the codec enforces (from Limits, without what it does not use).
    struct Rules {
        std::uint64_t max_drain_bytes;
        std::uint32_t max_concurrent_streams;
        std::uint32_t initial_stream_window;
        std::uint32_t connection_window;
        std::uint32_t max_frame_size;
        std::uint32_t reset_rate;
        std::uint32_t reset_burst;
        std::uint32_t control_frame_rate;
        std::uint32_t control_frame_burst;
        std::uint32_t max_head_bytes;
        std::uint32_t max_path_bytes;
        std::uint32_t header_table_size;
        std::uint16_t max_headers;
        std::uint16_t max_continuation_frames;
    };
    /// A token bucket. Times are the low 32 bits of the millisecond clock: an interval is their
    /// difference modulo 2^32 (connections do not sit idle for 49 days).
    struct Bucket {
        float tokens;
        std::uint32_t refill_ms;
    };

    struct HeadSink;
    enum class In : std::uint8_t { Preface, FrameHead, Payload, Data, Dead };

    /// Spends one token of a bucket; false when it is empty (the connection is ended).
    bool spend(Bucket& b, std::uint32_t rate, std::uint32_t burst, Flood kind) noexcept;
    bool add_field(Stream& s, std::string_view name, std::string_view value, bool copy_name, bool copy_value);
    void finish_head(Stream& s, bool end_stream);

    // Input (session.cpp): one frame at a time.
    bool frame_head(const std::uint8_t* h);
    bool frame(const std::uint8_t* p, std::uint32_t len);
    bool data_begin();
    void data_bytes(const char* p, std::size_t n);
    bool data_end();
    bool headers(const std::uint8_t* p, std::uint32_t len);
    bool continuation(const std::uint8_t* p, std::uint32_t len);
    bool header_block(const std::uint8_t* block, std::size_t len);
    /// Request-body bytes of a live stream nobody will read: the windows get them back.
    void give_back(Stream* s, std::size_t n) noexcept;
    std::int64_t local_window() const noexcept;
    bool settings(const std::uint8_t* p, std::uint32_t len);
    bool window_update(const std::uint8_t* p, std::uint32_t len);
    bool rst_stream(const std::uint8_t* p, std::uint32_t len);
    /// A connection error: GOAWAY `error`, no more input. Always false.
    bool fail(std::uint32_t error) noexcept;
    /// A stream error: RST_STREAM `error` (counted in the reset budget). False on a flood.
    bool stream_error(Stream& s, std::uint32_t error);

    // Output.
    void write_frame(std::uint8_t type, std::uint8_t flags, std::int32_t id, const void* payload, std::uint32_t len);
    void write_goaway(std::int32_t last, std::uint32_t error);
    void write_window_update(std::int32_t id, std::uint32_t increment);
    void write_rst(std::int32_t id, std::uint32_t error);
    /// HEADERS (and CONTINUATION beyond the client's frame size) carrying `block`.
    void write_headers(std::int32_t id, const std::uint8_t* block, std::size_t len, bool end_stream);
    bool write_fields(Stream& s, int status, Headers fields, bool end_stream, bool trailers, ServerFields own = {});
    bool send_data(Stream& s);

    // Streams.
    Stream* find(std::int32_t id) const noexcept;
    void open(Stream& s);
    void unlink(Stream& s) noexcept;
    void make_ready(Stream& s) noexcept;
    void unready(Stream& s) noexcept;
    /// The stream is done on our side (reset, or both ends ended): h2_closed() at the next send().
    void close_later(Stream& s, std::uint32_t error) noexcept;
    /// The stream closes now, from input (the client reset it, or ended it after our response).
    void close_now(Stream& s, std::uint32_t error);
    void response_end(Stream& s);
    void run_closes();

    // What an idle connection keeps is this object and nothing else, so its members are
    // packed: the limits it enforces, budgets, input state, streams and windows.

    Handler& handler_;
    hpack::Decoder decoder_;
    hpack::Encoder encoder_;
    Rules rules_;
    Bucket resets_;
    Bucket controls_;
    std::uint32_t now_ms_ = 0;

    // Input state. A frame's payload is handled in place when it arrived whole; one split
    // across reads is gathered in `partial_` (a header block across CONTINUATION frames in
    // `block_`), allocated for that frame only.
    std::uint8_t* partial_ = nullptr;
    std::uint8_t* block_ = nullptr;
    Stream* data_stream_ = nullptr;  // the stream of the DATA frame being read (nullptr: dropped)
    std::uint32_t frame_len_ = 0;
    std::int32_t frame_id_ = 0;
    std::uint32_t have_ = 0;    // preface bytes matched, or payload bytes gathered / DATA seen
    std::uint32_t handed_ = 0;  // DATA: payload bytes of this frame given to the handler
    std::uint32_t block_len_ = 0;
    std::uint32_t block_cap_ = 0;
    std::int32_t block_id_ = 0;  // a header block awaits CONTINUATION on this stream
    std::uint8_t head_[9];
    std::uint8_t head_have_ = 0;
    std::uint8_t frame_type_ = 0;
    std::uint8_t frame_flags_ = 0;
    std::uint8_t pad_ = 0;  // DATA: padding at the frame's end
    std::uint16_t continuations_ = 0;
    In in_ = In::Preface;
    bool block_end_stream_ = false;
    bool block_self_dependent_ = false;  // its HEADERS made the stream depend on itself

    // Streams and windows.
    Stream* open_ = nullptr;
    Stream* ready_head_ = nullptr;
    Stream* ready_tail_ = nullptr;
    Stream* closing_ = nullptr;
    std::uint32_t open_count_ = 0;
    std::int32_t last_id_ = 0;  // the highest stream id the client opened
    std::int32_t send_window_ = 65535;  // connection window for our DATA
    std::int32_t recv_window_ = 65535;  // connection window for the client's DATA
    std::uint32_t recv_unacked_ = 0;
    std::uint32_t peer_initial_window_ = 65535;
    std::uint32_t peer_max_frame_ = 16384;
    std::int32_t goaway_last_id_ = 0;
    Flood flood_ = Flood::None;
    bool settings_acked_ = false;  // the client acknowledged our SETTINGS
    bool peer_settings_ = false;   // the client's first SETTINGS arrived
    bool goaway_received_ = false;
    bool goaway_sent_ = false;
};

}  // namespace blitz::http2

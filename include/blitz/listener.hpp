#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <blitz/observe.hpp>
#include <blitz/tls.hpp>

namespace blitz {

/// HTTP limits applied by a listener's codec. Defaults follow common gateway practice.
struct HttpLimits {
    std::uint32_t max_request_head_bytes = 16 * 1024;  ///< request line + headers (431 beyond)
    std::uint32_t max_headers = 100;                    ///< header fields (431 beyond)
    std::uint32_t max_path_bytes = 8 * 1024;            ///< request target (414 beyond)
    std::uint64_t max_body_bytes = 1024 * 1024;         ///< default body limit of local routes (413)
    std::uint32_t max_requests_per_connection = 1000;   ///< then Connection: close; 0 = no limit
    /// An unread request body after a local response is read and dropped up to this many
    /// bytes; beyond it the connection is closed (never reused mid-body).
    std::uint64_t max_drain_bytes = 64 * 1024;
    std::chrono::milliseconds idle_timeout{30'000};         ///< keep-alive idle time
    std::chrono::milliseconds request_head_timeout{10'000};  ///< full head must arrive (408)
    std::chrono::milliseconds max_connection_age{300'000};   ///< then Connection: close
};

/// HTTP/2 on a listener (RFC 9113): cleartext h2c with prior knowledge (the client's connection
/// preface decides) on plain listeners, ALPN "h2" on TLS listeners (when TlsOptions::alpn
/// lists it). Request-head limits, idle timeout, maximum age and requests per connection come
/// from HttpLimits and apply per stream / per connection as for HTTP/1.1. Every limit below
/// that is hit is answered as RFC 9113 says.
struct Http2Options {
    bool enabled = true;
    /// SETTINGS_MAX_CONCURRENT_STREAMS; a stream opened beyond it is refused (RST_STREAM
    /// REFUSED_STREAM).
    std::uint32_t max_concurrent_streams = 100;
    /// SETTINGS_INITIAL_WINDOW_SIZE: request-body bytes a client may send on one stream before
    /// blitz has forwarded them (the per-stream buffering bound).
    std::uint32_t initial_stream_window = 256 * 1024;
    /// Connection-level receive window: request-body bytes in flight over all streams.
    std::uint32_t connection_window = 1024 * 1024;
    /// SETTINGS_MAX_FRAME_SIZE (16384..16777215).
    std::uint32_t max_frame_size = 16 * 1024;
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table a client may make us keep.
    std::uint32_t header_table_size = 4096;
    /// CONTINUATION frames allowed after one HEADERS frame (CONTINUATION flood, CVE-2024-27316).
    std::uint32_t max_continuation_frames = 8;
    /// Streams that end without a complete exchange (reset by the client before the response
    /// was done, or reset by blitz because the client broke a rule) per second on one
    /// connection, after a burst; beyond it the connection gets GOAWAY ENHANCE_YOUR_CALM
    /// (Rapid Reset CVE-2023-44487, MadeYouReset CVE-2025-8671).
    std::uint32_t reset_rate = 33;
    std::uint32_t reset_burst = 200;
    /// Frames that carry no work (PING, SETTINGS, PRIORITY, empty DATA/HEADERS/CONTINUATION,
    /// unknown types) per second after a burst; beyond it GOAWAY
    /// ENHANCE_YOUR_CALM (the 2019 floods, CVE-2019-9512/9515/9516/9518).
    std::uint32_t control_frame_rate = 100;
    std::uint32_t control_frame_burst = 1000;
    /// A stream whose response waits on a zero flow-control window (its own or the
    /// connection's) this long is reset, so a client cannot pin memory and upstream connections
    /// by not reading (CVE-2019-9517).
    std::chrono::milliseconds zero_window_timeout{30'000};
};

/// Where and how a listener accepts connections.
///
/// `address` is "host:port" with a numeric IPv4 address or a bracketed IPv6 one
/// ("127.0.0.1:8080", "[::]:8080", "[::1]:0"); port 0 picks a free port, the same one for
/// every reactor (see Server::bound_port).
struct ListenerOptions {
    std::string name = "default";
    std::string address = "127.0.0.1:8080";
    int backlog = 4096;
    /// Connections open at once on this listener, over all reactors (split evenly between
    /// them); at the limit accepting pauses until a connection closes. 0 = no limit.
    std::uint32_t max_connections = 0;
    bool tcp_nodelay = true;
    /// With `[::]`, accept IPv4 too (IPV6_V6ONLY off).
    bool ipv6_dual_stack = true;
    /// Peers (addresses or CIDR blocks: "10.0.0.0/8", "::1") whose X-Forwarded-For,
    /// X-Forwarded-Proto and X-Forwarded-Host are kept and extended when proxying; from anyone
    /// else those headers are replaced, so clients cannot forge them.
    std::vector<std::string> trusted_proxies;
    HttpLimits limits;
    Http2Options http2;
    /// TLS on this listener; without it the listener speaks plain HTTP.
    std::optional<TlsOptions> tls;
    /// The access log of this listener's exchanges (a route may have its own); none when empty.
    std::optional<AccessLogOptions> access_log;
    /// Request ids; none when empty (an incoming id is then forwarded as any header).
    std::optional<RequestIdOptions> request_id;
};

}  // namespace blitz

#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

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
    /// TLS on this listener; without it the listener speaks plain HTTP.
    std::optional<TlsOptions> tls;
};

}  // namespace blitz

#pragma once

#include <cstdint>
#include <string_view>

/// The access log: one Record per finished exchange, formatted as JSON lines or an nginx-style
/// template, buffered per reactor and written by the reactor's I/O backend.
namespace blitz::accesslog {

/// What one exchange (HTTP/1.1 request/response or HTTP/2 stream) did, filled by the engine when
/// the exchange ends and handed to the route/upstream metrics, the access log and the span
/// exporter.
///
/// Thread: value type, filled and read on the reactor thread of the exchange. Lifetime: every
/// string_view is valid only during the call that receives the Record; whoever keeps a value
/// copies it.
struct Record {
    /// Unix time in microseconds when the request head was complete.
    std::int64_t time_us = 0;
    /// Microseconds from `time_us` until the last response byte was handed to the kernel.
    std::int64_t duration_us = 0;
    /// Client address as text ("192.0.2.1", "2001:db8::1"); the trusted-proxy-resolved address
    /// when the listener has trusted_proxies.
    std::string_view client;
    /// Client TCP port (0 when unknown).
    std::uint16_t client_port = 0;
    /// Request method as received ("GET").
    std::string_view method;
    /// "http" or "https".
    std::string_view scheme;
    /// Host header (HTTP/1.1) or :authority (HTTP/2) as received; may be empty.
    std::string_view authority;
    /// Request target including the query, as received (not normalised).
    std::string_view path;
    /// "HTTP/1.0", "HTTP/1.1" or "HTTP/2".
    std::string_view protocol;
    /// Response status sent to the client (0 when none was sent).
    std::uint16_t status = 0;
    /// Request bytes read from the client, head included.
    std::uint64_t bytes_received = 0;
    /// Response bytes sent to the client, head included.
    std::uint64_t bytes_sent = 0;
    /// Name of the matched route; empty when none matched or the route is unnamed.
    std::string_view route;
    /// Name of the upstream the request was proxied to; empty when not proxied.
    std::string_view upstream;
    /// Endpoint of the last attempt ("10.0.0.1:8080"); empty when not proxied.
    std::string_view upstream_endpoint;
    /// Status of the last upstream response; 0 when there was none.
    std::uint16_t upstream_status = 0;
    /// Microseconds to connect to the upstream on the last attempt; -1 when no connect happened
    /// (not proxied, or a pooled connection was reused).
    std::int64_t upstream_connect_us = -1;
    /// Microseconds from sending the upstream request to its first response byte; -1 when none.
    std::int64_t upstream_first_byte_us = -1;
    /// Upstream attempts made (0 when not proxied; more than 1 after retries).
    std::uint32_t attempts = 0;
    /// Request id (generated or taken from the configured incoming header); may be empty.
    std::string_view request_id;
    /// W3C trace id, 32 lowercase hex digits, or empty.
    std::string_view trace_id;
    /// W3C span id of this exchange's server span, 16 lowercase hex digits, or empty.
    std::string_view span_id;
    /// Negotiated TLS version ("TLSv1.3"); empty on plain connections.
    std::string_view tls_version;
    /// TLS server name indication sent by the client; empty when none.
    std::string_view tls_sni;
    /// User-Agent request header; empty when absent.
    std::string_view user_agent;
    /// Referer request header; empty when absent.
    std::string_view referer;
    /// Name of the listener that accepted the connection.
    std::string_view listener;
};

}  // namespace blitz::accesslog

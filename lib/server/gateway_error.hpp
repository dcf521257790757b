#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include <blitz/exchange.hpp>

namespace blitz::server {

/// gRPC status codes the gateway answers with (grpc/doc/statuscodes.md).
enum class GrpcStatus : int {
    Unknown = 2,
    DeadlineExceeded = 4,
    PermissionDenied = 7,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
};

/// Whether `content_type` names gRPC: "application/grpc" alone or followed by "+" (a message
/// format, "+proto", "+json") or "-" ("-web" and its variants) — gRPC over HTTP/2
/// (PROTOCOL-HTTP2.md, Content-Type). The media type is compared ASCII case-insensitively
/// (RFC 9110 §8.3.1).
///
/// Thread: any. Lifetime: pure function.
bool is_grpc_content_type(std::string_view content_type) noexcept;

/// The gRPC status for a gateway error: a timeout `cause` ("request_timeout",
/// "upstream_timeout", "connect_timeout") is DEADLINE_EXCEEDED whatever the status; otherwise
/// gRPC's HTTP-to-status mapping (doc/http-grpc-status-mapping.md): 400 INTERNAL,
/// 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE,
/// anything else UNKNOWN.
///
/// Thread: any. Lifetime: pure function.
GrpcStatus grpc_status_for(int http_status, std::string_view cause) noexcept;

/// Percent-encodes `text` for `grpc-message` (PROTOCOL-HTTP2.md: bytes 0x20–0x7E except '%'
/// stay, every other byte becomes %XX with uppercase hex) into `out`. Returns the encoded
/// length; when it exceeds out.size() nothing useful was written and the caller needs that
/// many bytes (3 × text.size() always suffices).
///
/// Thread: any. Lifetime: pure function.
std::size_t grpc_percent_encode(std::string_view text, std::span<char> out) noexcept;

/// Sets `ex`'s response to an error the gateway itself decided (proxy failures): for HTTP
/// clients `status` with `{"error": reason, "cause": cause}` as JSON; for gRPC requests (see
/// is_grpc_content_type) a Trailers-Only response — 200, `content-type: application/grpc`,
/// `grpc-status`, `grpc-message: reason` and no body, which HTTP/2 sends as a single HEADERS
/// frame with END_STREAM — as Envoy answers its local replies. Both carry
/// `X-Blitz-Error: cause`. `reason` and `cause` are literals (they are not copied).
///
/// Thread: the exchange's reactor. Lifetime: header values live in the exchange's arena.
void respond_gateway_error(Exchange& ex, int status, const char* reason, const char* cause);

}  // namespace blitz::server

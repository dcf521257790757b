// Errors the gateway answers itself, in the form the client understands: JSON for HTTP
// clients, a gRPC status for gRPC clients (which ignore HTTP status codes and bodies).

#include "server/gateway_error.hpp"

#include <charconv>
#include <cstdio>

namespace blitz::server {

namespace {

char ascii_lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool iprefix(std::string_view s, std::string_view prefix) noexcept {
    if (s.size() < prefix.size()) {
        return false;
    }
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (ascii_lower(s[i]) != prefix[i]) {
            return false;
        }
    }
    return true;
}

}  // namespace

bool is_grpc_content_type(std::string_view content_type) noexcept {
    constexpr std::string_view kGrpc = "application/grpc";
    if (!iprefix(content_type, kGrpc)) {
        return false;
    }
    return content_type.size() == kGrpc.size() || content_type[kGrpc.size()] == '+' ||
           content_type[kGrpc.size()] == '-';
}

GrpcStatus grpc_status_for(int http_status, std::string_view cause) noexcept {
    if (cause == "request_timeout" || cause == "upstream_timeout" || cause == "connect_timeout") {
        return GrpcStatus::DeadlineExceeded;
    }
    switch (http_status) {
    case 400:
        return GrpcStatus::Internal;
    case 401:
        return GrpcStatus::Unauthenticated;
    case 403:
        return GrpcStatus::PermissionDenied;
    case 404:
        return GrpcStatus::Unimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
        return GrpcStatus::Unavailable;
    default:
        return GrpcStatus::Unknown;
    }
}

std::size_t grpc_percent_encode(std::string_view text, std::span<char> out) noexcept {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::size_t n = 0;
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c <= 0x7E && c != '%') {
            if (n < out.size()) {
                out[n] = ch;
            }
            ++n;
            continue;
        }
        if (n + 3 <= out.size()) {
            out[n] = '%';
            out[n + 1] = kHex[c >> 4];
            out[n + 2] = kHex[c & 0xF];
        }
        n += 3;
    }
    return n;
}

void respond_gateway_error(Exchange& ex, int status, const char* reason, const char* cause) {
    if (!is_grpc_content_type(ex.request().headers.get("content-type"))) {
        char body[192];
        const int n = std::snprintf(body, sizeof body, "{\"error\":\"%s\",\"cause\":\"%s\"}", reason, cause);
        ex.respond(status, {body, static_cast<std::size_t>(n > 0 ? n : 0)}, "application/json");
        ex.response().add_header("X-Blitz-Error", cause);
        return;
    }
    // Trailers-Only (PROTOCOL-HTTP2.md): gRPC clients read the outcome from grpc-status, and
    // take any HTTP status but 200 as a transport failure with a made-up message.
    ex.respond(200);
    Response& r = ex.response();
    r.add_header("content-type", "application/grpc");
    char code[4];
    const auto res = std::to_chars(code, code + sizeof code, static_cast<int>(grpc_status_for(status, cause)));
    r.add_header("grpc-status", ex.arena().copy({code, static_cast<std::size_t>(res.ptr - code)}));
    const std::string_view text(reason);
    char* buf = static_cast<char*>(ex.arena().allocate(text.size() * 3 + 1, 1));
    const std::size_t len = grpc_percent_encode(text, {buf, text.size() * 3});
    r.add_header("grpc-message", {buf, len});
    r.add_header("X-Blitz-Error", cause);
}

}  // namespace blitz::server

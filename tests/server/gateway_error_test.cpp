// The gateway's own errors toward gRPC clients: content-type detection, the HTTP/cause to
// grpc-status mapping and grpc-message percent-encoding.

#include <array>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

#include "server/gateway_error.hpp"

using blitz::server::grpc_percent_encode;
using blitz::server::grpc_status_for;
using blitz::server::GrpcStatus;
using blitz::server::is_grpc_content_type;

namespace {

std::string encode(std::string_view text) {
    std::string out(text.size() * 3, '\0');
    out.resize(grpc_percent_encode(text, {out.data(), out.size()}));
    return out;
}

}  // namespace

TEST_CASE("server::is_grpc_content_type accepts application/grpc and its +format and - variants", "[server]") {
    CHECK(is_grpc_content_type("application/grpc"));
    CHECK(is_grpc_content_type("application/grpc+proto"));
    CHECK(is_grpc_content_type("application/grpc+json"));
    CHECK(is_grpc_content_type("application/grpc-web"));
    CHECK(is_grpc_content_type("Application/GRPC"));
}

TEST_CASE("server::is_grpc_content_type rejects other media types", "[server]") {
    CHECK_FALSE(is_grpc_content_type(""));
    CHECK_FALSE(is_grpc_content_type("application/json"));
    CHECK_FALSE(is_grpc_content_type("application/grp"));
    CHECK_FALSE(is_grpc_content_type("application/grpcx"));
    CHECK_FALSE(is_grpc_content_type("application/grpc;charset=x"));
    CHECK_FALSE(is_grpc_content_type("text/application/grpc"));
}

TEST_CASE("server::grpc_status_for maps timeouts to DEADLINE_EXCEEDED", "[server]") {
    CHECK(grpc_status_for(504, "request_timeout") == GrpcStatus::DeadlineExceeded);
    CHECK(grpc_status_for(504, "upstream_timeout") == GrpcStatus::DeadlineExceeded);
    CHECK(grpc_status_for(504, "connect_timeout") == GrpcStatus::DeadlineExceeded);
}

TEST_CASE("server::grpc_status_for maps unavailable upstreams to UNAVAILABLE", "[server]") {
    CHECK(grpc_status_for(502, "connect_failed") == GrpcStatus::Unavailable);
    CHECK(grpc_status_for(502, "upstream_reset") == GrpcStatus::Unavailable);
    CHECK(grpc_status_for(503, "no_healthy_upstream") == GrpcStatus::Unavailable);
    CHECK(grpc_status_for(503, "overflow") == GrpcStatus::Unavailable);
    CHECK(grpc_status_for(503, "pending_timeout") == GrpcStatus::Unavailable);
}

TEST_CASE("server::grpc_status_for follows gRPC's HTTP status mapping otherwise", "[server]") {
    CHECK(grpc_status_for(400, "x") == GrpcStatus::Internal);
    CHECK(grpc_status_for(401, "x") == GrpcStatus::Unauthenticated);
    CHECK(grpc_status_for(403, "x") == GrpcStatus::PermissionDenied);
    CHECK(grpc_status_for(404, "x") == GrpcStatus::Unimplemented);
    CHECK(grpc_status_for(429, "x") == GrpcStatus::Unavailable);
    CHECK(grpc_status_for(504, "x") == GrpcStatus::Unavailable);
    CHECK(grpc_status_for(500, "invalid_request") == GrpcStatus::Unknown);
    CHECK(grpc_status_for(418, "x") == GrpcStatus::Unknown);
}

TEST_CASE("server::grpc_percent_encode keeps printable ASCII except %", "[server]") {
    CHECK(encode("upstream connect failed") == "upstream connect failed");
    CHECK(encode(" !~$&") == " !~$&");
    CHECK(encode("") == "");
}

TEST_CASE("server::grpc_percent_encode escapes %, controls and non-ASCII bytes in uppercase hex", "[server]") {
    CHECK(encode("100%") == "100%25");
    CHECK(encode("a\r\nb") == "a%0D%0Ab");
    CHECK(encode(std::string_view("\0", 1)) == "%00");
    CHECK(encode("\x7F") == "%7F");
    CHECK(encode("caf\xC3\xA9") == "caf%C3%A9");
}

TEST_CASE("server::grpc_percent_encode reports the length it needs when out is too small", "[server]") {
    std::array<char, 4> out{};
    CHECK(grpc_percent_encode("a%b", out) == 5);
    CHECK(grpc_percent_encode("abcd", out) == 4);
    CHECK(std::string_view(out.data(), 4) == "abcd");
}

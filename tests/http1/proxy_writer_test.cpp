#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "http1/parser.hpp"
#include "http1/proxy.hpp"

namespace {

using namespace std::string_view_literals;
using blitz::Header;
using blitz::Headers;
using blitz::Method;
using blitz::Version;
using blitz::http1::accepts_trailers;
using blitz::http1::BodyKind;
using blitz::http1::Framing;
using blitz::http1::is_hop_by_hop;
using blitz::http1::ParseStatus;
using blitz::http1::requested_upgrade;
using blitz::http1::UpstreamRequest;

constexpr std::string_view kDate = "Tue, 15 Nov 1994 08:12:31 GMT";

std::string write_request(const UpstreamRequest& r) {
    std::array<char, 2048> out{};
    const std::size_t n = blitz::http1::write_request_head(out, r);
    return std::string(out.data(), n);
}

struct Response {
    int status = 200;
    std::string_view reason = "OK";
    std::vector<Header> fields;
    Framing framing = Framing::Length;
    std::uint64_t length = 0;
    bool keep_alive = true;
    Version client = Version::Http11;
    std::string_view via;
    std::string_view date;
};

std::size_t write_response_into(std::span<char> out, const Response& r) {
    return blitz::http1::write_proxied_response_head(out, r.status, r.reason, Headers(r.fields),
                                                     r.framing, r.length, r.keep_alive, r.client,
                                                     r.via, r.date);
}

std::string write_response(const Response& r) {
    std::array<char, 2048> out{};
    return std::string(out.data(), write_response_into(out, r));
}

// ---- is_hop_by_hop, requested_upgrade, accepts_trailers ----

TEST_CASE("http1::is_hop_by_hop names the fields RFC 9110 §7.6.1 removes, in any case", "[http1]") {
    for (std::string_view name :
         {"Connection", "connection", "Keep-Alive", "KEEP-ALIVE", "Proxy-Connection", "TE", "te",
          "Transfer-Encoding", "Upgrade", "upgrade", "HTTP2-Settings", "Close"}) {
        CAPTURE(name);
        CHECK(is_hop_by_hop(name, Headers{}));
    }
    // End-to-end in RFC 9110, and names near the hop-by-hop ones.
    for (std::string_view name :
         {"Trailer", "Proxy-Authorization", "Proxy-Authenticate", "Content-Length", "Host", "Date",
          "Via", "X-Forwarded-For", "Tee", "T", "Upgrade-Insecure-Requests", "Connections",
          "Keep-Alive2", "Transfer-Encodings", ""}) {
        CAPTURE(name);
        CHECK_FALSE(is_hop_by_hop(name, Headers{}));
    }
}

TEST_CASE("http1::trailer_forbidden keeps framing, routing and auth fields out of trailers", "[http1]") {
    for (std::string_view name :
         {"Content-Length", "content-length", "Transfer-Encoding", "TE", "Host", "Connection",
          "Keep-Alive", "Upgrade", "Trailer", "Authorization", "Set-Cookie", "Content-Type",
          "Content-Encoding", "Cache-Control", "If-None-Match", ":status", ":path"}) {
        CAPTURE(name);
        CHECK(blitz::http1::trailer_forbidden(name));
    }
    for (std::string_view name :
         {"grpc-status", "grpc-message", "X-Checksum", "Server-Timing", "Digest", "Content-MD5",
          "Hostname", "Contents", ""}) {
        CAPTURE(name);
        CHECK_FALSE(blitz::http1::trailer_forbidden(name));
    }
}

TEST_CASE("http1::is_hop_by_hop does not mistake control bytes for '-' or digits", "[http1]") {
    // 0x0d | 0x20 is '-' and 0x12 | 0x20 is '2': a word-wise case fold alone would match these.
    for (std::string_view name :
         {"Transfer\rEncoding"sv, "Keep\rAlive"sv, "HTTP\x12-Settings"sv, "Proxy\rConnection"sv}) {
        CAPTURE(name);
        CHECK_FALSE(is_hop_by_hop(name, Headers{}));
    }
}

TEST_CASE("http1::is_hop_by_hop adds every field a Connection field lists", "[http1]") {
    const std::array<Header, 5> fields = {{
        {"Connection", "keep-alive, X-Private ,,x-trace"},
        {"X-Private", "1"},
        {"Accept", "*/*"},
        {"connection", "X-Second"},
        {"X-Other", "2"},
    }};
    const Headers h(fields);
    CHECK(is_hop_by_hop("X-Private", h));
    CHECK(is_hop_by_hop("x-private", h));
    CHECK(is_hop_by_hop("X-TRACE", h));
    CHECK(is_hop_by_hop("X-Second", h));
    CHECK_FALSE(is_hop_by_hop("Accept", h));
    CHECK_FALSE(is_hop_by_hop("X-Other", h));
    CHECK_FALSE(is_hop_by_hop("X-Privat", h));
    CHECK_FALSE(is_hop_by_hop("", h));

    // A Connection field listing only standard options names nothing else.
    const std::array<Header, 2> plain = {{{"Connection", "close, Upgrade, TE"}, {"X-A", "1"}}};
    CHECK_FALSE(is_hop_by_hop("X-A", Headers(plain)));
    CHECK(is_hop_by_hop("TE", Headers(plain)));
}

TEST_CASE("http1::requested_upgrade needs the upgrade option on an HTTP/1.1 request", "[http1]") {
    const std::array<Header, 2> ws = {
        {{"Connection", "keep-alive, Upgrade"}, {"Upgrade", "websocket"}}};
    CHECK(requested_upgrade(Headers(ws), Version::Http11) == "websocket");
    CHECK(requested_upgrade(Headers(ws), Version::Http10).empty());
    const std::array<Header, 1> no_option = {{{"Upgrade", "websocket"}}};
    CHECK(requested_upgrade(Headers(no_option), Version::Http11).empty());
    const std::array<Header, 2> other_option = {
        {{"Connection", "upgrades"}, {"Upgrade", "websocket"}}};
    CHECK(requested_upgrade(Headers(other_option), Version::Http11).empty());
    const std::array<Header, 1> no_upgrade = {{{"Connection", "upgrade"}}};
    CHECK(requested_upgrade(Headers(no_upgrade), Version::Http11).empty());
}

TEST_CASE("http1::accepts_trailers finds the trailers option of TE", "[http1]") {
    const std::array<Header, 1> grpc = {{{"te", "trailers"}}};
    CHECK(accepts_trailers(Headers(grpc)));
    const std::array<Header, 2> listed = {{{"Accept", "*/*"}, {"TE", "deflate;q=0.5, Trailers"}}};
    CHECK(accepts_trailers(Headers(listed)));
    const std::array<Header, 1> weighted = {{{"TE", "trailers ;q=1"}}};
    CHECK(accepts_trailers(Headers(weighted)));
    const std::array<Header, 1> other = {{{"TE", "trailersx, gzip"}}};
    CHECK_FALSE(accepts_trailers(Headers(other)));
    const std::array<Header, 1> elsewhere = {{{"X-TE", "trailers"}}};
    CHECK_FALSE(accepts_trailers(Headers(elsewhere)));
    CHECK_FALSE(accepts_trailers(Headers{}));
}

// ---- write_request_head ----

TEST_CASE("http1::write_request_head writes Host first, the client's fields, extra, framing",
          "[http1]") {
    const std::array<Header, 4> client = {{
        {"User-Agent", "curl/8.0"},
        {"Host", "client.example"},
        {"Accept", "*/*"},
        {"Content-Length", "5"},
    }};
    const std::array<Header, 2> extra = {{{"X-Forwarded-For", "192.0.2.1"}, {"Via", "1.1 blitz"}}};
    const std::string head = write_request({
        .method = "POST",
        .target = "/api/v1?x=1",
        .host = "backend.internal:8080",
        .headers = Headers(client),
        .extra = Headers(extra),
        .body = BodyKind::Length,
        .content_length = 5,
    });
    CHECK(head ==
          "POST /api/v1?x=1 HTTP/1.1\r\n"
          "Host: backend.internal:8080\r\n"
          "User-Agent: curl/8.0\r\n"
          "Accept: */*\r\n"
          "X-Forwarded-For: 192.0.2.1\r\n"
          "Via: 1.1 blitz\r\n"
          "Content-Length: 5\r\n"
          "\r\n");
}

TEST_CASE("http1::write_request_head leaves out hop-by-hop fields and the ones Connection lists",
          "[http1]") {
    const std::array<Header, 11> client = {{
        {"Connection", "keep-alive, X-Hop, Upgrade, HTTP2-Settings"},
        {"Keep-Alive", "timeout=5"},
        {"Proxy-Connection", "keep-alive"},
        {"TE", "trailers"},
        {"Transfer-Encoding", "chunked"},
        {"Upgrade", "h2c"},
        {"HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"},
        {"X-Hop", "secret"},
        {"Trailer", "Expires"},
        {"x-hop", "again"},
        {"Accept", "*/*"},
    }};
    const std::string head = write_request({
        .method = "GET",
        .target = "/",
        .host = "h",
        .headers = Headers(client),
    });
    CHECK(head == "GET / HTTP/1.1\r\nHost: h\r\nTrailer: Expires\r\nAccept: */*\r\n\r\n");
}

TEST_CASE("http1::write_request_head drops the names the caller replaces, in any case", "[http1]") {
    const std::array<Header, 5> client = {{
        {"x-forwarded-for", "6.6.6.6"},
        {"X-Forwarded-Proto", "https"},
        {"X-Forwarded-Host", "evil"},
        {"X-Forwarded-Port", "1"},
        {"Accept", "*/*"},
    }};
    const std::array<std::string_view, 3> drop = {"X-Forwarded-For", "X-FORWARDED-PROTO",
                                                  "x-forwarded-host"};
    const std::array<Header, 1> extra = {{{"X-Forwarded-For", "198.51.100.7"}}};
    const std::string head = write_request({
        .method = "GET",
        .target = "/",
        .host = "h",
        .headers = Headers(client),
        .drop = drop,
        .extra = Headers(extra),
    });
    CHECK(head ==
          "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-Port: 1\r\nAccept: */*\r\n"
          "X-Forwarded-For: 198.51.100.7\r\n\r\n");
}

TEST_CASE("http1::write_request_head writes the framing it is given, never the client's",
          "[http1]") {
    const std::array<Header, 2> client = {
        {{"Content-Length", "99"}, {"Transfer-Encoding", "chunked"}}};
    const auto with = [&](BodyKind body, std::uint64_t length) {
        return write_request({.method = "PUT",
                              .target = "/f",
                              .host = "h",
                              .headers = Headers(client),
                              .body = body,
                              .content_length = length});
    };
    CHECK(with(BodyKind::None, 0) == "PUT /f HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(with(BodyKind::Length, 0) == "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    CHECK(with(BodyKind::Length, 18446744073709551615ULL) ==
          "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551615\r\n\r\n");
    CHECK(with(BodyKind::Chunked, 0) ==
          "PUT /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n");
}

TEST_CASE("http1::write_request_head forwards an upgrade with its Connection option, never h2c",
          "[http1]") {
    const auto with = [](std::string_view upgrade, bool te_trailers = false) {
        return write_request({.method = "GET",
                              .target = "/ws",
                              .host = "h",
                              .upgrade = upgrade,
                              .te_trailers = te_trailers});
    };
    CHECK(with("websocket") ==
          "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    CHECK(with("h2c") == "GET /ws HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(with("H2C/1.0") == "GET /ws HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(with("h2c, websocket") ==
          "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    // Elements are re-joined with ", ", which may be longer than what the client sent.
    CHECK(with("a,b/2,,h2c") ==
          "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: a, b/2\r\n\r\n");
    // Invalid protocols are not forwarded.
    CHECK(with("web socket, /1, x/, (x)") == "GET /ws HTTP/1.1\r\nHost: h\r\n\r\n");
    CHECK(with("", true) ==
          "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: te\r\nTE: trailers\r\n\r\n");
    CHECK(with("websocket", true) ==
          "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade, te\r\nUpgrade: websocket\r\n"
          "TE: trailers\r\n\r\n");
}

TEST_CASE("http1::write_request_head returns 0 when the output is one byte too small", "[http1]") {
    const std::array<Header, 2> client = {{{"Accept", "*/*"}, {"Cookie", "a=b"}}};
    const std::array<Header, 1> extra = {{{"Via", "1.1 blitz"}}};
    const UpstreamRequest r{.method = "POST",
                            .target = "/x",
                            .host = "h:1",
                            .headers = Headers(client),
                            .extra = Headers(extra),
                            .body = BodyKind::Length,
                            .content_length = 12345,
                            .upgrade = "a,b,c",
                            .te_trailers = true};
    const std::string full = write_request(r);
    REQUIRE(!full.empty());
    CHECK(full.find("Upgrade: a, b, c\r\n") != std::string::npos);
    std::string out(full.size(), '\0');
    for (std::size_t size = 0; size < full.size(); ++size) {
        CAPTURE(size);
        CHECK(blitz::http1::write_request_head(std::span<char>(out.data(), size), r) == 0);
    }
    CHECK(blitz::http1::write_request_head(out, r) == full.size());
    CHECK(out == full);
}

TEST_CASE("http1::write_request_head refuses anything that would break the request", "[http1]") {
    const UpstreamRequest ok{.method = "GET", .target = "/", .host = "h"};
    REQUIRE(!write_request(ok).empty());
    const auto refused = [&](UpstreamRequest r) { return write_request(r).empty(); };
    auto r = ok;
    r.method = "";
    CHECK(refused(r));
    r.method = "G T";
    CHECK(refused(r));
    r.method = "GET\r\n";
    CHECK(refused(r));
    r = ok;
    for (std::string_view target :
         {""sv, "/a b"sv, "/a\r\nX: y"sv, "/\n"sv, "/\0"sv, "/\x7f"sv, "/\xc3\xa9"sv, "/\t"sv}) {
        CAPTURE(target);
        r.target = target;
        CHECK(refused(r));
    }
    r = ok;
    for (std::string_view host : {"a b"sv, "h\r\nX: y"sv, "h\0"sv, "[::1"sv, "h:port"sv}) {
        CAPTURE(host);
        r.host = host;
        CHECK(refused(r));
    }
    r = ok;
    r.host = "";
    CHECK(write_request(r) == "GET / HTTP/1.1\r\nHost: \r\n\r\n");

    const std::array<Header, 1> cr = {{{"X-A", "a\r\nX-Injected: 1"}}};
    const std::array<Header, 1> lf = {{{"X-A", "a\nb"}}};
    const std::array<Header, 1> nul = {{{"X-A", "a\0b"sv}}};
    const std::array<Header, 1> control = {{{"X-A", "a\x1b[0m"}}};
    const std::array<Header, 1> del = {{{"X-A", "\x7f"}}};
    const std::array<Header, 1> bad_name = {{{"X A", "b"}}};
    const std::array<Header, 1> empty_name = {{{"", "b"}}};
    for (const auto* fields : {&cr, &lf, &nul, &control, &del, &bad_name, &empty_name}) {
        r = ok;
        r.headers = Headers(*fields);
        CHECK(refused(r));
        r = ok;
        r.extra = Headers(*fields);
        CHECK(refused(r));
    }
    // A name that only looks like a framing field once case-folded is refused, not dropped.
    const std::array<Header, 1> fake_length = {{{"Content\rLength", "5"}}};
    r = ok;
    r.headers = Headers(fake_length);
    CHECK(refused(r));
    // `extra` must not carry what the other members decide.
    for (std::string_view name : {"Host", "content-length", "Transfer-Encoding", "Connection",
                                  "Upgrade", "TE", "Keep-Alive", "HTTP2-Settings"}) {
        CAPTURE(name);
        const std::array<Header, 1> extra = {{{name, "x"}}};
        r = ok;
        r.extra = Headers(extra);
        CHECK(refused(r));
    }
}

TEST_CASE("http1::write_request_head checks every byte value of the target", "[http1]") {
    for (int b = 0; b < 256; ++b) {
        CAPTURE(b);
        const bool visible = b > 0x20 && b < 0x7f;
        // Short and long targets: the byte loop, the overlapping loads and the 16-byte blocks.
        for (std::size_t length : {2u, 5u, 12u, 16u, 17u, 40u}) {
            for (std::size_t at : {std::size_t{1}, length / 2, length - 1}) {
                std::string target(length, 'a');
                target[0] = '/';
                target[at] = static_cast<char>(b);
                const std::string head =
                    write_request({.method = "GET", .target = target, .host = "h"});
                CHECK(head.empty() == !visible);
            }
        }
    }
}

TEST_CASE("http1::write_request_head output parses back to the same request", "[http1]") {
    const std::array<Header, 4> client = {{
        {"Accept", "text/html, */*;q=0.1"},
        {"Connection", "X-Gone"},
        {"X-Gone", "1"},
        {"Cookie", "a=b; c=d"},
    }};
    const std::array<Header, 1> extra = {{{"X-Forwarded-Proto", "https"}}};
    std::string wire = write_request({
        .method = "PATCH",
        .target = "/items/7?fields=a,b",
        .host = "[2001:db8::1]:8443",
        .headers = Headers(client),
        .extra = Headers(extra),
        .body = BodyKind::Chunked,
    });
    REQUIRE(!wire.empty());
    std::array<Header, 16> storage{};
    blitz::http1::RequestHead head;
    const auto r = blitz::http1::parse_request_head(wire, storage, {}, head);
    REQUIRE(r.status == ParseStatus::Done);
    CHECK(r.consumed == wire.size());
    CHECK(head.method_name == "PATCH");
    CHECK(head.raw_target == "/items/7?fields=a,b");
    CHECK(head.authority == "[2001:db8::1]:8443");
    CHECK(head.body == BodyKind::Chunked);
    CHECK(head.keep_alive);
    REQUIRE(head.headers.size() == 5);
    CHECK(head.headers[1].name == "Accept");
    CHECK(head.headers[1].value == "text/html, */*;q=0.1");
    CHECK(head.headers[2].name == "Cookie");
    CHECK(head.headers[3].name == "X-Forwarded-Proto");
}

// ---- write_proxied_response_head ----

TEST_CASE("http1::write_proxied_response_head forwards end-to-end fields and sets the framing",
          "[http1]") {
    const std::string head = write_response({
        .status = 200,
        .reason = "OK",
        .fields = {{"Content-Type", "text/plain"},
                   {"Content-Length", "5"},
                   {"Connection", "keep-alive, X-Internal"},
                   {"Keep-Alive", "timeout=5"},
                   {"X-Internal", "1"},
                   {"Transfer-Encoding", "chunked"},
                   {"Date", kDate},
                   {"Via", "1.0 upstream-cache"}},
        .framing = Framing::Length,
        .length = 5,
        .via = "1.1 blitz",
        .date = "Wed, 16 Nov 1994 00:00:00 GMT",
    });
    CHECK(head ==
          "HTTP/1.1 200 OK\r\n"
          "Content-Type: text/plain\r\n"
          "Date: Tue, 15 Nov 1994 08:12:31 GMT\r\n"
          "Via: 1.0 upstream-cache\r\n"
          "Via: 1.1 blitz\r\n"
          "Content-Length: 5\r\n"
          "\r\n");
}

TEST_CASE("http1::write_proxied_response_head adds Date only when the upstream sent none",
          "[http1]") {
    CHECK(write_response({.fields = {{"X-A", "1"}}, .date = kDate}) ==
          "HTTP/1.1 200 OK\r\nX-A: 1\r\nDate: Tue, 15 Nov 1994 08:12:31 GMT\r\n"
          "Content-Length: 0\r\n\r\n");
    CHECK(write_response({.fields = {{"date", "x"}}, .date = kDate}) ==
          "HTTP/1.1 200 OK\r\ndate: x\r\nContent-Length: 0\r\n\r\n");
    CHECK(write_response({}) == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("http1::write_proxied_response_head keeps a valid reason, else the canonical one",
          "[http1]") {
    CHECK(write_response({.status = 200, .reason = "Fine \xc3\xa9\t!"}) ==
          "HTTP/1.1 200 Fine \xc3\xa9\t!\r\nContent-Length: 0\r\n\r\n");
    CHECK(write_response({.status = 404, .reason = ""}) ==
          "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    CHECK(write_response({.status = 404, .reason = "Gone\r\nX-Injected: 1"}) ==
          "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    CHECK(write_response({.status = 500, .reason = "a\0b"sv}) ==
          "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n");
    CHECK(write_response({.status = 599, .reason = ""}) ==
          "HTTP/1.1 599 \r\nContent-Length: 0\r\n\r\n");
}

TEST_CASE("http1::write_proxied_response_head writes chunked, close-delimited and close framing",
          "[http1]") {
    const std::vector<Header> fields = {{"Content-Length", "10"}};
    CHECK(write_response({.fields = fields, .framing = Framing::Chunked}) ==
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    CHECK(write_response({.fields = fields, .framing = Framing::UntilClose}) ==
          "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    CHECK(write_response(
              {.fields = fields, .framing = Framing::Length, .length = 10, .keep_alive = false}) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n");
}

TEST_CASE("http1::write_proxied_response_head keeps HTTP/1.0 clients within HTTP/1.0", "[http1]") {
    CHECK(write_response({.length = 3, .client = Version::Http10}) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\n");
    CHECK(write_response({.length = 3, .keep_alive = false, .client = Version::Http10}) ==
          "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\n");
    CHECK(write_response({.framing = Framing::UntilClose, .client = Version::Http10}) ==
          "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    // No chunked coding and no 1xx for an HTTP/1.0 client: the caller must choose otherwise.
    CHECK(write_response({.framing = Framing::Chunked, .client = Version::Http10}).empty());
    CHECK(write_response({.status = 103,
                          .reason = "Early Hints",
                          .framing = Framing::None,
                          .client = Version::Http10})
              .empty());
    CHECK(write_response({.status = 101,
                          .fields = {{"Upgrade", "websocket"}},
                          .framing = Framing::None,
                          .client = Version::Http10})
              .empty());
}

TEST_CASE("http1::write_proxied_response_head keeps Content-Length on HEAD and 304 responses only",
          "[http1]") {
    const std::vector<Header> fields = {{"ETag", "\"x\""}, {"Content-Length", "1234"}};
    // A response to HEAD: the framing is None, the length the GET would have stays.
    CHECK(write_response({.fields = fields, .framing = Framing::None}) ==
          "HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n");
    CHECK(write_response({.status = 304,
                          .reason = "Not Modified",
                          .fields = fields,
                          .framing = Framing::None}) ==
          "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 1234\r\n\r\n");
    CHECK(
        write_response(
            {.status = 204, .reason = "No Content", .fields = fields, .framing = Framing::None}) ==
        "HTTP/1.1 204 No Content\r\nETag: \"x\"\r\n\r\n");
    CHECK(write_response({.status = 204,
                          .reason = "No Content",
                          .fields = fields,
                          .framing = Framing::None,
                          .keep_alive = false}) ==
          "HTTP/1.1 204 No Content\r\nETag: \"x\"\r\nConnection: close\r\n\r\n");
}

TEST_CASE("http1::write_proxied_response_head writes interim and switching-protocols heads",
          "[http1]") {
    CHECK(write_response({.status = 103,
                          .reason = "Early Hints",
                          .fields = {{"Link", "</s.css>; rel=preload"}, {"Content-Length", "0"}},
                          .framing = Framing::None,
                          .keep_alive = false}) ==
          "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
    CHECK(write_response({.status = 100, .reason = "Continue", .framing = Framing::Chunked}) ==
          "HTTP/1.1 100 Continue\r\n\r\n");
    CHECK(write_response({.status = 101,
                          .reason = "Switching Protocols",
                          .fields = {{"Upgrade", "websocket"},
                                     {"Connection", "Upgrade"},
                                     {"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}},
                          .framing = Framing::None,
                          .keep_alive = false,
                          .via = "1.1 blitz"}) ==
          "HTTP/1.1 101 Switching Protocols\r\n"
          "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
          "Via: 1.1 blitz\r\n"
          "Connection: upgrade\r\n"
          "Upgrade: websocket\r\n"
          "\r\n");
    CHECK(write_response(
              {.status = 101, .fields = {{"Connection", "upgrade"}}, .framing = Framing::None})
              .empty());
    CHECK(write_response({.status = 101, .fields = {{"Upgrade", "h2c"}}, .framing = Framing::None})
              .empty());
    CHECK(
        write_response(
            {.status = 101, .fields = {{"Upgrade", "websocket\r\nX: 1"}}, .framing = Framing::None})
            .empty());
}

TEST_CASE("http1::write_proxied_response_head refuses what would break the response", "[http1]") {
    CHECK(write_response({.status = 99}).empty());
    CHECK(write_response({.status = 1000}).empty());
    CHECK(write_response({.status = -200}).empty());
    CHECK(write_response({.fields = {{"X-A", "a\r\nSet-Cookie: evil"}}}).empty());
    CHECK(write_response({.fields = {{"X-A", "a\nb"}}}).empty());
    CHECK(write_response({.fields = {{"X-A", "a\0b"sv}}}).empty());
    CHECK(write_response({.fields = {{"X A", "b"}}}).empty());
    CHECK(write_response({.fields = {{"", "b"}}}).empty());
    CHECK(write_response({.fields = {{"Content\rLength", "5"}}}).empty());
    CHECK(write_response({.fields = {{"X-A", "a\x01b"}}}).empty());
    CHECK(write_response({.fields = {{"X-A", "a\x7f"}}}).empty());
    CHECK(write_response({.via = "1.1 blitz\r\nX: 1"}).empty());
    CHECK(write_response({.date = "Tue\n"}).empty());
}

TEST_CASE("http1::write_proxied_response_head checks every byte value of names and values",
          "[http1]") {
    for (int b = 0; b < 256; ++b) {
        CAPTURE(b);
        const char c = static_cast<char>(b);
        const bool value_ok = c == '\t' || (b >= 0x20 && b != 0x7f);
        const bool name_ok = blitz::http1::detail::is_tchar(c);
        // Short and long strings: the overlapping loads and the 16-byte blocks.
        for (std::size_t length : {1u, 3u, 5u, 12u, 16u, 17u, 40u}) {
            for (std::size_t at : {std::size_t{0}, length / 2, length - 1}) {
                std::string text(length, 'a');
                text[at] = c;
                CHECK(write_response({.fields = {{"X-A", text}}}).empty() == !value_ok);
                CHECK(write_response({.fields = {{text, "v"}}}).empty() == !name_ok);
                const std::array<Header, 1> extra = {{{"X-A", text}}};
                CHECK(write_request(
                          {.method = "GET", .target = "/", .host = "h", .extra = Headers(extra)})
                          .empty() == !value_ok);
            }
        }
    }
}

TEST_CASE("http1::write_proxied_response_head returns 0 when the output is one byte too small",
          "[http1]") {
    const Response r{.status = 201,
                     .reason = "Created",
                     .fields = {{"Location", "/items/7"}, {"Content-Length", "2"}},
                     .framing = Framing::Length,
                     .length = 2,
                     .keep_alive = false,
                     .client = Version::Http11,
                     .via = "1.1 blitz",
                     .date = kDate};
    const std::string full = write_response(r);
    REQUIRE(!full.empty());
    std::string out(full.size(), '\0');
    for (std::size_t size = 0; size < full.size(); ++size) {
        CAPTURE(size);
        CHECK(write_response_into(std::span<char>(out.data(), size), r) == 0);
    }
    CHECK(write_response_into(out, r) == full.size());
    CHECK(out == full);
}

TEST_CASE("http1::write_proxied_response_head output parses back to the same response", "[http1]") {
    const std::string upstream =
        "HTTP/1.1 200 Okay\r\nServer: up\r\nConnection: X-A\r\nX-A: 1\r\n"
        "Transfer-Encoding: chunked\r\nSet-Cookie: a=b\r\nSet-Cookie: c=d\r\n\r\n";
    std::array<Header, 16> storage{};
    blitz::http1::ResponseHead parsed;
    REQUIRE(blitz::http1::parse_response_head(upstream, storage, {}, Method::Get, parsed).status ==
            ParseStatus::Done);
    std::array<char, 512> out{};
    const std::size_t n = blitz::http1::write_proxied_response_head(
        out, parsed.status, parsed.reason, Headers(parsed.headers), parsed.body,
        parsed.content_length, parsed.keep_alive, Version::Http11, "1.1 blitz", "");
    REQUIRE(n > 0);
    const std::string_view wire(out.data(), n);
    CHECK(wire ==
          "HTTP/1.1 200 Okay\r\nServer: up\r\nSet-Cookie: a=b\r\nSet-Cookie: c=d\r\n"
          "Via: 1.1 blitz\r\nTransfer-Encoding: chunked\r\n\r\n");
    std::array<Header, 16> again_storage{};
    blitz::http1::ResponseHead again;
    const auto r = blitz::http1::parse_response_head(wire, again_storage, {}, Method::Get, again);
    REQUIRE(r.status == ParseStatus::Done);
    CHECK(r.consumed == n);
    CHECK(again.status == 200);
    CHECK(again.reason == "Okay");
    CHECK(again.body == Framing::Chunked);
    CHECK(again.keep_alive);
    CHECK(again.headers.size() == 5);
}

}  // namespace

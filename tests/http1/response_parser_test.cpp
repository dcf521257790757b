#include <array>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

#include "http1/proxy.hpp"

namespace {

using namespace std::string_view_literals;
using blitz::Method;
using blitz::Version;
using blitz::http1::Framing;
using blitz::http1::ParseResult;
using blitz::http1::ParseStatus;
using blitz::http1::ResponseHead;
using blitz::http1::ResponseLimits;

// Owns a copy of the bytes, so the views in `head` stay valid; never moved.
struct Parsed {
    explicit Parsed(std::string_view text, Method method = Method::Get,
                    const ResponseLimits& limits = {})
        : bytes(text) {
        result = blitz::http1::parse_response_head(bytes, storage, limits, method, head);
    }
    Parsed(const Parsed&) = delete;
    Parsed& operator=(const Parsed&) = delete;

    bool done() const { return result.status == ParseStatus::Done; }
    bool failed() const { return result.status == ParseStatus::Error; }
    bool inside(std::string_view v) const {
        return v.empty() ||
               (v.data() >= bytes.data() && v.data() + v.size() <= bytes.data() + bytes.size());
    }

    std::string bytes;
    std::array<blitz::Header, 64> storage{};
    ResponseHead head;
    ParseResult result;
};

struct ErrorCase {
    const char* what;
    std::string_view response;
};

// Every malformed upstream response is a 502 with a reason, for logs.
void check_errors(std::span<const ErrorCase> cases, Method method = Method::Get) {
    for (const ErrorCase& c : cases) {
        DYNAMIC_SECTION(c.what) {
            const Parsed p(c.response, method);
            INFO("reason: " << p.result.reason);
            REQUIRE(p.failed());
            CHECK(p.result.error_status == 502);
            CHECK(std::string_view(p.result.reason).size() > 0);
        }
    }
}

TEST_CASE("http1::parse_response_head parses a 200 with Content-Length into views", "[http1]") {
    const Parsed p(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Id:  7 \r\n\r\n"
        "hello");
    REQUIRE(p.done());
    CHECK(p.result.consumed == p.bytes.size() - 5);
    CHECK(p.head.version == Version::Http11);
    CHECK(p.head.status == 200);
    CHECK(p.head.reason == "OK");
    CHECK(p.inside(p.head.reason));
    REQUIRE(p.head.headers.size() == 3);
    CHECK(p.head.headers[0].name == "Content-Type");
    CHECK(p.head.headers[0].value == "text/plain");
    CHECK(p.head.headers[2].name == "X-Id");
    CHECK(p.head.headers[2].value == "7");
    for (const blitz::Header& h : p.head.headers) {
        CHECK(p.inside(h.name));
        CHECK(p.inside(h.value));
    }
    CHECK(p.head.headers.data() == p.storage.data());
    CHECK(p.head.body == Framing::Length);
    CHECK(p.head.has_content_length);
    CHECK(p.head.content_length == 5);
    CHECK(p.head.keep_alive);
    CHECK_FALSE(p.head.upgrade);
    CHECK_FALSE(p.head.interim());
}

TEST_CASE("http1::parse_response_head returns Incomplete for every prefix, then the same result",
          "[http1]") {
    const std::string_view full =
        "HTTP/1.1 404 Not Found\r\nServer: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::size_t n = 0; n < full.size(); ++n) {
        CAPTURE(n);
        const Parsed p(full.substr(0, n));
        CHECK(p.result.status == ParseStatus::Incomplete);
    }
    const Parsed p(full);
    REQUIRE(p.done());
    CHECK(p.result.consumed == full.size());
    CHECK(p.head.status == 404);
    CHECK(p.head.reason == "Not Found");
    CHECK(p.head.body == Framing::Chunked);
}

TEST_CASE("http1::parse_response_head stops at the end of the head", "[http1]") {
    const Parsed p("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
    REQUIRE(p.done());
    CHECK(p.result.consumed == "HTTP/1.1 204 No Content\r\n\r\n"sv.size());
    CHECK(p.head.headers.empty());
}

TEST_CASE("http1::parse_response_head accepts an empty or missing reason phrase and any text",
          "[http1]") {
    const Parsed empty("HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
    REQUIRE(empty.done());
    CHECK(empty.head.reason.empty());
    // RFC 9112 §4 needs the SP, but the line is unambiguous without it and servers send it.
    const Parsed none("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(none.done());
    CHECK(none.head.status == 200);
    CHECK(none.head.reason.empty());
    const Parsed text("HTTP/1.1 299 Very \tfine \xc3\xa9 (really) \r\nContent-Length: 0\r\n\r\n");
    REQUIRE(text.done());
    CHECK(text.head.reason == "Very \tfine \xc3\xa9 (really) ");
}

TEST_CASE("http1::parse_response_head reads the version, treating HTTP/1.2-1.9 as HTTP/1.1",
          "[http1]") {
    const Parsed v10("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(v10.done());
    CHECK(v10.head.version == Version::Http10);
    const Parsed v19("HTTP/1.9 200 OK\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(v19.done());
    CHECK(v19.head.version == Version::Http11);
}

TEST_CASE("http1::parse_response_head rejects malformed status lines with 502", "[http1]") {
    const ErrorCase cases[] = {
        {"lower-case name", "http/1.1 200 OK\r\n\r\n"},
        {"HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n"},
        {"HTTP/0.9", "HTTP/0.9 200 OK\r\n\r\n"},
        {"no minor version", "HTTP/1 200 OK\r\n\r\n"},
        {"two-digit status", "HTTP/1.1 20 OK\r\n\r\n"},
        {"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n"},
        {"status below 100", "HTTP/1.1 099 Odd\r\n\r\n"},
        {"status 000", "HTTP/1.1 000 Odd\r\n\r\n"},
        {"status above 599", "HTTP/1.1 600 Odd\r\n\r\n"},
        {"letter in status", "HTTP/1.1 2x0 OK\r\n\r\n"},
        {"sign in status", "HTTP/1.1 +20 OK\r\n\r\n"},
        {"two spaces before status", "HTTP/1.1  200 OK\r\n\r\n"},
        {"tab before status", "HTTP/1.1\t200 OK\r\n\r\n"},
        {"bare LF after status line", "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"},
        {"bare LF after status", "HTTP/1.1 200\nContent-Length: 0\r\n\r\n"},
        {"bare CR after status line", "HTTP/1.1 200 OK\rContent-Length: 0\r\n\r\n"},
        {"NUL in reason", "HTTP/1.1 200 O\0K\r\n\r\n"sv},
        {"DEL in reason", "HTTP/1.1 200 O\x7fK\r\n\r\n"},
        {"control in reason", "HTTP/1.1 200 O\x01K\r\n\r\n"},
        {"empty line before status line", "\r\nHTTP/1.1 200 OK\r\n\r\n"},
        {"space before status line", " HTTP/1.1 200 OK\r\n\r\n"},
        {"a request", "GET / HTTP/1.1\r\n\r\n"},
        {"HTML", "<html><body>oops</body></html>\r\n"},
    };
    check_errors(cases);
}

TEST_CASE("http1::parse_response_head rejects malformed field lines with 502", "[http1]") {
    const ErrorCase cases[] = {
        {"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n"},
        {"obs-fold with tab", "HTTP/1.1 200 OK\r\nX-A: a\r\n\tb\r\nContent-Length: 0\r\n\r\n"},
        {"whitespace before the first field", "HTTP/1.1 200 OK\r\n X-A: a\r\n\r\n"},
        {"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n"},
        {"tab before colon", "HTTP/1.1 200 OK\r\nContent-Length\t: 0\r\n\r\n"},
        {"empty name", "HTTP/1.1 200 OK\r\n: x\r\n\r\n"},
        {"no colon", "HTTP/1.1 200 OK\r\nX-A\r\n\r\n"},
        {"separator in name", "HTTP/1.1 200 OK\r\nX(A): x\r\n\r\n"},
        {"NUL in value", "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n"sv},
        {"bare LF in value", "HTTP/1.1 200 OK\r\nX-A: a\nb\r\n\r\n"},
        {"bare LF ending a field", "HTTP/1.1 200 OK\r\nX-A: a\nContent-Length: 0\r\n\r\n"},
        {"bare CR in value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n"},
        {"bare CR ending the head", "HTTP/1.1 200 OK\r\nX-A: a\r\n\rx"},
        {"bare LF ending the head", "HTTP/1.1 200 OK\r\nX-A: a\r\n\n"},
        {"DEL in value", "HTTP/1.1 200 OK\r\nX-A: a\x7f\r\n\r\n"},
        {"escape in value", "HTTP/1.1 200 OK\r\nX-A: a\x1b[0m\r\n\r\n"},
    };
    check_errors(cases);
}

TEST_CASE("http1::parse_response_head classifies every byte value alike in every scan path",
          "[http1]") {
    // Values long enough for the 16-byte scans, with the byte early (inside a block) and last
    // (in the byte loop), and the same in the reason phrase.
    for (int b = 0; b < 256; ++b) {
        CAPTURE(b);
        const char c = static_cast<char>(b);
        if (c == '\r') {
            continue;
        }
        const bool valid = c == '\t' || (b >= 0x20 && b != 0x7f);
        for (std::size_t at : {1u, 20u, 39u}) {
            CAPTURE(at);
            std::string value(40, 'v');
            value[at] = c;
            const Parsed field("HTTP/1.1 200 OK\r\nX-Long: " + value +
                               "\r\nContent-Length: 0\r\n\r\n");
            CHECK(field.done() == valid);
            CHECK(field.failed() == !valid);
            const Parsed reason("HTTP/1.1 200 " + value + "\r\nContent-Length: 0\r\n\r\n");
            CHECK(reason.done() == valid);
            CHECK(reason.failed() == !valid);
        }
    }
}

TEST_CASE("http1::parse_response_head gives no body to HEAD, 1xx, 204 and 304 responses",
          "[http1]") {
    const Parsed head("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", Method::Head);
    REQUIRE(head.done());
    CHECK(head.head.body == Framing::None);
    CHECK(head.head.has_content_length);
    CHECK(head.head.content_length == 1234);
    CHECK(head.head.keep_alive);
    const Parsed head_chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                              Method::Head);
    REQUIRE(head_chunked.done());
    CHECK(head_chunked.head.body == Framing::None);
    CHECK(head_chunked.head.keep_alive);
    // No Content-Length and no Transfer-Encoding would mean "until close" for a GET.
    const Parsed head_bare("HTTP/1.1 200 OK\r\n\r\n", Method::Head);
    REQUIRE(head_bare.done());
    CHECK(head_bare.head.body == Framing::None);
    CHECK(head_bare.head.keep_alive);

    const Parsed not_modified("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n");
    REQUIRE(not_modified.done());
    CHECK(not_modified.head.body == Framing::None);
    CHECK(not_modified.head.content_length == 99);
    CHECK(not_modified.head.keep_alive);
    const Parsed no_content("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(no_content.done());
    CHECK(no_content.head.body == Framing::None);
    const Parsed no_content_te("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n");
    REQUIRE(no_content_te.done());
    CHECK(no_content_te.head.body == Framing::None);
}

TEST_CASE("http1::parse_response_head frames bodies by chunked, Content-Length or the close",
          "[http1]") {
    const Parsed chunked("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    REQUIRE(chunked.done());
    CHECK(chunked.head.body == Framing::Chunked);
    CHECK(chunked.head.keep_alive);
    CHECK_FALSE(chunked.head.has_content_length);
    const Parsed mixed_case("HTTP/1.1 200 OK\r\ntransfer-encoding:   ChUnKeD  \r\n\r\n");
    REQUIRE(mixed_case.done());
    CHECK(mixed_case.head.body == Framing::Chunked);
    const Parsed length("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(length.done());
    CHECK(length.head.body == Framing::Length);
    CHECK(length.head.content_length == 0);
    const Parsed largest("HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\n\r\n");
    REQUIRE(largest.done());
    CHECK(largest.head.content_length == 9223372036854775807ULL);
    const Parsed close("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n");
    REQUIRE(close.done());
    CHECK(close.head.body == Framing::UntilClose);
    CHECK_FALSE(close.head.keep_alive);
    const Parsed error_close("HTTP/1.1 500 Oops\r\n\r\n");
    REQUIRE(error_close.done());
    CHECK(error_close.head.body == Framing::UntilClose);
}

TEST_CASE(
    "http1::parse_response_head lets Transfer-Encoding win over Content-Length but not "
    "reuse the connection",
    "[http1]") {
    for (std::string_view response :
         {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"sv,
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n"sv}) {
        const Parsed p(response);
        REQUIRE(p.done());
        CHECK(p.head.body == Framing::Chunked);
        CHECK_FALSE(p.head.keep_alive);
    }
}

TEST_CASE("http1::parse_response_head accepts repeated identical Content-Length values",
          "[http1]") {
    const Parsed list("HTTP/1.1 200 OK\r\nContent-Length: 7, 7,7\r\n\r\n");
    REQUIRE(list.done());
    CHECK(list.head.content_length == 7);
    const Parsed fields("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n");
    REQUIRE(fields.done());
    CHECK(fields.head.content_length == 7);
}

TEST_CASE("http1::parse_response_head rejects response splitting and framing errors with 502",
          "[http1]") {
    const ErrorCase cases[] = {
        {"conflicting Content-Length fields",
         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"},
        {"conflicting Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n"},
        {"signed Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n"},
        {"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"},
        {"hex Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n"},
        {"empty Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"},
        {"empty list element", "HTTP/1.1 200 OK\r\nContent-Length: 1,,1\r\n\r\n"},
        {"blank inside Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 1 0\r\n\r\n"},
        {"Content-Length of 2^63",
         "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n"},
        {"Content-Length overflowing 2^64",
         "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"},
        {"invalid Content-Length on 304", "HTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n"},
        {"gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"},
        {"gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"},
        {"chunked, gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"},
        {"gzip in a second field",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"},
        {"chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"},
        {"chunked in two fields",
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"},
        {"chunked with a parameter", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;q=1\r\n\r\n"},
        {"identity", "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\n\r\n"},
        {"empty Transfer-Encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n"},
        {"empty transfer coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked,\r\n\r\n"},
        {"near miss", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunke\r\n\r\n"},
        {"Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"},
        {"101 without Upgrade", "HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\n\r\n"},
    };
    check_errors(cases);
}

TEST_CASE("http1::parse_response_head recognises framing fields in any case and nothing near them",
          "[http1]") {
    const Parsed near(
        "HTTP/1.1 200 OK\r\nContent-Lengths: x\r\nTransfer-Encodings: gzip\r\n"
        "X-Content-Length: y\r\nContent-Length: 3\r\n\r\n");
    REQUIRE(near.done());
    CHECK(near.head.body == Framing::Length);
    CHECK(near.head.content_length == 3);
    const Parsed upper("HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 4\r\n\r\n");
    REQUIRE(upper.done());
    CHECK(upper.head.content_length == 4);
}

TEST_CASE("http1::parse_response_head applies HTTP/1.1 and HTTP/1.0 keep-alive rules", "[http1]") {
    struct Case {
        std::string_view response;
        bool keep_alive;
    };
    const Case cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: x-foo, CLOSE\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0"
         "\r\n\r\n",
         false},
        {"HTTP/1.1 200 OK\r\nConnection: closed\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true},
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n", false},  // until close
        {"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n", false},
    };
    for (const Case& c : cases) {
        CAPTURE(c.response);
        const Parsed p(c.response);
        REQUIRE(p.done());
        CHECK(p.head.keep_alive == c.keep_alive);
    }
}

TEST_CASE("http1::parse_response_head returns interim 1xx heads whole, the final one after them",
          "[http1]") {
    const std::string_view wire =
        "HTTP/1.1 100 Continue\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    const Parsed first(wire);
    REQUIRE(first.done());
    CHECK(first.head.status == 100);
    CHECK(first.head.interim());
    CHECK(first.head.body == Framing::None);
    CHECK_FALSE(first.head.upgrade);
    const Parsed second(wire.substr(first.result.consumed));
    REQUIRE(second.done());
    CHECK(second.head.status == 103);
    CHECK(second.head.interim());
    REQUIRE(second.head.headers.size() == 1);
    CHECK(second.head.headers[0].value == "</style.css>; rel=preload");
    const Parsed last(wire.substr(first.result.consumed + second.result.consumed));
    REQUIRE(last.done());
    CHECK(last.head.status == 200);
    CHECK_FALSE(last.head.interim());
    CHECK(last.head.body == Framing::Length);
    CHECK(last.result.consumed + 2 == last.bytes.size());
}

TEST_CASE("http1::parse_response_head marks 101 and a 2xx to CONNECT as a switch of protocol",
          "[http1]") {
    const Parsed ws(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x05hello");
    REQUIRE(ws.done());
    CHECK(ws.head.status == 101);
    CHECK(ws.head.upgrade);
    CHECK_FALSE(ws.head.interim());
    CHECK(ws.head.body == Framing::None);
    CHECK_FALSE(ws.head.keep_alive);
    CHECK(ws.bytes.substr(ws.result.consumed) == "\x81\x05hello");

    const Parsed tunnel("HTTP/1.1 200 Connection established\r\nContent-Length: 5\r\n\r\n",
                        Method::Connect);
    REQUIRE(tunnel.done());
    CHECK(tunnel.head.upgrade);
    CHECK(tunnel.head.body == Framing::None);
    CHECK_FALSE(tunnel.head.keep_alive);
    const Parsed no_content("HTTP/1.1 204 No Content\r\n\r\n", Method::Connect);
    REQUIRE(no_content.done());
    CHECK(no_content.head.upgrade);
    const Parsed tunnel_te("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", Method::Connect);
    REQUIRE(tunnel_te.done());
    CHECK(tunnel_te.head.upgrade);

    const Parsed refused("HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n",
                         Method::Connect);
    REQUIRE(refused.done());
    CHECK_FALSE(refused.head.upgrade);
    CHECK(refused.head.body == Framing::Length);
    CHECK(refused.head.keep_alive);
}

TEST_CASE("http1::parse_response_head answers 502 for a head over max_head_bytes", "[http1]") {
    const ResponseLimits limits{.max_head_bytes = 64, .max_headers = 100};
    std::string head = "HTTP/1.1 200 OK\r\nX-Pad: ";
    head.append(64 - head.size() - 4, 'p');
    head += "\r\n\r\n";
    REQUIRE(head.size() == 64);
    const Parsed exact(head, Method::Get, limits);
    CHECK(exact.done());
    // Still within the limit, the head not complete: Incomplete, not an error.
    const Parsed partial(head.substr(0, 63), Method::Get, limits);
    CHECK(partial.result.status == ParseStatus::Incomplete);

    std::string over = "HTTP/1.1 200 OK\r\nX-Pad: ";
    over.append(64 - over.size() - 3, 'p');
    over += "\r\n\r\n";
    REQUIRE(over.size() == 65);
    const Parsed too_large(over, Method::Get, limits);
    REQUIRE(too_large.failed());
    CHECK(too_large.result.error_status == 502);
    // More bytes than the limit without an end of head is an error at once.
    const Parsed endless("HTTP/1.1 200 " + std::string(60, 'r'), Method::Get, limits);
    CHECK(endless.failed());
    const Parsed endless_field("HTTP/1.1 200 OK\r\nX: " + std::string(100, 'v'), Method::Get,
                               limits);
    CHECK(endless_field.failed());

    // The default allows 64 KiB.
    std::string big = "HTTP/1.1 200 OK\r\nSet-Cookie: ";
    big.append(60 * 1024, 'c');
    big += "\r\nContent-Length: 0\r\n\r\n";
    CHECK(Parsed(big).done());
}

TEST_CASE("http1::parse_response_head answers 502 for more than max_headers fields", "[http1]") {
    std::string response = "HTTP/1.1 200 OK\r\n";
    for (int i = 0; i < 4; ++i) {
        response += "X-" + std::to_string(i) + ": v\r\n";
    }
    response += "\r\n";
    const Parsed fits(response, Method::Get, ResponseLimits{.max_headers = 4});
    REQUIRE(fits.done());
    CHECK(fits.head.headers.size() == 4);
    const Parsed over(response, Method::Get, ResponseLimits{.max_headers = 3});
    REQUIRE(over.failed());
    CHECK(over.result.error_status == 502);

    // The caller's storage bounds the count as well.
    std::array<blitz::Header, 2> small{};
    ResponseHead head;
    const ParseResult r =
        blitz::http1::parse_response_head(response, small, ResponseLimits{}, Method::Get, head);
    CHECK(r.status == ParseStatus::Error);
    CHECK(r.error_status == 502);
}

}  // namespace

// Malformed and oversized requests: the status blitzd answers with, and that it closes.

#include <string>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

/// Sends `raw` on a fresh connection and checks the answer is `status` with a JSON error
/// body, Connection: close, and that the server then closes.
void check_rejected(const Server& server, const std::string& raw, int status) {
    Client c = server.connect();
    REQUIRE(c.connected());
    REQUIRE(c.send(raw));
    auto res = c.read_response();
    INFO("request: " << raw << "\nreceived: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == status);
    CHECK(res->body.rfind("{\"error\":\"", 0) == 0);
    CHECK(res->header("Content-Length") == std::to_string(res->body.size()));
    CHECK(res->connection_has("close"));
    CHECK(c.wait_closed(Millis(2000)));
    CHECK(c.pending().empty());
}

}  // namespace

TEST_CASE("blitzd rejects malformed HTTP/1.1 framing with 400 and closes", "[http1][malformed]") {
    Blitzd d(ConfigSpec{});
    SECTION("missing Host") {
        check_rejected(d, "GET /hello HTTP/1.1\r\n\r\n", 400);
    }
    SECTION("two Host fields") {
        check_rejected(d, "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    }
    SECTION("Content-Length with Transfer-Encoding") {
        check_rejected(d,
                       "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                       400);
    }
    SECTION("conflicting Content-Length fields") {
        check_rejected(d,
                       "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "Content-Length: 6\r\n\r\nhello!",
                       400);
    }
    SECTION("conflicting Content-Length list") {
        check_rejected(d,
                       "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!",
                       400);
    }
    SECTION("non-numeric Content-Length") {
        check_rejected(d, "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
                       400);
    }
    SECTION("bad chunk size") {
        check_rejected(d,
                       "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "zz\r\nhello\r\n0\r\n\r\n",
                       400);
    }
    SECTION("chunk data longer than its size") {
        check_rejected(d,
                       "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "3\r\nhello\r\n0\r\n\r\n",
                       400);
    }
    SECTION("obs-fold") {
        check_rejected(d, "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n", 400);
    }
    SECTION("space before the colon") {
        check_rejected(d, "GET /hello HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", 400);
    }
    SECTION("bare CR in a header value") {
        check_rejected(d, "GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400);
    }
    SECTION("NUL in a header value") {
        check_rejected(d, std::string("GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 40),
                       400);
    }
    SECTION("raw backslash in the path") {
        check_rejected(d, "GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    }
    SECTION("malformed percent escape in the path") {
        check_rejected(d, "GET /%zzhello HTTP/1.1\r\nHost: x\r\n\r\n", 400);
    }
    SECTION("garbage request line") {
        check_rejected(d, "HELLO\r\n\r\n", 400);
    }
    SECTION("invalid Host") {
        check_rejected(d, "GET /hello HTTP/1.1\r\nHost: a b\r\n\r\n", 400);
    }
}

TEST_CASE("blitzd answers an unknown transfer coding with 501 and closes", "[http1][malformed]") {
    Blitzd d(ConfigSpec{});
    check_rejected(d,
                   "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus, chunked\r\n\r\n"
                   "5\r\nhello\r\n0\r\n\r\n",
                   501);
}

TEST_CASE("blitzd answers HTTP/2.0 in an HTTP/1 request line with 505", "[http1][malformed]") {
    Blitzd d(ConfigSpec{});
    check_rejected(d, "GET /hello HTTP/2.0\r\nHost: x\r\n\r\n", 505);
}

TEST_CASE("blitzd enforces the head, header-count and target limits", "[http1][malformed]") {
    ConfigSpec spec;
    spec.limits = R"({ "max_request_head_bytes": 2048, "max_headers": 10,
                       "max_path_bytes": 256 })";
    Blitzd d(spec);
    SECTION("a head just under the size limit is served") {
        std::string filler(1900, 'a');
        Reply reply = send_one(d, request("GET", "/hello", "X-Fill: " + filler + "\r\n"));
        INFO("received: " << reply.transcript);
        REQUIRE(reply.response);
        CHECK(reply.response->status == 200);
    }
    SECTION("a head over the size limit gets 431") {
        check_rejected(d, request("GET", "/hello", "X-Big: " + std::string(3000, 'a') + "\r\n"),
                       431);
    }
    SECTION("ten headers are served") {
        std::string extra;
        for (int i = 0; i < 9; ++i) {
            extra += "X-H" + std::to_string(i) + ": v\r\n";
        }
        Reply reply = send_one(d, request("GET", "/hello", extra));
        INFO("received: " << reply.transcript);
        REQUIRE(reply.response);
        CHECK(reply.response->status == 200);
    }
    SECTION("more headers than max_headers get 431") {
        std::string extra;
        for (int i = 0; i < 20; ++i) {
            extra += "X-H" + std::to_string(i) + ": v\r\n";
        }
        check_rejected(d, request("GET", "/hello", extra), 431);
    }
    SECTION("a target longer than max_path_bytes gets 414") {
        check_rejected(d, request("GET", "/hello?" + std::string(400, 'q')), 414);
    }
    SECTION("a head over the limit is refused before it ends") {
        Client c = d.connect();
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4000, 'a')));
        auto res = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == 431);
    }
}

TEST_CASE("blitzd serves the next connection normally after rejecting one", "[http1][malformed]") {
    Blitzd d(ConfigSpec{});
    check_rejected(d, "GET /hello HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n", 400);
    Reply reply = send_one(d, request("GET", "/hello"));
    REQUIRE(reply.response);
    CHECK(reply.response->status == 200);
}

TEST_CASE("blitzd answers the requests before a malformed one in a pipeline, then 400",
          "[http1][malformed]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.send(request("GET", "/hello") + request("GET", "/a/b") +
                   "GET /hello HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n" +
                   request("GET", "/secret")));
    auto first = c.read_response();
    auto second = c.read_response();
    auto third = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(first);
    REQUIRE(second);
    REQUIRE(third);
    CHECK(first->status == 200);
    CHECK(second->body == "a-b");
    CHECK(third->status == 400);
    CHECK(c.wait_closed(Millis(2000)));
    CHECK(c.pending().empty());
    CHECK(c.transcript().find("SECRET") == std::string::npos);
}

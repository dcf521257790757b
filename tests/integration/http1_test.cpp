// HTTP/1.1 behaviour on well-formed input: keep-alive, pipelining, HEAD, HTTP/1.0,
// 100-continue, chunked bodies, 404/405 and error bodies.

#include <string>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

bool is_json_error(const std::string& body) {
    return body.rfind("{\"error\":\"", 0) == 0 && body.size() > 12 &&
           body.substr(body.size() - 2) == "\"}";
}

}  // namespace

TEST_CASE("blitzd answers GET with the route's body, Date, Content-Length and headers",
          "[http1]") {
    Blitzd d(ConfigSpec{});
    CommandResult r = curl({"-i", d.url("/hello")});
    INFO("curl: " << r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    auto responses = parse_all_responses(r.out);
    REQUIRE(responses.size() == 1);
    const Response& res = responses[0];
    INFO(res.head_text());
    CHECK(res.version == "HTTP/1.1");
    CHECK(res.status == 200);
    CHECK(res.reason == "OK");
    CHECK(res.body == "Hello, World!");
    CHECK(res.header("Content-Length") == "13");
    CHECK(res.header_count("Content-Length") == 1);
    CHECK(res.header("Content-Type") == "text/plain");
    CHECK(res.header("X-Test") == "1");
    auto date = res.header("Date");
    REQUIRE(date);
    // RFC 9110 §5.6.7 IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
    CHECK(date->size() == 29);
    CHECK(date->substr(date->size() - 4) == " GMT");
    CHECK_FALSE(res.connection_has("close"));
}

TEST_CASE("blitzd keeps HTTP/1.1 connections alive by default", "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.connected());
    for (int i = 0; i < 3; ++i) {
        REQUIRE(c.send(request("GET", "/hello")));
        auto res = c.read_response();
        INFO("request " << i << ", received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == "Hello, World!");
        CHECK_FALSE(res->connection_has("close"));
    }
    CHECK(c.quiet_for(Millis(100)));
}

TEST_CASE("blitzd reuses one connection for curl's consecutive requests", "[http1]") {
    Blitzd d(ConfigSpec{});
    CommandResult r = curl({"-v", "-i", d.url("/hello"), d.url("/any")});
    INFO("curl: " << r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    auto responses = parse_all_responses(r.out);
    REQUIRE(responses.size() == 2);
    CHECK(responses[0].body == "Hello, World!");
    CHECK(responses[1].body == "any method");
    CHECK(r.err.find("Re-using existing connection") != std::string::npos);
}

TEST_CASE("blitzd answers pipelined requests in order", "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.connected());
    REQUIRE(c.send(request("GET", "/hello") + request("GET", "/nope") + request("GET", "/any") +
                   request("POST", "/upload", "", "12345") + request("GET", "/a/b")));
    const int expected_status[] = {200, 404, 200, 200, 200};
    const char* expected_body[] = {"Hello, World!", nullptr, "any method", "stored", "a-b"};
    for (int i = 0; i < 5; ++i) {
        auto res = c.read_response();
        INFO("response " << i << ", received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == expected_status[i]);
        if (expected_body[i] != nullptr) {
            CHECK(res->body == expected_body[i]);
        }
    }
    CHECK(c.quiet_for(Millis(100)));
}

TEST_CASE("blitzd answers HEAD with GET's headers and no body", "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.connected());
    REQUIRE(c.send(request("GET", "/any")));
    auto get = c.read_response();
    REQUIRE(get);
    REQUIRE(c.send(request("HEAD", "/any")));
    auto head = c.read_response(Millis(3000), true);
    INFO("received: " << c.transcript());
    REQUIRE(head);
    CHECK(head->status == 200);
    CHECK(head->header("Content-Length") == get->header("Content-Length"));
    CHECK(head->header("Content-Type") == get->header("Content-Type"));
    // A body after the HEAD response would be parsed as the next status line.
    CHECK(c.pending().empty());
    REQUIRE(c.send(request("GET", "/any")));
    auto after = c.read_response();
    REQUIRE(after);
    CHECK(after->status == 200);
    CHECK(after->body == "any method");
}

TEST_CASE("blitzd closes an HTTP/1.0 connection after the response", "[http1]") {
    Blitzd d(ConfigSpec{});
    SECTION("raw request without Host") {
        Client c = d.connect();
        REQUIRE(c.send("GET /hello HTTP/1.0\r\n\r\n"));
        auto res = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->header("Content-Length") == "13");
        CHECK(res->body == "Hello, World!");
        CHECK(c.wait_closed(Millis(2000)));
    }
    SECTION("curl --http1.0") {
        CommandResult r = curl({"-i", "--http1.0", d.url("/hello")});
        INFO("curl: " << r.out << r.err);
        auto responses = parse_all_responses(r.out);
        REQUIRE(responses.size() == 1);
        CHECK(responses[0].status == 200);
        CHECK(responses[0].body == "Hello, World!");
    }
}

TEST_CASE("blitzd keeps an HTTP/1.0 connection open with Connection: keep-alive", "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    for (int i = 0; i < 2; ++i) {
        REQUIRE(c.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        auto res = c.read_response();
        INFO("request " << i << ", received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK_FALSE(res->connection_has("close"));
    }
    CHECK(c.quiet_for(Millis(100)));
}

TEST_CASE("blitzd honours Connection: close from the client", "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.send(request("GET", "/hello", "Connection: close\r\n")));
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->connection_has("close"));
    CHECK(c.wait_closed(Millis(2000)));
}

TEST_CASE("blitzd sends 100 Continue before reading a body the route accepts", "[http1]") {
    Blitzd d(ConfigSpec{});
    SECTION("raw") {
        Client c = d.connect();
        REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                       "Expect: 100-continue\r\n\r\n"));
        auto interim = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(interim);
        CHECK(interim->status == 100);
        CHECK(interim->version == "HTTP/1.1");
        REQUIRE(c.send("hello"));
        auto final_res = c.read_response();
        REQUIRE(final_res);
        CHECK(final_res->status == 200);
        CHECK(final_res->body == "stored");
        REQUIRE(c.send(request("GET", "/hello")));
        auto next = c.read_response();
        REQUIRE(next);
        CHECK(next->status == 200);
    }
    SECTION("curl") {
        TempDir dir;
        std::string file = dir.write("body.bin", std::string(600, 'x'));
        CommandResult r = curl({"-i", "-H", "Expect: 100-continue", "--data-binary",
                                "@" + file, d.url("/upload")});
        INFO("curl: " << r.out << r.err);
        auto responses = parse_all_responses(r.out);
        REQUIRE(responses.size() == 2);
        CHECK(responses[0].status == 100);
        CHECK(responses[1].status == 200);
        CHECK(responses[1].body == "stored");
    }
}

TEST_CASE("blitzd answers 413 without 100 Continue when the declared body is too large",
          "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n"
                   "Expect: 100-continue\r\n\r\n"));
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 413);
    CHECK(is_json_error(res->body));
}

TEST_CASE("blitzd accepts chunked request bodies", "[http1]") {
    Blitzd d(ConfigSpec{});
    SECTION("raw, with a chunk extension and a trailer, then another request") {
        Client c = d.connect();
        REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "5\r\nhello\r\n"
                       "6;name=value\r\n world\r\n"
                       "0\r\nX-Trailer: t\r\n\r\n"));
        auto res = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == "stored");
        REQUIRE(c.send(request("GET", "/hello")));
        auto next = c.read_response();
        REQUIRE(next);
        CHECK(next->body == "Hello, World!");
    }
    SECTION("curl") {
        TempDir dir;
        std::string file = dir.write("body.bin", std::string(900, 'y'));
        CommandResult r = curl({"-i", "-H", "Transfer-Encoding: chunked", "--data-binary",
                                "@" + file, d.url("/upload")});
        INFO("curl: " << r.out << r.err);
        auto responses = parse_all_responses(r.out);
        REQUIRE_FALSE(responses.empty());
        CHECK(responses.back().status == 200);
        CHECK(responses.back().body == "stored");
    }
}

TEST_CASE("blitzd answers an unknown path with 404 and a JSON error body", "[http1]") {
    Blitzd d(ConfigSpec{});
    Reply reply = send_one(d, request("GET", "/no/such/path"));
    INFO("received: " << reply.transcript);
    REQUIRE(reply.response);
    CHECK(reply.response->status == 404);
    CHECK(is_json_error(reply.response->body));
    CHECK(reply.response->header("Content-Length") ==
          std::to_string(reply.response->body.size()));
    CHECK(reply.response->header("Date"));
}

TEST_CASE("blitzd answers a method the route does not allow with 405 and Allow", "[http1]") {
    Blitzd d(ConfigSpec{});
    SECTION("GET-only route") {
        Reply reply = send_one(d, request("DELETE", "/hello"));
        INFO("received: " << reply.transcript);
        REQUIRE(reply.response);
        CHECK(reply.response->status == 405);
        auto allow = reply.response->header("Allow");
        REQUIRE(allow);
        CHECK(allow->find("GET") != std::string::npos);
        CHECK(allow->find("DELETE") == std::string::npos);
        CHECK(is_json_error(reply.response->body));
    }
    SECTION("POST and PUT route") {
        Reply reply = send_one(d, request("GET", "/upload"));
        INFO("received: " << reply.transcript);
        REQUIRE(reply.response);
        CHECK(reply.response->status == 405);
        auto allow = reply.response->header("Allow");
        REQUIRE(allow);
        CHECK(allow->find("POST") != std::string::npos);
        CHECK(allow->find("PUT") != std::string::npos);
        CHECK(allow->find("GET") == std::string::npos);
    }
}

TEST_CASE("blitzd serves an extension method on a route that allows every method", "[http1]") {
    Blitzd d(ConfigSpec{});
    Reply reply = send_one(d, request("PURGE", "/any"));
    INFO("received: " << reply.transcript);
    REQUIRE(reply.response);
    CHECK(reply.response->status == 200);
    CHECK(reply.response->body == "any method");
}

TEST_CASE("blitzd reads a request that arrives one byte at a time", "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    std::string raw = request("POST", "/upload", "X-Slow: yes\r\n", "abcdef");
    for (char ch : raw) {
        REQUIRE(c.send(std::string(1, ch)));
    }
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "stored");
}

TEST_CASE("blitzd keeps the connection open after a 404 or a 405", "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.send(request("GET", "/nope")));
    auto not_found = c.read_response();
    REQUIRE(not_found);
    CHECK(not_found->status == 404);
    CHECK_FALSE(not_found->connection_has("close"));
    REQUIRE(c.send(request("DELETE", "/hello")));
    auto not_allowed = c.read_response();
    REQUIRE(not_allowed);
    CHECK(not_allowed->status == 405);
    CHECK_FALSE(not_allowed->connection_has("close"));
    REQUIRE(c.send(request("GET", "/hello")));
    auto ok = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(ok);
    CHECK(ok->status == 200);
}

TEST_CASE("blitzd answers a client that half-closed after its request, then closes",
          "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.send(request("GET", "/hello")));
    c.shutdown_write();
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "Hello, World!");
    CHECK(c.wait_closed(Millis(2000)));
}

TEST_CASE("blitzd answers a burst of 600 pipelined requests sent in one write", "[http1]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    std::string burst;
    for (int i = 0; i < 600; ++i) {
        burst += request("GET", i % 2 == 0 ? "/hello" : "/a/b", "X-Seq: " + std::to_string(i) +
                                                                   "\r\n");
    }
    REQUIRE(c.send(burst));
    int in_order = 0;
    for (int i = 0; i < 600; ++i) {
        auto res = c.read_response(Millis(5000));
        INFO("response " << i);
        REQUIRE(res);
        if (res->status == 200 && res->body == (i % 2 == 0 ? "Hello, World!" : "a-b")) {
            ++in_order;
        }
    }
    CHECK(in_order == 600);
    CHECK(c.quiet_for(Millis(100)));
}

TEST_CASE("blitzd ignores Expect: 100-continue from an HTTP/1.0 client", "[http1]") {
    // RFC 9110 §10.1.1: a server MUST ignore a 100-continue expectation in an HTTP/1.0
    // request (such a client cannot parse an interim response).
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.send("POST /upload HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
                   "hello"));
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == "stored");
    CHECK(c.wait_closed(Millis(2000)));
}

// Body limits, draining of unread bodies (and never reusing a connection mid-body), timeouts
// and the per-connection request limit.

#include <cstdio>
#include <string>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

const std::string kSmuggled = "GET /secret HTTP/1.1\r\nHost: localhost\r\n\r\n";

Millis since(Clock::time_point start) {
    return std::chrono::duration_cast<Millis>(Clock::now() - start);
}

}  // namespace

TEST_CASE("blitzd answers 413 for a declared body over the route limit without reading it",
          "[limits]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    // Only the head is sent: the answer must not wait for the 5000 body bytes.
    REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n"));
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 413);
    CHECK(res->body.rfind("{\"error\":\"", 0) == 0);
    // Whatever the server does with the rest (drain or close), the body is never a request.
    std::string body = kSmuggled + std::string(5000 - kSmuggled.size(), 'b');
    if (c.send(body) && c.send(request("GET", "/hello"))) {
        auto next = c.read_response();
        if (next) {
            CHECK(next->status == 200);
            CHECK(next->body == "Hello, World!");
        } else {
            CHECK(c.peer_closed());
        }
    }
    CHECK(c.transcript().find("SECRET") == std::string::npos);
}

TEST_CASE("blitzd accepts a body of exactly the route limit and refuses one byte more",
          "[limits]") {
    Blitzd d(ConfigSpec{});
    Reply at_limit = send_one(d, request("POST", "/upload", "", std::string(1000, 'a')));
    INFO("received: " << at_limit.transcript);
    REQUIRE(at_limit.response);
    CHECK(at_limit.response->status == 200);
    Reply over = send_one(d, request("POST", "/upload", "", std::string(1001, 'a')));
    INFO("received: " << over.transcript);
    REQUIRE(over.response);
    CHECK(over.response->status == 413);
}

TEST_CASE("blitzd answers 413 when a chunked body grows past the route limit", "[limits]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    std::string chunk(800, 'c');
    REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "320\r\n" + chunk + "\r\n320\r\n" + chunk + "\r\n0\r\n\r\n"));
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 413);
}

TEST_CASE("blitzd applies the listener's max_body_bytes to routes without their own limit",
          "[limits]") {
    ConfigSpec spec;
    spec.limits = R"({ "max_body_bytes": 100 })";
    Blitzd d(spec);
    Reply small = send_one(d, request("POST", "/any", "", std::string(100, 'a')));
    REQUIRE(small.response);
    CHECK(small.response->status == 200);
    Reply big = send_one(d, request("POST", "/any", "", std::string(101, 'a')));
    INFO("received: " << big.transcript);
    REQUIRE(big.response);
    CHECK(big.response->status == 413);
    // The route's own limit (1000) overrides the listener's.
    Reply route = send_one(d, request("POST", "/upload", "", std::string(500, 'a')));
    REQUIRE(route.response);
    CHECK(route.response->status == 200);
}

TEST_CASE("blitzd drains an unread body so the connection serves the next request",
          "[limits]") {
    Blitzd d(ConfigSpec{});
    SECTION("405 on a body, then GET, one at a time") {
        Client c = d.connect();
        REQUIRE(c.send(request("POST", "/hello", "", "some body bytes")));
        auto first = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(first);
        CHECK(first->status == 405);
        REQUIRE(c.send(request("GET", "/hello")));
        auto second = c.read_response();
        REQUIRE(second);
        CHECK(second->status == 200);
        CHECK(second->body == "Hello, World!");
    }
    SECTION("404 on a chunked body, then GET, pipelined") {
        Client c = d.connect();
        REQUIRE(c.send("POST /nope HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                       "\r\n4\r\nabcd\r\n0\r\n\r\n" +
                       request("GET", "/hello")));
        auto first = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(first);
        CHECK(first->status == 404);
        auto second = c.read_response();
        REQUIRE(second);
        CHECK(second->status == 200);
    }
    SECTION("a direct response route ignoring a body, pipelined") {
        Client c = d.connect();
        REQUIRE(c.send(request("POST", "/any", "", std::string(3000, 'z')) +
                       request("GET", "/hello")));
        auto first = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(first);
        CHECK(first->status == 200);
        CHECK(first->body == "any method");
        auto second = c.read_response();
        REQUIRE(second);
        CHECK(second->body == "Hello, World!");
    }
}

TEST_CASE("blitzd never treats body bytes as a request (no smuggling)", "[limits]") {
    Blitzd d(ConfigSpec{});
    SECTION("Content-Length body holding a request, on a 405") {
        Client c = d.connect();
        REQUIRE(c.send(request("POST", "/hello", "", kSmuggled)));
        auto res = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == 405);
        CHECK(c.quiet_for(Millis(300)));
        CHECK(c.transcript().find("SECRET") == std::string::npos);
    }
    SECTION("Content-Length body holding a request, on a route that answers") {
        Client c = d.connect();
        REQUIRE(c.send(request("POST", "/upload", "", kSmuggled)));
        auto res = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->body == "stored");
        CHECK(c.quiet_for(Millis(300)));
        CHECK(c.transcript().find("SECRET") == std::string::npos);
    }
    SECTION("chunked body holding a request, on a 404") {
        Client c = d.connect();
        char size[16];
        std::snprintf(size, sizeof size, "%zx", kSmuggled.size());
        REQUIRE(c.send("POST /nope HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
                       std::string(size) + "\r\n" + kSmuggled + "\r\n0\r\n\r\n"));
        auto res = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == 404);
        CHECK(c.quiet_for(Millis(300)));
        CHECK(c.transcript().find("SECRET") == std::string::npos);
    }
}

TEST_CASE("blitzd closes instead of draining a body larger than max_drain_bytes", "[limits]") {
    ConfigSpec spec;
    spec.limits = R"({ "max_drain_bytes": 1000 })";
    Blitzd d(spec);
    Client c = d.connect();
    // The response comes before most of the body is sent, so a reset cannot swallow it.
    REQUIRE(c.send("POST /nope HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20000\r\n\r\n" +
                   kSmuggled));
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 404);
    std::string rest = std::string(19000 - kSmuggled.size(), 'r') + kSmuggled;
    rest += std::string(20000 - kSmuggled.size() - rest.size(), 'r');
    c.send(rest);
    CHECK(c.wait_closed(Millis(2000)));
    CHECK(c.pending().empty());
    CHECK(c.transcript().find("SECRET") == std::string::npos);
}

TEST_CASE("blitzd answers 408 and closes when a head stalls past request_head_timeout_ms",
          "[limits][timeouts]") {
    ConfigSpec spec;
    spec.limits = R"({ "request_head_timeout_ms": 300, "idle_timeout_ms": 5000 })";
    Blitzd d(spec);
    Client c = d.connect();
    auto start = Clock::now();
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: localhost\r\n"));
    auto res = c.read_response(Millis(3000));
    Millis took = since(start);
    INFO("received: " << c.transcript() << " after " << took.count() << " ms");
    REQUIRE(res);
    CHECK(res->status == 408);
    CHECK(res->connection_has("close"));
    CHECK(took >= Millis(250));
    CHECK(took < Millis(2000));
    CHECK(c.wait_closed(Millis(1000)));
}

TEST_CASE("blitzd starts the head timeout at the first byte, not at connect",
          "[limits][timeouts]") {
    ConfigSpec spec;
    spec.limits = R"({ "request_head_timeout_ms": 300, "idle_timeout_ms": 5000 })";
    Blitzd d(spec);
    Client c = d.connect();
    // Longer than the head timeout, shorter than the idle timeout: nothing may happen.
    CHECK(c.quiet_for(Millis(500)));
    REQUIRE(c.send(request("GET", "/hello")));
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 200);
    // The same holds between requests of a keep-alive connection.
    CHECK(c.quiet_for(Millis(500)));
    REQUIRE(c.send(request("GET", "/hello")));
    auto again = c.read_response();
    REQUIRE(again);
    CHECK(again->status == 200);
}

TEST_CASE("blitzd closes an idle keep-alive connection after idle_timeout_ms without a response",
          "[limits][timeouts]") {
    ConfigSpec spec;
    spec.limits = R"({ "idle_timeout_ms": 300 })";
    Blitzd d(spec);
    SECTION("after a request") {
        Client c = d.connect();
        REQUIRE(c.send(request("GET", "/hello")));
        REQUIRE(c.read_response());
        auto start = Clock::now();
        CHECK(c.wait_closed(Millis(3000)));
        Millis took = since(start);
        INFO("closed after " << took.count() << " ms; received: " << c.transcript());
        CHECK(took >= Millis(250));
        CHECK(c.pending().empty());
    }
    SECTION("before any request") {
        Client c = d.connect();
        CHECK(c.wait_closed(Millis(3000)));
        INFO("received: " << c.transcript());
        CHECK(c.transcript().empty());
    }
}

TEST_CASE("blitzd closes after max_requests_per_connection with Connection: close",
          "[limits]") {
    SECTION("a small limit, requests one at a time") {
        ConfigSpec spec;
        spec.limits = R"({ "max_requests_per_connection": 5 })";
        Blitzd d(spec);
        Client c = d.connect();
        for (int i = 1; i <= 5; ++i) {
            REQUIRE(c.send(request("GET", "/hello")));
            auto res = c.read_response();
            INFO("request " << i << ", received: " << c.transcript());
            REQUIRE(res);
            CHECK(res->status == 200);
            CHECK(res->connection_has("close") == (i == 5));
        }
        CHECK(c.wait_closed(Millis(2000)));
        CHECK(c.pending().empty());
    }
    SECTION("a small limit, requests pipelined past it") {
        ConfigSpec spec;
        spec.limits = R"({ "max_requests_per_connection": 3 })";
        Blitzd d(spec);
        Client c = d.connect();
        std::string batch;
        for (int i = 0; i < 6; ++i) {
            batch += request("GET", "/hello");
        }
        REQUIRE(c.send(batch));
        for (int i = 1; i <= 3; ++i) {
            auto res = c.read_response();
            INFO("response " << i << ", received: " << c.transcript());
            REQUIRE(res);
            CHECK(res->connection_has("close") == (i == 3));
        }
        CHECK(c.wait_closed(Millis(2000)));
        CHECK(c.pending().empty());
    }
    SECTION("the default of 1000") {
        Blitzd d(ConfigSpec{});
        Client c = d.connect();
        // Batches of 50 pipelined requests keep the loop fast.
        int answered = 0;
        while (answered < 1000) {
            std::string batch;
            for (int i = 0; i < 50; ++i) {
                batch += request("GET", "/hello");
            }
            REQUIRE(c.send(batch));
            for (int i = 0; i < 50; ++i) {
                auto res = c.read_response();
                ++answered;
                INFO("response " << answered);
                REQUIRE(res);
                REQUIRE(res->status == 200);
                REQUIRE(res->connection_has("close") == (answered == 1000));
            }
        }
        CHECK(c.wait_closed(Millis(2000)));
        CHECK(c.pending().empty());
    }
}

TEST_CASE("blitzd ends a connection past max_connection_age_ms without losing a request",
          "[limits][timeouts]") {
    ConfigSpec spec;
    spec.limits = R"({ "max_connection_age_ms": 400 })";
    Blitzd d(spec);
    SECTION("a request in progress at the age is answered, with Connection: close") {
        Client c = d.connect();
        REQUIRE(c.send(request("GET", "/hello")));
        auto first = c.read_response();
        REQUIRE(first);
        CHECK_FALSE(first->connection_has("close"));
        CHECK(c.quiet_for(Millis(200)));
        REQUIRE(c.send("POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhe"));
        CHECK(c.quiet_for(Millis(350)));  // past the age, the request is still being received
        REQUIRE(c.send("llo"));
        auto last = c.read_response();
        INFO("received: " << c.transcript());
        REQUIRE(last);
        CHECK(last->status == 200);
        CHECK(last->connection_has("close"));
        CHECK(c.wait_closed(Millis(2000)));
    }
    SECTION("an idle connection is closed at its age, before the idle timeout") {
        Client c = d.connect();
        REQUIRE(c.send(request("GET", "/hello")));
        REQUIRE(c.read_response());
        auto start = Clock::now();
        CHECK(c.wait_closed(Millis(3000)));
        CHECK(since(start) < Millis(2000));
        CHECK(c.pending().empty());
    }
}

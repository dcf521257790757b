// Listeners: IPv6, the connection limit, many concurrent connections, several workers.

#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

bool have_ipv6_loopback() {
    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return false;
    }
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

/// Opens `n` connections, sends a request on each, then reads every answer.
void serve_concurrently(const Server& server, int n) {
    std::vector<Client> clients;
    clients.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) {
        clients.push_back(server.connect());
        INFO("connection " << i);
        REQUIRE(clients.back().connected());
    }
    for (auto& c : clients) {
        REQUIRE(c.send(request("GET", "/hello")));
    }
    int ok = 0;
    for (auto& c : clients) {
        auto res = c.read_response(Millis(5000));
        if (res && res->status == 200 && res->body == "Hello, World!") {
            ++ok;
        }
    }
    CHECK(ok == n);
}

}  // namespace

TEST_CASE("blitzd listens on the IPv6 loopback", "[listener]") {
    if (!have_ipv6_loopback()) {
        SKIP("this machine has no IPv6 loopback");
    }
    ConfigSpec spec;
    spec.listeners = R"([{"name": "v6", "address": "[::1]:0"}])";
    Blitzd d(spec);
    CHECK(d.endpoint().host == "::1");
    CommandResult r = curl({"-i", "-g", d.url("/hello")});
    INFO("url " << d.url("/hello") << ", curl: " << r.out << r.err);
    auto responses = parse_all_responses(r.out);
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].status == 200);
    CHECK(responses[0].body == "Hello, World!");
}

TEST_CASE("blitzd holds a connection over max_connections until another closes", "[listener]") {
    ConfigSpec spec;
    spec.listeners = R"([{"name": "main", "address": "127.0.0.1:0", "max_connections": 2}])";
    Blitzd d(spec);
    Client first = d.connect();
    Client second = d.connect();
    for (Client* c : {&first, &second}) {
        REQUIRE(c->send(request("GET", "/hello")));
        auto res = c->read_response();
        INFO("received: " << c->transcript());
        REQUIRE(res);
        CHECK(res->status == 200);
    }
    Client third = d.connect();
    REQUIRE(third.connected());  // the kernel completes the handshake; blitzd has not accepted
    REQUIRE(third.send(request("GET", "/hello")));
    CHECK(third.quiet_for(Millis(400)));
    // The two established connections keep working while the third waits.
    for (Client* c : {&first, &second}) {
        REQUIRE(c->send(request("GET", "/any")));
        auto res = c->read_response();
        REQUIRE(res);
        CHECK(res->body == "any method");
    }
    first.close();
    auto res = third.read_response(Millis(3000));
    INFO("third received: " << third.transcript());
    REQUIRE(res);
    CHECK(res->status == 200);
    REQUIRE(second.send(request("GET", "/hello")));
    auto still = second.read_response();
    REQUIRE(still);
    CHECK(still->status == 200);
}

TEST_CASE("blitzd serves 200 concurrent connections", "[listener]") {
    unsigned workers = GENERATE(1u, 2u);
    ConfigSpec spec;
    spec.workers = workers;
    Blitzd d(spec);
    INFO("workers " << workers);
    serve_concurrently(d, 200);
}

TEST_CASE("blitzd with two workers serves many short connections", "[listener]") {
    ConfigSpec spec;
    spec.workers = 2;
    Blitzd d(spec);
    int ok = 0;
    for (int i = 0; i < 300; ++i) {
        Reply reply = send_one(d, request("GET", "/hello", "Connection: close\r\n"));
        if (reply.response && reply.response->status == 200) {
            ++ok;
        }
    }
    CHECK(ok == 300);
}

TEST_CASE("blitzd serves every listener of its config", "[listener]") {
    ConfigSpec spec;
    spec.listeners = R"([{"name": "a", "address": "127.0.0.1:0"},
                         {"name": "b", "address": "127.0.0.1:0", "max_connections": 10}])";
    Blitzd d(spec, 2);
    for (std::size_t i = 0; i < 2; ++i) {
        Client c = d.connect(i);
        REQUIRE(c.send(request("GET", "/hello")));
        auto res = c.read_response();
        INFO("listener " << i << " received: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == 200);
    }
}

TEST_CASE("blitzd keeps serving after clients vanish mid-request", "[listener]") {
    Blitzd d(ConfigSpec{});
    const std::string partials[] = {
        "GET /hel",
        "GET /hello HTTP/1.1\r\nHost: localhost\r\n",
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 900\r\n\r\nabc",
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nab",
        "POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        "Expect: 100-continue\r\n\r\n",
    };
    for (int round = 0; round < 10; ++round) {
        for (const auto& partial : partials) {
            Client c = d.connect();
            REQUIRE(c.send(partial));
            if (round % 2 == 0) {
                c.reset();
            } else {
                c.close();
            }
        }
        // A pipelined request whose answer is still being written when the client resets.
        Client busy = d.connect();
        REQUIRE(busy.send(request("GET", "/hello") + request("GET", "/hello")));
        busy.reset();
    }
    serve_concurrently(d, 20);
}

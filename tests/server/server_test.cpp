// The engine used in-process through the public API, as an embedder would: handlers that
// answer later, streamed request bodies, filters that pause or answer, stop from another
// thread. A raw socket client talks to it on a loopback ephemeral port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include <blitz/blitz.hpp>

using namespace std::chrono_literals;

namespace {

blitz::Backend test_backend() {
    const char* b = std::getenv("BLITZ_TEST_BACKEND");
    if (b != nullptr && std::strcmp(b, "epoll") == 0) {
        return blitz::Backend::Epoll;
    }
    if (b != nullptr && std::strcmp(b, "io_uring") == 0) {
        return blitz::Backend::IoUring;
    }
    return blitz::Backend::Auto;
}

/// A blocking loopback client with deadlines on every read.
class Client {
public:
    explicit Client(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~Client() { ::close(fd_); }
    bool connected() const { return connected_; }
    bool send(const std::string& s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
    /// Sends GET `path` and returns its response, or "" when none came.
    std::string get(const std::string& path) {
        if (!send("GET " + path + " HTTP/1.1\r\nHost: t\r\n\r\n")) {
            return {};
        }
        auto res = responses(1);
        return res.size() == 1 ? res[0] : std::string();
    }
    /// Reads until `n` complete responses (Content-Length framed) arrived or 3 s passed.
    std::vector<std::string> responses(std::size_t n) {
        std::vector<std::string> out;
        auto deadline = std::chrono::steady_clock::now() + 3s;
        while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
            while (out.size() < n) {
                auto end = buf_.find("\r\n\r\n");
                if (end == std::string::npos) {
                    break;
                }
                std::size_t len = 0;
                auto cl = buf_.find("Content-Length: ");
                if (cl != std::string::npos && cl < end) {
                    len = std::strtoul(buf_.c_str() + cl + 16, nullptr, 10);
                }
                if (buf_.size() < end + 4 + len) {
                    break;
                }
                out.push_back(buf_.substr(0, end + 4 + len));
                buf_.erase(0, end + 4 + len);
            }
            if (out.size() == n) {
                break;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, 50) > 0) {
                char tmp[4096];
                ssize_t r = ::recv(fd_, tmp, sizeof tmp, 0);
                if (r <= 0) {
                    break;
                }
                buf_.append(tmp, static_cast<std::size_t>(r));
            }
        }
        return out;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
    std::string buf_;
};

std::string body_of(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

/// Runs a Server on its own threads for the duration of a test.
struct Running {
    explicit Running(blitz::Router& router, unsigned workers = 1)
        : server(blitz::ServerOptions{.workers = workers, .backend = test_backend()}) {
        auto r = server.listen({.name = "t", .address = "127.0.0.1:0"}, router);
        REQUIRE(r);
        auto s = server.start();
        if (!s && test_backend() == blitz::Backend::IoUring) {
            SKIP("io_uring unavailable: " << s.error());
        }
        REQUIRE(s);
    }
    ~Running() {
        server.stop();
        server.wait();
    }
    std::uint16_t port() const { return server.bound_port(); }
    blitz::Server server;
};

const std::string kGet = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";

}  // namespace

TEST_CASE("Server answers from a C++ handler with the request's fields", "[server]") {
    blitz::Router router;
    router.route(blitz::Method::Get, "/echo").handle([](blitz::Exchange& ex) {
        const blitz::Request& r = ex.request();
        std::string text = std::string(r.path) + "|" + std::string(r.query) + "|" +
                           std::string(r.headers.get("x-token")) + "|" +
                           std::string(ex.client_address());
        return ex.respond(200, text);
    });
    Running s(router);
    Client c(s.port());
    REQUIRE(c.connected());
    REQUIRE(c.send("GET /echo?a=1 HTTP/1.1\r\nHost: t\r\nX-Token: abc\r\n\r\n"));
    auto res = c.responses(1);
    REQUIRE(res.size() == 1);
    CHECK(res[0].rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(body_of(res[0]) == "/echo|a=1|abc|127.0.0.1");
}

TEST_CASE("Server lets a handler pause and answer later, keeping pipelined responses in order",
          "[server]") {
    blitz::Router router;
    std::atomic<int> calls{0};
    router.route(blitz::Method::Get, "/slow").handle([&calls](blitz::Exchange& ex) {
        int n = ++calls;
        ex.reactor().post_after(30ms, [&ex, n] {
            ex.respond(200, "slow " + std::to_string(n));
            ex.resume();
        });
        return blitz::Flow::Pause;
    });
    router.route(blitz::Method::Get, "/fast").respond(200, "fast");
    Running s(router);
    Client c(s.port());
    REQUIRE(c.send(kGet + "GET /fast HTTP/1.1\r\nHost: t\r\n\r\n" + kGet));
    auto res = c.responses(3);
    REQUIRE(res.size() == 3);
    CHECK(body_of(res[0]) == "slow 1");
    CHECK(body_of(res[1]) == "fast");
    CHECK(body_of(res[2]) == "slow 2");
}

TEST_CASE("Server streams a chunked request body to a handler's reader", "[server]") {
    blitz::Router router;
    router.route(blitz::Method::Post, "/sum").handle([](blitz::Exchange& ex) {
        auto total = std::make_shared<std::size_t>(0);
        ex.read_body([&ex, total](std::span<const std::byte> chunk, bool end) {
            *total += chunk.size();
            if (end) {
                ex.respond(200, "got " + std::to_string(*total));
                ex.resume();
            }
        });
        return blitz::Flow::Pause;
    });
    Running s(router);
    Client c(s.port());
    REQUIRE(c.send("POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
    std::this_thread::sleep_for(20ms);  // the body arrives in two pieces, not to wait for readiness
    REQUIRE(c.send("6\r\n world\r\n0\r\n\r\nGET /sum HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto res = c.responses(2);
    REQUIRE(res.size() == 2);
    CHECK(body_of(res[0]) == "got 11");
    CHECK(res[1].rfind("HTTP/1.1 405", 0) == 0);
    CHECK(res[1].find("Allow: POST\r\n") != std::string::npos);
}

TEST_CASE("Server sends 100 Continue when a handler reads the body", "[server]") {
    blitz::Router router;
    router.route(blitz::Method::Put, "/up").handle([](blitz::Exchange& ex) {
        ex.read_body([&ex](std::span<const std::byte>, bool end) {
            if (end) {
                ex.respond(201, "stored");
                ex.resume();
            }
        });
        return blitz::Flow::Pause;
    });
    Running s(router);
    Client c(s.port());
    REQUIRE(c.send("PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
    auto interim = c.responses(1);
    REQUIRE(interim.size() == 1);
    CHECK(interim[0] == "HTTP/1.1 100 Continue\r\n\r\n");
    REQUIRE(c.send("abc"));
    auto final_res = c.responses(1);
    REQUIRE(final_res.size() == 1);
    CHECK(final_res[0].rfind("HTTP/1.1 201 Created\r\n", 0) == 0);
}

namespace {

/// Pauses every request and resumes it from a task, as an asynchronous auth lookup would; then
/// answers 401 unless the request carries the right token.
class AsyncAuth final : public blitz::Filter {
public:
    blitz::Flow on_request_headers(blitz::Exchange& ex) override {
        if (ex.request().headers.get("authorization") == "Bearer ok") {
            ex.reactor().post([&ex] { ex.resume(); });
            return blitz::Flow::Pause;
        }
        return ex.respond(401, "{\"error\":\"unauthorized\"}", "application/json");
    }
};

/// Tags responses so the test can see the order response phases ran in.
class Tag final : public blitz::Filter {
public:
    explicit Tag(std::string name) : name_(std::move(name)) {}
    blitz::Flow on_response_headers(blitz::Exchange& ex) override {
        ex.response().add_header("X-Order", name_);
        return blitz::Flow::Continue;
    }

private:
    std::string name_;
};

}  // namespace

TEST_CASE("Server runs request filters in order, response filters in reverse, and honours Pause",
          "[server]") {
    blitz::Router router;
    router.route(blitz::Method::Get, "/private")
        .filter<Tag>("outer")
        .filter<AsyncAuth>()
        .filter<Tag>("inner")
        .respond(200, "secret");
    Running s(router);
    Client c(s.port());
    REQUIRE(c.send("GET /private HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ok\r\n\r\n"
                   "GET /private HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto res = c.responses(2);
    REQUIRE(res.size() == 2);
    CHECK(body_of(res[0]) == "secret");
    auto inner = res[0].find("X-Order: inner");
    auto outer = res[0].find("X-Order: outer");
    REQUIRE(inner != std::string::npos);
    REQUIRE(outer != std::string::npos);
    CHECK(inner < outer);
    CHECK(res[1].rfind("HTTP/1.1 401", 0) == 0);
    CHECK(res[1].find("X-Order: outer") != std::string::npos);
}

TEST_CASE("Server tells a paused handler that its client went away", "[server]") {
    blitz::Router router;
    std::atomic<int> aborted{0};
    std::atomic<int> resumed{0};
    router.route(blitz::Method::Get, "/slow").handle([&](blitz::Exchange& ex) {
        ex.reactor().post_after(200ms, [&ex, &aborted, &resumed] {
            if (ex.aborted()) {
                ++aborted;
            }
            ex.respond(200, "late");
            ex.resume();
            ++resumed;
        });
        return blitz::Flow::Pause;
    });
    Running s(router);
    {
        Client c(s.port());
        REQUIRE(c.send(kGet));
        std::this_thread::sleep_for(50ms);
    }
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (resumed.load() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    CHECK(resumed.load() == 1);
    CHECK(aborted.load() == 1);
    Client again(s.port());
    REQUIRE(again.send("GET /missing HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto res = again.responses(1);
    REQUIRE(res.size() == 1);
    CHECK(res[0].rfind("HTTP/1.1 404", 0) == 0);
}

TEST_CASE("Server spreads connections over several reactors and stops from another thread",
          "[server]") {
    blitz::Router router;
    std::atomic<unsigned> seen_mask{0};
    router.route(blitz::Method::Get, "/who").handle([&seen_mask](blitz::Exchange& ex) {
        seen_mask |= 1u << ex.reactor().index();
        return ex.respond(200, std::to_string(ex.reactor().index()));
    });
    auto running = std::make_unique<Running>(router, 2);
    CHECK(running->server.workers() == 2);
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 32; ++i) {
        clients.push_back(std::make_unique<Client>(running->port()));
        REQUIRE(clients.back()->send("GET /who HTTP/1.1\r\nHost: t\r\n\r\n"));
    }
    for (auto& c : clients) {
        REQUIRE(c->responses(1).size() == 1);
    }
    CHECK(seen_mask.load() != 0);
    std::thread stopper([&] { running->server.stop(); });
    stopper.join();
    running->server.wait();
    running.reset();
    SUCCEED("stopped with connections open");
}

TEST_CASE("Server::listen reports a bad address and a taken port", "[server]") {
    blitz::Router router;
    router.route("/").respond(200, "x");
    blitz::Server a(blitz::ServerOptions{.workers = 1, .backend = test_backend()});
    auto bad = a.listen({.address = "localhost:80"}, router);
    REQUIRE_FALSE(bad);
    CHECK(bad.error().find("invalid address") != std::string::npos);

    // SO_REUSEPORT lets sockets of the same user share a port, so take it without it.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    auto taken = a.listen({.address = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port))}, router);
    ::close(fd);
    REQUIRE_FALSE(taken);
    CHECK(taken.error().find("cannot listen") != std::string::npos);
}

TEST_CASE("Server finishes a body read from a head split across receive buffers exactly once",
          "[server]") {
    blitz::Router router;
    std::atomic<int> answered{0};
    router.route(blitz::Method::Post, "/sum").handle([&answered](blitz::Exchange& ex) {
        ex.read_body([&ex, &answered](std::span<const std::byte> chunk, bool end) {
            if (end) {
                ++answered;
                ex.respond(200, "done " + std::to_string(chunk.size()));
                ex.resume();  // from inside the body delivery
            }
        });
        return blitz::Flow::Pause;
    });
    Running s(router);
    Client c(s.port());
    REQUIRE(c.send("POST /sum HTTP/1.1\r\nHost: t\r\nTransfer-En"));
    std::this_thread::sleep_for(20ms);  // the head arrives in two pieces, not to wait for readiness
    REQUIRE(c.send("coding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /sum HTTP/1.1\r\nHost: t\r\n\r\n"));
    auto res = c.responses(2);
    REQUIRE(res.size() == 2);
    CHECK(body_of(res[0]).rfind("done", 0) == 0);
    CHECK(res[1].rfind("HTTP/1.1 405", 0) == 0);
    CHECK(c.responses(1).empty());  // nothing processed twice
    CHECK(answered.load() == 1);
}

namespace {

/// Holds the response head and resumes from a task `delay` later, as an asynchronous check of
/// the response would; tags the response when it resumes.
class HoldHead final : public blitz::Filter {
public:
    explicit HoldHead(std::chrono::milliseconds delay, std::atomic<int>* resumed = nullptr)
        : delay_(delay), resumed_(resumed) {}
    blitz::Flow on_response_headers(blitz::Exchange& ex) override {
        ex.reactor().post_after(delay_, [&ex, resumed = resumed_] {
            if (!ex.aborted()) {
                ex.response().add_header("X-Held", "1");
            }
            if (resumed != nullptr) {
                ++*resumed;
            }
            ex.resume();
        });
        return blitz::Flow::Pause;
    }

private:
    std::chrono::milliseconds delay_;
    std::atomic<int>* resumed_;
};

/// Answers in place of an upstream's 5xx, as a custom error page would.
class ReplaceErrors final : public blitz::Filter {
public:
    blitz::Flow on_response_headers(blitz::Exchange& ex) override {
        if (ex.response().status() >= 500) {
            return ex.respond(503, "{\"error\":\"custom\"}", "application/json");
        }
        return blitz::Flow::Continue;
    }
};

/// Sets a field no HTTP head can carry on paths ending in /bad-field.
class BreakHead final : public blitz::Filter {
public:
    blitz::Flow on_response_headers(blitz::Exchange& ex) override {
        if (ex.request().path.ends_with("/bad-field")) {
            ex.response().add_header("X-Bad", "a\r\nInjected: 1");
        }
        return blitz::Flow::Continue;
    }
};

/// Pauses, then answers 403 from a task before resuming (an asynchronous verdict).
class DenyLater final : public blitz::Filter {
public:
    blitz::Flow on_request_headers(blitz::Exchange& ex) override {
        if (ex.request().path != "/deny-request") {
            return blitz::Flow::Continue;
        }
        return deny(ex);
    }
    blitz::Flow on_response_headers(blitz::Exchange& ex) override {
        if (ex.request().path != "/deny-response") {
            return blitz::Flow::Continue;
        }
        return deny(ex);
    }

private:
    static blitz::Flow deny(blitz::Exchange& ex) {
        ex.reactor().post_after(20ms, [&ex] {
            ex.respond(403, "denied");
            ex.resume();
        });
        return blitz::Flow::Pause;
    }
};

const std::string kBig(1 << 20, 'x');
const std::string kFailBody(256 * 1024, 'e');

/// The upstream: another Server on its own port, answering /big (1 MiB), /fail (500 with a
/// 256 KiB body) and anything else with "hello".
blitz::Router upstream_routes() {
    blitz::Router r;
    r.route(blitz::Method::Get, "/big").respond(200, kBig);
    r.route(blitz::Method::Get, "/fail").respond(500, kFailBody);
    r.route("/").prefix().respond(200, "hello");
    return r;
}

std::shared_ptr<blitz::Upstream> upstream_at(std::uint16_t port,
                                             blitz::UpstreamProtocol protocol = blitz::UpstreamProtocol::Http1) {
    auto u = blitz::Upstream::make(
        {.name = "up", .endpoints = {{"127.0.0.1:" + std::to_string(port)}}, .protocol = protocol});
    REQUIRE(u);
    return *u;
}

/// Proxies to the upstream at `port` over HTTP/2 (prior knowledge), "/h2/x" as "/x".
blitz::ProxyAction h2_upstream_at(std::uint16_t port) {
    blitz::ProxyAction action;
    action.upstream = upstream_at(port, blitz::UpstreamProtocol::Http2);
    action.prefix_rewrite = "/";
    return action;
}

/// `curl --http2-prior-knowledge` (h2c): the response head lines and body, or "" on failure.
std::string curl_h2(std::uint16_t port, const std::string& path) {
    const std::string cmd = "curl -s -m 5 --http2-prior-knowledge -D - http://127.0.0.1:" + std::to_string(port) + path;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buf[65536];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
        out.append(buf, n);
    }
    ::pclose(p);
    return out;
}

}  // namespace

TEST_CASE("Server lets a response filter hold a proxied response until it resumes", "[server][proxy]") {
    blitz::Router up_routes = upstream_routes();
    Running up(up_routes);
    std::atomic<int> resumed{0};
    blitz::Router router;
    router.route("/").prefix().filter<Tag>("outer").filter<HoldHead>(50ms, &resumed).proxy(upstream_at(up.port()));
    router.route("/h2/").prefix().filter<HoldHead>(50ms, &resumed).proxy(h2_upstream_at(up.port()));
    Running s(router);

    Client c(s.port());
    std::string one = c.get("/big");
    CHECK(one.rfind("HTTP/1.1 200", 0) == 0);
    // The outer filter runs after the inner one resumed, and its field is in the head.
    CHECK(one.find("X-Held: 1\r\n") != std::string::npos);
    CHECK(one.find("X-Order: outer\r\n") != std::string::npos);
    CHECK(body_of(one) == kBig);
    // The connection goes on (the held body was sent whole, framing intact).
    one = c.get("/small");
    CHECK(body_of(one) == "hello");

    const std::string h2 = curl_h2(s.port(), "/big");
    CHECK(h2.rfind("HTTP/2 200", 0) == 0);
    CHECK(h2.find("x-held: 1\r\n") != std::string::npos);
    CHECK(body_of(h2) == kBig);

    // From an HTTP/2 upstream: its window stays closed while the head is held.
    one = c.get("/h2/big");
    CHECK(one.find("X-Held: 1\r\n") != std::string::npos);
    CHECK(body_of(one) == kBig);
    CHECK(resumed.load() == 4);
}

TEST_CASE("Server lets a response filter replace a proxied response", "[server][proxy]") {
    blitz::Router up_routes = upstream_routes();
    Running up(up_routes);
    blitz::Router router;
    router.route("/")
        .prefix()
        .filter<Tag>("outer")
        .filter<ReplaceErrors>()
        .filter<DenyLater>()
        .filter<BreakHead>()
        .proxy(upstream_at(up.port()));
    router.route("/h2/").prefix().filter<ReplaceErrors>().proxy(h2_upstream_at(up.port()));
    router.route("/held/").prefix().filter<BreakHead>().filter<HoldHead>(10ms).proxy(upstream_at(up.port()));
    Running s(router);

    Client c(s.port());
    std::string one = c.get("/fail");
    CHECK(one.rfind("HTTP/1.1 503", 0) == 0);
    CHECK(body_of(one) == "{\"error\":\"custom\"}");
    CHECK(one.find("X-Order: outer\r\n") != std::string::npos);  // the filters after it still run
    // Answered after holding the head: respond() then resume().
    one = c.get("/deny-response");
    CHECK(one.rfind("HTTP/1.1 403", 0) == 0);
    CHECK(body_of(one) == "denied");
    // A request filter likewise: the upstream is never asked.
    one = c.get("/deny-request");
    CHECK(one.rfind("HTTP/1.1 403", 0) == 0);
    // A field the wire cannot carry: a 502 in the upstream's place, never the field.
    one = c.get("/bad-field");
    CHECK(one.rfind("HTTP/1.1 502", 0) == 0);
    CHECK(one.find("Injected") == std::string::npos);
    // None of the upstream's dropped body reached the client: the next answer is framed right.
    one = c.get("/small");
    CHECK(body_of(one) == "hello");
    // The same once a filter held the head.
    one = c.get("/held/bad-field");
    CHECK(one.rfind("HTTP/1.1 502", 0) == 0);
    CHECK(one.find("Injected") == std::string::npos);
    one = c.get("/small");
    CHECK(body_of(one) == "hello");

    std::string h2 = curl_h2(s.port(), "/fail");
    CHECK(h2.rfind("HTTP/2 503", 0) == 0);
    CHECK(body_of(h2) == "{\"error\":\"custom\"}");
    h2 = curl_h2(s.port(), "/deny-response");
    CHECK(h2.rfind("HTTP/2 403", 0) == 0);
    CHECK(body_of(h2) == "denied");
    // HTTP/2 cannot carry the field either: a 502 naming the cause, before and after a hold.
    for (const char* path : {"/bad-field", "/held/bad-field"}) {
        h2 = curl_h2(s.port(), path);
        CHECK(h2.rfind("HTTP/2 502", 0) == 0);
        CHECK(h2.find("x-blitz-error: bad_response\r\n") != std::string::npos);
        CHECK(h2.find("Injected") == std::string::npos);
    }

    // An HTTP/2 upstream's stream is reset; the connection serves on.
    REQUIRE(c.send("GET /h2/fail HTTP/1.1\r\nHost: t\r\n\r\nGET /h2/small HTTP/1.1\r\nHost: t\r\n\r\n"));
    const auto both = c.responses(2);
    REQUIRE(both.size() == 2);
    CHECK(both[0].rfind("HTTP/1.1 503", 0) == 0);
    CHECK(body_of(both[1]) == "hello");
}

TEST_CASE("Server ends a held proxied response whose client went away when its filter resumes",
          "[server][proxy]") {
    blitz::Router up_routes = upstream_routes();
    Running up(up_routes);
    std::atomic<int> resumed{0};
    blitz::Router router;
    router.route("/").prefix().filter<HoldHead>(200ms, &resumed).proxy(upstream_at(up.port()));
    Running s(router);
    {
        Client c(s.port());
        REQUIRE(c.send("GET /big HTTP/1.1\r\nHost: t\r\n\r\n"));
        std::this_thread::sleep_for(50ms);
    }
    auto deadline = std::chrono::steady_clock::now() + 3s;
    while (resumed.load() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
    }
    CHECK(resumed.load() == 1);
    Client again(s.port());
    std::string one = again.get("/small");
    CHECK(body_of(one) == "hello");
}

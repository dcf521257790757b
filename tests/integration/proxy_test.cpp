// The reverse proxy as a client and an origin server see it: what is forwarded, what is
// removed and added on the way, rewrites, header edits, nginx as an independent upstream,
// WebSocket tunnelling and request smuggling. The origin is tests/backend, which logs every
// request it receives, so each test checks both ends.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

/// blitzd with one upstream "u" of `backends` and `routes` (a JSON array of routes).
ProxyConfig config_for(const std::vector<const Backend*>& backends, std::string routes) {
    ProxyConfig c;
    c.upstreams = R"([{ "name": "u", "endpoints": )" + endpoint_list(backends) + " }]";
    c.routes = std::move(routes);
    return c;
}

/// Every path to upstream "u" with the default proxy settings.
const char* const kProxyAll = R"([{ "name": "all", "match": { "path_prefix": "/" },
                                    "upstream": "u" }])";

Response must_answer(const Server& server, const std::string& raw) {
    Client c = server.connect();
    return must_answer(c, raw);
}

std::string all_lines(const Backend& b) {
    std::string s;
    for (const auto& r : b.requests()) {
        s += r.line + "\n";
    }
    return s;
}

// ---- WebSocket (RFC 6455 §5.2) ----

/// A client frame: FIN set, masked with a fixed key as §5.3 requires of clients.
std::string ws_frame(std::uint8_t opcode, std::string_view payload) {
    std::string f;
    f += static_cast<char>(0x80 | opcode);
    const std::size_t n = payload.size();
    if (n < 126) {
        f += static_cast<char>(0x80 | n);
    } else if (n <= 0xffff) {
        f += static_cast<char>(0x80 | 126);
        f += static_cast<char>(n >> 8);
        f += static_cast<char>(n & 0xff);
    } else {
        f += static_cast<char>(0x80 | 127);
        for (int shift = 56; shift >= 0; shift -= 8) {
            f += static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xff);
        }
    }
    const char mask[4] = {'\x37', '\xfa', '\x21', '\x3d'};
    f.append(mask, 4);
    for (std::size_t i = 0; i < n; ++i) {
        f += static_cast<char>(payload[i] ^ mask[i % 4]);
    }
    return f;
}

struct WsFrame {
    bool fin = false;
    bool masked = false;
    std::uint8_t opcode = 0;
    std::string payload;
};

/// Reads one server frame; nullopt when it did not arrive whole.
std::optional<WsFrame> ws_read(Client& c) {
    auto head = c.read_exact(2);
    if (!head) {
        return std::nullopt;
    }
    WsFrame f;
    const auto b0 = static_cast<std::uint8_t>((*head)[0]);
    const auto b1 = static_cast<std::uint8_t>((*head)[1]);
    f.fin = (b0 & 0x80) != 0;
    f.opcode = b0 & 0x0f;
    f.masked = (b1 & 0x80) != 0;
    std::uint64_t n = b1 & 0x7f;
    if (n >= 126) {
        auto ext = c.read_exact(n == 126 ? 2 : 8);
        if (!ext) {
            return std::nullopt;
        }
        n = 0;
        for (char b : *ext) {
            n = (n << 8) | static_cast<std::uint8_t>(b);
        }
    }
    std::string mask;
    if (f.masked) {
        auto m = c.read_exact(4);
        if (!m) {
            return std::nullopt;
        }
        mask = *m;
    }
    auto payload = c.read_exact(static_cast<std::size_t>(n));
    if (!payload) {
        return std::nullopt;
    }
    f.payload = *payload;
    if (f.masked) {
        for (std::size_t i = 0; i < f.payload.size(); ++i) {
            f.payload[i] = static_cast<char>(f.payload[i] ^ mask[i % 4]);
        }
    }
    return f;
}

// The sample handshake of RFC 6455 §1.3.
constexpr const char* kWsKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr const char* kWsAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

std::string ws_upgrade(std::string_view target) {
    return "GET " + std::string(target) +
           " HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: " + kWsKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

}  // namespace

TEST_CASE("blitzd forwards GET, HEAD and POST to the upstream and relays the answers",
          "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, kProxyAll).render());
    Client c = d.connect();

    Response get = must_answer(c, request("GET", "/x?y=1"));
    CHECK(get.status == 200);
    CHECK(get.body == "b1\n");
    CHECK(get.header("X-Backend") == "b1");
    CHECK(get.header("Via") == "1.1 blitz");

    Response head = must_answer(c, request("HEAD", "/?bytes=100"), true);
    CHECK(head.status == 200);
    CHECK(head.header("Content-Length") == "100");

    Response post = must_answer(c, request("POST", "/echo?p=1", "", "hello, upstream"));
    CHECK(post.status == 200);
    CHECK(post.body == "hello, upstream");
    CHECK(post.header("X-Echo-Method") == "POST");
    CHECK(post.header("X-Echo-Target") == "/echo?p=1");
    // Nothing trails the responses: a HEAD body would show up here.
    CHECK(c.quiet_for(Millis(100)));

    INFO("backend log:\n" << all_lines(b));
    auto log = b.requests();
    REQUIRE(log.size() == 3);
    CHECK(log[0].method == "GET");
    CHECK(log[0].target == "/x?y=1");
    CHECK(log[0].header("Host") == "localhost");
    CHECK(log[0].version == "HTTP/1.1");
    CHECK(log[1].method == "HEAD");
    CHECK(log[1].target == "/?bytes=100");
    CHECK(log[2].method == "POST");
    CHECK(log[2].body_bytes == 15);
    CHECK(log[2].header("Content-Length") == "15");
    // One client connection, answered in turn: the upstream connection was reused.
    CHECK(log[2].conn == log[0].conn);
}

TEST_CASE("blitzd removes hop-by-hop fields in both directions", "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, kProxyAll).render());
    SECTION("request fields") {
        Response res = must_answer(
            d, request("GET", "/hop",
                       "Connection: keep-alive, Foo\r\nFoo: x\r\nKeep-Alive: timeout=5\r\n"
                       "Proxy-Connection: keep-alive\r\nTE: gzip\r\nX-End: kept\r\n"));
        CHECK(res.status == 200);
        LoggedRequest r = logged(b, "/hop");
        INFO(r.line);
        CHECK_FALSE(r.header("Foo"));
        CHECK_FALSE(r.header("Keep-Alive"));
        CHECK_FALSE(r.header("Proxy-Connection"));
        CHECK_FALSE(r.header("TE"));
        CHECK(r.header("X-End") == "kept");
        auto conn = r.header("Connection");
        CHECK((!conn || conn->find("Foo") == std::string::npos));
    }
    SECTION("h2c upgrade fields") {
        Response res = must_answer(
            d, request("GET", "/h2c",
                       "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                       "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"));
        CHECK(res.status == 200);
        CHECK(res.body == "b1\n");
        LoggedRequest r = logged(b, "/h2c");
        INFO(r.line);
        CHECK_FALSE(r.header("Upgrade"));
        CHECK_FALSE(r.header("HTTP2-Settings"));
    }
    SECTION("response fields") {
        Response res = must_answer(
            d, request("GET", "/?header=X-Hop:1&header=Connection:X-Hop"
                              "&header=Keep-Alive:timeout%3D9&header=X-End:2"));
        INFO(res.head_text());
        CHECK(res.status == 200);
        CHECK(res.header("X-End") == "2");
        CHECK_FALSE(res.header("X-Hop"));
        CHECK_FALSE(res.header("Keep-Alive"));
    }
}

TEST_CASE("blitzd adds X-Forwarded-For, -Proto, -Host and Via for the upstream", "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, kProxyAll).render());
    Response res = must_answer(d, "GET /fwd HTTP/1.1\r\nHost: shop.example:8080\r\n\r\n");
    CHECK(res.status == 200);
    LoggedRequest r = logged(b, "/fwd");
    INFO(r.line);
    CHECK(r.header("Host") == "shop.example:8080");
    CHECK(r.header("X-Forwarded-For") == "127.0.0.1");
    CHECK(r.header("X-Forwarded-Proto") == "http");
    CHECK(r.header("X-Forwarded-Host") == "shop.example:8080");
    CHECK(r.header("Via") == "1.1 blitz");
}

TEST_CASE("blitzd replaces a client's X-Forwarded fields unless the peer is a trusted proxy",
          "[proxy]") {
    Backend b("b1");
    ProxyConfig cfg = config_for({&b}, kProxyAll);
    cfg.listeners = R"([{ "name": "untrusted", "address": "127.0.0.1:0" },
                        { "name": "trusted", "address": "127.0.0.1:0",
                          "trusted_proxies": ["10.0.0.0/8", "127.0.0.1"] }])";
    Blitzd d(cfg.render(), 2);
    const std::string forged =
        "X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n"
        "X-Forwarded-Host: public.example\r\n";
    SECTION("an untrusted peer") {
        Client c = d.connect(0);
        CHECK(must_answer(c, request("GET", "/untrusted", forged)).status == 200);
        LoggedRequest r = logged(b, "/untrusted");
        INFO(r.line);
        CHECK(r.header_count("X-Forwarded-For") == 1);
        CHECK(r.header("X-Forwarded-For") == "127.0.0.1");
        CHECK(r.header_count("X-Forwarded-Proto") == 1);
        CHECK(r.header("X-Forwarded-Proto") == "http");
        CHECK(r.header_count("X-Forwarded-Host") == 1);
        CHECK(r.header("X-Forwarded-Host") == "localhost");
    }
    SECTION("a trusted peer") {
        Client c = d.connect(1);
        CHECK(must_answer(c, request("GET", "/trusted", forged)).status == 200);
        LoggedRequest r = logged(b, "/trusted");
        INFO(r.line);
        CHECK(r.header_count("X-Forwarded-For") == 1);
        CHECK(r.header("X-Forwarded-For") == "203.0.113.7, 127.0.0.1");
        CHECK(r.header("X-Forwarded-Proto") == "https");
        CHECK(r.header("X-Forwarded-Host") == "public.example");
    }
    SECTION("a trusted peer without forwarded fields") {
        Client c = d.connect(1);
        CHECK(must_answer(c, request("GET", "/plain")).status == 200);
        LoggedRequest r = logged(b, "/plain");
        INFO(r.line);
        CHECK(r.header("X-Forwarded-For") == "127.0.0.1");
        CHECK(r.header("X-Forwarded-Proto") == "http");
    }
    SECTION("a trusted peer with X-Forwarded-For in two field lines") {
        // RFC 9110 §5.3: field lines of one name form one comma-separated list.
        Client c = d.connect(1);
        CHECK(must_answer(c, request("GET", "/two-lines",
                                     "X-Forwarded-For: 198.51.100.1\r\n"
                                     "X-Forwarded-For: 10.1.2.3\r\n"))
                  .status == 200);
        LoggedRequest r = logged(b, "/two-lines");
        INFO(r.line);
        CHECK(r.header_count("X-Forwarded-For") == 1);
        CHECK(r.header("X-Forwarded-For") == "198.51.100.1, 10.1.2.3, 127.0.0.1");
    }
}

TEST_CASE("blitzd leaves out forwarded fields and Via when the route turns them off",
          "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, R"([{ "match": { "path_prefix": "/" },
        "proxy": { "upstream": "u", "forwarded_headers": false, "via": false } }])")
                 .render());
    Response res = must_answer(d, request("GET", "/bare"));
    CHECK(res.status == 200);
    CHECK_FALSE(res.header("Via"));
    LoggedRequest r = logged(b, "/bare");
    INFO(r.line);
    CHECK_FALSE(r.header("X-Forwarded-For"));
    CHECK_FALSE(r.header("X-Forwarded-Proto"));
    CHECK_FALSE(r.header("X-Forwarded-Host"));
    CHECK_FALSE(r.header("Via"));
}

TEST_CASE("blitzd sends rewritten hosts and paths upstream", "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, R"([
        { "name": "api", "match": { "path_prefix": "/api/" },
          "proxy": { "upstream": "u", "prefix_rewrite": "/", "host_rewrite": "api.internal:8080" } },
        { "name": "users", "priority": 1, "match": { "path_regex": "/users/([0-9]+)(/.*)?" },
          "proxy": { "upstream": "u",
                     "regex_rewrite": { "pattern": "/users/([0-9]+)(/.*)?", "substitution": "/u/\\1\\2" } } },
        { "name": "rest", "match": { "path_prefix": "/" }, "upstream": "u" }
    ])")
                 .render());
    SECTION("prefix and host rewrite") {
        CHECK(must_answer(d, request("GET", "/api/users?x=1")).status == 200);
        LoggedRequest r = logged(b, "/users?x=1");
        INFO(r.line);
        CHECK(r.header("Host") == "api.internal:8080");
        // The client's host is still what the upstream learns the request was for.
        CHECK(r.header("X-Forwarded-Host") == "localhost");
        CHECK(must_answer(d, request("GET", "/api/")).status == 200);
        CHECK(logged(b, "/").header("Host") == "api.internal:8080");
    }
    SECTION("regex rewrite") {
        CHECK(must_answer(d, request("GET", "/users/42/profile?tab=2")).status == 200);
        CHECK(must_answer(d, request("GET", "/users/7")).status == 200);
        CHECK(logged(b, "/u/42/profile?tab=2").header("Host") == "localhost");
        logged(b, "/u/7");
    }
    SECTION("no rewrite") {
        CHECK(must_answer(d, request("GET", "/users/x")).status == 200);
        logged(b, "/users/x");
    }
}

TEST_CASE("blitzd applies a proxy route's request and response header edits", "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, R"([{ "match": { "path_prefix": "/" },
        "request_headers": { "remove": ["X-Internal-Token"], "set": { "X-Env": "prod" },
                             "add": { "X-Added": "1" } },
        "response_headers": { "remove": ["X-Backend"], "set": { "Cache-Control": "no-store" },
                              "add": { "X-Edge": "blitz" } },
        "upstream": "u" }])")
                 .render());
    Response res = must_answer(
        d, request("GET", "/edit?header=Cache-Control:max-age%3D60",
                   "X-Internal-Token: secret\r\nX-Env: dev\r\nX-Env: test\r\n"));
    INFO(res.head_text());
    CHECK(res.status == 200);
    CHECK_FALSE(res.header("X-Backend"));
    CHECK(res.header_count("Cache-Control") == 1);
    CHECK(res.header("Cache-Control") == "no-store");
    CHECK(res.header("X-Edge") == "blitz");
    LoggedRequest r = logged(b, "/edit?header=Cache-Control:max-age%3D60");
    INFO(r.line);
    CHECK_FALSE(r.header("X-Internal-Token"));
    CHECK(r.header_count("X-Env") == 1);
    CHECK(r.header("X-Env") == "prod");
    CHECK(r.header("X-Added") == "1");
}

TEST_CASE("blitzd proxies to nginx as an independent upstream", "[proxy]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    Nginx n(R"(    location / { return 200 "nginx\n"; }
    location = /missing { return 404 "gone\n"; }
    location /static/ { root www; })");
    const std::string blob = random_bytes(1 << 20, 7);
    std::filesystem::create_directories(n.dir().path() + "/www/static");
    n.dir().write("www/static/blob.bin", blob);

    ProxyConfig cfg;
    cfg.upstreams = R"([{ "name": "nginx", "endpoints": [")" + n.address() + R"("] }])";
    cfg.routes = R"([{ "match": { "path_prefix": "/" }, "upstream": "nginx" }])";
    Blitzd d(cfg.render());

    Client c = d.connect();
    Response hello = must_answer(c, request("GET", "/"));
    CHECK(hello.status == 200);
    CHECK(hello.body == "nginx\n");
    CHECK(hello.header("Server").value_or("").rfind("nginx", 0) == 0);
    CHECK(hello.header("Via") == "1.1 blitz");
    Response missing = must_answer(c, request("GET", "/missing"));
    CHECK(missing.status == 404);
    CHECK(missing.body == "gone\n");
    // nginx answers `return` before reading the body; what blitzd does with the rest of the
    // body (drain or close) is its own business, so this one has its own connection.
    {
        Client post_client = d.connect();
        Response posted =
            must_answer(post_client, request("POST", "/", "", std::string(100'000, 'p')));
        CHECK(posted.status == 200);
        CHECK(posted.body == "nginx\n");
    }
    Response file = must_answer(c, request("GET", "/static/blob.bin"));
    CHECK(file.status == 200);
    CHECK(file.body.size() == blob.size());
    CHECK(file.body == blob);
    Response head = must_answer(c, request("HEAD", "/static/blob.bin"), true);
    CHECK(head.status == 200);
    CHECK(head.header("Content-Length") == std::to_string(blob.size()));
    CHECK(c.quiet_for(Millis(100)));

    CommandResult r = curl({"-s", "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                            d.url("/static/blob.bin")});
    CHECK(r.out == "200 " + std::to_string(blob.size()));
}

TEST_CASE("blitzd tunnels a WebSocket only after the upstream's 101", "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, kProxyAll).render());
    SECTION("echo through the tunnel") {
        Client c = d.connect();
        Response up = must_answer(c, ws_upgrade("/ws"));
        INFO(up.head_text());
        REQUIRE(up.status == 101);
        CHECK(up.header("Sec-WebSocket-Accept") == kWsAccept);
        CHECK(up.connection_has("upgrade"));
        CHECK(up.header("Upgrade").value_or("") == "websocket");

        REQUIRE(c.send(ws_frame(0x1, "hello, tunnel")));
        auto text = ws_read(c);
        REQUIRE(text);
        CHECK(text->fin);
        CHECK(text->opcode == 0x1);
        CHECK_FALSE(text->masked);
        CHECK(text->payload == "hello, tunnel");

        // Larger than the proxy's back-pressure marks, so it crosses several buffers.
        const std::string big = random_bytes(300'000, 11);
        REQUIRE(c.send(ws_frame(0x2, big)));
        auto binary = ws_read(c);
        REQUIRE(binary);
        CHECK(binary->opcode == 0x2);
        CHECK(binary->payload.size() == big.size());
        CHECK(binary->payload == big);

        REQUIRE(c.send(ws_frame(0x9, "ping")));
        auto pong = ws_read(c);
        REQUIRE(pong);
        CHECK(pong->opcode == 0xA);
        CHECK(pong->payload == "ping");

        REQUIRE(c.send(ws_frame(0x8, std::string("\x03\xe8", 2))));
        auto close = ws_read(c);
        REQUIRE(close);
        CHECK(close->opcode == 0x8);
        CHECK(close->payload.substr(0, 2) == std::string("\x03\xe8", 2));
        CHECK(c.wait_closed(Millis(3000)));

        LoggedRequest r = logged(b, "/ws");
        INFO(r.line);
        CHECK(r.header("Upgrade") == "websocket");
        CHECK(r.header("Sec-WebSocket-Key") == kWsKey);
    }
    SECTION("the tunnel closes when the upstream goes away") {
        Client c = d.connect();
        Response up = must_answer(c, ws_upgrade("/ws"));
        REQUIRE(up.status == 101);
        REQUIRE(c.send(ws_frame(0x1, "before")));
        auto text = ws_read(c);
        REQUIRE(text);
        CHECK(text->payload == "before");
        b.kill();
        CHECK(c.wait_closed(Millis(2000)));
    }
    SECTION("an upstream that answers 200 keeps the connection plain HTTP") {
        Client c = d.connect();
        Response res = must_answer(c, ws_upgrade("/not-ws"));
        INFO(res.head_text());
        CHECK(res.status == 200);
        CHECK(res.body == "b1\n");
        CHECK_FALSE(res.header("Upgrade"));
        CHECK_FALSE(res.connection_has("upgrade"));
        // Still HTTP: a second request on the connection is answered as one.
        Response next = must_answer(c, request("GET", "/after"));
        CHECK(next.status == 200);
        CHECK(next.body == "b1\n");
        logged(b, "/after");
    }
    SECTION("an upstream that refuses the handshake") {
        Client c = d.connect();
        Response res = must_answer(
            c, "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: " + std::string(kWsKey) +
                   "\r\nSec-WebSocket-Version: 8\r\n\r\n");
        CHECK(res.status == 426);
        CHECK(res.header("Sec-WebSocket-Version") == "13");
        CHECK(must_answer(c, request("GET", "/after-426")).status == 200);
    }
}

TEST_CASE("blitzd never forwards a smuggled request to the upstream", "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, kProxyAll).render());
    const std::string smuggled = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";

    auto expect_refused = [&](const std::string& raw, int status) {
        Client c = d.connect();
        REQUIRE(c.send(raw));
        auto res = c.read_response(Millis(3000));
        INFO("request: " << raw << "\nreceived: " << c.transcript());
        REQUIRE(res);
        CHECK(res->status == status);
        CHECK(c.wait_closed(Millis(3000)));
        INFO("backend log:\n" << all_lines(b));
        for (const auto& r : b.requests()) {
            // At most the head of /victim may have gone upstream before blitzd saw the bad
            // body; the backend then logs an incomplete request, never a complete one.
            CHECK(r.target != "/smuggled");
            CHECK_FALSE(r.error.empty());
        }
    };
    SECTION("Content-Length with Transfer-Encoding") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled,
                       400);
        CHECK(b.requests().empty());
    }
    SECTION("Transfer-Encoding with Content-Length") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked\r\nContent-Length: 48\r\n\r\n0\r\n\r\n" +
                           smuggled,
                       400);
        CHECK(b.requests().empty());
    }
    SECTION("two Content-Length values") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
                       "Content-Length: 44\r\n\r\n" + smuggled,
                       400);
        CHECK(b.requests().empty());
    }
    SECTION("a chunk size that is not hex") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" + smuggled,
                       400);
    }
    SECTION("a chunk size that overflows") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"
                       "10000000000000005\r\nhello\r\n0\r\n\r\n" + smuggled,
                       400);
    }
    SECTION("a chunk longer than its size") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n" + smuggled,
                       400);
    }
    SECTION("a bare LF in the chunk framing") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" + smuggled,
                       400);
    }
    SECTION("a transfer coding other than chunked") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + smuggled,
                       501);
        CHECK(b.requests().empty());
    }
    SECTION("chunked that is not the final coding") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\n"
                       "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled,
                       400);
        CHECK(b.requests().empty());
    }
    SECTION("obs-fold hiding a Transfer-Encoding") {
        expect_refused("POST /victim HTTP/1.1\r\nHost: localhost\r\nContent-Length: 44\r\n"
                       "X-Folded: a\r\n Transfer-Encoding: chunked\r\n\r\n" + smuggled,
                       400);
        CHECK(b.requests().empty());
    }
}

TEST_CASE("blitzd forwards a request whose body looks like a request as one request",
          "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, kProxyAll).render());
    const std::string inner = "GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n";
    Client c = d.connect();
    Response res = must_answer(c, request("POST", "/echo", "", inner));
    CHECK(res.status == 200);
    CHECK(res.body == inner);
    Response chunked = must_answer(
        c, "POST /echo?te=1 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" +
               [&] {
                   char size[16];
                   std::snprintf(size, sizeof size, "%zx", inner.size());
                   return std::string(size);
               }() + "\r\n" + inner + "\r\n0\r\n\r\n");
    CHECK(chunked.status == 200);
    CHECK(chunked.body == inner);
    INFO("backend log:\n" << all_lines(b));
    auto log = b.requests();
    REQUIRE(log.size() == 2);
    CHECK(log[0].target == "/echo");
    CHECK(log[0].body_bytes == inner.size());
    CHECK(log[1].target == "/echo?te=1");
    CHECK(log[1].body_bytes == inner.size());
}

TEST_CASE("blitzd forwards pipelined requests one by one", "[proxy]") {
    Backend b("b1");
    Blitzd d(config_for({&b}, kProxyAll).render());
    Client c = d.connect();
    REQUIRE(c.send(request("GET", "/p1") + request("POST", "/echo?p=2", "", "two") +
                   request("HEAD", "/p3?bytes=10") + request("GET", "/p4?chunked=1&bytes=5")));
    auto r1 = c.read_response();
    auto r2 = c.read_response();
    auto r3 = c.read_response(Millis(3000), true);
    auto r4 = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(r1);
    REQUIRE(r2);
    REQUIRE(r3);
    REQUIRE(r4);
    CHECK(r1->body == "b1\n");
    CHECK(r2->body == "two");
    CHECK(r3->header("Content-Length") == "10");
    CHECK(r4->body == "abcde");
    CHECK(c.quiet_for(Millis(100)));
    INFO("backend log:\n" << all_lines(b));
    auto log = b.requests();
    REQUIRE(log.size() == 4);
    CHECK(log[0].target == "/p1");
    CHECK(log[1].target == "/echo?p=2");
    CHECK(log[1].body_bytes == 3);
    CHECK(log[2].method == "HEAD");
    CHECK(log[3].target == "/p4?chunked=1&bytes=5");
    for (const auto& r : log) {
        CHECK(r.error.empty());
    }
}

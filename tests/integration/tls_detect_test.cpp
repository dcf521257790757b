// HTTP and HTTPS on one port ("detect": true): the first byte decides (0x16 starts TLS), and the
// listener's plaintext policy serves, redirects or rejects plain HTTP. Also what the upstream
// learns of the scheme (X-Forwarded-Proto).

#include <chrono>
#include <string>
#include <thread>

#include <catch2/catch_test_macros.hpp>

#include "tls_fixtures.hpp"

using namespace blitz::itest;

namespace {

std::string detect_tls(const std::string& extra) {
    return "{\"certificates\": [" + cert_entry(pki().a_ec) + "], \"detect\": true" + extra + "}";
}

}  // namespace

TEST_CASE("blitzd with detect serves plain HTTP and HTTPS on one port", "[tls][detect]") {
    TlsBlitzd d(tls_config(tls_listener(detect_tls("")), kTlsRoutes));

    // Plain HTTP with keep-alive.
    Client c = d.connect();
    Response first = must_answer(c, request("GET", "/hello"));
    CHECK(first.status == 200);
    CHECK(first.body == "Hello, World!");
    Response second = must_answer(c, request("GET", "/any"));
    CHECK(second.body == "any");
    CHECK_FALSE(c.peer_closed());

    // The first byte may arrive alone: one byte decides.
    Client slow = d.connect();
    REQUIRE(slow.send("G"));
    CHECK(slow.quiet_for(Millis(100)));
    Response split = must_answer(slow, "ET /hello HTTP/1.1\r\nHost: a.test\r\n\r\n");
    CHECK(split.body == "Hello, World!");

    // HTTPS on the same port, keep-alive too.
    CommandResult tls = curl_https(d, "a.test", {"-v", d.https_url("a.test", "/hello"),
                                                 d.https_url("a.test", "/any")});
    INFO(tls.err);
    CHECK(tls.out == "Hello, World!any");
    CHECK(tls.err.find("SSL connection using TLSv1.3") != std::string::npos);
    CHECK(tls.err.find("Re-using existing connection") != std::string::npos);

    // curl in plain HTTP too.
    CommandResult plain = curl({d.http_url("/hello")});
    CHECK(plain.out == "Hello, World!");
}

TEST_CASE("blitzd with plaintext redirect answers plain HTTP with 308 to https://",
          "[tls][detect]") {
    TlsBlitzd d(tls_config(tls_listener(detect_tls(R"(, "plaintext": "redirect")")), kTlsRoutes));
    const std::string authority = "a.test:" + std::to_string(d.port());
    Client c = d.connect();
    Response r = must_answer(c, "GET /hello?x=1 HTTP/1.1\r\nHost: " + authority + "\r\n\r\n");
    INFO(r.head_text());
    CHECK(r.status == 308);
    CHECK(r.header("Location") == "https://" + authority + "/hello?x=1");
    // The connection closes after the redirect.
    CHECK(c.wait_closed(Millis(3000)));

    // curl follows it to HTTPS on the same port.
    CommandResult follow = curl_https(d, "a.test", {"-L", "-v", "http://" + authority + "/hello"});
    INFO(follow.err);
    CHECK(follow.out == "Hello, World!");
    CHECK(follow.err.find("HTTP/1.1 308") != std::string::npos);
}

TEST_CASE("blitzd with plaintext reject answers plain HTTP with 400 and closes", "[tls][detect]") {
    TlsBlitzd d(tls_config(tls_listener(detect_tls(R"(, "plaintext": "reject")")), kTlsRoutes));
    Client c = d.connect();
    Response r = must_answer(c, request("GET", "/hello"));
    INFO(r.head_text() << r.body);
    CHECK(r.status == 400);
    CHECK(r.body.find("Hello") == std::string::npos);
    CHECK(c.wait_closed(Millis(3000)));
    // HTTPS is served.
    CommandResult tls = curl_https(d, "a.test", {d.https_url("a.test", "/hello")});
    INFO(tls.err);
    CHECK(tls.out == "Hello, World!");
}

TEST_CASE("blitzd tells the upstream the scheme the client used in X-Forwarded-Proto",
          "[tls][detect]") {
    Backend b("b1");
    TlsBlitzd d(tls_config(tls_listener(detect_tls("")),
                           R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])",
                           R"([{ "name": "u", "endpoints": [")" + b.address() + R"("] }])"));
    // The client's own claim is not trusted (no trusted_proxies): it is replaced.
    CommandResult tls = curl_https(d, "a.test", {"-H", "X-Forwarded-Proto: http",
                                                 d.https_url("a.test", "/over-tls")});
    INFO(tls.err);
    CHECK(tls.out == "b1\n");
    CommandResult plain = curl({"-H", "X-Forwarded-Proto: https", d.http_url("/over-plain")});
    CHECK(plain.out == "b1\n");
    REQUIRE(b.wait_for_requests(2));
    for (const auto& r : b.requests()) {
        INFO(r.line);
        CHECK(r.header_count("X-Forwarded-Proto") == 1);
        if (r.target == "/over-tls") {
            CHECK(r.header("X-Forwarded-Proto") == "https");
        } else {
            CHECK(r.target == "/over-plain");
            CHECK(r.header("X-Forwarded-Proto") == "http");
        }
    }
}

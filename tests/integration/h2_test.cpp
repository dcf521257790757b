// HTTP/2 downstream through the real blitzd with real clients: h2c by prior knowledge on a plain
// listener (curl --http2-prior-knowledge, nghttp), HTTP/1.1 beside it on the same port, and
// ALPN h2 on a TLS listener (curl --http2, openssl s_client), including a listener with HTTP/2
// turned off.

#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "h2_fixtures.hpp"
#include "harness.hpp"
#include "tls_fixtures.hpp"

using namespace blitz::itest;

TEST_CASE("blitzd answers an h2c prior-knowledge GET with the configured response", "[h2]") {
    Blitzd d(ConfigSpec{});
    CommandResult r = curl_h2c({"-i", "-w", "\nversion=%{http_version}", d.url("/hello")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    CHECK(r.out.find("version=2") != std::string::npos);
    std::vector<Response> all = parse_all_responses(r.out.substr(0, r.out.rfind("\nversion=")));
    REQUIRE(all.size() == 1);
    CHECK(all[0].version == "HTTP/2");
    CHECK(all[0].status == 200);
    CHECK(all[0].body == "Hello, World!");
    CHECK(all[0].header("content-type") == "text/plain");
    CHECK(all[0].header("x-test") == "1");
    CHECK(all[0].header("content-length") == "13");
    // Connection-specific fields never appear in an HTTP/2 response (RFC 9113 §8.2.2).
    CHECK_FALSE(all[0].header("connection"));
    CHECK_FALSE(all[0].header("keep-alive"));
    CHECK_FALSE(all[0].header("transfer-encoding"));
}

TEST_CASE("blitzd sends Date on h2 responses it makes itself, as on HTTP/1.1", "[h2]") {
    // RFC 9110 §6.6.1: an origin server with a clock sends Date in 2xx, 3xx and 4xx responses.
    Blitzd d(ConfigSpec{});
    for (const char* path : {"/hello", "/nope"}) {
        CommandResult r = curl_h2c({"-i", d.url(path)});
        INFO(path << "\n" << r.out << r.err);
        std::vector<Response> all = parse_all_responses(r.out);
        REQUIRE(all.size() == 1);
        CHECK(all[0].header("date"));
    }
}

TEST_CASE("blitzd serves HTTP/1.1 and h2c on the same plain port", "[h2]") {
    Blitzd d(ConfigSpec{});
    CommandResult h1 = curl({"-w", "\n%{http_version}", d.url("/hello")});
    INFO(h1.out << h1.err);
    CHECK(h1.out == "Hello, World!\n1.1");
    CommandResult h2 = curl_h2c({"-w", "\n%{http_version}", d.url("/hello")});
    INFO(h2.out << h2.err);
    CHECK(h2.out == "Hello, World!\n2");
    // A raw HTTP/1.1 exchange on the same listener after the h2c one.
    Reply reply = send_one(d, request("GET", "/hello"));
    REQUIRE(reply.response);
    CHECK(reply.response->version == "HTTP/1.1");
    CHECK(reply.response->body == "Hello, World!");
}

TEST_CASE("blitzd answers HEAD over h2c with content-length and no DATA", "[h2]") {
    Blitzd d(ConfigSpec{});
    CommandResult r = nghttp({"-v", "-n", "-H", ":method: HEAD", d.url("/any")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.header("content-length") == "10");  // "any method"
    CHECK(s.data_bytes == 0);
    CHECK(s.headers_end_stream);  // the head ends the stream
}

TEST_CASE("blitzd answers 404 and 405 with Allow over h2c", "[h2]") {
    Blitzd d(ConfigSpec{});
    SECTION("no route") {
        CommandResult r = curl_h2c({"-i", d.url("/nope")});
        INFO(r.out << r.err);
        std::vector<Response> all = parse_all_responses(r.out);
        REQUIRE(all.size() == 1);
        CHECK(all[0].status == 404);
        CHECK(all[0].body.find("\"error\"") != std::string::npos);
    }
    SECTION("a method the route does not allow") {
        CommandResult r = curl_h2c({"-i", "-X", "DELETE", d.url("/hello")});
        INFO(r.out << r.err);
        std::vector<Response> all = parse_all_responses(r.out);
        REQUIRE(all.size() == 1);
        CHECK(all[0].status == 405);
        auto allow = all[0].header("allow");
        REQUIRE(allow);
        CHECK(allow->find("GET") != std::string::npos);
        CHECK(allow->find("DELETE") == std::string::npos);
    }
    SECTION("a POST to a GET-only route, with a body") {
        CommandResult r = curl_h2c({"-i", "--data-binary", "x=1", d.url("/hello")});
        INFO(r.out << r.err);
        std::vector<Response> all = parse_all_responses(r.out);
        REQUIRE(all.size() == 1);
        CHECK(all[0].status == 405);
    }
}

TEST_CASE("blitzd normalises an h2 :path before routing", "[h2]") {
    Blitzd d(ConfigSpec{});
    // --path-as-is: curl sends the dot-segments as written.
    CommandResult r = curl_h2c({"--path-as-is", "-w", "\n%{http_code}", d.url("/x/../a/./%62")});
    INFO(r.out << r.err);
    CHECK(r.out == "a-b\n200");
}

TEST_CASE("blitzd sends the listener's HTTP/2 settings", "[h2]") {
    ConfigSpec spec;
    spec.listeners = R"([{"name": "main", "address": "127.0.0.1:0",
                          "http2": {"max_concurrent_streams": 17, "initial_stream_window": 100000}}])";
    Blitzd d(spec);
    CommandResult r = nghttp({"-v", "-n", d.url("/hello")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    CHECK(r.out.find("SETTINGS_MAX_CONCURRENT_STREAMS(0x03):17") != std::string::npos);
    CHECK(r.out.find("SETTINGS_INITIAL_WINDOW_SIZE(0x04):100000") != std::string::npos);
    CHECK(r.out.find("SETTINGS_ENABLE_PUSH(0x02):0") != std::string::npos);
    CHECK(only_stream(r.out).status == 200);
}

TEST_CASE("blitzd does not speak h2c on a listener with http2 off", "[h2]") {
    ConfigSpec spec;
    spec.listeners = R"([{"name": "main", "address": "127.0.0.1:0", "http2": false}])";
    Blitzd d(spec);
    CommandResult h2 = curl_h2c({"-w", "%{http_version}", d.url("/hello")});
    INFO(h2.out << h2.err);
    CHECK_FALSE(h2.status.exited_with(0));
    CHECK(h2.out.find("Hello") == std::string::npos);
    CommandResult h1 = curl({"-w", "\n%{http_version}", d.url("/hello")});
    CHECK(h1.out == "Hello, World!\n1.1");
}

// ---- TLS: ALPN (RFC 7301) ----

TEST_CASE("blitzd negotiates h2 by ALPN on a TLS listener", "[h2][tls]") {
    std::string tls = "{\"certificates\": [" + cert_entry(pki().a_ec) + "]}";
    TlsBlitzd d(tls_config(tls_listener(tls), kTlsRoutes));
    SECTION("curl --http2 gets HTTP/2") {
        CommandResult r = curl_https(d, "a.test", {"--http2", "-i", "-w", "\nversion=%{http_version}",
                                                   d.https_url("a.test", "/hello")});
        INFO(r.out << r.err);
        REQUIRE(r.status.exited_with(0));
        CHECK(r.out.find("version=2") != std::string::npos);
        std::vector<Response> all = parse_all_responses(r.out.substr(0, r.out.rfind("\nversion=")));
        REQUIRE(all.size() == 1);
        CHECK(all[0].version == "HTTP/2");
        CHECK(all[0].body == "Hello, World!");
    }
    SECTION("curl --http1.1 still gets HTTP/1.1") {
        CommandResult r = curl_https(d, "a.test", {"--http1.1", "-w", "\n%{http_version}",
                                                   d.https_url("a.test", "/hello")});
        INFO(r.out << r.err);
        CHECK(r.out == "Hello, World!\n1.1");
    }
    SECTION("openssl s_client sees h2 chosen") {
        CommandResult r = s_client(d.port(), {"-servername", "a.test", "-alpn", "h2,http/1.1"});
        SClientReport rep = parse_s_client(r);
        INFO(rep.text);
        CHECK(rep.handshake);
        CHECK(rep.alpn == "h2");
    }
    SECTION("several requests multiplexed over one TLS connection (nghttp)") {
        // nghttp has no --resolve: connect by address, with the TLS name in :authority.
        const std::string base = "https://127.0.0.1:" + std::to_string(d.port());
        CommandResult n = nghttp({"-v", "-n", "-H", ":authority: a.test", base + "/hello", base + "/any", base + "/nope"});
        INFO(n.out << n.err);
        NghttpTrace t = parse_nghttp(n.out);
        REQUIRE(t.streams.size() == 3);
        std::vector<int> statuses;
        for (const auto& [id, s] : t.streams) {
            statuses.push_back(s.status);
        }
        CHECK(statuses == std::vector<int>{200, 200, 404});
        CHECK(n.out.find("The negotiated protocol: h2") != std::string::npos);
    }
}

TEST_CASE("blitzd offers only http/1.1 on a TLS listener with http2 off", "[h2][tls]") {
    std::string tls = "{\"certificates\": [" + cert_entry(pki().a_ec) + "]}";
    const std::string listeners =
        R"([{"name": "main", "address": "127.0.0.1:0", "http2": false, "tls": )" + tls + "}]";
    TlsBlitzd d(tls_config(listeners, kTlsRoutes));
    CommandResult r = curl_https(d, "a.test", {"--http2", "-w", "\n%{http_version}",
                                               d.https_url("a.test", "/hello")});
    INFO(r.out << r.err);
    CHECK(r.out == "Hello, World!\n1.1");
    CommandResult s = s_client(d.port(), {"-servername", "a.test", "-alpn", "h2,http/1.1"});
    SClientReport rep = parse_s_client(s);
    INFO(rep.text);
    CHECK(rep.handshake);
    CHECK(rep.alpn == "http/1.1");
}

// HTTP/2 under load and at its limits, through the real blitzd: many concurrent streams
// (h2load over h2c and TLS), GOAWAY after max_requests_per_connection (nghttp, h2load, and what
// reaches the upstream), 413 for a body beyond a configured response's limit (nghttp), GOAWAY
// to an idle connection, and the reset of a response stalled on a zero window.

#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "h2_fixtures.hpp"
#include "harness.hpp"
#include "tls_fixtures.hpp"

using namespace blitz::itest;

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A raw frame (RFC 9113 §4.1).
std::string frame(std::uint8_t type, std::uint8_t flags, std::uint32_t id, std::string_view payload) {
    std::string f;
    const auto len = static_cast<std::uint32_t>(payload.size());
    f += static_cast<char>(len >> 16);
    f += static_cast<char>(len >> 8);
    f += static_cast<char>(len);
    f += static_cast<char>(type);
    f += static_cast<char>(flags);
    f += static_cast<char>((id >> 24) & 0x7f);
    f += static_cast<char>(id >> 16);
    f += static_cast<char>(id >> 8);
    f += static_cast<char>(id);
    f += payload;
    return f;
}

/// A header block of literal fields without indexing (RFC 7541 §6.2.2), names and values
/// shorter than 127 bytes.
std::string block(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::string b;
    for (const auto& [n, v] : fields) {
        b += '\0';
        b += static_cast<char>(n.size());
        b += n;
        b += static_cast<char>(v.size());
        b += v;
    }
    return b;
}

/// The frame head of a GOAWAY (any last stream id follows).
const std::string kGoawayHead("\x00\x00\x08\x07\x00\x00\x00\x00\x00", 9);

}  // namespace

TEST_CASE("blitzd serves 2000 requests over 4 h2c connections of 32 streams each", "[h2]") {
    ConfigSpec spec;
    spec.limits = R"({"max_requests_per_connection": 0})";
    Blitzd d(spec);
    CommandResult r = h2load({"-n", "2000", "-c", "4", "-m", "32", d.url("/hello")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    H2loadSummary s = parse_h2load(r.out);
    REQUIRE(s.parsed);
    CHECK(s.succeeded == 2000);
    CHECK(s.failed == 0);
    CHECK(s.errored == 0);
    CHECK(s.s2xx == 2000);
}

TEST_CASE("blitzd serves many concurrent h2 streams over TLS", "[h2][tls]") {
    std::string tls = "{\"certificates\": [" + cert_entry(pki().a_ec) + "]}";
    const std::string listeners = R"([{"name": "main", "address": "127.0.0.1:0", "limits": {"max_requests_per_connection": 0}, "tls": )" +
                                  tls + "}]";
    TlsBlitzd d(tls_config(listeners, kTlsRoutes));
    CommandResult r = h2load({"-n", "2000", "-c", "4", "-m", "32", "https://127.0.0.1:" + std::to_string(d.port()) + "/hello"});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    CHECK(r.out.find("Application protocol: h2") != std::string::npos);
    H2loadSummary s = parse_h2load(r.out);
    REQUIRE(s.parsed);
    CHECK(s.succeeded == 2000);
    CHECK(s.s2xx == 2000);
}

TEST_CASE("blitzd proxies 1000 multiplexed h2 requests to an HTTP/1.1 upstream", "[h2][proxy]") {
    Backend b("b1");
    ProxyConfig c;
    c.limits = R"({"max_requests_per_connection": 0})";
    c.upstreams = R"([{ "name": "u", "endpoints": [")" + b.address() + R"("] }])";
    c.routes = R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])";
    Blitzd d(c.render());
    CommandResult r = h2load({"-n", "1000", "-c", "2", "-m", "16", d.url("/?bytes=2000")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    H2loadSummary s = parse_h2load(r.out);
    REQUIRE(s.parsed);
    CHECK(s.succeeded == 1000);
    CHECK(s.s2xx == 1000);
    CHECK(r.out.find("(2000000) data") != std::string::npos);
}

TEST_CASE("blitzd sends GOAWAY after max_requests_per_connection h2 requests", "[h2]") {
    ConfigSpec spec;
    spec.limits = R"({"max_requests_per_connection": 5})";
    Blitzd d(spec);
    SECTION("nghttp: ten concurrent requests, five answered, GOAWAY names the fifth") {
        std::vector<std::string> args = {"-v", "-n"};
        for (int i = 0; i < 10; ++i) {
            args.push_back(d.url("/any?i=" + std::to_string(i)));
        }
        CommandResult r = nghttp(args);
        INFO(r.out << r.err);
        NghttpTrace t = parse_nghttp(r.out);
        CHECK(t.goaway);
        CHECK(t.goaway_error == "NO_ERROR");
        std::vector<std::int32_t> answered;
        for (const auto& [id, s] : t.streams) {
            if (s.status == 200 && s.end_stream) {
                answered.push_back(id);
            }
        }
        REQUIRE(answered.size() == 5);
        // The last stream id is the fifth request's: every answered stream is at or below it.
        CHECK(t.goaway_last_stream == answered.back());
    }
    SECTION("h2load: one request at a time, the first five succeed") {
        CommandResult r = h2load({"-n", "10", "-c", "1", "-m", "1", d.url("/hello")});
        INFO(r.out << r.err);
        H2loadSummary s = parse_h2load(r.out);
        REQUIRE(s.parsed);
        CHECK(s.succeeded == 5);
        CHECK(s.s2xx == 5);
        CHECK(s.failed == 5);
    }
    SECTION("h2load: 32 streams at once, five succeed") {
        CommandResult r = h2load({"-n", "32", "-c", "1", "-m", "32", d.url("/hello")});
        INFO(r.out << r.err);
        H2loadSummary s = parse_h2load(r.out);
        REQUIRE(s.parsed);
        CHECK(s.succeeded == 5);
        CHECK(s.s2xx == 5);
    }
}

TEST_CASE("blitzd forwards no request beyond the GOAWAY's last stream to the upstream", "[h2][proxy]") {
    Backend b("b1");
    ProxyConfig c;
    c.limits = R"({"max_requests_per_connection": 5})";
    c.upstreams = R"([{ "name": "u", "endpoints": [")" + b.address() + R"("] }])";
    c.routes = R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])";
    Blitzd d(c.render());
    // h2load writes all ten HEADERS at once: the GOAWAY is decided while the rest are parsed.
    CommandResult r = h2load({"-n", "10", "-c", "1", "-m", "10", d.url("/sink")});
    INFO(r.out << r.err);
    H2loadSummary s = parse_h2load(r.out);
    REQUIRE(s.parsed);
    CHECK(s.succeeded == 5);
    REQUIRE(b.wait_for_requests(5));
    // The client will retry the other five elsewhere (RFC 9113 §6.8): none may have been sent.
    CHECK_FALSE(b.wait_for_requests(6, Millis(500)));
}

TEST_CASE("blitzd answers 413 to an h2 body beyond a configured response's limit", "[h2]") {
    Blitzd d(ConfigSpec{});  // /upload: max_body_bytes 1000
    TempDir dir;
    SECTION("with content-length") {
        const std::string in = dir.write("big", std::string(5000, 'x'));
        CommandResult r = nghttp({"-v", "-n", "-d", in, d.url("/upload")});
        INFO(r.out << r.err);
        const NghttpStream s = only_stream(r.out);
        CHECK(s.status == 413);
        CHECK(s.end_stream);
    }
    SECTION("without content-length: the limit is found while the body streams") {
        const std::string in = dir.write("big", std::string(200'000, 'x'));
        CommandResult r = nghttp({"-v", "-n", "--no-content-length", "-d", in, d.url("/upload")});
        INFO(r.out << r.err);
        const NghttpStream s = only_stream(r.out);
        CHECK(s.status == 413);
        CHECK(s.end_stream);
    }
    SECTION("a body within the limit is accepted") {
        const std::string in = dir.write("small", std::string(1000, 'x'));
        CommandResult r = nghttp({"-d", in, d.url("/upload")});
        INFO(r.out << r.err);
        CHECK(r.out == "stored");
    }
}

TEST_CASE("blitzd sends GOAWAY to an idle h2c connection and closes it", "[h2]") {
    ConfigSpec spec;
    spec.limits = R"({"idle_timeout_ms": 300})";
    Blitzd d(spec);
    Client c = d.connect();
    REQUIRE(c.send(std::string(kPreface) + frame(4, 0, 0, "")));
    CHECK(c.read_until(kGoawayHead, Millis(3000)));
    CHECK(c.wait_closed(Millis(4000)));
}

TEST_CASE("blitzd resets an h2 response stalled on a zero window", "[h2][proxy]") {
    Backend b("b1");
    ProxyConfig c;
    c.listeners = R"([{"name": "main", "address": "127.0.0.1:0", "http2": {"zero_window_timeout_ms": 300}}])";
    c.upstreams = R"([{ "name": "u", "endpoints": [")" + b.address() + R"("] }])";
    c.routes = R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])";
    Blitzd d(c.render());
    Client cl = d.connect();
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: no DATA may come until a WINDOW_UPDATE that never comes.
    const std::string settings = frame(4, 0, 0, std::string("\x00\x04\x00\x00\x00\x00", 6));
    const std::string head = frame(1, 0x05, 1,
                                   block({{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"},
                                          {":path", "/?bytes=100000"}}));
    REQUIRE(cl.send(std::string(kPreface) + settings + head));
    // RST_STREAM on stream 1 with CANCEL (0x8).
    const std::string rst("\x00\x00\x04\x03\x00\x00\x00\x00\x01\x00\x00\x00\x08", 13);
    CHECK(cl.read_until(rst, Millis(5000)));
}

// What HTTP/2 and HTTP/1.1 express differently, carried across blitzd: trailers (an h2 client's
// request trailers in an HTTP/1.1 upstream's chunked trailer section, an upstream's chunked
// response trailers as an h2 stream's last HEADERS frame, forbidden fields left out either way)
// and Expect: 100-continue on h2 streams (answered locally when the body is wanted, relayed
// from the upstream, never sent before a final answer that did not want the body).

#include <string>
#include <utility>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "h2_fixtures.hpp"
#include "harness.hpp"

using namespace blitz::itest;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

/// blitzd with local routes (/local: a configured answer with a 100-byte body limit,
/// /get-only: GET only) and /, /echo and /sink proxied to `b`.
std::string translation_config(const Backend& b) {
    ProxyConfig c;
    c.upstreams = R"([{ "name": "u", "endpoints": [")" + b.address() + R"("] }])";
    c.routes = R"([{ "name": "local", "match": { "path": "/local" }, "max_body_bytes": 100,
                     "respond": { "status": 200, "body": "local\n" } },
                   { "name": "get-only", "match": { "path": "/get-only", "methods": ["GET"] },
                     "respond": { "status": 200, "body": "got\n" } },
                   { "name": "echo", "match": { "path_prefix": "/echo" }, "upstream": "u" },
                   { "name": "sink", "match": { "path_prefix": "/sink" }, "upstream": "u" },
                   { "name": "root", "match": { "path": "/" }, "upstream": "u" }])";
    return c.render();
}

/// curl over h2c with `Expect: 100-continue` and `body`: curl waits up to 10 s for the 100
/// before it sends the body anyway, so a quick exchange proves the 100 (or a final answer)
/// came. Prints "<status> <seconds>".
CommandResult expect_continue(const Blitzd& d, const TempDir& dir, const std::string& path) {
    return curl_h2c({"-v", "--max-time", "8", "--expect100-timeout", "10", "-H", "Expect: 100-continue",
                     "--data-binary", "@" + dir.path() + "/body", "-o", "/dev/null", "-w",
                     "%{http_code} %{time_total}", d.url(path)});
}

}  // namespace

// ---- request trailers ----------------------------------------------------------------------

TEST_CASE("blitzd forwards an h2 request's trailers to an HTTP/1.1 upstream in the chunked trailer section",
          "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    TempDir dir;
    const std::string in = dir.write("up", random_bytes(40'000, 5));
    // Without content-length the body goes upstream chunked, so the trailers fit in after it.
    CommandResult r = nghttp({"-v", "-n", "--no-content-length", "--trailer", "x-checksum: c0ffee", "--trailer",
                              "grpc-status: 0", "-d", in, d.url("/echo")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    LoggedRequest req = logged(b, "/echo");
    INFO(req.line);
    CHECK(req.header("transfer-encoding") == "chunked");
    CHECK(req.body_bytes == 40'000);
    CHECK(req.trailers == Fields{{"x-checksum", "c0ffee"}, {"grpc-status", "0"}});
    // /echo answers with the same trailers: they come back as the stream's last HEADERS.
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.data_bytes == 40'000);
    CHECK(s.trailers == Fields{{"x-checksum", "c0ffee"}, {"grpc-status", "0"}});
    CHECK(s.end_stream);
}

TEST_CASE("blitzd leaves framing, routing and auth fields out of the request trailers it forwards",
          "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    TempDir dir;
    const std::string in = dir.write("up", "payload");
    CommandResult r = nghttp({"-v", "-n", "--no-content-length", "--trailer", "host: evil.example", "--trailer",
                              "authorization: Basic eA==", "--trailer", "content-type: text/evil", "--trailer",
                              "cache-control: no-store", "--trailer", "x-kept: yes", "-d", in, d.url("/echo")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    LoggedRequest req = logged(b, "/echo");
    INFO(req.line);
    CHECK(req.trailers == Fields{{"x-kept", "yes"}});
    CHECK(req.header("host") == "127.0.0.1:" + std::to_string(d.port()));
    CHECK(only_stream(r.out).status == 200);
}

TEST_CASE("blitzd drops the trailers of an h2 request sent upstream with its content-length", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    TempDir dir;
    const std::string in = dir.write("up", "twelve bytes");
    // nghttp declares content-length for -d: the body goes upstream as it is, without a
    // trailer section to carry the fields.
    CommandResult r = nghttp({"-v", "-n", "--trailer", "x-checksum: c0ffee", "-d", in, d.url("/echo")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    LoggedRequest req = logged(b, "/echo");
    INFO(req.line);
    CHECK(req.header("content-length") == "12");
    CHECK(req.header_count("transfer-encoding") == 0);
    CHECK(req.body_bytes == 12);
    CHECK(req.trailers.empty());
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.trailers.empty());
    CHECK(s.end_stream);
}

// ---- response trailers ---------------------------------------------------------------------

TEST_CASE("blitzd passes an HTTP/1.1 upstream's chunked response trailers to an h2 client as a last HEADERS frame",
          "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    CommandResult r =
        nghttp({"-v", "-n", d.url("/?bytes=70000&chunked=1&chunk=30000&trailer=1&trailer_field=Grpc-Status:0")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.data_bytes == 70'000);
    CHECK_FALSE(s.headers_end_stream);
    CHECK(s.trailers == Fields{{"x-trailer", "done"}, {"grpc-status", "0"}});
    CHECK(s.end_stream);
    CHECK_FALSE(s.reset);
}

TEST_CASE("blitzd strips fields RFC 9110 keeps out of trailers from the response trailers it passes on",
          "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    CommandResult r = nghttp({"-v", "-n",
                              d.url("/?chunked=1&trailer_field=Content-Length:5&trailer_field=Set-Cookie:a=b"
                                    "&trailer_field=Host:evil&trailer_field=Connection:close"
                                    "&trailer_field=Transfer-Encoding:chunked&trailer_field=X-Kept:1")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.trailers == Fields{{"x-kept", "1"}});
    CHECK(s.end_stream);
}

TEST_CASE("blitzd ends an h2 stream with an empty chunked trailer section on its last DATA frame", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    CommandResult r = nghttp({"-v", "-n", d.url("/?bytes=10&chunked=1")});
    INFO(r.out << r.err);
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.data_bytes == 10);
    CHECK(s.trailers.empty());
    CHECK(s.end_stream);
}

TEST_CASE("blitzd resets an h2 stream whose upstream sends more trailer fields than a head may carry",
          "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    std::string path = "/?bytes=10&chunked=1";
    for (int i = 0; i < 101; ++i) {
        path += "&trailer_field=X-T" + std::to_string(i) + ":v";
    }
    CommandResult r = nghttp({"-v", "-n", d.url(path)});
    INFO(r.out << r.err);
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.reset);
    CHECK(s.reset_error != "NO_ERROR");
    CHECK(s.trailers.empty());
    CHECK_FALSE(s.end_stream);
}

TEST_CASE("blitzd still passes chunked response trailers through unchanged to an HTTP/1.1 client", "[proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    CommandResult r = curl({"--raw", "-i", d.url("/?bytes=5&chunked=1&trailer_field=Set-Cookie:a=b")});
    INFO(r.out << r.err);
    // Passed through with its framing: the hop-by-hop rules are the upstream's business there.
    CHECK(r.out.find("\r\n0\r\nSet-Cookie: a=b\r\n\r\n") != std::string::npos);
}

// ---- Expect: 100-continue ------------------------------------------------------------------

TEST_CASE("blitzd relays the upstream's 100 Continue to an h2 client and then forwards the body", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    TempDir dir;
    dir.write("body", random_bytes(5000, 3));
    CommandResult r = expect_continue(d, dir, "/sink");
    INFO(r.out << r.err);
    CHECK(r.err.find("< HTTP/2 100") != std::string::npos);
    CHECK(r.out.rfind("200 ", 0) == 0);
    CHECK(std::stod(r.out.substr(4)) < 5.0);  // the 100 came: curl did not wait out its 10 s
    LoggedRequest req = logged(b, "/sink");
    CHECK(req.header("expect") == "100-continue");
    CHECK(req.body_bytes == 5000);
}

TEST_CASE("blitzd answers 100 Continue on an h2 stream when a local route wants the body", "[h2]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    TempDir dir;
    dir.write("body", "small");
    CommandResult r = expect_continue(d, dir, "/local");
    INFO(r.out << r.err);
    CHECK(r.err.find("< HTTP/2 100") != std::string::npos);
    CHECK(r.out.rfind("200 ", 0) == 0);
    CHECK(std::stod(r.out.substr(4)) < 5.0);
}

TEST_CASE("blitzd answers an h2 request that waits for 100 Continue early without asking for its body", "[h2]") {
    Backend b("b1");
    Blitzd d(translation_config(b));
    TempDir dir;
    dir.write("body", random_bytes(5000, 9));
    std::string path;
    std::string status;
    SECTION("413: a content-length over the route's limit") {
        path = "/local";
        status = "413";
    }
    SECTION("405: a method the route does not allow") {
        path = "/get-only";
        status = "405";
    }
    SECTION("417: the upstream refuses the expectation") {
        path = "/sink?expect=417";
        status = "417";
    }
    CommandResult r = expect_continue(d, dir, path);
    INFO(path << "\n" << r.out << r.err);
    CHECK(r.out.rfind(status + " ", 0) == 0);
    CHECK(r.err.find("< HTTP/2 100") == std::string::npos);
    CHECK(std::stod(r.out.substr(4)) < 5.0);
    if (status == "417") {
        LoggedRequest req = logged(b, "/sink?expect=417");
        CHECK(req.body_bytes == 0);  // nothing was forwarded the upstream did not agree to
    }
}

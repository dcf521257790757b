// HTTP exchanges over a TLS listener beyond one small response: bodies of many TLS records in
// both directions (proxied to tests/backend), pipelined requests that share records, and a
// slow reader that holds the connection's output back.

#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "tls_fixtures.hpp"

using namespace blitz::itest;

namespace {

std::string proxy_config(const Backend& b) {
    std::string tls = "{\"certificates\": [" + cert_entry(pki().a_ec) + "]}";
    return tls_config(tls_listener(tls),
                      R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])",
                      R"([{ "name": "u", "endpoints": [")" + b.address() + R"("] }])");
}

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

/// The backend's `bytes=N` body: byte i is 'a' + i % 26.
bool is_alphabet(const std::string& body) {
    for (std::size_t i = 0; i < body.size(); ++i) {
        if (body[i] != static_cast<char>('a' + i % 26)) {
            return false;
        }
    }
    return true;
}

}  // namespace

TEST_CASE("blitzd relays multi-megabyte bodies over TLS byte for byte", "[tls][proxy]") {
    Backend b("b1");
    TlsBlitzd d(proxy_config(b));
    TempDir dir;
    constexpr std::size_t kSize = 3 * 1024 * 1024 + 17;

    SECTION("a Content-Length download") {
        const std::string out = dir.path() + "/down";
        CommandResult r = curl_https(d, "a.test", {"-o", out, "-w", "%{http_code}",
                                                   d.https_url("a.test", "/?bytes=" + std::to_string(kSize))});
        INFO(r.err);
        CHECK(r.out == "200");
        std::string body = read_all(out);
        CHECK(body.size() == kSize);
        CHECK(is_alphabet(body));
    }
    SECTION("a chunked download in small pieces") {
        const std::string out = dir.path() + "/down";
        CommandResult r = curl_https(
            d, "a.test",
            {"-o", out, "-w", "%{http_code}",
             d.https_url("a.test", "/?chunked=1&chunk=1000&bytes=" + std::to_string(kSize / 4))});
        INFO(r.err);
        CHECK(r.out == "200");
        std::string body = read_all(out);
        CHECK(body.size() == kSize / 4);
        CHECK(is_alphabet(body));
    }
    SECTION("an upload echoed back") {
        const std::string in = dir.write("up", random_bytes(kSize, 7));
        const std::string out = dir.path() + "/echo";
        CommandResult r = curl_https(d, "a.test", {"--data-binary", "@" + in, "-o", out, "-w",
                                                   "%{http_code}", d.https_url("a.test", "/echo")});
        INFO(r.err);
        CHECK(r.out == "200");
        CHECK(read_all(out) == read_all(in));
        REQUIRE(b.wait_for_requests(1));
        CHECK(b.requests().back().body_bytes == kSize);
    }
}

TEST_CASE("blitzd answers pipelined requests that arrive in one TLS record, in order",
          "[tls]") {
    std::string tls = "{\"certificates\": [" + cert_entry(pki().a_ec) + "]}";
    TlsBlitzd d(tls_config(tls_listener(tls), kTlsRoutes));
    const std::string pipelined = "GET /hello HTTP/1.1\r\nHost: a.test\r\n\r\n"
                                  "GET /any HTTP/1.1\r\nHost: a.test\r\n\r\n"
                                  "GET /hello HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";
    // s_client writes what it reads from its input in one SSL_write: one record.
    CommandResult r = s_client(d.port(), {"-servername", "a.test", "-quiet"}, pipelined);
    INFO(r.out << r.err);
    std::vector<Response> all = parse_all_responses(r.out);
    REQUIRE(all.size() == 3);
    CHECK(all[0].body == "Hello, World!");
    CHECK(all[1].body == "any");
    CHECK(all[2].body == "Hello, World!");
    CHECK(all[2].connection_has("close"));
}

TEST_CASE("blitzd holds a TLS response back for a slow reader and completes it", "[tls][proxy]") {
    Backend b("b1");
    TlsBlitzd d(proxy_config(b));
    TempDir dir;
    const std::string out = dir.path() + "/slow";
    // 16 MiB at 8 MiB/s: more than loopback's socket buffers hold, so blitzd must stop writing
    // (and reading from the upstream) and resume, many times.
    constexpr std::size_t kSize = 16 * 1024 * 1024;
    // (A later --max-time wins over the harness's 5 s: this one takes 2-3 s by design.)
    CommandResult r = curl_https(d, "a.test", {"--max-time", "20", "--limit-rate", "8M", "-o", out,
                                               "-w", "%{http_code}",
                                               d.https_url("a.test", "/?bytes=" + std::to_string(kSize))});
    INFO(r.err);
    CHECK(r.out == "200");
    std::string body = read_all(out);
    CHECK(body.size() == kSize);
    CHECK(is_alphabet(body));
}

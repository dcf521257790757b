// TLS 1.3 0-RTT (early data, BoringSSL builds only): off by default; when switched on, safe
// methods sent in early data are served and reach the upstream with `Early-Data: 1`, others get
// 425 Too Early (RFC 8470). The client is openssl s_client -early_data.

#include <memory>
#include <stdexcept>
#include <string>

#include <catch2/catch_test_macros.hpp>

#include "tls_fixtures.hpp"

using namespace blitz::itest;

namespace {

std::string early_config(const Backend& b, bool early) {
    std::string tls = "{\"certificates\": [" + cert_entry(pki().a_ec) + "]" +
                      (early ? ", \"early_data\": true" : "") + "}";
    return tls_config(tls_listener(tls),
                      R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])",
                      R"([{ "name": "u", "endpoints": [")" + b.address() + R"("] }])");
}

/// "Max Early Data: N" of the session s_client printed (0 when absent).
long max_early_data(const std::string& text) {
    auto at = text.find("Max Early Data: ");
    return at == std::string::npos ? 0 : std::stol(text.substr(at + 16));
}

/// A first connection that stores its session in `session`; returns what s_client printed.
std::string first_connection(const TlsBlitzd& d, const std::string& session) {
    CommandResult r = s_client(d.port(), {"-servername", "a.test", "-sess_out", session},
                               "GET /first HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    INFO(r.out << r.err);
    REQUIRE(r.out.find("HTTP/1.1 200") != std::string::npos);
    return r.out + r.err;
}

/// A resumed connection that sends `request` as early data and reads until the close.
CommandResult early_connection(const TlsBlitzd& d, const std::string& session,
                               const std::string& request_file) {
    // stdin is /dev/null: -ign_eof keeps s_client reading until the server closes.
    return s_client(d.port(), {"-servername", "a.test", "-sess_in", session, "-early_data",
                               request_file, "-ign_eof"});
}

}  // namespace

TEST_CASE("blitzd offers no 0-RTT unless early_data is on", "[tls]") {
    Backend b("b1");
    TlsBlitzd d(early_config(b, false));
    TempDir dir;
    const std::string session = dir.path() + "/session.pem";
    std::string text = first_connection(d, session);
    INFO(text);
    // The ticket allows no early data, so no client sends any (s_client then skips -early_data).
    CHECK(text.find("Max Early Data: 0") != std::string::npos);
    CommandResult r = s_client(d.port(), {"-servername", "a.test", "-sess_in", session},
                               "GET /resumed HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
    INFO(r.out << r.err);
    CHECK(r.out.find("Reused, TLSv1.3") != std::string::npos);
    CHECK(r.out.find("HTTP/1.1 200") != std::string::npos);
    for (const auto& logged : b.requests()) {
        CHECK(logged.header_count("Early-Data") == 0);
    }
}

TEST_CASE("blitzd with early_data serves safe methods in 0-RTT and answers others 425",
          "[tls]") {
    Backend b("b1");
    std::unique_ptr<TlsBlitzd> d;
    try {
        d = std::make_unique<TlsBlitzd>(early_config(b, true));
    } catch (const std::runtime_error& e) {
        if (std::string(e.what()).find("BoringSSL") != std::string::npos) {
            SKIP("0-RTT needs a BoringSSL build");
        }
        throw;
    }
    TempDir dir;
    const std::string session = dir.path() + "/session.pem";
    std::string text = first_connection(*d, session);
    INFO(text);
    REQUIRE(max_early_data(text) > 0);

    SECTION("GET") {
        const std::string req = dir.write(
            "req", "GET /early HTTP/1.1\r\nHost: a.test\r\nEarly-Data: 0\r\nConnection: close\r\n\r\n");
        CommandResult r = early_connection(*d, session, req);
        INFO(r.out << r.err);
        CHECK(r.out.find("Early data was accepted") != std::string::npos);
        CHECK(r.out.find("HTTP/1.1 200") != std::string::npos);
        REQUIRE(b.wait_for_requests(2));
        for (const auto& logged : b.requests()) {
            INFO(logged.line);
            if (logged.target == "/early") {
                // Blitz's own word, whatever the client claimed (RFC 8470 §5.1).
                CHECK(logged.header_count("Early-Data") == 1);
                CHECK(logged.header("Early-Data") == "1");
            } else {
                CHECK(logged.header_count("Early-Data") == 0);
            }
        }
    }
    SECTION("POST") {
        const std::string req = dir.write(
            "req", "POST /early HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        CommandResult r = early_connection(*d, session, req);
        INFO(r.out << r.err);
        CHECK(r.out.find("Early data was accepted") != std::string::npos);
        CHECK(r.out.find("HTTP/1.1 425") != std::string::npos);
        // Never forwarded: only the first connection's request reached the backend.
        CHECK(b.requests().size() == 1);
    }
}

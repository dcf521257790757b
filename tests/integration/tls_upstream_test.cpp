// TLS toward upstreams, against Debian's nginx serving HTTPS with a certificate of the test CA:
// chain and name verification, SNI, client certificates, pooled TLS connections and session
// resumption across them (nginx reports $ssl_session_reused), HTTP/2 chosen by ALPN; a
// plain-text upstream behind a TLS upstream configuration is never believed.

#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "tls_fixtures.hpp"

using namespace blitz::itest;

namespace {

constexpr const char* kProxyAll =
    R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "ngx" }])";

/// A plain listener proxying everything to upstream "ngx" at `address` with `tls` (JSON).
std::string upstream_config(const std::string& address, const std::string& tls) {
    return tls_config(R"([{"name": "main", "address": "127.0.0.1:0"}])", kProxyAll,
                      R"([{ "name": "ngx", "endpoints": [")" + address + R"("], "tls": )" + tls +
                          " }]");
}

std::string ca_only(const std::string& extra = "") {
    return "{\"ca\": " + json_quote(pki().ca) + extra + "}";
}

const char* const kHello = R"(location / { return 200 "nginx-tls\n"; })";

Response must_get(const Server& d, const std::string& target) {
    Client c = d.connect();
    REQUIRE(c.send(request("GET", target)));
    auto res = c.read_response(Millis(5000));
    INFO("received: " << c.transcript());
    REQUIRE(res);
    return *res;
}

void check_tls_failed(const Response& res) {
    INFO(res.head_text() << res.body);
    CHECK(res.status == 502);
    CHECK(res.header("X-Blitz-Error") == "tls_failed");
    CHECK(res.header("Content-Type").value_or("").rfind("application/json", 0) == 0);
    auto body = parse_json(res.body);
    REQUIRE(body);
    REQUIRE(body->get("cause"));
    CHECK(body->get("cause")->string == "tls_failed");
    REQUIRE(body->get("error"));
    CHECK_FALSE(body->get("error")->string.empty());
    CHECK(res.body.find("nginx-tls") == std::string::npos);
}

}  // namespace

TEST_CASE("blitzd proxies to an HTTPS nginx whose certificate chains to the configured CA",
          "[tls][proxy]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    Nginx n = nginx_tls(pki().upstream, kHello);
    SECTION("a numeric endpoint: no SNI, the address checked against the IP SAN") {
        Blitzd d(upstream_config(n.address(), ca_only()));
        Response r = must_get(d, "/x");
        INFO(r.head_text() << r.body);
        CHECK(r.status == 200);
        CHECK(r.body == "nginx-tls\n");
        CHECK(r.header_count("X-SNI") == 0);
    }
    SECTION("server_name: the SNI and the name checked") {
        Blitzd d(upstream_config(n.address(), ca_only(R"(, "server_name": "upstream.test")")));
        Response r = must_get(d, "/x");
        INFO(r.head_text() << r.body);
        CHECK(r.status == 200);
        CHECK(r.body == "nginx-tls\n");
        CHECK(r.header("X-SNI") == "upstream.test");
    }
}

TEST_CASE("blitzd speaks HTTP/2 to an HTTPS nginx through ALPN h2", "[tls][proxy][h2]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    Nginx n = nginx_tls(pki().upstream, R"(location / { return 200 "$server_protocol $ssl_alpn_protocol\n"; })",
                        " ssl http2");
    Blitzd d(tls_config(R"([{"name": "main", "address": "127.0.0.1:0"}])", kProxyAll,
                        R"([{ "name": "ngx", "protocol": "h2", "endpoints": [")" + n.address() +
                            R"("], "tls": )" + ca_only() + " }]"));
    Response r = must_get(d, "/x");
    INFO(r.head_text() << r.body);
    CHECK(r.status == 200);
    CHECK(r.body == "HTTP/2.0 h2\n");
}

TEST_CASE("blitzd answers 502 tls_failed when the upstream certificate does not verify",
          "[tls][proxy]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    Nginx n = nginx_tls(pki().upstream, kHello);
    SECTION("another CA") {
        Blitzd d(upstream_config(n.address(), "{\"ca\": " + json_quote(pki().other_ca) + "}"));
        check_tls_failed(must_get(d, "/x"));
    }
    SECTION("the system bundle (tls: true)") {
        Blitzd d(upstream_config(n.address(), "true"));
        check_tls_failed(must_get(d, "/x"));
    }
    SECTION("a name the certificate does not carry") {
        Blitzd d(upstream_config(n.address(), ca_only(R"(, "server_name": "wrong.test")")));
        check_tls_failed(must_get(d, "/x"));
    }
    SECTION("verify false accepts it (for tests)") {
        Blitzd d(upstream_config(n.address(), "{\"ca\": " + json_quote(pki().other_ca) +
                                                  ", \"verify\": false}"));
        Response r = must_get(d, "/x");
        CHECK(r.status == 200);
        CHECK(r.body == "nginx-tls\n");
    }
}

TEST_CASE("blitzd presents its client certificate to an upstream that asks for one",
          "[tls][proxy]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    Nginx n = nginx_tls(pki().upstream, "ssl_verify_client on;\n    ssl_client_certificate " +
                                   pki().client_ca + ";\n    " + kHello);
    SECTION("with cert and key") {
        Blitzd d(upstream_config(n.address(), ca_only(", \"cert\": " + json_quote(pki().client.cert) +
                                                      ", \"key\": " + json_quote(pki().client.key))));
        Response r = must_get(d, "/x");
        INFO(r.head_text() << r.body);
        CHECK(r.status == 200);
        CHECK(r.header("X-Client-Verify") == "SUCCESS");
    }
    SECTION("without: nginx refuses the request") {
        Blitzd d(upstream_config(n.address(), ca_only()));
        Response r = must_get(d, "/x");
        INFO(r.head_text() << r.body);
        CHECK(r.status == 400);
        CHECK(r.body.find("nginx-tls") == std::string::npos);
    }
}

TEST_CASE("blitzd keeps upstream TLS connections in its pool", "[tls][proxy]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    Nginx n = nginx_tls(pki().upstream, std::string("add_header X-Conn $connection always;\n    ") + kHello);
    Blitzd d(upstream_config(n.address(), ca_only()));
    Client c = d.connect();
    std::vector<std::string> conns;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(c.send(request("GET", "/keep")));
        auto r = c.read_response(Millis(5000));
        INFO(c.transcript());
        REQUIRE(r);
        CHECK(r->status == 200);
        conns.push_back(r->header("X-Conn").value_or("none"));
    }
    // One upstream connection served all three, and it was never resumed (one handshake).
    CHECK(conns[0] != "none");
    CHECK(conns[1] == conns[0]);
    CHECK(conns[2] == conns[0]);
}

TEST_CASE("blitzd resumes upstream TLS sessions on new pooled connections", "[tls][proxy]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    // nginx closes every connection after one request, so each request needs a new one.
    Nginx n = nginx_tls(pki().upstream, std::string("keepalive_requests 1;\n    ") + kHello);
    auto reused = [&](const std::string& tls) {
        Blitzd d(upstream_config(n.address(), tls));
        std::vector<std::string> seen;
        for (int i = 0; i < 4; ++i) {
            Response r = must_get(d, "/r" + std::to_string(i));
            INFO(r.head_text());
            CHECK(r.status == 200);
            seen.push_back(r.header("X-Reused").value_or("?"));
        }
        return seen;
    };
    SECTION("session_reuse on (the default)") {
        std::vector<std::string> seen = reused(ca_only(R"(, "server_name": "upstream.test")"));
        CHECK(seen == std::vector<std::string>{".", "r", "r", "r"});
    }
    SECTION("session_reuse on, numeric endpoint without SNI") {
        std::vector<std::string> seen = reused(ca_only());
        CHECK(seen == std::vector<std::string>{".", "r", "r", "r"});
    }
    SECTION("session_reuse false") {
        std::vector<std::string> seen = reused(ca_only(R"(, "session_reuse": false)"));
        CHECK(seen == std::vector<std::string>{".", ".", ".", "."});
    }
}

TEST_CASE("blitzd takes no plain-text answer from an upstream configured for TLS",
          "[tls][proxy]") {
    // The test backend speaks plain HTTP: it answers the ClientHello with a 400 in clear text,
    // which must never reach the client as a response.
    Backend b("plain");
    Blitzd d(upstream_config(b.address(), ca_only()));
    Response r = must_get(d, "/x");
    check_tls_failed(r);
    CHECK(r.header_count("X-Backend") == 0);
}

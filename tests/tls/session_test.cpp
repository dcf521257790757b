#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "support.hpp"
#include "tls/context.hpp"

namespace {

using namespace tls_test;
using Catch::Matchers::ContainsSubstring;
using tls::Status;

// The subject the client saw: which certificate the server chose.
std::string served(Link& link) { return std::string(link.client.peer_subject()); }

Link& connect(Link& link, const TlsOptions& server, const UpstreamTlsOptions& client,
              std::string_view name) {
    REQUIRE(link.start(make_server(server), make_client(client), name));
    link.run();
    return link;
}

void restrict_client_to_rsa(tls::Session& client) {
#if defined(OPENSSL_IS_BORINGSSL)
    static const std::uint16_t kRsa[] = {SSL_SIGN_RSA_PSS_RSAE_SHA256, SSL_SIGN_RSA_PKCS1_SHA256};
    REQUIRE(SSL_set_verify_algorithm_prefs(client.native_handle(), kRsa, 2) == 1);
#else
    REQUIRE(SSL_set1_sigalgs_list(client.native_handle(), "rsa_pss_rsae_sha256:rsa_pkcs1_sha256") ==
            1);
#endif
}

}  // namespace

TEST_CASE("tls::Session completes a TLS 1.3 handshake and carries data both ways", "[tls]") {
    Link link;
    connect(link, server_options(), client_options(), "a.test");
    REQUIRE(link.connected());
    CHECK(link.server.version() == "TLSv1.3");
    CHECK(link.client.version() == "TLSv1.3");
    CHECK(link.server.cipher().starts_with("TLS_"));
    CHECK(link.server.alpn() == "http/1.1");
    CHECK(link.client.alpn() == "http/1.1");
    CHECK(link.server.server_name() == "a.test");
    CHECK_FALSE(link.server.resumed());
    CHECK(link.client.peer_verified());
    CHECK_FALSE(link.server.peer_verified());
    CHECK(link.server.peer_subject().empty());

    CHECK(send(link.client, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n") == 32);
    link.run();
    CHECK(link.server_got == "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
    const std::string body(100'000, 'x');
    std::size_t sent = 0;
    while (sent < body.size()) {
        const std::size_t n = send(link.server, std::string_view(body).substr(sent));
        REQUIRE(n > 0);
        sent += n;
        link.run();
    }
    CHECK(link.client_got == body);
    // Drained: every output buffer went back.
    CHECK(link.buffers.outstanding() == 0);
}

TEST_CASE("tls::Session refuses TLS 1.2 unless min_version allows it", "[tls]") {
    UpstreamTlsOptions client = client_options();
    {
        Link link;
        REQUIRE(link.start(make_server(server_options()), make_client(client), "a.test"));
        SSL_set_max_proto_version(link.client.native_handle(), TLS1_2_VERSION);
        link.run();
        CHECK(link.server_status == Status::Error);
        CHECK_THAT(std::string(link.server.error_reason()), ContainsSubstring("protocol"));
        CHECK(link.client_status == Status::Error);
    }
    TlsOptions server = server_options();
    server.min_version = TlsVersion::Tls12;
    Link link;
    REQUIRE(link.start(make_server(server), make_client(client), "a.test"));
    SSL_set_max_proto_version(link.client.native_handle(), TLS1_2_VERSION);
    link.run();
    REQUIRE(link.connected());
    CHECK(link.server.version() == "TLSv1.2");
    CHECK_THAT(std::string(link.server.cipher()), ContainsSubstring("ECDHE_ECDSA"));
    CHECK(send(link.client, "ping") == 4);
    link.run();
    CHECK(link.server_got == "ping");
}

TEST_CASE("tls::Session picks ALPN by server preference and refuses no overlap", "[tls]") {
    TlsOptions server = server_options();
    server.alpn = {"h2", "http/1.1"};
    UpstreamTlsOptions client = client_options();
    SECTION("server preference") {
        client.alpn = {"http/1.1", "h2"};
        Link link;
        connect(link, server, client, "a.test");
        REQUIRE(link.connected());
        CHECK(link.server.alpn() == "h2");
        CHECK(link.client.alpn() == "h2");
    }
    SECTION("no overlap is a fatal no_application_protocol alert") {
        client.alpn = {"spdy/3"};
        Link link;
        connect(link, server, client, "a.test");
        CHECK(link.server_status == Status::Error);
        CHECK(link.server.error_reason() == "no shared ALPN protocol");
        CHECK(link.client_status == Status::Error);
        CHECK_THAT(std::string(link.client.error_reason()),
                   ContainsSubstring("no application protocol"));
    }
    SECTION("a client without ALPN gets none, unless alpn_strict") {
        client.alpn = {};
        {
            Link link;
            connect(link, server, client, "a.test");
            REQUIRE(link.connected());
            CHECK(link.server.alpn().empty());
        }
        server.alpn_strict = true;
        Link link;
        connect(link, server, client, "a.test");
        CHECK(link.server_status == Status::Error);
        CHECK_THAT(std::string(link.server.error_reason()), ContainsSubstring("alpn_strict"));
        CHECK(link.client_status == Status::Error);
        CHECK_THAT(std::string(link.client.error_reason()),
                   ContainsSubstring("no application protocol"));
    }
    SECTION("alpn_strict still serves clients that offer a protocol") {
        server.alpn_strict = true;
        Link link;
        connect(link, server, client, "a.test");
        REQUIRE(link.connected());
        CHECK(link.server.alpn() == "http/1.1");
    }
}

TEST_CASE("tls::Session serves the certificate of the SNI name, a wildcard or the default",
          "[tls]") {
    UpstreamTlsOptions client = client_options();
    client.verify = false;  // the default certificate does not carry the names asked for
    struct Case {
        const char* sni;
        const char* subject;
    };
    const Case cases[] = {
        {"a.test", "CN=a.test ECDSA"},        {"b.test", "CN=b.test"},
        {"x.wild.test", "CN=b.test"},         {"X.Wild.Test", "CN=b.test"},
        {"y.x.wild.test", "CN=a.test ECDSA"}, {"wild.test", "CN=a.test ECDSA"},
        {"c.test", "CN=other.test"},          {"other.test", "CN=a.test ECDSA"},
        {"unknown.test", "CN=a.test ECDSA"},  {"127.0.0.1", "CN=a.test ECDSA"},
    };
    for (const Case& c : cases) {
        INFO(c.sni);
        Link link;
        connect(link, server_options(), client, c.sni);
        REQUIRE(link.connected());
        CHECK(served(link) == c.subject);
    }
    // An IP address is not sent as SNI.
    Link link;
    connect(link, server_options(), client, "127.0.0.1");
    CHECK(link.server.server_name().empty());
}

TEST_CASE("tls::Session serves ECDSA to clients that allow it and RSA to the others", "[tls]") {
    {
        Link link;
        connect(link, server_options(), client_options(), "a.test");
        REQUIRE(link.connected());
        CHECK(served(link) == "CN=a.test ECDSA");
    }
    {
        Link link;
        REQUIRE(link.start(make_server(server_options()), make_client(client_options()), "a.test"));
        restrict_client_to_rsa(link.client);
        link.run();
        REQUIRE(link.connected());
        CHECK(served(link) == "CN=a.test RSA");
        CHECK(link.client.peer_verified());
    }
    // A TLS 1.2 client offering only ECDHE_RSA suites gets RSA too.
    TlsOptions server = server_options();
    server.min_version = TlsVersion::Tls12;
    Link link;
    REQUIRE(link.start(make_server(server), make_client(client_options()), "a.test"));
    SSL_set_max_proto_version(link.client.native_handle(), TLS1_2_VERSION);
    REQUIRE(SSL_set_cipher_list(link.client.native_handle(), "ECDHE-RSA-AES128-GCM-SHA256") == 1);
    link.run();
    REQUIRE(link.connected());
    CHECK(served(link) == "CN=a.test RSA");
    CHECK(link.server.cipher() == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
}

TEST_CASE("tls::Session staples the OCSP response to clients that ask for it", "[tls]") {
    const std::string der = read_fixture("ocsp.der");
    REQUIRE(der.size() > 100);
    {
        Link link;
        REQUIRE(link.start(make_server(server_options()), make_client(client_options()), "a.test"));
        SSL_set_tlsext_status_type(link.client.native_handle(), TLSEXT_STATUSTYPE_ocsp);
        link.run();
        REQUIRE(link.connected());
        CHECK(link.client.ocsp_response().size() == der.size());
        CHECK((link.client.ocsp_response() == der));  // bytes: not printed
    }
    {
        Link link;
        connect(link, server_options(), client_options(), "a.test");
        REQUIRE(link.connected());
        CHECK(link.client.ocsp_response().empty());
    }
    // The RSA certificate of the same host has no staple.
    Link link;
    REQUIRE(link.start(make_server(server_options()), make_client(client_options()), "a.test"));
    SSL_set_tlsext_status_type(link.client.native_handle(), TLSEXT_STATUSTYPE_ocsp);
    restrict_client_to_rsa(link.client);
    link.run();
    REQUIRE(link.connected());
    CHECK(served(link) == "CN=a.test RSA");
    CHECK(link.client.ocsp_response().empty());
}

TEST_CASE("tls::Session resumes on the same host and never on another one", "[tls]") {
    auto server = make_server(server_options());
    auto client = make_client(client_options());
    bool resumed = true;
    SSL_SESSION* first = fetch_session(server, client, "a.test", nullptr, &resumed);
    REQUIRE(first != nullptr);
    CHECK_FALSE(resumed);

    SSL_SESSION* again = fetch_session(server, client, "a.test", first, &resumed);
    CHECK(resumed);
    CHECK(again != nullptr);  // a fresh ticket came with the resumption
    SSL_SESSION_free(again);

    // CVE-2025-23419: the ticket of a.test is not accepted by b.test (nor the wildcard host),
    // which completes a full handshake instead.
    for (const char* other : {"b.test", "x.wild.test", "c.test"}) {
        INFO(other);
        UpstreamTlsOptions o = client_options();
        o.verify = false;
        SSL_SESSION* s = fetch_session(server, make_client(o), other, first, &resumed);
        CHECK_FALSE(resumed);
        SSL_SESSION_free(s);
    }
    // Another host resumes its own sessions, under any of its names.
    UpstreamTlsOptions o = client_options();
    o.verify = false;
    auto loose = make_client(o);
    SSL_SESSION* b = fetch_session(server, loose, "b.test", nullptr, &resumed);
    REQUIRE(b != nullptr);
    SSL_SESSION* b2 = fetch_session(server, loose, "x.wild.test", b, &resumed);
    CHECK(resumed);
    SSL_SESSION_free(b2);
    b2 = fetch_session(server, loose, "a.test", b, &resumed);
    CHECK_FALSE(resumed);
    SSL_SESSION_free(b2);
    SSL_SESSION_free(b);
    // Nor by another listener with the same certificates.
    SSL_SESSION* s =
        fetch_session(make_server(server_options()), client, "a.test", first, &resumed);
    CHECK_FALSE(resumed);
    SSL_SESSION_free(s);
    SSL_SESSION_free(first);
}

TEST_CASE("tls::Session resumes TLS 1.2 sessions from tickets too", "[tls]") {
    TlsOptions o = server_options();
    o.min_version = TlsVersion::Tls12;
    auto server = make_server(o);
    auto client = make_client(client_options());
    auto tls12 = [&](SSL_SESSION* reuse, bool& resumed) {
        Link link;
        REQUIRE(link.start(server, client, "b.test", reuse));
        SSL_set_max_proto_version(link.client.native_handle(), TLS1_2_VERSION);
        link.run();
        REQUIRE(link.connected());
        CHECK(link.server.version() == "TLSv1.2");
        resumed = link.server.resumed();
        return link.client.take_session();
    };
    bool resumed = true;
    SSL_SESSION* first = tls12(nullptr, resumed);
    CHECK_FALSE(resumed);
    REQUIRE(first != nullptr);
    SSL_SESSION* second = tls12(first, resumed);
    CHECK(resumed);
    SSL_SESSION_free(second);
    SSL_SESSION_free(first);
}

TEST_CASE("tls::Session does not resume across client-auth policies", "[tls]") {
    TlsOptions optional = server_options();
    optional.client_auth = ClientAuth::Optional;
    optional.client_ca = fixture("ca.pem");
    auto client = make_client(client_options());
    SSL_SESSION* plain = fetch_session(make_server(server_options()), client, "a.test");
    REQUIRE(plain != nullptr);
    auto server = make_server(optional);
    bool resumed = true;
    SSL_SESSION* s = fetch_session(server, client, "a.test", plain, &resumed);
    CHECK_FALSE(resumed);
    SSL_SESSION_free(s);
    SSL_SESSION_free(plain);
}

TEST_CASE("tls::Session ticket keys rotate: one period old still resumes, two do not", "[tls]") {
    auto server = make_server(server_options());
    auto client = make_client(client_options());
    auto& keys = static_cast<tls::ServerContextImpl*>(server.get())->ticket_keys();
    const std::chrono::seconds period = server->options().ticket_key_rotation;

    SSL_SESSION* old = fetch_session(server, client, "a.test");
    REQUIRE(old != nullptr);
    keys.advance_clock(period);
    bool resumed = false;
    SSL_SESSION* renewed = fetch_session(server, client, "a.test", old, &resumed);
    CHECK(resumed);
    REQUIRE(renewed != nullptr);

    keys.advance_clock(period);
    SSL_SESSION* s = fetch_session(server, client, "a.test", old, &resumed);
    CHECK_FALSE(resumed);  // two rotations old
    SSL_SESSION_free(s);
    s = fetch_session(server, client, "a.test", renewed, &resumed);
    CHECK(resumed);  // issued one rotation ago
    SSL_SESSION_free(s);

    keys.advance_clock(3 * period);
    s = fetch_session(server, client, "a.test", renewed, &resumed);
    CHECK_FALSE(resumed);
    SSL_SESSION_free(s);
    SSL_SESSION_free(renewed);
    SSL_SESSION_free(old);
}

TEST_CASE("tls::Session without tickets or session reuse resumes nothing", "[tls]") {
    TlsOptions no_tickets = server_options();
    no_tickets.session_tickets = false;
    auto client = make_client(client_options());
    CHECK(fetch_session(make_server(no_tickets), client, "a.test") == nullptr);

    UpstreamTlsOptions no_reuse = client_options();
    no_reuse.session_reuse = false;
    CHECK(fetch_session(make_server(server_options()), make_client(no_reuse), "a.test") == nullptr);
}

TEST_CASE("tls::Session exposes every SAN of a client certificate and forwards DNS and URI ones",
          "[tls]") {
    TlsOptions server = server_options();
    server.client_ca = fixture("ca.pem");
    server.client_auth = ClientAuth::Required;
    UpstreamTlsOptions many = client_options();
    many.cert = fixture("client-many.pem");
    many.key = fixture("client-many.key");
    Link link;
    connect(link, server, many, "a.test");
    REQUIRE(link.connected());
    CHECK(link.server.peer_san() == "first.client.test");
    const std::span<const std::string_view> sans = link.server.peer_sans();
    const std::vector<std::string> got(sans.begin(), sans.end());
    CHECK(got == std::vector<std::string>{"first.client.test", "spiffe://blitz.test/many",
                                          "ops@blitz.test", "192.0.2.7", "2001:db8::7",
                                          "second.client.test", "urn:blitz:many"});
    // Envoy's element order: every URI, then every DNS name; email and IP SANs have no key.
    const std::string xfcc(link.server.peer_xfcc());
    const std::size_t subject = xfcc.find(";Subject=");
    REQUIRE(subject != std::string::npos);
    CHECK(xfcc.substr(subject) ==
          ";Subject=\"CN=many\";URI=spiffe://blitz.test/many;URI=urn:blitz:many;"
          "DNS=first.client.test;DNS=second.client.test");
}

TEST_CASE("tls::Session applies client_auth none, optional and required", "[tls]") {
    UpstreamTlsOptions with_cert = client_options();
    with_cert.cert = fixture("client.pem");
    with_cert.key = fixture("client.key");
    UpstreamTlsOptions rogue_cert = client_options();
    rogue_cert.cert = fixture("rogue.pem");
    rogue_cert.key = fixture("rogue.key");

    SECTION("none: no certificate is asked for") {
        Link link;
        connect(link, server_options(), with_cert, "a.test");
        REQUIRE(link.connected());
        CHECK_FALSE(link.server.peer_verified());
        CHECK(link.server.peer_subject().empty());
        CHECK(link.server.peer_xfcc().empty());
    }
    TlsOptions server = server_options();
    server.client_ca = fixture("ca.pem");
    SECTION("optional") {
        server.client_auth = ClientAuth::Optional;
        {
            Link link;
            connect(link, server, client_options(), "a.test");
            REQUIRE(link.connected());
            CHECK_FALSE(link.server.peer_verified());
            CHECK(link.server.peer_subject().empty());
        }
        {
            Link link;
            connect(link, server, with_cert, "a.test");
            REQUIRE(link.connected());
            CHECK(link.server.peer_verified());
            CHECK(link.server.peer_subject() == "CN=client,O=Blitz Tests");
            CHECK(link.server.peer_san() == "spiffe://blitz.test/client");
            const std::string xfcc(link.server.peer_xfcc());
            // The hash is the SHA-256 of the client certificate's DER.
            FILE* f = std::fopen(fixture("client.pem").c_str(), "r");
            REQUIRE(f != nullptr);
            X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
            std::fclose(f);
            REQUIRE(cert != nullptr);
            unsigned char md[32];
            unsigned len = 0;
            REQUIRE(X509_digest(cert, EVP_sha256(), md, &len) == 1);
            X509_free(cert);
            std::string hex;
            for (unsigned char b : md) {
                static const char kHex[] = "0123456789abcdef";
                hex += kHex[b >> 4];
                hex += kHex[b & 15];
            }
            CHECK(xfcc == "Hash=" + hex +
                              ";Subject=\"CN=client,O=Blitz Tests\";URI=spiffe://blitz.test/"
                              "client;DNS=client.test");
        }
        Link link;
        connect(link, server, rogue_cert, "a.test");
        CHECK(link.server_status == Status::Error);
        CHECK_THAT(std::string(link.server.error_reason()),
                   ContainsSubstring("certificate verify failed"));
    }
    SECTION("required") {
        server.client_auth = ClientAuth::Required;
        {
            Link link;
            connect(link, server, with_cert, "a.test");
            REQUIRE(link.connected());
            CHECK(link.server.peer_verified());
            CHECK_FALSE(link.server.peer_xfcc().empty());
        }
        {
            // TLS 1.3: the client finishes first and learns of the refusal from the alert.
            Link link;
            connect(link, server, client_options(), "a.test");
            CHECK(link.server_status == Status::Error);
            CHECK(link.client_status == Status::Error);
            CHECK_FALSE(link.server.peer_verified());
        }
        Link link;
        connect(link, server, rogue_cert, "a.test");
        CHECK(link.server_status == Status::Error);
        CHECK(link.client_status == Status::Error);
    }
}

TEST_CASE("tls::Session as a client checks the host name and the CA", "[tls]") {
    SECTION("wrong name") {
        Link link;
        connect(link, server_options(), client_options(), "wrong.test");
        CHECK(link.client_status == Status::Error);
        CHECK_THAT(std::string(link.client.error_reason()),
                   ContainsSubstring("certificate verify failed") &&
                       ContainsSubstring("hostname mismatch"));
        CHECK(link.server_status == Status::Error);  // the client's alert
    }
    SECTION("wrong IP address") {
        Link link;
        connect(link, server_options(), client_options(), "[::1]");
        CHECK(link.client_status == Status::Error);
        CHECK_THAT(std::string(link.client.error_reason()),
                   ContainsSubstring("ip address mismatch"));
    }
    SECTION("unknown CA") {
        TlsOptions rogue;
        rogue.certificates = {{.cert = fixture("rogue.pem"), .key = fixture("rogue.key")}};
        Link link;
        connect(link, rogue, client_options(), "a.test");
        CHECK(link.client_status == Status::Error);
        CHECK_THAT(std::string(link.client.error_reason()),
                   ContainsSubstring("unable to get local issuer certificate"));
    }
    SECTION("the context's server_name wins over the endpoint's") {
        UpstreamTlsOptions o = client_options();
        o.server_name = "b.test";
        Link link;
        connect(link, server_options(), o, "10.0.0.1");
        REQUIRE(link.connected());
        CHECK(link.server.server_name() == "b.test");
    }
    SECTION("a verifying client needs a name") {
        CountingBuffers buffers;
        tls::Session s(buffers);
        CHECK_FALSE(s.start_client(make_client(client_options()), "", nullptr));
        CHECK_THAT(std::string(s.error_reason()), ContainsSubstring("no server name"));
    }
}

TEST_CASE("tls::Session reports close_notify as Closed", "[tls]") {
    Link link;
    connect(link, server_options(), client_options(), "a.test");
    REQUIRE(link.connected());
    link.client.shutdown();
    link.run();
    CHECK(link.server_status == Status::Closed);
    link.server.shutdown();
    link.run();
    CHECK(link.client_status == Status::Closed);
    CHECK(link.buffers.outstanding() == 0);
}

TEST_CASE("tls::Session fails on garbage, oversized records and junk mid-handshake", "[tls]") {
    auto server = make_server(server_options());
    CountingBuffers buffers;
    auto fails = [&](std::string bytes) {
        tls::Session s(buffers);
        REQUIRE(s.start_server(server));
        std::string got;
        const Status st = feed(s, bytes, got);
        CHECK(got.empty());
        CHECK_FALSE(s.error_reason().empty());
        s.reset();
        return st;
    };
    CHECK(fails(std::string("\x16\x03\x01\x00\x05hello", 10)) == Status::Error);
    CHECK(fails("\x16GET / HTTP/1.1\r\n\r\n") == Status::Error);
    CHECK(fails("GET / HTTP/1.1\r\nHost: a\r\n\r\n") == Status::Error);
    // A handshake record longer than TLS allows (RFC 8446 §5.1: 2^14).
    CHECK(fails(std::string("\x16\x03\x01\x48\x01", 5) + std::string(100, 'x')) == Status::Error);

    // A handshake that started well, then junk.
    auto client = make_client(client_options());
    {
        Link link;
        REQUIRE(link.start(server, client, "a.test"));
        std::string none;
        CHECK(feed(link.client, none, link.client_got) == Status::WantRead);
        transfer(link.client, link.to_server);
        CHECK(feed(link.server, link.to_server, link.server_got) == Status::WantRead);
        std::string junk("\x17\x03\x03\x00\x20", 5);
        junk += std::string(32, '\x5a');
        CHECK(feed(link.server, junk, link.server_got) == Status::Error);
        CHECK(link.server.has_output());  // the alert
        CHECK(link.server.write(nullptr, 0, 100) == 0);
    }
    // An established session fed an oversized application record, and a forged one.
    for (const std::string& bad : {std::string("\x17\x03\x03\xff\xff", 5) + std::string(64, 'x'),
                                   std::string("\x17\x03\x03\x00\x30", 5) + std::string(48, 'x')}) {
        Link link;
        REQUIRE(link.start(server, client, "a.test"));
        link.run();
        REQUIRE(link.connected());
        std::string input = bad;
        CHECK(feed(link.server, input, link.server_got) == Status::Error);
        CHECK(link.server_got.empty());
        std::size_t n = 0;
        char out[16];
        CHECK(link.server.read(out, sizeof out, n) == Status::Error);
    }
    CHECK(buffers.outstanding() == 0);
}

TEST_CASE("tls::Session returns no application data before the handshake completed", "[tls]") {
    Link link;
    REQUIRE(link.start(make_server(server_options()), make_client(client_options()), "a.test"));
    CHECK(send(link.client, "early") == 0);  // nothing to encrypt with yet
    std::string none;
    CHECK(feed(link.client, none, link.client_got) == Status::WantRead);
    transfer(link.client, link.to_server);
    link.server.set_input(link.to_server.data(), link.to_server.size());
    char out[64];
    std::size_t n = 1;
    // read() drives the handshake; it cannot complete without the client's Finished.
    CHECK(link.server.read(out, sizeof out, n) == Status::WantRead);
    CHECK(n == 0);
    CHECK_FALSE(link.server.handshake_done());
    CHECK(send(link.server, "half-rtt") == 0);
}

TEST_CASE("tls::Session gathers small pieces into one record", "[tls]") {
    Link link;
    connect(link, server_options(), client_options(), "a.test");
    REQUIRE(link.connected());
    // The first write may carry the session tickets (BoringSSL): flush them.
    CHECK(send(link.server, "0") == 1);
    link.run();
    REQUIRE(link.client_got == "0");
    link.client_got.clear();
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    const iovec iov[] = {{const_cast<char*>(head.data()), head.size()},
                         {const_cast<char*>("hello"), 5}};
    CHECK(link.server.write(iov, 2, 1000) == head.size() + 5);
    // One TLS 1.3 record: header 5 + content + type 1 + tag 16.
    CHECK(link.server.pending_output().size() == head.size() + 5 + 22);
    // The budget caps what is encrypted.
    CHECK(link.server.write(iov, 2, 10) == 10);
    link.run();
    CHECK(link.client_got == head + "hello" + head.substr(0, 10));
}

TEST_CASE("tls::Session writes only what fits in two output buffers", "[tls]") {
    Link link(8192);
    connect(link, server_options(), client_options(), "a.test");
    REQUIRE(link.connected());
    REQUIRE(link.buffers.outstanding() == 0);
    const std::string body(200'000, 'b');
    const iovec iov{const_cast<char*>(body.data()), body.size()};
    const std::size_t n = link.server.write(&iov, 1, body.size());
    CHECK(n > 8192);
    CHECK(n <= 2 * 8192);
    CHECK(link.buffers.outstanding() == 2);
    // Full: nothing more until a buffer drained.
    const iovec rest{const_cast<char*>(body.data() + n), body.size() - n};
    CHECK(link.server.write(&rest, 1, rest.iov_len) == 0);
    // The pending bytes stay where they are while the second buffer fills.
    const std::string_view pending = link.server.pending_output();
    const char* before = pending.data();
    link.to_client.append(pending);
    link.server.output_sent(pending.size());
    CHECK(link.buffers.outstanding() == 1);
    CHECK(link.server.pending_output().data() != before);
    std::size_t sent = n;
    while (sent < body.size()) {
        const iovec more{const_cast<char*>(body.data() + sent), body.size() - sent};
        const std::size_t m = link.server.write(&more, 1, more.iov_len);
        REQUIRE(m > 0);
        sent += m;
        link.run();
    }
    link.run();
    CHECK(link.client_got.size() == body.size());
    CHECK(link.client_got == body);
    CHECK(link.buffers.outstanding() == 0);
}

TEST_CASE("tls::Session spills a handshake flight larger than its buffers to the heap", "[tls]") {
    Link link(512);  // the server's flight (certificate chain) is larger than two of these
    connect(link, server_options(), client_options(), "a.test");
    REQUIRE(link.connected());
    CHECK(send(link.client, "after a spill") == 13);
    link.run();
    CHECK(link.server_got == "after a spill");
    CHECK(link.buffers.outstanding() == 0);
}

TEST_CASE("tls::detect tells TLS from plain HTTP by the first byte", "[tls]") {
    CHECK(tls::detect("", 0) == tls::Detected::NeedMore);
    CHECK(tls::detect("\x16\x03\x01", 3) == tls::Detected::Tls);
    CHECK(tls::detect("\x16", 1) == tls::Detected::Tls);
    CHECK(tls::detect("GET / HTTP/1.1\r\n", 16) == tls::Detected::Plain);
    CHECK(tls::detect("\x80\x01", 2) == tls::Detected::Plain);  // SSLv2-style hello
}

TEST_CASE("tls::Session::reset makes the session reusable", "[tls]") {
    auto server = make_server(server_options());
    auto client = make_client(client_options());
    Link link;
    for (int i = 0; i < 3; ++i) {
        REQUIRE(link.start(server, client, "b.test"));
        link.server_status = link.client_status = Status::WantRead;
        link.server_got.clear();
        link.run();
        REQUIRE(link.connected());
        CHECK(send(link.client, "again") == 5);
        link.run();
        CHECK(link.server_got == "again");
        link.server.reset();
        link.client.reset();
        CHECK_FALSE(link.server.active());
    }
    CHECK(link.buffers.outstanding() == 0);
}

#if defined(OPENSSL_IS_BORINGSSL)
TEST_CASE("tls::Session accepts 0-RTT data when early_data is on (BoringSSL)", "[tls]") {
    TlsOptions o = server_options();
    o.early_data = true;
    auto server = make_server(o);
    auto client = make_client(client_options());
    SSL_SESSION* ticket = fetch_session(server, client, "a.test");
    REQUIRE(ticket != nullptr);
    REQUIRE(SSL_SESSION_early_data_capable(ticket) == 1);

    Link link;
    REQUIRE(link.start(server, client, "a.test", ticket));
    SSL_set_early_data_enabled(link.client.native_handle(), 1);
    std::string none;
    CHECK(feed(link.client, none, link.client_got) == Status::WantRead);
    REQUIRE(link.client.handshake_done());  // in early data
    CHECK(send(link.client, "GET / HTTP/1.1\r\n\r\n") == 18);
    transfer(link.client, link.to_server);
    link.server.set_input(link.to_server.data(), link.to_server.size());
    REQUIRE(link.server.handshake() == Status::Ok);
    CHECK(link.server.in_early_data());
    char buf[64];
    std::size_t n = 0;
    REQUIRE(link.server.read(buf, sizeof buf, n) == Status::Ok);
    CHECK(std::string(buf, n) == "GET / HTTP/1.1\r\n\r\n");
    link.to_server.erase(0, link.to_server.size() - link.server.input_left());
    link.run();
    REQUIRE(link.connected());
    CHECK_FALSE(link.server.in_early_data());
    CHECK(link.server.resumed());
    SSL_SESSION_free(ticket);
}
#endif

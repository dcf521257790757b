// TLS handshakes as real clients see them (curl, openssl s_client): protocol versions, cipher
// and group preferences, ALPN, certificate choice by SNI and key type, OCSP stapling and
// session resumption. Certificates come from the test PKI (tls_fixtures.hpp).

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "tls_fixtures.hpp"

using namespace blitz::itest;

namespace {

/// A config with one TLS listener whose "tls" object is `tls`, answering kTlsRoutes.
std::string config_with(const std::string& tls) {
    return tls_config(tls_listener(tls), kTlsRoutes);
}

/// {"certificates": [entries...]} plus `extra` keys (", \"min_version\": \"1.2\"").
std::string tls_with(const std::vector<std::string>& entries, const std::string& extra = "") {
    std::string list;
    for (const auto& e : entries) {
        list += (list.empty() ? "" : ", ") + e;
    }
    return "{\"certificates\": [" + list + "]" + extra + "}";
}

bool contains(const std::string& text, std::string_view needle) {
    return text.find(needle) != std::string::npos;
}

std::size_t count_of(const std::string& text, std::string_view needle) {
    std::size_t n = 0;
    for (std::size_t pos = text.find(needle); pos != std::string::npos;
         pos = text.find(needle, pos + needle.size())) {
        ++n;
    }
    return n;
}

/// s_client to `port` with SNI `name` (none when empty) and `args`.
SClientReport hello(std::uint16_t port, const std::string& name, std::vector<std::string> args = {}) {
    if (name.empty()) {
        args.push_back("-noservername");
    } else {
        args.insert(args.end(), {"-servername", name});
    }
    return parse_s_client(s_client(port, args));
}

const std::string kCloseRequest = "GET /hello HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n";

}  // namespace

TEST_CASE("blitzd answers two HTTPS requests on one TLS 1.3 connection (curl keep-alive)",
          "[tls]") {
    TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)})));
    CommandResult r = curl_https(d, "a.test",
                                 {"-v", "--tlsv1.3", "--http1.1", d.https_url("a.test", "/hello"),
                                  d.https_url("a.test", "/any")});
    INFO("curl stderr:\n" << r.err);
    CHECK(r.status.exited_with(0));
    CHECK(r.out == "Hello, World!any");
    CHECK(contains(r.err, "SSL connection using TLSv1.3"));
    CHECK(contains(r.err, "SSL certificate verify ok"));
    CHECK(contains(r.err, "ALPN: server accepted http/1.1"));
    CHECK(contains(r.err, "Re-using existing connection"));
    CHECK(count_of(r.err, "Connected to ") == 1);
}

TEST_CASE("blitzd sends the full certificate chain, which verifies against the root alone",
          "[tls]") {
    TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)})));
    // The root is the only trust anchor: the intermediate must come from the server.
    SClientReport rep = hello(d.port(), "a.test",
                              {"-CAfile", pki().ca, "-verify_return_error", "-verify_hostname",
                               "a.test", "-showcerts"});
    INFO(rep.text);
    CHECK(rep.handshake);
    CHECK(rep.verified);
    CHECK(contains(rep.text, "i:CN = Blitz Test Root CA"));
}

TEST_CASE("blitzd refuses TLS 1.2 by default and accepts it with min_version 1.2", "[tls]") {
    SECTION("default: TLS 1.3 only") {
        TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)})));
        SClientReport v13 = hello(d.port(), "a.test", {"-tls1_3"});
        INFO(v13.text);
        CHECK(v13.handshake);
        CHECK(v13.version == "TLSv1.3");
        SClientReport v12 = hello(d.port(), "a.test", {"-tls1_2"});
        INFO(v12.text);
        CHECK_FALSE(v12.handshake);
        CommandResult c = curl_https(d, "a.test", {"--tlsv1.2", "--tls-max", "1.2",
                                                   d.https_url("a.test", "/hello")});
        CHECK_FALSE(c.status.exited_with(0));
        CHECK(c.out.empty());
    }
    SECTION("min_version 1.2") {
        TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)}, R"(, "min_version": "1.2")")));
        SClientReport v12 = hello(d.port(), "a.test", {"-tls1_2"});
        INFO(v12.text);
        CHECK(v12.handshake);
        CHECK(v12.version == "TLSv1.2");
        // A client that can do 1.3 still gets it.
        CHECK(hello(d.port(), "a.test").version == "TLSv1.3");
        CommandResult c = curl_https(d, "a.test", {"--tlsv1.2", "--tls-max", "1.2", "-v",
                                                   d.https_url("a.test", "/hello")});
        INFO(c.err);
        CHECK(c.status.exited_with(0));
        CHECK(c.out == "Hello, World!");
        CHECK(contains(c.err, "SSL connection using TLSv1.2"));
    }
}

TEST_CASE("blitzd offers only ECDHE with AEAD ciphers to TLS 1.2 clients unless configured",
          "[tls]") {
    SECTION("default cipher list") {
        TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)}, R"(, "min_version": "1.2")")));
        SClientReport gcm = hello(d.port(), "a.test",
                                  {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"});
        INFO(gcm.text);
        CHECK(gcm.handshake);
        CHECK(contains(gcm.text, "Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"));
        // CBC with SHA-1: not in the safe default.
        SClientReport cbc = hello(d.port(), "a.test", {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"});
        INFO(cbc.text);
        CHECK_FALSE(cbc.handshake);
    }
    SECTION("a configured cipher list") {
        TlsBlitzd d(config_with(tls_with(
            {cert_entry(pki().a_ec)},
            R"(, "min_version": "1.2", "ciphers": "ECDHE-ECDSA-CHACHA20-POLY1305")")));
        SClientReport gcm = hello(d.port(), "a.test",
                                  {"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"});
        INFO(gcm.text);
        CHECK_FALSE(gcm.handshake);
        SClientReport chacha = hello(d.port(), "a.test", {"-tls1_2"});
        INFO(chacha.text);
        CHECK(contains(chacha.text, "Cipher is ECDHE-ECDSA-CHACHA20-POLY1305"));
    }
}

TEST_CASE("blitzd prefers X25519 and follows a configured group list", "[tls]") {
    SECTION("default groups") {
        TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)})));
        SClientReport rep = hello(d.port(), "a.test");
        INFO(rep.text);
        CHECK(contains(rep.text, "Server Temp Key: X25519"));
        SClientReport p384 = hello(d.port(), "a.test", {"-groups", "P-384"});
        INFO(p384.text);
        CHECK(contains(p384.text, "Server Temp Key: ECDH, secp384r1"));
    }
    SECTION("groups [\"P-256\"]") {
        TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)}, R"(, "groups": ["P-256"])")));
        // s_client sends an X25519 key share first: the server asks again (HelloRetryRequest).
        SClientReport rep = hello(d.port(), "a.test");
        INFO(rep.text);
        CHECK(contains(rep.text, "Server Temp Key: ECDH, prime256v1"));
        SClientReport x25519 = hello(d.port(), "a.test", {"-groups", "X25519"});
        INFO(x25519.text);
        CHECK_FALSE(x25519.handshake);
    }
}

TEST_CASE("blitzd negotiates ALPN h2 or http/1.1 and refuses an offer without them", "[tls]") {
    {
        // The default list is h2, http/1.1 (HTTP/2 is on): the server's preference wins.
        TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)})));
        SClientReport both = hello(d.port(), "a.test", {"-alpn", "http/1.1,h2"});
        INFO(both.text);
        CHECK(both.alpn == "h2");
        SClientReport h1 = hello(d.port(), "a.test", {"-alpn", "http/1.1"});
        CHECK(h1.alpn == "http/1.1");
    }
    TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)}, R"(, "alpn": ["http/1.1"])")));
    SClientReport h1 = hello(d.port(), "a.test", {"-alpn", "http/1.1"});
    INFO(h1.text);
    CHECK(h1.handshake);
    CHECK(h1.alpn == "http/1.1");
    // h2 is not offered by a listener that does not list it: http/1.1 wins.
    SClientReport both = hello(d.port(), "a.test", {"-alpn", "h2,http/1.1"});
    INFO(both.text);
    CHECK(both.alpn == "http/1.1");
    // No ALPN at all: served as HTTP/1.1 without the extension (not strict).
    SClientReport none = hello(d.port(), "a.test");
    INFO(none.text);
    CHECK(none.handshake);
    CHECK(none.alpn.empty());
    CHECK(contains(none.text, "No ALPN negotiated"));
    // An offer with no overlap is refused with no_application_protocol (RFC 7301 §3.2).
    SClientReport h2only = hello(d.port(), "a.test", {"-alpn", "h2"});
    INFO(h2only.text);
    CHECK_FALSE(h2only.handshake);
    CHECK(contains(h2only.text, "no application protocol"));
}

TEST_CASE("blitzd with alpn_strict refuses a client that offers no ALPN (ALPACA)", "[tls]") {
    TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)}, R"(, "alpn_strict": true)")));
    SClientReport none = hello(d.port(), "a.test");
    INFO(none.text);
    CHECK_FALSE(none.handshake);
    // A fatal alert before any server flight. BoringSSL consults the ALPN callback only when
    // the client sent the extension, so the refusal of a client without one comes from the
    // ClientHello callback, whose alert is handshake_failure there (no_application_protocol
    // with OpenSSL's).
    CHECK((contains(none.text, "no application protocol") ||
           contains(none.text, "alert handshake failure")));
    CHECK(contains(none.text, "no peer certificate available"));
    SClientReport h1 = hello(d.port(), "a.test", {"-alpn", "http/1.1"});
    INFO(h1.text);
    CHECK(h1.handshake);
    CHECK(h1.alpn == "http/1.1");
    CommandResult c = curl_https(d, "a.test", {"--http1.1", d.https_url("a.test", "/hello")});
    INFO(c.err);
    CHECK(c.out == "Hello, World!");
}

TEST_CASE("blitzd picks the certificate by SNI: exact names, a wildcard, and the default",
          "[tls]") {
    const Pki& p = pki();
    SECTION("the first certificate is the default") {
        TlsBlitzd d(config_with(
            tls_with({cert_entry(p.a_ec), cert_entry(p.b_ec), cert_entry(p.wild_ec)})));
        CHECK(hello(d.port(), "a.test").subject == "CN = a.test");
        CHECK(hello(d.port(), "b.test").subject == "CN = b.test");
        CHECK(hello(d.port(), "B.Test").subject == "CN = b.test");
        CHECK(hello(d.port(), "x.wild.test").subject == "CN = *.wild.test");
        // A wildcard matches exactly one label.
        CHECK(hello(d.port(), "y.x.wild.test").subject == "CN = a.test");
        CHECK(hello(d.port(), "wild.test").subject == "CN = a.test");
        CHECK(hello(d.port(), "unknown.test").subject == "CN = a.test");
        CHECK(hello(d.port(), "").subject == "CN = a.test");
        // Each one verifies for its own name.
        for (const char* name : {"a.test", "b.test", "x.wild.test"}) {
            CommandResult c = curl_https(d, name, {d.https_url(name, "/hello")});
            INFO(name << ": " << c.err);
            CHECK(c.out == "Hello, World!");
        }
    }
    SECTION("another order, another default") {
        TlsBlitzd d(config_with(tls_with({cert_entry(p.b_ec), cert_entry(p.a_ec)})));
        CHECK(hello(d.port(), "a.test").subject == "CN = a.test");
        CHECK(hello(d.port(), "unknown.test").subject == "CN = b.test");
        CHECK(hello(d.port(), "").subject == "CN = b.test");
    }
    SECTION("server_names replace the certificate's own names") {
        TlsBlitzd d(config_with(
            tls_with({cert_entry(p.b_ec), cert_entry(p.a_ec, {"alias.test", "*.alias.test"})})));
        CHECK(hello(d.port(), "alias.test").subject == "CN = a.test");
        CHECK(hello(d.port(), "x.alias.test").subject == "CN = a.test");
        // a.test itself is no longer among the names of that certificate.
        CHECK(hello(d.port(), "a.test").subject == "CN = b.test");
    }
}

TEST_CASE("blitzd serves ECDSA to clients that support it and RSA to the others", "[tls]") {
    const Pki& p = pki();
    // RSA listed first, so the choice cannot come from the order.
    TlsBlitzd d(config_with(
        tls_with({cert_entry(p.a_rsa), cert_entry(p.a_ec), cert_entry(p.b_rsa)})));
    SClientReport any = hello(d.port(), "a.test");
    INFO(any.text);
    CHECK(any.subject == "CN = a.test");
    CHECK(any.server_key_bits == 256);
    CHECK(any.peer_sig_type == "ECDSA");

    SClientReport rsa = hello(d.port(), "a.test", {"-sigalgs", "RSA-PSS+SHA256"});
    INFO(rsa.text);
    CHECK(rsa.handshake);
    CHECK(rsa.subject == "CN = a.test");
    CHECK(rsa.server_key_bits == 2048);
    CHECK(rsa.peer_sig_type == "RSA-PSS");

    // b.test has only an RSA certificate: every client gets it.
    SClientReport b = hello(d.port(), "b.test");
    INFO(b.text);
    CHECK(b.subject == "CN = b.test");
    CHECK(b.server_key_bits == 2048);
}

TEST_CASE("blitzd staples the OCSP response from ocsp_staple", "[tls]") {
    const Pki& p = pki();
    SECTION("with a staple") {
        TlsBlitzd d(config_with(tls_with({cert_entry(p.a_ec, {}, p.a_ec_ocsp)})));
        SClientReport rep = hello(d.port(), "a.test", {"-status"});
        INFO(rep.text);
        CHECK(rep.handshake);
        CHECK(contains(rep.text, "OCSP Response Status: successful"));
        CHECK(contains(rep.text, "Cert Status: good"));
        // A client that does not ask gets none.
        SClientReport quiet = hello(d.port(), "a.test");
        CHECK_FALSE(contains(quiet.text, "OCSP Response Status"));
    }
    SECTION("without") {
        TlsBlitzd d(config_with(tls_with({cert_entry(p.a_ec)})));
        SClientReport rep = hello(d.port(), "a.test", {"-status"});
        INFO(rep.text);
        CHECK(rep.handshake);
        CHECK(contains(rep.text, "OCSP response: no response sent"));
    }
}

TEST_CASE("blitzd resumes a TLS 1.3 session on the same name and never on another virtual host",
          "[tls]") {
    const Pki& p = pki();
    TempDir dir;
    const std::string session = dir.path() + "/session.pem";
    // Returns whether the server issued a ticket (s_client writes -sess_out when one arrives).
    auto first = [&](std::uint16_t port) {
        // The request keeps s_client reading until the close, so it sees the ticket.
        CommandResult r = s_client(port, {"-servername", "a.test", "-sess_out", session}, kCloseRequest);
        SClientReport rep = parse_s_client(r);
        INFO(rep.text);
        REQUIRE(rep.handshake);
        CHECK_FALSE(rep.reused);
        CHECK(contains(r.out, "HTTP/1.1 200"));
        return std::filesystem::exists(session);
    };
    SECTION("tickets on") {
        TlsBlitzd d(config_with(tls_with({cert_entry(p.a_ec), cert_entry(p.b_ec)})));
        REQUIRE(first(d.port()));
        CommandResult again = s_client(d.port(), {"-servername", "a.test", "-sess_in", session},
                                       kCloseRequest);
        SClientReport same = parse_s_client(again);
        INFO(same.text);
        CHECK(same.reused);
        CHECK(same.version == "TLSv1.3");
        CHECK(contains(again.out, "Hello, World!"));
        // The same ticket offered under b.test: a full handshake with b.test's certificate.
        CommandResult other = s_client(d.port(), {"-servername", "b.test", "-sess_in", session},
                                       kCloseRequest);
        SClientReport vhost = parse_s_client(other);
        INFO(vhost.text);
        CHECK(vhost.handshake);
        CHECK_FALSE(vhost.reused);
        CHECK(vhost.subject == "CN = b.test");
        CHECK(contains(other.out, "Hello, World!"));
    }
    SECTION("session_tickets false") {
        TlsBlitzd d(config_with(tls_with({cert_entry(p.a_ec)}, R"(, "session_tickets": false)")));
        if (!first(d.port())) {
            SUCCEED("no ticket issued: nothing a client could resume");
            return;
        }
        // A session was issued after all (stateful): offering it must not resume.
        SClientReport again = parse_s_client(
            s_client(d.port(), {"-servername", "a.test", "-sess_in", session}, kCloseRequest));
        INFO(again.text);
        CHECK(again.handshake);
        CHECK_FALSE(again.reused);
    }
}

TEST_CASE("blitzd reads certificate paths relative to the config file's directory", "[tls]") {
    // The config is written into the PKI directory and names its files without a directory.
    TlsBlitzd d(config_with(R"({"certificates": [{"cert": "a-ec.pem", "key": "a-ec.key"}]})"), 1,
                pki().dir);
    CommandResult c = curl_https(d, "a.test", {d.https_url("a.test", "/hello")});
    INFO(c.err);
    CHECK(c.out == "Hello, World!");
}

TEST_CASE("blitzd does not answer plain HTTP on a TLS port without detect", "[tls]") {
    TlsBlitzd d(config_with(tls_with({cert_entry(pki().a_ec)})));
    Client c = d.connect();
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    CHECK(c.wait_closed(Millis(3000)));
    CHECK(c.transcript().find("HTTP/1.1") == std::string::npos);
    CHECK(c.transcript().find("Hello") == std::string::npos);
    // Still serving.
    CHECK(curl_https(d, "a.test", {d.https_url("a.test", "/hello")}).out == "Hello, World!");
}

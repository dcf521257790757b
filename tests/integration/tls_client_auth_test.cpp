// Client certificates (mutual TLS) on a listener: none, optional and required, checked with
// curl and openssl s_client; what the upstream (tests/backend, which logs every request) sees
// of the client's certificate in X-Forwarded-Client-Cert, and that a client cannot forge it;
// routes that match on the certificate's subject and SAN, over HTTP/1.1 and HTTP/2.

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include "tls_fixtures.hpp"

using namespace blitz::itest;

namespace {

/// blitzd with a TLS listener (a.test's certificate plus `extra` tls keys) proxying every path
/// to `backend`.
std::string mtls_config(const Backend& backend, const std::string& extra) {
    std::string tls = "{\"certificates\": [" + cert_entry(pki().a_ec) + "]" + extra + "}";
    return tls_config(tls_listener(tls),
                      R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])",
                      R"([{ "name": "u", "endpoints": [")" + backend.address() + R"("] }])");
}

std::string client_ca_keys(std::string_view policy, bool forward) {
    return ", \"client_auth\": \"" + std::string(policy) + "\", \"client_ca\": " +
           json_quote(pki().client_ca) + ", \"forward_client_cert\": " +
           (forward ? "true" : "false");
}

/// curl GET `target` with `args` (client certificate options, headers).
CommandResult get(const TlsBlitzd& d, const std::string& target, std::vector<std::string> args = {}) {
    args.push_back(d.https_url("a.test", target));
    return curl_https(d, "a.test", std::move(args));
}

std::vector<std::string> with_cert(const KeyPair& pair) { return {"--cert", pair.cert, "--key", pair.key}; }

const std::string kSpoofed = "X-Forwarded-Client-Cert: Hash=0000;Subject=\"CN=admin\"";

/// What a verified client1 certificate must look like in X-Forwarded-Client-Cert.
void check_xfcc(const LoggedRequest& r) {
    INFO(r.line);
    REQUIRE(r.header_count("X-Forwarded-Client-Cert") == 1);
    const std::string xfcc = *r.header("X-Forwarded-Client-Cert");
    CHECK(xfcc.find("Hash=" + cert_sha256(pki().client.cert)) != std::string::npos);
    CHECK(xfcc.find("CN=client1") != std::string::npos);
    CHECK(xfcc.find("URI=spiffe://blitz.test/client1") != std::string::npos);
    CHECK(xfcc.find("DNS=client1.test") != std::string::npos);
    CHECK(xfcc.find("admin") == std::string::npos);
}

}  // namespace

TEST_CASE("blitzd with client_auth required refuses clients without a trusted certificate",
          "[tls][mtls]") {
    Backend b("b1");
    TlsBlitzd d(mtls_config(b, client_ca_keys("required", true)));

    // The CertificateRequest names the client CA.
    SClientReport ask = parse_s_client(s_client(d.port(), {"-servername", "a.test"}));
    INFO(ask.text);
    CHECK(ask.text.find("Acceptable client certificate CA names") != std::string::npos);
    CHECK(ask.text.find("CN = Blitz Test Client CA") != std::string::npos);

    SECTION("no certificate") {
        CommandResult r = get(d, "/none");
        INFO(r.err);
        CHECK_FALSE(r.status.exited_with(0));
        CHECK(r.out.empty());
    }
    SECTION("a certificate from another CA") {
        CommandResult r = get(d, "/rogue", with_cert(pki().rogue_client));
        INFO(r.err);
        CHECK_FALSE(r.status.exited_with(0));
        CHECK(r.out.empty());
    }
    SECTION("a server certificate of the server CA is no client certificate of the client CA") {
        CommandResult r = get(d, "/server-cert", with_cert(pki().b_ec));
        INFO(r.err);
        CHECK_FALSE(r.status.exited_with(0));
        CHECK(r.out.empty());
    }
    SECTION("the client certificate") {
        std::vector<std::string> args = with_cert(pki().client);
        args.insert(args.end(), {"-H", kSpoofed});
        CommandResult r = get(d, "/ok", args);
        INFO(r.err);
        CHECK(r.status.exited_with(0));
        CHECK(r.out == "b1\n");
        check_xfcc(logged(b, "/ok"));
    }
    // Nothing refused reached the upstream.
    for (const auto& r : b.requests()) {
        CHECK(r.target == "/ok");
    }
}

TEST_CASE("blitzd with client_auth optional serves clients with and without a certificate",
          "[tls][mtls]") {
    Backend b("b1");
    TlsBlitzd d(mtls_config(b, client_ca_keys("optional", true)));

    CommandResult anonymous = get(d, "/anonymous", {"-H", kSpoofed});
    INFO(anonymous.err);
    CHECK(anonymous.out == "b1\n");
    // No certificate, and the forged header is gone.
    LoggedRequest plain = logged(b, "/anonymous");
    INFO(plain.line);
    CHECK(plain.header_count("X-Forwarded-Client-Cert") == 0);

    std::vector<std::string> args = with_cert(pki().client);
    args.insert(args.end(), {"-H", kSpoofed});
    CommandResult verified = get(d, "/verified", args);
    INFO(verified.err);
    CHECK(verified.out == "b1\n");
    check_xfcc(logged(b, "/verified"));

    // A certificate that is sent is verified: a bad one fails the handshake.
    CommandResult rogue = get(d, "/rogue", with_cert(pki().rogue_client));
    INFO(rogue.err);
    CHECK_FALSE(rogue.status.exited_with(0));
    CHECK(rogue.out.empty());
    CHECK(b.requests().size() == 2);
}

TEST_CASE("blitzd forwards no client certificate without forward_client_cert", "[tls][mtls]") {
    Backend b("b1");
    TlsBlitzd d(mtls_config(b, client_ca_keys("required", false)));
    CommandResult r = get(d, "/ok", with_cert(pki().client));
    INFO(r.err);
    CHECK(r.out == "b1\n");
    LoggedRequest req = logged(b, "/ok");
    INFO(req.line);
    CHECK(req.header_count("X-Forwarded-Client-Cert") == 0);
}

TEST_CASE("blitzd without client_auth asks for no certificate", "[tls][mtls]") {
    Backend b("b1");
    TlsBlitzd d(mtls_config(b, ""));
    SClientReport rep = parse_s_client(s_client(d.port(), {"-servername", "a.test"}));
    INFO(rep.text);
    CHECK(rep.handshake);
    CHECK(rep.text.find("No client certificate CA names sent") != std::string::npos);
    // curl offers its certificate only when asked: the request is served, nothing forwarded.
    CommandResult r = get(d, "/ok", with_cert(pki().client));
    INFO(r.err);
    CHECK(r.out == "b1\n");
    CHECK(logged(b, "/ok").header_count("X-Forwarded-Client-Cert") == 0);
}

namespace {

/// blitzd with client certificates `policy` ("optional" or "none") whose routes answer with
/// their own name: "/svc/" for client1 by SAN, for a verified client by subject, for clients
/// without a certificate, and a fallback.
std::string cert_routes_config(std::string_view policy) {
    std::string tls = "{\"certificates\": [" + cert_entry(pki().a_ec) + "]";
    if (policy != "none") {
        tls += client_ca_keys(policy, false);
    }
    tls += "}";
    return tls_config(tls_listener(tls), R"([
    { "name": "by-san",
      "match": { "path": "/svc/san", "client_cert": { "san": { "exact": "spiffe://blitz.test/client1" } } },
      "respond": { "status": 200, "body": "by-san" } },
    { "name": "by-subject",
      "match": { "path": "/svc/subject",
                 "client_cert": { "verified": true, "subject": { "regex": "CN=client[0-9]+" } } },
      "respond": { "status": 200, "body": "by-subject" } },
    { "name": "anonymous",
      "match": { "path_prefix": "/svc/", "client_cert": { "presented": false } },
      "respond": { "status": 200, "body": "anonymous" } },
    { "name": "fallback", "match": { "path_prefix": "/" },
      "respond": { "status": 200, "body": "fallback" } }
])");
}

/// The body of GET `target` (curl's exit status checked), over HTTP/2 when `h2`.
std::string body_of(const TlsBlitzd& d, const std::string& target, std::vector<std::string> args,
                    bool h2 = false) {
    args.insert(args.end(), {h2 ? "--http2" : "--http1.1", "-w", "|%{http_version}"});
    CommandResult r = get(d, target, std::move(args));
    INFO(target << ": " << r.err);
    CHECK(r.status.exited_with(0));
    const std::string version = h2 ? "|2" : "|1.1";
    CHECK(r.out.ends_with(version));
    return r.out.substr(0, r.out.size() - std::min(r.out.size(), version.size()));
}

}  // namespace

TEST_CASE("blitzd routes by the client certificate's SAN and subject", "[tls][mtls]") {
    TlsBlitzd d(cert_routes_config("optional"));
    const bool h2 = GENERATE(false, true);
    INFO((h2 ? "HTTP/2" : "HTTP/1.1"));

    // client1: SAN spiffe://blitz.test/client1, subject CN=client1.
    CHECK(body_of(d, "/svc/san", with_cert(pki().client), h2) == "by-san");
    CHECK(body_of(d, "/svc/subject", with_cert(pki().client), h2) == "by-subject");
    // client2 is verified too, but its SAN is another: it falls through to the fallback.
    CHECK(body_of(d, "/svc/san", with_cert(pki().client2), h2) == "fallback");
    CHECK(body_of(d, "/svc/subject", with_cert(pki().client2), h2) == "by-subject");
    // client3's first SAN is another, its second is client1's: any SAN may match.
    CHECK(body_of(d, "/svc/san", with_cert(pki().client3), h2) == "by-san");
    // Without a certificate: the route for certificate-less clients.
    CHECK(body_of(d, "/svc/san", {}, h2) == "anonymous");
    CHECK(body_of(d, "/svc/subject", {}, h2) == "anonymous");
    CHECK(body_of(d, "/other", with_cert(pki().client), h2) == "fallback");
}

TEST_CASE("blitzd without client_auth matches only certificate-less client_cert routes",
          "[tls][mtls]") {
    TlsBlitzd d(cert_routes_config("none"));
    // curl offers its certificate only when asked, and nobody asks.
    CHECK(body_of(d, "/svc/san", with_cert(pki().client)) == "anonymous");
    CHECK(body_of(d, "/svc/subject", with_cert(pki().client)) == "anonymous");
}

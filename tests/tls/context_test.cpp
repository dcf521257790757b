#include <string>

#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "support.hpp"
#include "tls/compat.hpp"
#include "tls/context.hpp"

namespace {

using namespace tls_test;
using Catch::Matchers::ContainsSubstring;

std::string make_error(const TlsOptions& o) {
    auto cx = tls::ServerContext::make(o);
    REQUIRE_FALSE(cx);
    return cx.error();
}

TlsOptions single(std::string cert, std::string key) {
    TlsOptions o;
    o.certificates = {{.cert = std::move(cert), .key = std::move(key)}};
    return o;
}

}  // namespace

TEST_CASE("tls::ServerContext::make loads RSA and ECDSA certificates with their chains", "[tls]") {
    auto cx = tls::ServerContext::make(server_options());
    REQUIRE(cx);
    auto* impl = static_cast<tls::ServerContextImpl*>(cx->get());
    // a.test (ECDSA + RSA), b.test + *.wild.test, c.test.
    CHECK(impl->host_count() == 3);
    CHECK(impl->select("a.test").names == std::vector<std::string>{"a.test"});
    CHECK(impl->select("A.TEST.").names == std::vector<std::string>{"a.test"});
    CHECK(impl->select("x.wild.test").names == std::vector<std::string>{"*.wild.test", "b.test"});
    CHECK(impl->select("y.x.wild.test").index == 0);
    CHECK(impl->select("wild.test").index == 0);
    CHECK(impl->select("c.test").index == 2);
    CHECK(impl->select("other.test").index == 0);  // server_names replace the SANs
    CHECK(impl->select("").index == 0);
    const tls::VirtualHost& a = impl->select("a.test");
    REQUIRE(a.ecdsa != nullptr);
    REQUIRE(a.rsa != nullptr);
    CHECK((a.ecdsa == a.rsa) == !tls::compat::kContextPerKeyType);
    CHECK(a.ecdsa_sigalg == 0x0403);
}

TEST_CASE("tls::ServerContext binds each host to its names and client-auth policy", "[tls]") {
    TlsOptions o = server_options();
    auto plain = tls::ServerContext::make(o);
    o.client_auth = ClientAuth::Optional;
    o.client_ca = fixture("ca.pem");
    auto optional = tls::ServerContext::make(o);
    REQUIRE(plain);
    REQUIRE(optional);
    auto* p = static_cast<tls::ServerContextImpl*>(plain->get());
    auto* q = static_cast<tls::ServerContextImpl*>(optional->get());
    CHECK(p->select("a.test").binding != p->select("b.test").binding);
    CHECK(p->select("a.test").binding != q->select("a.test").binding);
    // The same names and policy bind the same way in another context (e.g. after a reload).
    auto again = tls::ServerContext::make(server_options());
    REQUIRE(again);
    CHECK(static_cast<tls::ServerContextImpl*>(again->get())->select("a.test").binding ==
          p->select("a.test").binding);
}

TEST_CASE("tls::ServerContext::make serves a certificate without SANs under its CN", "[tls]") {
    auto cx = tls::ServerContext::make(single(fixture("cn-only.pem"), fixture("cn-only.key")));
    REQUIRE(cx);
    CHECK(static_cast<tls::ServerContextImpl*>(cx->get())->select("cn.test").names ==
          std::vector<std::string>{"cn.test"});
}

TEST_CASE("tls::ServerContext::make names a missing certificate or key file", "[tls]") {
    const std::string missing = fixture("nope.pem");
    std::string e = make_error(single(missing, fixture("a-ec.key")));
    CHECK_THAT(e, ContainsSubstring("certificate \"" + missing + "\"") &&
                      ContainsSubstring("no such file"));
    e = make_error(single(fixture("a-ec.pem"), missing));
    CHECK_THAT(e, ContainsSubstring("private key \"" + missing + "\"") &&
                      ContainsSubstring("no such file"));
    e = make_error(single("", fixture("a-ec.key")));
    CHECK_THAT(e, ContainsSubstring("no file given"));
}

TEST_CASE("tls::ServerContext::make names an unreadable certificate file", "[tls]") {
    // Root reads any mode, so a directory stands for the unreadable file there.
    std::string path = fixture_dir();
    if (::geteuid() != 0) {
        path = fixture("unreadable.pem");
        REQUIRE(::link(fixture("a-ec.pem").c_str(), path.c_str()) == 0);
        REQUIRE(::chmod(path.c_str(), 0) == 0);
    }
    const std::string e = make_error(single(path, fixture("a-ec.key")));
    CHECK_THAT(e, ContainsSubstring("certificate \"" + path + "\"") && ContainsSubstring("cannot"));
}

TEST_CASE("tls::ServerContext::make rejects files that are not PEM", "[tls]") {
    std::string e = make_error(single(fixture("garbage.pem"), fixture("a-ec.key")));
    CHECK_THAT(
        e, ContainsSubstring(fixture("garbage.pem")) && ContainsSubstring("not a PEM certificate"));
    e = make_error(single(fixture("a-ec.pem"), fixture("garbage.pem")));
    CHECK_THAT(e, ContainsSubstring("private key \"" + fixture("garbage.pem") + "\"") &&
                      ContainsSubstring("not a PEM private key"));
    // A certificate where the key should be is not a key either.
    e = make_error(single(fixture("a-ec.pem"), fixture("a-ec.pem")));
    CHECK_THAT(e, ContainsSubstring("not a PEM private key"));
}

TEST_CASE("tls::ServerContext::make rejects expired and not yet valid certificates with the date",
          "[tls]") {
    std::string e = make_error(single(fixture("expired.pem"), fixture("expired.key")));
    CHECK_THAT(e, ContainsSubstring(fixture("expired.pem")) && ContainsSubstring("expired on") &&
                      ContainsSubstring("Jan  2 00:00:00 2020"));
    e = make_error(single(fixture("future.pem"), fixture("future.key")));
    CHECK_THAT(e, ContainsSubstring(fixture("future.pem")) &&
                      ContainsSubstring("not valid before") && ContainsSubstring("2099"));
}

TEST_CASE("tls::ServerContext::make rejects a key that does not match its certificate", "[tls]") {
    const std::string e = make_error(single(fixture("a-ec.pem"), fixture("b-ec.key")));
    CHECK_THAT(e, ContainsSubstring("private key \"" + fixture("b-ec.key") + "\"") &&
                      ContainsSubstring("does not match the certificate in \"" +
                                        fixture("a-ec.pem") + "\""));
    const std::string rsa = make_error(single(fixture("a-rsa.pem"), fixture("a-ec.key")));
    CHECK_THAT(rsa, ContainsSubstring("does not match"));
}

TEST_CASE("tls::ServerContext::make needs a name for each certificate", "[tls]") {
    const std::string e = make_error(single(fixture("nameless.pem"), fixture("nameless.key")));
    CHECK_THAT(e,
               ContainsSubstring(fixture("nameless.pem")) && ContainsSubstring("no usable name"));
    TlsOptions named = single(fixture("nameless.pem"), fixture("nameless.key"));
    named.certificates[0].server_names = {"n.test"};
    CHECK(tls::ServerContext::make(named));
    named.certificates[0].server_names = {"bad name"};
    CHECK_THAT(make_error(named), ContainsSubstring("\"bad name\" is not a host name"));
}

TEST_CASE("tls::ServerContext::make checks the OCSP staple file", "[tls]") {
    TlsOptions o = single(fixture("a-ec.pem"), fixture("a-ec.key"));
    o.certificates[0].ocsp_staple = fixture("garbage.der");
    CHECK_THAT(make_error(o), ContainsSubstring("OCSP staple \"" + fixture("garbage.der") + "\"") &&
                                  ContainsSubstring("not a DER OCSP response"));
    o.certificates[0].ocsp_staple = fixture("none.der");
    CHECK_THAT(make_error(o), ContainsSubstring("no such file"));
}

TEST_CASE("tls::ServerContext::make checks the options", "[tls]") {
    CHECK_THAT(make_error(TlsOptions{}), ContainsSubstring("at least one certificate"));

    TlsOptions o = server_options();
    o.client_auth = ClientAuth::Required;
    CHECK_THAT(make_error(o), ContainsSubstring("client_auth needs client_ca"));
    o.client_ca = fixture("garbage.pem");
    CHECK_THAT(make_error(o), ContainsSubstring("client CA bundle \"" + fixture("garbage.pem")));
    o.client_ca = fixture("ca.pem");
    CHECK(tls::ServerContext::make(o));

    o = server_options();
    o.alpn = {""};
    CHECK_THAT(make_error(o), ContainsSubstring("ALPN"));
    o.alpn = {};
    o.alpn_strict = true;
    CHECK_THAT(make_error(o), ContainsSubstring("alpn_strict"));

    o = server_options();
    o.groups = {"X25519", "P-999"};
    CHECK_THAT(make_error(o), ContainsSubstring("groups \"X25519:P-999\""));
    o = server_options();
    o.min_version = TlsVersion::Tls12;
    o.ciphers = "NOT-A-CIPHER";
    CHECK_THAT(make_error(o), ContainsSubstring("ciphers \"NOT-A-CIPHER\""));

    o = server_options();
    o.certificates.push_back({.cert = fixture("a-ec.pem"), .key = fixture("a-ec.key")});
    CHECK_THAT(make_error(o), ContainsSubstring("serve the same names with the same key type"));
}

TEST_CASE("tls::ServerContext::make accepts early_data only in a BoringSSL build", "[tls]") {
    TlsOptions o = server_options();
    o.early_data = true;
    auto cx = tls::ServerContext::make(o);
    if (tls::compat::kEarlyData) {
        CHECK(cx);
    } else {
        REQUIRE_FALSE(cx);
        CHECK_THAT(cx.error(), ContainsSubstring("early_data") && ContainsSubstring("BoringSSL"));
    }
}

TEST_CASE("tls::ClientContext::make loads its trust anchors and client certificate", "[tls]") {
    UpstreamTlsOptions o = client_options();
    CHECK(tls::ClientContext::make(o));
    o.ca = fixture("missing-ca.pem");
    auto bad = tls::ClientContext::make(o);
    REQUIRE_FALSE(bad);
    CHECK_THAT(bad.error(), ContainsSubstring("CA bundle \"" + fixture("missing-ca.pem")));

    o = client_options();
    o.cert = fixture("client.pem");
    CHECK_THAT(tls::ClientContext::make(o).error(), ContainsSubstring("both cert and key"));
    o.key = fixture("a-ec.key");
    CHECK_THAT(tls::ClientContext::make(o).error(), ContainsSubstring("does not match"));
    o.key = fixture("client.key");
    CHECK(tls::ClientContext::make(o));
}

TEST_CASE("tls::ClientContext::make reads the system bundle when no CA is given", "[tls]") {
    if (::access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0) {
        SKIP("no system CA bundle");
    }
    UpstreamTlsOptions o;
    o.enabled = true;
    auto first = tls::ClientContext::make(o);
    REQUIRE(first);
    auto second = tls::ClientContext::make(o);
    REQUIRE(second);
    // Both use the one parsed copy of the bundle.
    auto* a = static_cast<tls::ClientContextImpl*>(first->get());
    auto* b = static_cast<tls::ClientContextImpl*>(second->get());
    CHECK(SSL_CTX_get_cert_store(a->ctx()) == SSL_CTX_get_cert_store(b->ctx()));
}

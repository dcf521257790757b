// Certificate files that cannot be used stop blitzd at start with an error that names the file
// and what is wrong with it, instead of a listener that fails every handshake later.

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include <catch2/catch_test_macros.hpp>

#include "tls_fixtures.hpp"

using namespace blitz::itest;

namespace {

std::string config_with_tls(const std::string& tls) {
    return tls_config(tls_listener(tls), kTlsRoutes);
}

std::string one_cert(const KeyPair& pair, const std::string& extra = "") {
    return "{\"certificates\": [" + cert_entry(pair) + "]" + extra + "}";
}

/// blitzd refuses `config`: it exits by itself with a non-zero status, and stderr holds every
/// one of `needles`.
void check_refused(const std::string& config, const std::vector<std::string>& needles) {
    CommandResult r = blitzd_refuses(config);
    INFO("config:\n" << config << "\nstderr:\n" << r.err << "\nstdout:\n" << r.out);
    CHECK(r.status.kind == ExitStatus::Kind::Exited);
    CHECK(r.status.value != 0);
    for (const auto& n : needles) {
        CHECK(r.err.find(n) != std::string::npos);
    }
}

}  // namespace

TEST_CASE("blitzd refuses to start with unusable certificate files and names the file",
          "[tls][config]") {
    const Pki& p = pki();
    SECTION("the certificate file is missing") {
        check_refused(config_with_tls(one_cert({p.missing, p.a_ec.key})), {p.missing});
    }
    SECTION("the key file is missing") {
        const std::string missing_key = p.path("no-such-key.key");
        check_refused(config_with_tls(one_cert({p.a_ec.cert, missing_key})), {missing_key});
    }
    SECTION("the certificate file holds no PEM") {
        check_refused(config_with_tls(one_cert({p.not_pem, p.a_ec.key})), {p.not_pem});
    }
    SECTION("the key file holds no PEM") {
        check_refused(config_with_tls(one_cert({p.a_ec.cert, p.not_pem})), {p.not_pem});
    }
    SECTION("the key file holds a certificate") {
        check_refused(config_with_tls(one_cert({p.a_ec.cert, p.b_ec.cert})), {p.b_ec.cert});
    }
    SECTION("the certificate has expired") {
        check_refused(config_with_tls(one_cert(p.expired)), {p.expired.cert, "expired"});
    }
    SECTION("the key does not belong to the certificate") {
        CommandResult r = blitzd_refuses(config_with_tls(one_cert(p.mismatched)));
        INFO("stderr:\n" << r.err);
        CHECK(r.status.kind == ExitStatus::Kind::Exited);
        CHECK(r.status.value != 0);
        CHECK((r.err.find(p.mismatched.key) != std::string::npos ||
               r.err.find(p.mismatched.cert) != std::string::npos));
        CHECK(r.err.find("match") != std::string::npos);
    }
    SECTION("the certificate path is a directory") {
        // What root cannot read either.
        TempDir dir;
        check_refused(config_with_tls(one_cert({dir.path(), p.a_ec.key})), {dir.path()});
    }
    SECTION("the certificate file cannot be read") {
        if (::geteuid() == 0) {
            SKIP("root reads files whatever their mode");
        }
        TempDir dir;
        const std::string locked = dir.path() + "/locked.pem";
        std::filesystem::copy_file(p.a_ec.cert, locked);
        ::chmod(locked.c_str(), 0);
        check_refused(config_with_tls(one_cert({locked, p.a_ec.key})), {locked});
    }
    SECTION("the OCSP staple file is missing") {
        const std::string missing_ocsp = p.path("no-such.ocsp");
        check_refused(config_with_tls("{\"certificates\": [" +
                                      cert_entry(p.a_ec, {}, missing_ocsp) + "]}"),
                      {missing_ocsp});
    }
    SECTION("the client CA file is missing") {
        check_refused(config_with_tls(one_cert(p.a_ec, R"(, "client_auth": "required", "client_ca": )" +
                                                          json_quote(p.missing))),
                      {p.missing});
    }
    SECTION("client_auth without client_ca") {
        check_refused(config_with_tls(one_cert(p.a_ec, R"(, "client_auth": "required")")),
                      {"client_ca"});
    }
    SECTION("no certificate at all") {
        check_refused(config_with_tls(R"({"certificates": []})"), {"certificates"});
    }
    SECTION("the upstream CA bundle is missing") {
        check_refused(tls_config(R"([{"name": "main", "address": "127.0.0.1:0"}])",
                                 R"([{ "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])",
                                 R"([{ "name": "u", "endpoints": ["127.0.0.1:9"], "tls": { "ca": )" +
                                     json_quote(p.missing) + " } }]"),
                      {p.missing});
    }
}

TEST_CASE("blitzd starts with the same files once they are usable", "[tls][config]") {
    // The control for the refusals above: a.test's own pair, by absolute path.
    const Pki& p = pki();
    TlsBlitzd d(config_with_tls(one_cert(p.a_ec, R"(, "client_auth": "optional", "client_ca": )" +
                                                     json_quote(p.client_ca))));
    CommandResult c = curl_https(d, "a.test", {d.https_url("a.test", "/hello")});
    INFO(c.err);
    CHECK(c.out == "Hello, World!");
}

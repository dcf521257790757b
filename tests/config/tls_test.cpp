#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <catch2/catch_test_macros.hpp>

#include <blitz/config.hpp>
#include <blitz/tls.hpp>

#include "config/load.hpp"
#include "helpers.hpp"

namespace {

using namespace std::chrono_literals;
using blitz::ClientAuth;
using blitz::PlaintextPolicy;
using blitz::TlsVersion;
using blitz::config::test::error_of;
using blitz::config::test::parse_ok;
using blitz::config::test::require_error_at;
using blitz::config::test::ScopedEnv;

/// Runs the openssl tool quietly; true when it succeeded.
bool openssl(const std::string& args) {
    return std::system(("openssl " + args + " >/dev/null 2>&1").c_str()) == 0;
}

/// Certificates and keys for the tests, made once per process with the openssl tool (the loader
/// builds each TLS listener's context, which parses them): self-signed ECDSA P-256 certificates
/// valid for two days. Removed at exit.
class Pki {
 public:
    Pki() {
        char tmpl[] = "/tmp/blitz-tls-pki-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            return;
        }
        dir_ = tmpl;
        std::FILE* f = std::fopen((dir_ + "/req.cnf").c_str(), "wb");
        if (f == nullptr) {
            return;
        }
        std::fputs("[req]\ndistinguished_name = dn\n[dn]\n", f);
        std::fclose(f);
        ok_ = make("site", "/CN=site.test", "subjectAltName=DNS:site.test") &&
              make("ec", "/CN=ec.test", "subjectAltName=DNS:ec.test") &&
              make("ca", "/CN=Blitz Config Test CA", "basicConstraints=critical,CA:TRUE") &&
              make("client", "/CN=gateway", "extendedKeyUsage=clientAuth");
    }
    ~Pki() {
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }
    Pki(const Pki&) = delete;
    Pki& operator=(const Pki&) = delete;

    bool ok() const { return ok_; }
    const std::string& dir() const { return dir_; }

 private:
    bool make(const std::string& name, const std::string& subject, const std::string& ext) {
        const std::string out = dir_ + "/" + name;
        std::string args = "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2";
        args += " -config " + dir_ + "/req.cnf -subj '" + subject + "' -addext '" + ext + "'";
        args += " -keyout " + out + ".key -out " + out + ".pem";
        return openssl(args);
    }

    std::string dir_;
    bool ok_ = false;
};

const Pki& pki() {
    static const Pki p;
    return p;
}

/// A temporary directory with the test certificates (site.pem/.key, ec.pem/.key, ca.pem,
/// client.pem/.key), an OCSP staple (ocsp.der: a DER SEQUENCE, all the engine checks of it), a
/// file that is no PEM (placeholder.pem), an empty file and a directory (dir.pem). Removed with
/// everything in it. Skips the test when the certificates cannot be made.
class TempDir {
 public:
    TempDir() {
        if (!pki().ok()) {
            SKIP("the openssl tool cannot make test certificates here");
        }
        char tmpl[] = "/tmp/blitz-tls-config-XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path_ = tmpl;
        for (const char* name :
             {"site.pem", "site.key", "ec.pem", "ec.key", "ca.pem", "client.pem", "client.key"}) {
            std::filesystem::copy_file(pki().dir() + "/" + name, path_ + "/" + name);
        }
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED successful } (RFC 6960 §4.2.1)
        write("ocsp.der", std::string_view("\x30\x03\x0a\x01\x00", 5));
        write("placeholder.pem", "placeholder\n");
        write("empty.pem", "");
        std::filesystem::create_directory(path_ + "/dir.pem");
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    void write(const std::string& name, std::string_view text) const {
        std::FILE* f = std::fopen((path_ + "/" + name).c_str(), "wb");
        REQUIRE(f != nullptr);
        REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
        REQUIRE(std::fclose(f) == 0);
    }
    /// `text` with every "@/" replaced by this directory and a slash, so that documents and
    /// messages can name its files ("@/site.pem").
    std::string operator()(std::string_view text) const {
        std::string out;
        for (std::size_t i = 0; i < text.size(); ++i) {
            if (text.substr(i, 2) == "@/") {
                out += path_ + "/";
                ++i;
            } else {
                out += text[i];
            }
        }
        return out;
    }
    const std::string& path() const { return path_; }

 private:
    std::string path_;
};

/// A document with one listener whose "tls" object has `members`.
std::string listener_tls(std::string_view members) {
    return R"({"listeners": [{"address": "127.0.0.1:8443", "tls": {)" + std::string(members) +
           R"(}}], "routes": []})";
}

/// A listener's tls members `more`, then one certificate ("@/site.pem", "@/site.key").
std::string with_cert(std::string_view more = {}) {
    std::string m = more.empty() ? "" : std::string(more) + ", ";
    return listener_tls(m + R"("certificates": [{"cert": "@/site.pem", "key": "@/site.key"}])");
}

/// A document with one TLS listener (certificate "@/site.pem") whose tls object also has the
/// members `more` and whose "http2" is `http2`, written before "tls" when `http2_first`.
std::string tls_http2(std::string_view http2, std::string_view more, bool http2_first) {
    const std::string h = "\"http2\": " + std::string(http2);
    const std::string t = R"("tls": {)" + (more.empty() ? "" : std::string(more) + ", ") +
                          R"("certificates": [{"cert": "@/site.pem", "key": "@/site.key"}]})";
    return R"({"listeners": [{"address": "127.0.0.1:8443", )" +
           (http2_first ? h + ", " + t : t + ", " + h) + R"(}], "routes": []})";
}

/// A document with the upstream "u" whose "tls" is `value`.
std::string upstream_tls(std::string_view value) {
    return blitz::config::test::with_top(
        R"("upstreams": [{"name": "u", "endpoints": ["127.0.0.1:9443"], "tls": )" +
        std::string(value) + "}]");
}

const blitz::TlsOptions& tls_of(const blitz::Config& c) {
    REQUIRE(c.listeners.size() == 1);
    REQUIRE(c.listeners[0].tls.has_value());
    return *c.listeners[0].tls;
}

const blitz::UpstreamTlsOptions& upstream_tls_of(const blitz::Config& c) {
    REQUIRE(c.upstreams.size() == 1);
    return c.upstreams[0]->options().tls;
}

constexpr std::string_view kEveryKey = R"(
  "certificates": [
    {"cert": "@/site.pem", "key": "@/site.key", "ocsp_staple": "@/ocsp.der",
     "server_names": ["api.example.com", "*.example.com"]},
    {"cert": "@/ec.pem", "key": "@/ec.key"}
  ],
  "min_version": "1.2",
  "ciphers": "ECDHE+AESGCM:ECDHE+CHACHA20",
  "groups": ["P-256", "X25519"],
  "alpn": ["http/1.1", "h2"],
  "alpn_strict": true,
  "detect": true,
  "plaintext": "redirect",
  "handshake_timeout_ms": 2500,
  "client_auth": "optional",
  "client_ca": "@/ca.pem",
  "forward_client_cert": true,
  "session_tickets": true,
  "ticket_key_rotation_s": 600)";

}  // namespace

TEST_CASE("config::parse_config reads every key of a listener's tls object", "[config][tls]") {
    const TempDir d;
    const blitz::Config c = parse_ok(d(listener_tls(std::string(kEveryKey) + R"(,
      "early_data": false)")));
    const blitz::TlsOptions& t = tls_of(c);
    REQUIRE(t.certificates.size() == 2);
    CHECK(t.certificates[0].cert == d("@/site.pem"));
    CHECK(t.certificates[0].key == d("@/site.key"));
    CHECK(t.certificates[0].ocsp_staple == d("@/ocsp.der"));
    CHECK(t.certificates[0].server_names ==
          std::vector<std::string>{"api.example.com", "*.example.com"});
    CHECK(t.certificates[1].cert == d("@/ec.pem"));
    CHECK(t.certificates[1].key == d("@/ec.key"));
    CHECK(t.certificates[1].ocsp_staple.empty());
    CHECK(t.certificates[1].server_names.empty());
    CHECK(t.min_version == TlsVersion::Tls12);
    CHECK(t.ciphers == "ECDHE+AESGCM:ECDHE+CHACHA20");
    CHECK(t.groups == std::vector<std::string>{"P-256", "X25519"});
    CHECK(t.alpn == std::vector<std::string>{"http/1.1", "h2"});  // in the order written
    CHECK(t.alpn_strict);
    CHECK(t.detect);
    CHECK(t.plaintext == PlaintextPolicy::Redirect);
    CHECK(t.handshake_timeout == 2500ms);
    CHECK(t.client_auth == ClientAuth::Optional);
    CHECK(t.client_ca == d("@/ca.pem"));
    CHECK(t.forward_client_cert);
    CHECK(t.session_tickets);
    CHECK(t.ticket_key_rotation == 600s);
    CHECK_FALSE(t.early_data);

    // early_data needs a BoringSSL build (see the engine test below): read without building
    // the listener's context.
    auto early = blitz::config::parse(d(listener_tls(std::string(kEveryKey) + R"(,
      "early_data": true)")),
                                      "test.json", {"", false});
    if (!early) {
        FAIL(early.error().to_string());
    }
    CHECK(tls_of(*early).early_data);

    // The other values of the enumerations.
    CHECK(tls_of(parse_ok(d(with_cert(R"("min_version": "1.3")")))).min_version ==
          TlsVersion::Tls13);
    CHECK(tls_of(parse_ok(d(with_cert(R"("detect": true, "plaintext": "serve")")))).plaintext ==
          PlaintextPolicy::Serve);
    CHECK(tls_of(parse_ok(d(with_cert(R"("detect": true, "plaintext": "reject")")))).plaintext ==
          PlaintextPolicy::Reject);
    CHECK(tls_of(parse_ok(d(with_cert(R"("client_auth": "required", "client_ca": "@/ca.pem")"))))
              .client_auth == ClientAuth::Required);
    CHECK(tls_of(parse_ok(d(with_cert(R"("client_auth": "none")")))).client_auth ==
          ClientAuth::None);
    CHECK_FALSE(tls_of(parse_ok(d(with_cert(R"("session_tickets": false)")))).session_tickets);
    CHECK(tls_of(parse_ok(d(with_cert(R"("groups": ["X25519", "P-256", "P-384", "P-521"])"))))
              .groups.size() == 4);
}

TEST_CASE("config::parse_config gives a listener's tls object the documented defaults",
          "[config][tls]") {
    const TempDir d;
    const blitz::Config c = parse_ok(d(with_cert()));
    const blitz::TlsOptions& t = tls_of(c);
    const blitz::TlsOptions def;
    // The values docs/config.md and the schema give, and the struct's own defaults.
    CHECK(t.min_version == TlsVersion::Tls13);
    CHECK(t.ciphers.empty());
    CHECK(t.groups == std::vector<std::string>{"X25519", "P-256", "P-384"});
    // With HTTP/2 on (the default), "h2" first.
    CHECK(t.alpn == std::vector<std::string>{"h2", "http/1.1"});
    CHECK_FALSE(t.alpn_strict);
    CHECK_FALSE(t.detect);
    CHECK(t.plaintext == PlaintextPolicy::Serve);
    CHECK(t.handshake_timeout == 10'000ms);
    CHECK(t.client_auth == ClientAuth::None);
    CHECK(t.client_ca.empty());
    CHECK_FALSE(t.forward_client_cert);
    CHECK(t.session_tickets);
    CHECK(t.ticket_key_rotation == 3600s);
    CHECK_FALSE(t.early_data);
    CHECK(t.min_version == def.min_version);
    CHECK(t.groups == def.groups);
    CHECK(t.alpn == def.alpn);
    CHECK(t.handshake_timeout == def.handshake_timeout);
    CHECK(t.ticket_key_rotation == def.ticket_key_rotation);
    REQUIRE(t.certificates.size() == 1);
    CHECK(t.certificates[0].ocsp_staple.empty());
    CHECK(t.certificates[0].server_names.empty());

    // Without "tls" a listener speaks plain HTTP.
    const blitz::Config plain =
        parse_ok(R"({"listeners": [{"address": "127.0.0.1:8080"}], "routes": []})");
    CHECK_FALSE(plain.listeners[0].tls.has_value());
}

TEST_CASE("config::parse_config reads an upstream's tls as true, false or an object",
          "[config][tls]") {
    const TempDir d;
    const blitz::UpstreamTlsOptions def;

    const blitz::Config on_config = parse_ok(upstream_tls("true"));
    const blitz::UpstreamTlsOptions& on = upstream_tls_of(on_config);
    CHECK(on.enabled);
    CHECK(on.ca.empty());
    CHECK(on.verify);
    CHECK(on.server_name.empty());
    CHECK(on.cert.empty());
    CHECK(on.key.empty());
    CHECK(on.alpn == std::vector<std::string>{"http/1.1"});
    CHECK(on.min_version == TlsVersion::Tls12);
    CHECK(on.session_reuse);
    CHECK(on.alpn == def.alpn);
    CHECK(on.min_version == def.min_version);

    CHECK_FALSE(upstream_tls_of(parse_ok(upstream_tls("false"))).enabled);
    const std::string without =
        blitz::config::test::with_top(R"("upstreams": [{"name": "u", "endpoints": ["h:1"]}])");
    CHECK_FALSE(upstream_tls_of(parse_ok(without)).enabled);
    {
        ScopedEnv env("BLITZ_TEST_UPSTREAM_TLS", "true");
        CHECK(upstream_tls_of(parse_ok(upstream_tls(R"("${BLITZ_TEST_UPSTREAM_TLS}")"))).enabled);
    }

    // An object turns TLS on, even an empty one.
    const blitz::Config empty_config = parse_ok(upstream_tls("{}"));
    const blitz::UpstreamTlsOptions& empty = upstream_tls_of(empty_config);
    CHECK(empty.enabled);
    CHECK(empty.verify);

    // A numeric server name is checked as an IP address (no SNI is sent for it).
    const auto server_name = [](std::string_view name) {
        const blitz::Config c =
            parse_ok(upstream_tls(R"({"server_name": ")" + std::string(name) + "\"}"));
        return upstream_tls_of(c).server_name;
    };
    CHECK(server_name("10.0.0.1") == "10.0.0.1");
    CHECK(server_name("2001:db8::1") == "2001:db8::1");

    const blitz::Config c = parse_ok(d(upstream_tls(R"({
        "ca": "@/ca.pem", "verify": false, "server_name": "api.internal",
        "cert": "@/client.pem", "key": "@/client.key", "alpn": ["http/1.1"],
        "min_version": "1.3", "session_reuse": false})")));
    const blitz::UpstreamTlsOptions& u = upstream_tls_of(c);
    CHECK(u.enabled);
    CHECK(u.ca == d("@/ca.pem"));
    CHECK_FALSE(u.verify);
    CHECK(u.server_name == "api.internal");
    CHECK(u.cert == d("@/client.pem"));
    CHECK(u.key == d("@/client.key"));
    CHECK(u.alpn == std::vector<std::string>{"http/1.1"});
    CHECK(u.min_version == TlsVersion::Tls13);
    CHECK_FALSE(u.session_reuse);
}

TEST_CASE("config::parse_config refuses bad values in a listener's tls object at the value",
          "[config][tls]") {
    const TempDir d;
    const auto check = [&](std::string_view more, std::string_view needle, const char* path,
                           const std::string& message, std::size_t nth = 0) {
        require_error_at(d(with_cert(more)), d(needle), path, message, nth);
    };
    check(R"("min_version": "1.1")", "\"1.1\"", "$.listeners[0].tls.min_version",
          "expected one of \"1.2\", \"1.3\", found \"1.1\"");
    check(R"("detect": true, "plaintext": "drop")", "\"drop\"", "$.listeners[0].tls.plaintext",
          "expected one of \"serve\", \"redirect\", \"reject\", found \"drop\"");
    check(R"("client_auth": "maybe")", "\"maybe\"", "$.listeners[0].tls.client_auth",
          "expected one of \"none\", \"optional\", \"required\", found \"maybe\"");
    check(R"("groups": ["X25519", "P-192"])", "\"P-192\"", "$.listeners[0].tls.groups[1]",
          "expected one of \"X25519\", \"P-256\", \"P-384\", \"P-521\", found \"P-192\"");
    check(R"("groups": ["X25519", "X25519"])", "\"X25519\"", "$.listeners[0].tls.groups[1]",
          "duplicate \"X25519\" (also $.listeners[0].tls.groups[0])", 1);
    check(R"("groups": [])", "[]", "$.listeners[0].tls.groups",
          "expected at least one key-exchange group, found an empty array");
    check(R"("alpn": ["h2", "spdy/3.1"])", "\"spdy/3.1\"", "$.listeners[0].tls.alpn[1]",
          "expected one of \"h2\", \"http/1.1\", found \"spdy/3.1\"");
    check(R"("alpn": ["h2c"])", "\"h2c\"", "$.listeners[0].tls.alpn[0]",
          "expected one of \"h2\", \"http/1.1\", found \"h2c\"");
    check(R"("alpn": ["h2", "http/1.1", "h2"])", "\"h2\"", "$.listeners[0].tls.alpn[2]",
          "duplicate \"h2\" (also $.listeners[0].tls.alpn[0])", 1);
    check(R"("alpn": [])", "[]", "$.listeners[0].tls.alpn",
          "expected at least one ALPN protocol id, found an empty array");
    check(R"("alpn": "http/1.1")", "\"http/1.1\"", "$.listeners[0].tls.alpn",
          "expected an array of ALPN protocol ids, found \"http/1.1\"");
    check(R"("min_version": "1.2", "ciphers": "ECDHE+AESGCM;rm")", "\"ECDHE",
          "$.listeners[0].tls.ciphers",
          "expected a TLS 1.2 cipher list in OpenSSL syntax (\"ECDHE+AESGCM:ECDHE+CHACHA20\"), "
          "found \"ECDHE+AESGCM;rm\"");
    check(R"("handshake_timeout_ms": 0)", "0,", "$.listeners[0].tls.handshake_timeout_ms",
          "expected an integer from 1 to 86400000, found 0");
    check(R"("ticket_key_rotation_s": 59)", "59", "$.listeners[0].tls.ticket_key_rotation_s",
          "expected an integer from 60 to 302400, found 59");
    check(R"("ticket_key_rotation_s": 302401)", "302401",
          "$.listeners[0].tls.ticket_key_rotation_s",
          "expected an integer from 60 to 302400, found 302401");
    check(R"("early_data": "yes")", "\"yes\"", "$.listeners[0].tls.early_data",
          "expected true or false, found \"yes\"");
    require_error_at(R"({"listeners": [{"address": "127.0.0.1:8443", "tls": true}], "routes": []})",
                     "true", "$.listeners[0].tls",
                     "expected an object of TLS settings, found true");
}

TEST_CASE("config::parse_config validates the server names of a certificate", "[config][tls]") {
    const TempDir d;
    const auto names = [&](std::string_view list) {
        return d(listener_tls(R"("certificates": [{"server_names": )" + std::string(list) +
                              R"(, "cert": "@/site.pem", "key": "@/site.key"}])"));
    };
    CHECK(tls_of(parse_ok(names(R"(["a.example", "*.b.example", "localhost"])")))
              .certificates[0]
              .server_names.size() == 3);
    const std::string kExpected =
        "expected a host name (\"api.example.com\") or a wildcard of one label "
        "(\"*.example.com\"), not an IP address, found ";
    for (std::string_view bad : {R"("10.0.0.1")", R"("::1")", R"("*.*.example.com")",
                                 R"("a*.example.com")", R"("*")", R"("")", R"("bad_label-.x")"}) {
        require_error_at(names("[" + std::string(bad) + "]"), bad,
                         "$.listeners[0].tls.certificates[0].server_names[0]",
                         kExpected + std::string(bad));
    }
    require_error_at(names(R"(["api.example.com", "API.example.com"])"), "\"API",
                     "$.listeners[0].tls.certificates[0].server_names[1]",
                     "duplicate server name \"API.example.com\" (also "
                     "$.listeners[0].tls.certificates[0].server_names[0])");
}

TEST_CASE("config::parse_config checks the keys of a listener's tls object against each other",
          "[config][tls]") {
    const TempDir d;
    const auto check = [&](std::string_view more, std::string_view needle, const char* path,
                           const std::string& message) {
        require_error_at(d(with_cert(more)), d(needle), path, message);
    };
    const std::string plaintext =
        "\"plaintext\" is used only with \"detect\": true (without detection a TLS port never "
        "serves plain HTTP)";
    check(R"("plaintext": "redirect")", "\"redirect\"", "$.listeners[0].tls.plaintext", plaintext);
    check(R"("detect": false, "plaintext": "serve")", "\"serve\"", "$.listeners[0].tls.plaintext",
          plaintext);
    // Missing keys point at the object that lacks them.
    check(R"("client_auth": "required")", "{\"client_auth\"", "$.listeners[0].tls",
          "missing required key \"client_ca\" (the CA bundle client certificates are verified "
          "against; needed with \"client_auth\": \"required\")");
    check(R"("client_auth": "optional")", "{\"client_auth\"", "$.listeners[0].tls",
          "missing required key \"client_ca\" (the CA bundle client certificates are verified "
          "against; needed with \"client_auth\": \"optional\")");
    check(R"("client_ca": "@/ca.pem")", "\"@/ca.pem", "$.listeners[0].tls.client_ca",
          "\"client_ca\" is used only with \"client_auth\": \"optional\" or \"required\"");
    check(R"("forward_client_cert": true)", "true", "$.listeners[0].tls.forward_client_cert",
          "\"forward_client_cert\" is used only with \"client_auth\": \"optional\" or "
          "\"required\" (without it no client certificate is ever verified)");
    CHECK_FALSE(
        tls_of(parse_ok(d(with_cert(R"("forward_client_cert": false)")))).forward_client_cert);
    check(R"("ciphers": "ECDHE+AESGCM")", "\"ECDHE+AESGCM\"", "$.listeners[0].tls.ciphers",
          "\"ciphers\" applies to TLS 1.2 only: it is used only with \"min_version\": \"1.2\" "
          "(TLS 1.3 suites are not configurable)");
    // An empty list is the default one, whatever the version.
    CHECK(tls_of(parse_ok(d(with_cert(R"("ciphers": "")")))).ciphers.empty());
    check(R"("session_tickets": false, "ticket_key_rotation_s": 600)", "600",
          "$.listeners[0].tls.ticket_key_rotation_s",
          "\"ticket_key_rotation_s\" is used only with \"session_tickets\": true");
    check(R"("early_data": true, "session_tickets": false)", "true",
          "$.listeners[0].tls.early_data",
          "\"early_data\" needs \"session_tickets\": true (0-RTT data is sent on a session "
          "resumed from a ticket)");
}

TEST_CASE("config::parse_config requires certificates with a cert and a key", "[config][tls]") {
    const TempDir d;
    require_error_at(listener_tls(R"("min_version": "1.3")"), "{\"min_version\"",
                     "$.listeners[0].tls", "missing required key \"certificates\"");
    require_error_at(listener_tls(R"("certificates": [])"), "[]", "$.listeners[0].tls.certificates",
                     "expected at least one certificate, found an empty array");
    require_error_at(d(listener_tls(R"("certificates": [{"cert": "@/site.pem"}])")), "{\"cert\"",
                     "$.listeners[0].tls.certificates[0]",
                     "missing required key \"key\" (the PEM private key of \"cert\")");
    require_error_at(d(listener_tls(R"("certificates": [{"key": "@/site.key"}])")), "{\"key\"",
                     "$.listeners[0].tls.certificates[0]",
                     "missing required key \"cert\" (the PEM certificate chain)");
    require_error_at(d(listener_tls(R"("certificates": ["@/site.pem"])")), "\"/tmp",
                     "$.listeners[0].tls.certificates[0]",
                     d("expected a certificate object ({\"cert\": ..., \"key\": ...}), found "
                       "\"@/site.pem\""));
    require_error_at(listener_tls(R"("certificates": [{"cert": "", "key": "k"}])"), "\"\"",
                     "$.listeners[0].tls.certificates[0].cert",
                     "expected a non-empty file name without NUL characters, found \"\"");
    require_error_at(listener_tls(R"("certificates": [{"cert": "a\u0000b", "key": "k"}])"),
                     "\"a\\u0000b\"", "$.listeners[0].tls.certificates[0].cert",
                     "expected a non-empty file name without NUL characters, found "
                     "\"a\\u0000b\"");
}

TEST_CASE("config::parse_config rejects unknown keys in the TLS objects", "[config][tls]") {
    const TempDir d;
    require_error_at(d(with_cert(R"("ssl_protocols": "TLSv1.3")")), "\"ssl_protocols\"",
                     "$.listeners[0].tls.ssl_protocols",
                     "unknown key \"ssl_protocols\"; allowed keys: certificates, min_version, "
                     "ciphers, groups, alpn, alpn_strict, detect, plaintext, "
                     "handshake_timeout_ms, client_auth, client_ca, forward_client_cert, "
                     "session_tickets, ticket_key_rotation_s, early_data");
    require_error_at(listener_tls(R"("certificates": [{"cert": "c", "key": "k", "chain": "x"}])"),
                     "\"chain\"", "$.listeners[0].tls.certificates[0].chain",
                     "unknown key \"chain\"; allowed keys: cert, key, ocsp_staple, server_names");
    require_error_at(upstream_tls(R"({"sni": "api.internal"})"), "\"sni\"",
                     "$.upstreams[0].tls.sni",
                     "unknown key \"sni\"; allowed keys: ca, verify, server_name, cert, key, alpn, "
                     "min_version, session_reuse");
}

TEST_CASE("config::parse_config refuses bad values in an upstream's tls", "[config][tls]") {
    const TempDir d;
    const std::string kExpected = "expected true, false or an object of TLS settings, found ";
    require_error_at(upstream_tls("1"), "1}", "$.upstreams[0].tls", kExpected + "1");
    require_error_at(upstream_tls(R"("yes")"), "\"yes\"", "$.upstreams[0].tls",
                     kExpected + "\"yes\"");
    require_error_at(upstream_tls("[]"), "[]", "$.upstreams[0].tls", kExpected + "an array", 1);
    require_error_at(d(upstream_tls(R"({"cert": "@/client.pem"})")), "{\"cert\"",
                     "$.upstreams[0].tls",
                     "missing required key \"key\" (the PEM private key of \"cert\")");
    require_error_at(d(upstream_tls(R"({"key": "@/client.key"})")), "{\"key\"",
                     "$.upstreams[0].tls",
                     "missing required key \"cert\" (the PEM certificate chain of \"key\")");
    const std::string kName =
        "expected a host name (\"api.internal\") or an IP address without brackets, found ";
    require_error_at(upstream_tls(R"({"server_name": "https://api.internal"})"), "\"https",
                     "$.upstreams[0].tls.server_name", kName + "\"https://api.internal\"");
    require_error_at(upstream_tls(R"({"server_name": "10.0.0.0/8"})"), "\"10.0",
                     "$.upstreams[0].tls.server_name", kName + "\"10.0.0.0/8\"");
    require_error_at(upstream_tls(R"({"alpn": ["http/1.1", "h2"]})"), "\"h2\"",
                     "$.upstreams[0].tls.alpn[1]",
                     "\"h2\" is not chosen by ALPN here: write \"protocol\": \"h2\" on the "
                     "upstream (its TLS connections then offer \"h2\" alone)");
    require_error_at(upstream_tls(R"({"alpn": ["spdy/3.1"]})"), "\"spdy/3.1\"",
                     "$.upstreams[0].tls.alpn[0]",
                     "expected one of \"http/1.1\", found \"spdy/3.1\"");
    require_error_at(upstream_tls(R"({"min_version": "1.0"})"), "\"1.0\"",
                     "$.upstreams[0].tls.min_version",
                     "expected one of \"1.2\", \"1.3\", found \"1.0\"");
}

TEST_CASE("config::parse_config reports what the TLS engine refuses in the files at their key",
          "[config][tls]") {
    const TempDir d;
    const auto cert = [&](std::string_view c, std::string_view k, std::string_view more = {}) {
        return d(listener_tls(std::string(more) + R"("certificates": [{"cert": "@/)" +
                              std::string(c) + R"(", "key": "@/)" + std::string(k) + "\"}]"));
    };
    require_error_at(cert("site.pem", "ec.key"), d("\"@/ec.key"),
                     "$.listeners[0].tls.certificates[0].key",
                     d("private key \"@/ec.key\": does not match the certificate in "
                       "\"@/site.pem\""));
    require_error_at(cert("placeholder.pem", "site.key"), d("\"@/placeholder.pem"),
                     "$.listeners[0].tls.certificates[0].cert",
                     d("certificate \"@/placeholder.pem\": not a PEM certificate (no readable "
                       "CERTIFICATE block)"));
    require_error_at(cert("site.pem", "placeholder.pem"), d("\"@/placeholder.pem"),
                     "$.listeners[0].tls.certificates[0].key",
                     d("private key \"@/placeholder.pem\": not a PEM private key"));
    require_error_at(d(listener_tls(R"("certificates": [{"cert": "@/site.pem",
                     "key": "@/site.key", "ocsp_staple": "@/placeholder.pem"}])")),
                     d("\"@/placeholder.pem"), "$.listeners[0].tls.certificates[0].ocsp_staple",
                     d("OCSP staple \"@/placeholder.pem\": not a DER OCSP response"));
    CHECK(error_of(cert("site.pem", "site.key",
                        R"("client_auth": "required", "client_ca": "@/placeholder.pem", )"))
              .path == "$.listeners[0].tls.client_ca");
    require_error_at(
        cert("site.pem", "site.key", R"("min_version": "1.2", "ciphers": "NO-SUCH-CIPHER", )"),
        "\"NO-SUCH", "$.listeners[0].tls.ciphers",
        "ciphers \"NO-SUCH-CIPHER\" is not a usable TLS 1.2 cipher list");
    // Two certificates of one key type for the same names: which one would serve is ambiguous.
    require_error_at(d(listener_tls(R"("certificates": [{"cert": "@/site.pem", "key": "@/site.key"},
                     {"cert": "@/ec.pem", "key": "@/ec.key", "server_names": ["site.test"]}])")),
                     "{\"certificates\"", "$.listeners[0].tls",
                     d("certificates \"@/site.pem\" and \"@/ec.pem\" serve the same names with "
                       "the same key type"));

    // 0-RTT exists in BoringSSL builds only; an OpenSSL build refuses it at the key.
    auto r = blitz::parse_config(cert("site.pem", "site.key", R"("early_data": true, )"));
    if (r) {
        CHECK(tls_of(*r).early_data);
    } else {
        CHECK(r.error().path == "$.listeners[0].tls.early_data");
        CHECK(r.error().message.starts_with("early_data (0-RTT) needs a BoringSSL build"));
    }
}

TEST_CASE("config::parse_config reports what the TLS engine refuses in an upstream's files at "
          "their key",
          "[config][tls]") {
    const TempDir d;
    require_error_at(d(upstream_tls(R"({"ca": "@/placeholder.pem"})")), d("\"@/placeholder.pem"),
                     "$.upstreams[0].tls.ca",
                     d("CA bundle \"@/placeholder.pem\": not a PEM certificate (no readable "
                       "CERTIFICATE block)"));
    require_error_at(d(upstream_tls(R"({"cert": "@/placeholder.pem", "key": "@/client.key"})")),
                     d("\"@/placeholder.pem"), "$.upstreams[0].tls.cert",
                     d("certificate \"@/placeholder.pem\": not a PEM certificate (no readable "
                       "CERTIFICATE block)"));
    require_error_at(d(upstream_tls(R"({"cert": "@/client.pem", "key": "@/ec.key"})")),
                     d("\"@/ec.key"), "$.upstreams[0].tls.key",
                     d("private key \"@/ec.key\": does not match the certificate in "
                       "\"@/client.pem\""));
    // One file named by two keys: the error goes to the key whose use of it failed.
    require_error_at(d(upstream_tls(R"({"ca": "@/ca.pem", "cert": "@/client.pem",
                     "key": "@/ca.pem"})")),
                     d("\"@/ca.pem"), "$.upstreams[0].tls.key",
                     d("private key \"@/ca.pem\": not a PEM private key"), 1);
}

TEST_CASE("config::parse_config reports a file that cannot be read at the key naming it",
          "[config][tls]") {
    const TempDir d;
    const auto second_key = [&](std::string_view key) {
        return d(listener_tls(R"("certificates": [{"cert": "@/site.pem", "key": "@/site.key"},
                              {"cert": "@/ec.pem", "key": ")" +
                              std::string(key) + "\"}]"));
    };
    const auto check = [&](const std::string& json, std::string_view file, const char* path,
                           std::string_view why) {
        require_error_at(json, d("\"" + std::string(file)), path,
                         d("cannot read \"" + std::string(file) + "\": " + std::string(why)));
    };
    check(second_key("@/missing.key"), "@/missing.key", "$.listeners[0].tls.certificates[1].key",
          "No such file or directory");
    check(second_key("@/dir.pem"), "@/dir.pem", "$.listeners[0].tls.certificates[1].key",
          "Is a directory");
    check(second_key("@/empty.pem"), "@/empty.pem", "$.listeners[0].tls.certificates[1].key",
          "the file is empty");
    check(d(listener_tls(R"("certificates": [{"cert": "@/site.pem", "key": "@/site.key",
          "ocsp_staple": "@/no.der"}])")),
          "@/no.der", "$.listeners[0].tls.certificates[0].ocsp_staple",
          "No such file or directory");
    check(d(with_cert(R"("client_auth": "required", "client_ca": "@/no-ca.pem")")), "@/no-ca.pem",
          "$.listeners[0].tls.client_ca", "No such file or directory");
    check(d(upstream_tls(R"({"ca": "@/no-ca.pem"})")), "@/no-ca.pem", "$.upstreams[0].tls.ca",
          "No such file or directory");
    check(d(upstream_tls(R"({"cert": "@/client.pem", "key": "@/missing.key"})")), "@/missing.key",
          "$.upstreams[0].tls.key", "No such file or directory");
    if (::geteuid() != 0) {  // root reads any file
        d.write("secret.key", "placeholder\n");
        std::filesystem::permissions(d("@/secret.key"), std::filesystem::perms::none);
        check(second_key("@/secret.key"), "@/secret.key", "$.listeners[0].tls.certificates[1].key",
              "Permission denied");
    }

    // The cross-key checks come first: a config that makes no sense is reported as such, not
    // as its first missing file.
    CHECK(error_of(listener_tls(R"("certificates": [{"cert": "/nonexistent/c",
          "key": "/nonexistent/k"}], "plaintext": "reject")"))
              .path == "$.listeners[0].tls.plaintext");
}

TEST_CASE("config::parse_config substitutes environment variables in file names", "[config][tls]") {
    const TempDir d;
    ScopedEnv dir("BLITZ_TEST_TLS_DIR", d.path().c_str());
    const blitz::Config c =
        parse_ok(listener_tls(R"("certificates": [{"cert": "${BLITZ_TEST_TLS_DIR}/site.pem",
                                          "key": "${BLITZ_TEST_TLS_DIR}/site.key"}])"));
    const blitz::TlsOptions& t = tls_of(c);
    CHECK(t.certificates[0].cert == d("@/site.pem"));
    CHECK(t.certificates[0].key == d("@/site.key"));
}

TEST_CASE("config::load_config resolves relative file names against the config's directory",
          "[config][tls]") {
    const TempDir d;
    std::filesystem::create_directory(d("@/certs"));
    std::filesystem::copy_file(d("@/site.pem"), d("@/certs/site.pem"));
    std::filesystem::copy_file(d("@/site.key"), d("@/certs/site.key"));
    d.write("blitz.json", d(listener_tls(R"("certificates": [{"cert": "certs/site.pem",
        "key": "./certs/../certs/site.key"}], "client_auth": "required",
        "client_ca": "@/ca.pem")")));
    // Loaded by a relative name, from another working directory.
    const std::filesystem::path before = std::filesystem::current_path();
    std::filesystem::current_path("/tmp");
    auto r = blitz::load_config(d.path().substr(std::string_view("/tmp/").size()) + "/blitz.json");
    std::filesystem::current_path(before);
    if (!r) {
        FAIL(r.error().to_string());
    }
    const blitz::TlsOptions& t = tls_of(*r);
    CHECK(t.certificates[0].cert == d("@/certs/site.pem"));
    CHECK(t.certificates[0].key == d("@/./certs/../certs/site.key"));  // joined, not rewritten
    CHECK(t.client_ca == d("@/ca.pem"));                               // absolute: as written

    // Without a file, parse_config keeps relative names as written (the working directory's).
    require_error_at(listener_tls(R"("certificates": [{"cert": "no/such.pem", "key": "k"}])"),
                     "\"no/such.pem\"", "$.listeners[0].tls.certificates[0].cert",
                     "cannot read \"no/such.pem\": No such file or directory");
}

TEST_CASE("config::load_config opens the files the TLS example names", "[config][tls]") {
    // config/examples/tls.json names files in /etc/blitz; on a machine without them the
    // loader must say which one is missing, and where.
    if (std::filesystem::exists("/etc/blitz/site.pem")) {
        SKIP("/etc/blitz/site.pem exists here");
    }
    auto r = blitz::load_config(BLITZ_SOURCE_DIR "/config/examples/tls.json");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().path == "$.listeners[0].tls.certificates[0].cert");
    CHECK(r.error().message == "cannot read \"/etc/blitz/site.pem\": No such file or directory");
    CHECK(r.error().line > 0);

    // Without opening them, every key of it is read.
    auto all = blitz::config::load(BLITZ_SOURCE_DIR "/config/examples/tls.json", false);
    if (!all) {
        FAIL(all.error().to_string());
    }
    REQUIRE(all->listeners.size() == 2);
    REQUIRE(all->listeners[0].tls.has_value());
    CHECK(all->listeners[0].tls->certificates.size() == 3);
    CHECK(all->listeners[0].tls->detect);
    REQUIRE(all->listeners[1].tls.has_value());
    CHECK(all->listeners[1].tls->client_auth == ClientAuth::Required);
    REQUIRE(all->upstreams.size() == 2);
    CHECK(all->upstreams[0]->options().tls.server_name == "api.internal");
    CHECK(all->upstreams[1]->options().tls.enabled);
}

TEST_CASE("config::parse_config offers h2 over ALPN only where the listener's http2 is on",
          "[config][tls][http2]") {
    const TempDir d;
    using Alpn = std::vector<std::string>;
    // "http2" may come before or after "tls": the result is the same.
    for (const bool first : {true, false}) {
        INFO("http2 written " << (first ? "before" : "after") << " tls");
        const auto alpn = [&](std::string_view http2, std::string_view more = {}) {
            const blitz::Config c = parse_ok(d(tls_http2(http2, more, first)));
            return tls_of(c).alpn;
        };
        // Without "alpn" the list follows http2.
        CHECK(alpn("true") == Alpn{"h2", "http/1.1"});
        CHECK(alpn("{}") == Alpn{"h2", "http/1.1"});
        CHECK(alpn(R"({"max_concurrent_streams": 10})") == Alpn{"h2", "http/1.1"});
        CHECK(alpn("false") == Alpn{"http/1.1"});
        CHECK(alpn(R"({"enabled": false})") == Alpn{"http/1.1"});
        // A written list is kept as written.
        CHECK(alpn("true", R"("alpn": ["h2"])") == Alpn{"h2"});
        CHECK(alpn("true", R"("alpn": ["http/1.1", "h2"])") == Alpn{"http/1.1", "h2"});
        CHECK(alpn("true", R"("alpn": ["http/1.1"])") == Alpn{"http/1.1"});
        CHECK(alpn("false", R"("alpn": ["http/1.1"])") == Alpn{"http/1.1"});

        // "h2" where HTTP/2 is off is refused at the element, naming what turned it off.
        require_error_at(d(tls_http2("false", R"("alpn": ["http/1.1", "h2"])", first)), "\"h2\"",
                         "$.listeners[0].tls.alpn[1]",
                         "\"h2\" needs http2 enabled on this listener (turned off at "
                         "$.listeners[0].http2)");
        require_error_at(d(tls_http2(R"({"max_concurrent_streams": 5, "enabled": false})",
                                     R"("alpn": ["h2"])", first)),
                         "\"h2\"", "$.listeners[0].tls.alpn[0]",
                         "\"h2\" needs http2 enabled on this listener (turned off at "
                         "$.listeners[0].http2.enabled)");
    }

    // Each listener is judged by its own http2.
    const std::string two = d(R"({"listeners": [
        {"address": "127.0.0.1:8443", "tls": {"alpn": ["h2"],
         "certificates": [{"cert": "@/site.pem", "key": "@/site.key"}]}},
        {"address": "127.0.0.1:8444", "http2": false, "tls": {"alpn": ["h2"],
         "certificates": [{"cert": "@/site.pem", "key": "@/site.key"}]}}], "routes": []})");
    require_error_at(two, "\"h2\"", "$.listeners[1].tls.alpn[0]",
                     "\"h2\" needs http2 enabled on this listener (turned off at "
                     "$.listeners[1].http2)",
                     1);

    // An error inside the listener that comes later in the document is reported first: the
    // check across "tls" and "http2" runs once the listener is read.
    CHECK(error_of(d(tls_http2("false", R"("alpn": ["h2"], "detect": 1)", true))).path ==
          "$.listeners[0].tls.detect");
}

TEST_CASE("config::load_config loads the HTTP/2 example with certificates named by the environment",
          "[config][tls][http2]") {
    const TempDir d;
    const std::string cert = d("@/site.pem");
    const std::string key = d("@/site.key");
    ScopedEnv cert_env("BLITZ_TLS_CERT", cert.c_str());
    ScopedEnv key_env("BLITZ_TLS_KEY", key.c_str());
    ScopedEnv port("BLITZ_PORT", nullptr);
    ScopedEnv tls_port("BLITZ_TLS_PORT", nullptr);
    auto r = blitz::load_config(BLITZ_SOURCE_DIR "/config/examples/http2.json");
    if (!r) {
        FAIL(r.error().to_string());
    }
    const blitz::Config& c = *r;
    REQUIRE(c.listeners.size() == 2);
    const blitz::ListenerOptions& https = c.listeners[0];
    REQUIRE(https.tls.has_value());
    CHECK(https.tls->certificates[0].cert == cert);
    CHECK(https.tls->alpn == std::vector<std::string>{"h2", "http/1.1"});
    CHECK(https.http2.enabled);
    CHECK(https.http2.max_concurrent_streams == 128);
    CHECK(https.http2.connection_window == 4'194'304);
    const blitz::ListenerOptions& h2c = c.listeners[1];
    CHECK(h2c.address == "127.0.0.1:8080");
    CHECK_FALSE(h2c.tls.has_value());
    CHECK(h2c.http2.enabled);
    CHECK(h2c.http2.max_concurrent_streams == blitz::Http2Options{}.max_concurrent_streams);
    REQUIRE(c.upstreams.size() == 1);
    auto table = c.router.freeze();
    REQUIRE(table.has_value());
    const blitz::RouteMatch api = (*table)->match("example.com", "/api/v1", blitz::Method::Get);
    REQUIRE(api.route != nullptr);
    CHECK(api.route->proxy.upstream == c.upstreams[0]);
    const blitz::RouteMatch hello = (*table)->match("example.com", "/hello", blitz::Method::Get);
    REQUIRE(hello.route != nullptr);
    CHECK(hello.route->direct.status == 200);

    // Without the variables it names files in /etc/blitz, like the TLS example.
    if (!std::filesystem::exists("/etc/blitz/site.pem")) {
        ScopedEnv no_cert("BLITZ_TLS_CERT", nullptr);
        auto missing = blitz::load_config(BLITZ_SOURCE_DIR "/config/examples/http2.json");
        REQUIRE_FALSE(missing.has_value());
        CHECK(missing.error().path == "$.listeners[0].tls.certificates[0].cert");
        CHECK(missing.error().message ==
              "cannot read \"/etc/blitz/site.pem\": No such file or directory");
    }
}

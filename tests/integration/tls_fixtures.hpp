#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "harness.hpp"

/// TLS integration-test fixtures: a test PKI made at run time with the `openssl` command-line
/// tool, blitzd started on a TLS listener, and the real TLS peers the tests talk to (curl,
/// `openssl s_client`, Debian's nginx as an HTTPS upstream). Nothing here links a TLS library:
/// the peers are independent of Blitz's TLS code, so a bug cannot hide by being on both sides.
namespace blitz::itest {

/// A certificate (PEM chain, leaf first) and its private key.
struct KeyPair {
    std::string cert;
    std::string key;
};

/// The test PKI, all files in one temporary directory:
///
///   root CA ("Blitz Test Root CA", ECDSA P-256, the trust anchor clients get)
///     └ intermediate ("Blitz Test Intermediate CA"), which signs every server certificate;
///       server certificate files hold the leaf then the intermediate (a full chain)
///   client CA ("Blitz Test Client CA"), which signs the client certificate
///   other CA ("Blitz Other CA"), which nothing trusts
///
/// Thread: built once, read-only after. Lifetime: the process (see pki()).
struct Pki {
    std::string dir;
    std::string ca;         ///< root CA certificate: what clients trust
    std::string other_ca;   ///< an unrelated CA certificate
    std::string client_ca;  ///< CA of client certificates (the listeners' client_ca)

    KeyPair a_ec;     ///< CN a.test, SAN DNS:a.test, ECDSA P-256
    KeyPair a_rsa;    ///< CN a.test, SAN DNS:a.test, RSA 2048
    KeyPair b_ec;     ///< CN b.test, SAN DNS:b.test, ECDSA P-256
    KeyPair b_rsa;    ///< CN b.test, SAN DNS:b.test, RSA 2048
    KeyPair wild_ec;  ///< CN *.wild.test, SAN DNS:*.wild.test, ECDSA P-256
    /// CN upstream.test, SAN DNS:upstream.test and IP:127.0.0.1 (nginx as an HTTPS upstream)
    KeyPair upstream;
    KeyPair expired;  ///< CN expired.test, valid January 2020 only
    /// a.test's ECDSA certificate with b.test's key: a mismatched pair
    KeyPair mismatched;
    /// CN client1, SAN DNS:client1.test and URI:spiffe://blitz.test/client1, clientAuth,
    /// signed by the client CA
    KeyPair client;
    /// CN client2, SAN DNS:client2.elsewhere.test, clientAuth, signed by the client CA
    KeyPair client2;
    /// CN client3, SAN DNS:client3.elsewhere.test then URI:spiffe://blitz.test/client1 (client1's
    /// SPIFFE ID as its second name), clientAuth, signed by the client CA
    KeyPair client3;
    /// CN rogue, clientAuth, signed by the other CA: a client certificate nobody should accept
    KeyPair rogue_client;
    /// DER OCSP response ("good") for a_ec, signed by its issuer (the intermediate)
    std::string a_ec_ocsp;
    std::string not_pem;  ///< a file that holds no PEM at all
    std::string missing;  ///< a path that does not exist

    /// `dir` + "/" + `name`.
    std::string path(std::string_view name) const;
};

/// The process-wide test PKI, made on first use (a few seconds: RSA keys); throws
/// std::runtime_error with openssl's output when a step fails.
const Pki& pki();

/// `s` as a JSON string literal.
std::string json_quote(std::string_view s);

/// A certificates entry: {"cert": ..., "key": ...} plus "server_names" and "ocsp_staple"
/// when given.
std::string cert_entry(const KeyPair& pair, const std::vector<std::string>& server_names = {},
                       std::string_view ocsp_staple = "");

/// A "listeners" array of one listener on 127.0.0.1:0 whose "tls" object is `tls` (JSON).
std::string tls_listener(std::string_view tls);

/// A whole blitzd config document (with "backend" from test_backend() and one worker).
std::string tls_config(std::string_view listeners, std::string_view routes,
                       std::string_view upstreams = "[]");

/// Routes answering GET /hello with 200 "Hello, World!" (text/plain), and /any with
/// 200 "any".
extern const char* const kTlsRoutes;

/// blitzd with a config written to a file of its own (in `config_dir` when given, so relative
/// paths resolve against it; else in a temporary directory), started and announced.
///
/// Lifetime: the destructor stops a blitzd still running with SIGTERM and checks (Catch2
/// CHECK) that it exits with status 0.
class TlsBlitzd {
public:
    /// Throws std::runtime_error with blitzd's stderr when it does not announce `listeners`
    /// listeners within the deadline.
    explicit TlsBlitzd(std::string_view json, std::size_t listeners = 1,
                       std::string_view config_dir = "");
    ~TlsBlitzd();
    TlsBlitzd(const TlsBlitzd&) = delete;
    TlsBlitzd& operator=(const TlsBlitzd&) = delete;

    std::uint16_t port(std::size_t i = 0) const { return ports_.at(i); }
    /// "https://HOST:PORT" + path (curl gets --resolve HOST:PORT:127.0.0.1 to reach it).
    std::string https_url(std::string_view host, std::string_view path, std::size_t i = 0) const;
    /// "http://127.0.0.1:PORT" + path.
    std::string http_url(std::string_view path, std::size_t i = 0) const;
    /// "HOST:PORT:127.0.0.1", for curl --resolve.
    std::string resolve(std::string_view host, std::size_t i = 0) const;
    /// A raw TCP connection to listener i.
    Client connect(std::size_t i = 0) const;
    Process& process() { return *process_; }
    /// Sends `sig` and returns how blitzd ended (the destructor then checks nothing).
    ExitStatus stop(int sig);

private:
    std::unique_ptr<TempDir> dir_;
    std::string config_path_;
    bool remove_config_ = false;
    std::unique_ptr<Process> process_;
    std::vector<std::uint16_t> ports_;
    bool stopped_ = false;
};

/// Runs blitzd on `json` expecting it to refuse to start; returns its status and output
/// (killed after 10 s if it does start).
CommandResult blitzd_refuses(std::string_view json);

/// curl over HTTPS to `server` as `host`, trusting the test root CA: prepends
/// `--resolve HOST:PORT:127.0.0.1 --cacert CA` to `args` (harness curl(): -sS, 5 s limit).
/// `args` must contain the URL(s), e.g. server.https_url("a.test", "/hello").
CommandResult curl_https(const TlsBlitzd& server, std::string_view host,
                         std::vector<std::string> args);

/// `openssl s_client -connect 127.0.0.1:PORT` plus `args`. With `input`, it is sent once the
/// handshake is done and s_client reads until the server closes (-ign_eof), so the request
/// should say "Connection: close"; without, s_client closes right after the handshake. Killed
/// after 10 s. s_client prints the handshake to stdout and errors to stderr: `out` + `err`.
CommandResult s_client(std::uint16_t port, const std::vector<std::string>& args,
                       std::string_view input = "");

/// What `openssl s_client` printed about a handshake.
struct SClientReport {
    bool handshake = false;    ///< a cipher was negotiated (a "New, "/"Reused, " line)
    bool reused = false;       ///< "Reused, TLSv1.x"
    std::string version;       ///< "TLSv1.3"
    std::string subject;       ///< the leaf's subject as printed ("CN = a.test")
    std::string alpn;          ///< empty when "No ALPN negotiated"
    int server_key_bits = 0;   ///< "Server public key is N bit"
    std::string peer_sig_type; ///< "ECDSA", "RSA-PSS"
    bool verified = false;     ///< "Verify return code: 0 (ok)"
    std::string text;          ///< everything printed, for failure messages
};
SClientReport parse_s_client(const CommandResult& r);

/// Lowercase hex SHA-256 of the DER form of the PEM certificate in `cert_file`.
std::string cert_sha256(const std::string& cert_file);

/// Debian's nginx serving HTTPS on 127.0.0.1 with `pair` (one worker, in the foreground),
/// `server_extra` inside the server block (locations and directives). Every response carries
/// X-Reused ($ssl_session_reused), X-SNI ($ssl_server_name) and X-Client-Verify
/// ($ssl_client_verify).
///
/// Lifetime: the returned Nginx stops it when destroyed.
/// `listen_flags` " ssl http2" serves HTTP/2 through ALPN as well.
Nginx nginx_tls(const KeyPair& pair, std::string_view server_extra, std::string_view listen_flags = " ssl");

}  // namespace blitz::itest

#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <sys/uio.h>

#include <blitz/result.hpp>
#include <blitz/tls.hpp>

#include "tls/output.hpp"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;

/// TLS over caller-supplied buffers: ciphertext comes in from receive buffers and goes out through
/// a buffer the caller sends; nothing here does I/O or knows the reactor. Written against the API
/// BoringSSL shares with OpenSSL 3 (the build picks one, see meson option `tls`); the differences
/// live in compat.hpp.
namespace blitz::tls {

class ServerContext;
class ClientContext;
struct PeerText;

/// Shared TLS state of one listener: certificates by SNI name, ALPN, client-auth policy, ticket
/// keys. Built once (at listen or reload) and shared by every reactor.
///
/// Certificates with the same names (server_names, else the DNS SANs, else the CN) form one
/// virtual host, with at most one RSA and one ECDSA certificate; clients whose
/// signature_algorithms allow our ECDSA certificate get it, others the RSA one. The host is
/// chosen from the ClientHello before any ticket is looked at: exact SNI name, then a one-label
/// wildcard, then the host of the first certificate. Session tickets are stateless (no server
/// cache); their keys are derived per host from a secret that rotates every
/// `ticket_key_rotation`, and the session id context is per host too, so a ticket resumes only
/// on the host (and client-auth policy) that issued it.
///
/// Thread: immutable after make() except the ticket keys, which rotate under their own lock
/// (taken once per handshake that issues or presents a ticket, never per request).
/// Lifetime: shared_ptr; sessions hold a reference.
class ServerContext {
public:
    /// Loads and checks every certificate (exists, readable, PEM, not expired or not yet valid,
    /// matches its key, has a name), the OCSP staples and the client CA; an error names the
    /// file and what is wrong with it. Refuses `early_data` in an OpenSSL build.
    static Result<std::shared_ptr<ServerContext>, std::string> make(const TlsOptions& options);
    virtual ~ServerContext() = default;
    virtual const TlsOptions& options() const noexcept = 0;
};

/// TLS toward one upstream: trust anchors (the CA bundle, or the system one), client
/// certificate, ALPN. Sessions to resume are kept by the caller (see Session::take_session).
///
/// Thread: shared by all reactors. Lifetime: shared_ptr, owned by the upstream's cluster.
class ClientContext {
public:
    static Result<std::shared_ptr<ClientContext>, std::string> make(
        const UpstreamTlsOptions& options);
    virtual ~ClientContext() = default;
    virtual const UpstreamTlsOptions& options() const noexcept = 0;
};

/// What a call into the session asks of the caller next.
/// Why a handshake failed, coarsely (a metric label: a few values, stable across libraries).
enum class FailureKind : std::uint8_t {
    Malformed,    ///< not TLS, or broken records and messages ("wrong version number")
    Version,      ///< no protocol version in common
    Cipher,       ///< no cipher suite, group or signature algorithm in common
    Alpn,         ///< no application protocol in common (or none offered under alpn_strict)
    Certificate,  ///< a certificate was refused (client certificates, upstream servers)
    Other,
};
inline constexpr std::size_t kFailureKinds = 6;
/// The label of `kind` ("malformed", "version", "cipher", "alpn", "certificate", "other").
std::string_view failure_kind_name(FailureKind kind) noexcept;

enum class Status : std::uint8_t {
    Ok,        ///< progress was made (handshake done, or bytes produced)
    WantRead,  ///< more ciphertext is needed
    Closed,    ///< the peer sent close_notify
    Error,     ///< fatal: an alert (if any) is in the output; close after sending it
};

/// One TLS connection (server or client side).
///
/// Input: set_input() lends a span of ciphertext; handshake()/read() consume it through a BIO
/// that copies straight from the span into the library's record buffer. After a call returns
/// WantRead the whole span was consumed; the caller may reuse the receive buffer. After Ok the
/// rest (input_left()) is still the caller's span: call read() again before reusing it.
///
/// Output: every record the session writes (handshake flights, tickets, alerts, application data)
/// is appended to an output buffer taken from the BufferSource; pending_output() exposes it, the
/// caller sends it and reports output_sent(). Records written while a send is in flight are
/// appended after the bytes already exposed (which never move) or, once that buffer is full, go
/// to a second buffer that becomes pending after the first one drains. write() encrypts only
/// what fits in those two buffers; a handshake flight larger than them spills into heap memory
/// (rare). Buffers go back to the source when drained: an idle session holds no I/O buffer.
/// Application data is never returned before the handshake completed (except TLS 1.3 early data
/// on a listener with `early_data`, see in_early_data()).
///
/// Thread: one reactor. Lifetime: owned by its connection; reset() makes it reusable. Not
/// movable (the library's BIO points at it).
class Session {
public:
    explicit Session(BufferSource& buffers) noexcept;
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    /// Starts a server handshake. False when out of memory.
    bool start_server(const std::shared_ptr<ServerContext>& context) noexcept;
    /// Starts a client handshake to the context's `server_name`, or `server_name` when that is
    /// empty: SNI unless it is an IP address (an IPv6 one may be in brackets), and the name (or
    /// IP SAN) the certificate is checked against. Offers `reuse` for resumption when not null
    /// (the caller keeps its reference). False when out of memory, or when the context verifies
    /// and there is no name to check (error_reason() says so).
    bool start_client(const std::shared_ptr<ClientContext>& context, std::string_view server_name,
                      SSL_SESSION* reuse) noexcept;
    /// Frees the connection state and gives the output buffers back; the session can start again.
    void reset() noexcept;
    bool active() const noexcept { return ssl_ != nullptr; }

    /// Lends ciphertext to the next handshake()/read() calls (replacing any unread rest).
    void set_input(const char* data, std::size_t len) noexcept;
    std::size_t input_left() const noexcept { return in_len_ - in_pos_; }

    /// Drives the handshake. Ok once it completed (then read()); WantRead for more input;
    /// Error when it failed (error_reason()), Closed when the peer closed. Send the output after
    /// every call, Ok included: OpenSSL writes its session tickets as the handshake ends
    /// (BoringSSL sends them with the first write() instead).
    Status handshake() noexcept;
    /// The handshake completed (or, server side, accepted 0-RTT data: see in_early_data()).
    bool handshake_done() const noexcept;
    /// Decrypts into out (up to cap > 0 bytes), finishing the handshake first if needed. Ok with
    /// `produced` > 0; WantRead when the input holds no complete record; Closed on close_notify;
    /// Error otherwise.
    Status read(char* out, std::size_t cap, std::size_t& produced) noexcept;
    /// Encrypts from the iovecs up to `budget` plaintext bytes and returns how many it consumed
    /// (0 before the handshake, after an error, or when the output buffers are full). Small
    /// pieces are gathered into full records through a 16 KiB stack area; pieces of a record or
    /// more are encrypted from the caller's memory.
    std::size_t write(const iovec* iov, unsigned count, std::size_t budget) noexcept;
    /// Queues a close_notify alert (after a completed handshake; at most once).
    void shutdown() noexcept;
    /// An Error was returned: the session is unusable.
    bool failed() const noexcept { return failed_; }

    /// Ciphertext ready to send (empty when none). Stays put until output_sent() consumed it.
    std::string_view pending_output() const noexcept { return out_.front(); }
    void output_sent(std::size_t n) noexcept { out_.consume(n); }
    bool has_output() const noexcept { return !out_.empty(); }

    /// After the handshake: the negotiated parameters (views live as long as the session).
    std::string_view alpn() const noexcept;
    std::string_view server_name() const noexcept;
    std::string_view version() const noexcept;
    std::string_view cipher() const noexcept;
    bool resumed() const noexcept;
    /// Server side: the handshake is not finished yet and read() returns 0-RTT data, which an
    /// attacker may replay (RFC 8446 §8). Always false in an OpenSSL build.
    bool in_early_data() const noexcept;
    /// A peer certificate was presented and verified (client certificates on a listener with
    /// client_auth; server certificates with UpstreamTlsOptions::verify).
    bool peer_verified() const noexcept;
    /// A peer certificate was presented (verified or not).
    bool peer_presented() const noexcept;
    /// RFC 2253 subject and first DNS/URI SAN of the peer certificate, formatted once after the
    /// handshake and kept by the session; empty without a peer certificate.
    std::string_view peer_subject() noexcept;
    std::string_view peer_san() noexcept;
    /// Every DNS, URI, email and IP address SAN of the peer certificate (PeerText::sans), kept
    /// by the session like peer_subject(); empty without a peer certificate.
    std::span<const std::string_view> peer_sans() noexcept;
    /// `X-Forwarded-Client-Cert` value for a verified peer, in Envoy's format:
    /// `Hash=<SHA-256 of the DER, hex>;Subject="<RFC 2253>";URI=<uri>;DNS=<name>` (one URI/DNS
    /// element per SAN); empty otherwise.
    std::string_view peer_xfcc() noexcept;
    /// Client side: the OCSP response the server stapled (empty when none; only sent to clients
    /// that asked with status_request).
    std::string_view ocsp_response() const noexcept;
    /// Why the last Error happened, for logs ("certificate verify failed: hostname mismatch",
    /// "no shared ALPN protocol"), in lower case whichever library is used.
    std::string_view error_reason() const noexcept { return error_; }
    /// The kind of the last Error, for the failure counters (TLS handshakes failed by reason).
    FailureKind failure_kind() const noexcept;

    /// Client side: the latest resumable session the server gave (TLS 1.3 tickets arrive after
    /// the handshake, so this fills once read() processed them), or nullptr. The caller owns the
    /// reference it gets (SSL_SESSION_free) and passes it to start_client() later.
    SSL_SESSION* take_session() noexcept;

    /// The library object, for tests and diagnostics (owned by the session; null when inactive).
    SSL* native_handle() const noexcept { return ssl_; }

private:
    friend struct SessionIo;

    bool begin(SSL_CTX* ctx) noexcept;
    Status fail_status(int ret) noexcept;
    bool seal(const char* data, std::size_t len) noexcept;
    const PeerText* peer() noexcept;

    SSL* ssl_ = nullptr;
    const char* in_ = nullptr;
    std::size_t in_len_ = 0;
    std::size_t in_pos_ = 0;
    OutputQueue out_;
    std::unique_ptr<PeerText> peer_;
    std::shared_ptr<void> context_;  // keeps the SSL_CTXs alive
    SSL_SESSION* next_session_ = nullptr;
    const char* refusal_ = nullptr;  // set by a refusing callback
    std::string error_;
    bool established_ = false;
    bool verify_peer_ = false;
    bool failed_ = false;
    bool closed_ = false;
    bool shutdown_sent_ = false;
};

/// What the first bytes on a detecting listener are.
enum class Detected : std::uint8_t { NeedMore, Tls, Plain };
/// 0x16 (a TLS handshake record) starts TLS; anything else is plain text. One byte decides, so
/// the budget is one byte; `NeedMore` only for an empty span.
Detected detect(const char* data, std::size_t len) noexcept;

}  // namespace blitz::tls

#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace blitz {

/// Lowest TLS version a peer may negotiate. TLS 1.3 by default; TLS 1.2 for older clients.
enum class TlsVersion : std::uint8_t { Tls12, Tls13 };

/// One certificate of a TLS listener: a PEM chain (leaf first) and its private key (RSA or
/// ECDSA). Several may serve the same names, one per key type: clients that support ECDSA get
/// the ECDSA one.
///
/// `server_names` are the SNI names it serves ("api.example.com", "*.example.com"); empty means
/// the DNS names of the certificate's subjectAltName (its CN when it has none). A wildcard
/// matches exactly one label. The first certificate of the list is the default one, for
/// clients that send no SNI or a name no certificate serves.
struct CertificateOptions {
    std::string cert;  ///< PEM file: the leaf, then the intermediates
    std::string key;   ///< PEM file: the private key
    /// DER OCSP response file stapled to handshakes that ask for it (read at start).
    std::string ocsp_staple;
    std::vector<std::string> server_names;
};

/// Client certificates on a listener (mutual TLS).
enum class ClientAuth : std::uint8_t {
    None,      ///< not asked for
    Optional,  ///< asked for; verified when sent (a bad one fails the handshake)
    Required,  ///< a verified certificate is needed to complete the handshake
};

/// What a TLS listener with `detect` does with a connection that starts in plain HTTP.
enum class PlaintextPolicy : std::uint8_t {
    Serve,     ///< serve it as HTTP/1.1 (HTTP and HTTPS on one port)
    Redirect,  ///< answer 308 to the same URL with https, then close
    Reject,    ///< answer 400, then close
};

/// TLS on a listener.
///
/// TLS 1.3 tickets carry resumption: their keys are made at start, rotated every
/// `ticket_key_rotation` (the previous key still decrypts for one more period) and shared by all
/// reactors; a ticket is bound to the certificate set and client-auth policy that issued it, so a
/// session from one virtual host never resumes on another.
struct TlsOptions {
    std::vector<CertificateOptions> certificates;  ///< at least one
    TlsVersion min_version = TlsVersion::Tls13;
    /// TLS 1.2 cipher list (OpenSSL syntax); empty = ECDHE with AES-GCM or ChaCha20 only.
    /// TLS 1.3 suites are not configurable (BoringSSL fixes them; all three are safe).
    std::string ciphers;
    /// Key-exchange groups in preference order.
    std::vector<std::string> groups = {"X25519", "P-256", "P-384"};
    /// ALPN protocols the listener accepts, in server preference order. "h2" is offered only
    /// while the listener's Http2Options::enabled is on (Server::listen drops it otherwise).
    std::vector<std::string> alpn = {"h2", "http/1.1"};
    /// Refuse handshakes that offer no ALPN at all, against cross-protocol attacks (ALPACA).
    /// Without it a client that sends no ALPN gets HTTP/1.1. An offer without any protocol of
    /// `alpn` is always refused (a fatal no_application_protocol alert; BoringSSL answers a
    /// handshake without ALPN under this option with handshake_failure).
    bool alpn_strict = false;
    /// Accept plain HTTP on this port too: the first byte decides (0x16 starts TLS).
    bool detect = false;
    PlaintextPolicy plaintext = PlaintextPolicy::Serve;  ///< with `detect`
    /// The first byte must come, and the handshake complete, within this time.
    std::chrono::milliseconds handshake_timeout{10'000};
    ClientAuth client_auth = ClientAuth::None;
    std::string client_ca;  ///< PEM bundle of CAs for client certificates (needed with client_auth)
    /// Proxied requests carry `X-Forwarded-Client-Cert` (Subject, DNS and URI SANs, SHA-256 of
    /// the certificate) for a verified client certificate. Whatever a client sends in that header
    /// is removed on every listener, with or without this option.
    bool forward_client_cert = false;
    bool session_tickets = true;
    std::chrono::seconds ticket_key_rotation{3600};
    /// TLS 1.3 0-RTT (BoringSSL builds only). Early data can be replayed by an attacker, so only
    /// safe methods (GET, HEAD, OPTIONS) are admitted in it — anything else gets 425 Too Early —
    /// and proxied requests that arrived in it carry `Early-Data: 1` (RFC 8470).
    bool early_data = false;
};

/// TLS toward an upstream's endpoints.
struct UpstreamTlsOptions {
    bool enabled = false;
    /// PEM bundle the server certificate must chain to; empty = the system bundle.
    std::string ca;
    /// Check the chain and the host name. Turning it off is for tests and is logged as a warning.
    bool verify = true;
    /// SNI and the name the certificate must carry; empty = the endpoint's host name (its
    /// address for numeric endpoints, which then gets no SNI and is checked as an IP SAN).
    std::string server_name;
    std::string cert;  ///< client certificate (PEM chain) for upstreams that ask for one
    std::string key;
    std::vector<std::string> alpn = {"http/1.1"};
    TlsVersion min_version = TlsVersion::Tls12;
    /// Resume sessions across pooled connections to the same endpoint.
    bool session_reuse = true;

    bool operator==(const UpstreamTlsOptions&) const = default;
};

/// What a TLS connection negotiated, as filters see it (Exchange::tls()). Views live as long
/// as the exchange.
struct TlsInfo {
    std::string_view version;      ///< "TLSv1.3"
    std::string_view cipher;       ///< "TLS_AES_128_GCM_SHA256"
    std::string_view server_name;  ///< SNI, empty when none was sent
    std::string_view alpn;         ///< empty when none was negotiated
    bool resumed = false;
    bool early_data = false;  ///< this request arrived in 0-RTT data
    /// A client certificate was presented (and, on a listener with client_auth, verified: a
    /// bad one fails the handshake).
    bool client_presented = false;
    /// A client certificate was presented and verified against the listener's client_ca.
    bool client_verified = false;
    std::string_view client_subject;  ///< RFC 2253 form, empty without a certificate
    std::string_view client_san;      ///< first DNS or URI subjectAltName, empty if none
    /// Every DNS, URI, email (rfc822Name) and IP address subjectAltName of the client
    /// certificate, in certificate order, IP addresses in textual form; empty without one.
    std::span<const std::string_view> client_sans;
};

}  // namespace blitz

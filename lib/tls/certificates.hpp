#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <blitz/result.hpp>
#include <blitz/tls.hpp>

#include "tls/compat.hpp"

/// Certificate files: loading with errors that name the file, SNI names, peer descriptions.
namespace blitz::tls {

enum class KeyType : std::uint8_t { Ecdsa, Rsa };

/// One certificate of a listener, or a client certificate, loaded and checked.
///
/// Thread: value type. Lifetime: owns its references.
struct LoadedCertificate {
    X509Ptr leaf;
    std::vector<X509Ptr> chain;  ///< intermediates, in file order
    PkeyPtr key;
    KeyType type = KeyType::Ecdsa;
    /// ECDSA: the TLS 1.3 SignatureScheme its curve needs (ecdsa_secp256r1_sha256 = 0x0403, ...).
    std::uint16_t tls13_sigalg = 0;
    /// Lower-case SNI names it serves; "*.example.com" is a one-label wildcard.
    std::vector<std::string> names;
    std::string ocsp;  ///< DER OCSP response, empty without a staple
};

/// Reads a whole regular file (at most `max_bytes`). Errors read `<what> "<path>": <reason>`.
Result<std::string, std::string> read_file(const std::string& path, std::string_view what,
                                           std::size_t max_bytes);

/// Loads `options.cert` (leaf then chain), `options.key` and `options.ocsp_staple`; checks every
/// certificate's validity dates, that the key is RSA or ECDSA and matches the leaf, and (with
/// `need_names`) that there is a name to serve: `server_names`, else the leaf's DNS SANs, else
/// its CN.
Result<LoadedCertificate, std::string> load_certificate(const CertificateOptions& options,
                                                        bool need_names);

/// Loads a PEM bundle of CA certificates (at least one).
Result<std::vector<X509Ptr>, std::string> load_ca_bundle(const std::string& path,
                                                         std::string_view what);

/// Lower-cases and checks an SNI name given in configuration ("api.example.com",
/// "*.example.com"); empty when it is not a host name.
std::string normalize_server_name(std::string_view name);

/// What the session tells filters about a peer certificate.
///
/// Thread: owner's. Lifetime: held by the Session (behind a pointer, never moved once filled),
/// because `san_views` points into `sans`; copying is deleted for that reason.
struct PeerText {
    PeerText() = default;
    PeerText(const PeerText&) = delete;
    PeerText& operator=(const PeerText&) = delete;

    std::string subject;  ///< RFC 2253
    std::string san;      ///< first DNS or URI subjectAltName
    /// Every DNS, URI, email (rfc822Name) and IP address subjectAltName, in certificate order;
    /// IP addresses in their textual form ("192.0.2.1", "2001:db8::1").
    std::vector<std::string> sans;
    std::vector<std::string_view> san_views;  ///< views of `sans`, for TlsInfo::client_sans
    std::string xfcc;  ///< Envoy's X-Forwarded-Client-Cert element (verified peers only)
};
/// Formats `cert`; `xfcc` only when `verified`. Bytes that may not appear in a header field are
/// replaced by '?'.
void describe_peer(X509* cert, bool verified, PeerText& out);

}  // namespace blitz::tls

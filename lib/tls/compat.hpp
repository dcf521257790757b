#pragma once

// The one place where BoringSSL (Debian's android-libboringssl, API 17) and OpenSSL 3 differ.
// Everything else in lib/tls uses the API both share; see ../shared/DEPS.md §4.2 and §5.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#if !defined(OPENSSL_IS_BORINGSSL)
#include <openssl/core_names.h>
#include <openssl/params.h>
#endif

namespace blitz::tls {

// Owning handles for library objects.
template <class T, void (*Free)(T*)>
struct LibraryFree {
    void operator()(T* p) const noexcept { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, LibraryFree<X509, X509_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, LibraryFree<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, LibraryFree<BIO, BIO_free_all>>;
using CtxPtr = std::unique_ptr<SSL_CTX, LibraryFree<SSL_CTX, SSL_CTX_free>>;
using StorePtr = std::unique_ptr<X509_STORE, LibraryFree<X509_STORE, X509_STORE_free>>;

}  // namespace blitz::tls

namespace blitz::tls::compat {

#if defined(OPENSSL_IS_BORINGSSL)
inline constexpr bool kBoringSsl = true;
#else
inline constexpr bool kBoringSsl = false;
#endif

/// OpenSSL keeps an RSA and an ECDSA certificate side by side in one SSL_CTX and serves the one
/// the client's signature_algorithms allow; BoringSSL (2022) holds one certificate per SSL_CTX,
/// so a virtual host with both key types gets one SSL_CTX per type and the ClientHello callback
/// picks.
inline constexpr bool kContextPerKeyType = kBoringSsl;
/// TLS 1.3 0-RTT is offered only through BoringSSL's API.
inline constexpr bool kEarlyData = kBoringSsl;

/// The ClientHello fields the early callback decides on: raw extension bodies (empty when
/// absent), valid during the callback only.
struct ClientHello {
    SSL* ssl = nullptr;
    std::span<const std::uint8_t> server_name;
    std::span<const std::uint8_t> signature_algorithms;
    std::span<const std::uint8_t> supported_versions;
    std::span<const std::uint8_t> cipher_suites;
    bool has_alpn = false;
};
/// Defined in context.cpp: picks the virtual host (SSL_set_SSL_CTX) before the library looks at
/// tickets; false refuses the handshake with the TLS alert `alert`.
bool on_client_hello(const ClientHello& hello, std::uint8_t& alert) noexcept;

/// Keys of one ticket: its public name, AES-256-CBC key and HMAC-SHA256 key (the ticket format
/// both libraries' ticket-key callbacks share).
struct TicketKey {
    std::uint8_t name[16];
    std::uint8_t aes[32];
    std::uint8_t mac[32];
};
/// Defined in context.cpp. Encrypting (`name` null): fills `key`, returns 1 (-1 on failure).
/// Decrypting: 1 (accept) or 2 (accept and issue a fresh ticket) for a known name, 0 for an
/// unknown one (full handshake). The libraries' callbacks share these return values.
int on_ticket_key(SSL* ssl, const std::uint8_t* name, TicketKey& key) noexcept;

/// The half of both libraries' ticket-key callbacks that is the same: finds the key (see
/// on_ticket_key), writes its name and a fresh IV when encrypting, and sets up the cipher.
/// Returns on_ticket_key's value, or -1 when the cipher could not be set up.
inline int ticket_cipher(SSL* ssl, std::uint8_t* name, std::uint8_t* iv, EVP_CIPHER_CTX* cipher,
                         int encrypt, TicketKey& key) {
    const int r = on_ticket_key(ssl, encrypt != 0 ? nullptr : name, key);
    if (r <= 0) {
        return r;
    }
    if (encrypt != 0) {
        std::memcpy(name, key.name, sizeof key.name);
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) {
            return -1;
        }
    } else if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes, iv) != 1) {
        return -1;
    }
    return r;
}

/// An OCSP response stapled for one leaf certificate (the vector outlives the SSL_CTX).
struct OcspStaple {
    X509* leaf = nullptr;
    std::string der;
};

#if defined(OPENSSL_IS_BORINGSSL)

inline ssl_select_cert_result_t select_certificate(const SSL_CLIENT_HELLO* ch) {
    ClientHello hello;
    hello.ssl = ch->ssl;
    const std::uint8_t* data = nullptr;
    std::size_t len = 0;
    if (SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_server_name, &data, &len) != 0) {
        hello.server_name = {data, len};
    }
    if (SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_signature_algorithms, &data, &len) !=
        0) {
        hello.signature_algorithms = {data, len};
    }
    if (SSL_early_callback_ctx_extension_get(ch, TLSEXT_TYPE_supported_versions, &data, &len) !=
        0) {
        hello.supported_versions = {data, len};
    }
    hello.has_alpn = SSL_early_callback_ctx_extension_get(
                         ch, TLSEXT_TYPE_application_layer_protocol_negotiation, &data, &len) != 0;
    hello.cipher_suites = {ch->cipher_suites, ch->cipher_suites_len};
    std::uint8_t alert = 0;
    if (on_client_hello(hello, alert)) {
        return ssl_select_cert_success;
    }
    // BoringSSL answers a refused ClientHello with handshake_failure; ours goes first, and the
    // connection sends nothing after a fatal alert.
    SSL_send_fatal_alert(ch->ssl, alert);
    return ssl_select_cert_error;
}

inline void set_client_hello_cb(SSL_CTX* ctx) {
    SSL_CTX_set_select_certificate_cb(ctx, select_certificate);
}

inline int ticket_key_cb(SSL* ssl, std::uint8_t* name, std::uint8_t* iv, EVP_CIPHER_CTX* cipher,
                         HMAC_CTX* hmac, int encrypt) {
    TicketKey key;
    const int r = ticket_cipher(ssl, name, iv, cipher, encrypt, key);
    if (r <= 0) {
        return r;
    }
    if (HMAC_Init_ex(hmac, key.mac, sizeof key.mac, EVP_sha256(), nullptr) != 1) {
        return -1;
    }
    OPENSSL_cleanse(&key, sizeof key);
    return r;
}

inline bool set_ticket_key_cb(SSL_CTX* ctx) {
    return SSL_CTX_set_tlsext_ticket_key_cb(ctx, ticket_key_cb) == 1;
}

/// One certificate per SSL_CTX here, so one staple: the one of its leaf. BoringSSL sends it only
/// to clients that sent status_request.
inline bool set_ocsp_staples(SSL_CTX* ctx, const std::vector<OcspStaple>& staples) {
    const X509* leaf = SSL_CTX_get0_certificate(ctx);
    for (const OcspStaple& s : staples) {
        if (leaf != nullptr && X509_cmp(s.leaf, leaf) == 0) {
            return SSL_CTX_set_ocsp_response(
                       ctx, reinterpret_cast<const std::uint8_t*>(s.der.data()), s.der.size()) == 1;
        }
    }
    return true;
}

inline std::string_view ocsp_response(SSL* ssl) {
    const std::uint8_t* data = nullptr;
    std::size_t len = 0;
    SSL_get0_ocsp_response(ssl, &data, &len);
    return {reinterpret_cast<const char*>(data), len};
}

/// BoringSSL ignores unknown names in a cipher list unless asked to be strict.
inline bool set_cipher_list(SSL_CTX* ctx, const char* list) {
    return SSL_CTX_set_strict_cipher_list(ctx, list) == 1;
}

inline void enable_early_data(SSL_CTX* ctx) { SSL_CTX_set_early_data_enabled(ctx, 1); }
inline bool in_early_data(const SSL* ssl) { return SSL_in_early_data(ssl) == 1; }

/// The server's handshake configuration (certificate references, cipher and group lists) is
/// freed once the handshake completed: an idle connection keeps only its keys.
inline void shed_handshake_config(SSL* ssl) { SSL_set_shed_handshake_config(ssl, 1); }

/// The peer's leaf certificate, with a reference of its own (null without one).
inline X509Ptr peer_certificate(const SSL* ssl) { return X509Ptr(SSL_get_peer_certificate(ssl)); }

/// BoringSSL never marks a session unresumable when its connection is freed.
inline void keep_session_resumable(SSL*) {}

#else  // OpenSSL 3

inline int client_hello_cb(SSL* ssl, int* al, void*) {
    ClientHello hello;
    hello.ssl = ssl;
    const unsigned char* data = nullptr;
    std::size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &data, &len) == 1) {
        hello.server_name = {data, len};
    }
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_signature_algorithms, &data, &len) == 1) {
        hello.signature_algorithms = {data, len};
    }
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions, &data, &len) == 1) {
        hello.supported_versions = {data, len};
    }
    hello.has_alpn = SSL_client_hello_get0_ext(
                         ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &data, &len) == 1;
    len = SSL_client_hello_get0_ciphers(ssl, &data);
    hello.cipher_suites = {data, len};
    std::uint8_t alert = 0;
    if (on_client_hello(hello, alert)) {
        return SSL_CLIENT_HELLO_SUCCESS;
    }
    *al = alert;
    return SSL_CLIENT_HELLO_ERROR;
}

inline void set_client_hello_cb(SSL_CTX* ctx) {
    SSL_CTX_set_client_hello_cb(ctx, client_hello_cb, nullptr);
}

inline int ticket_key_cb(SSL* ssl, unsigned char* name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                         EVP_MAC_CTX* mac, int encrypt) {
    TicketKey key;
    const int r = ticket_cipher(ssl, name, iv, cipher, encrypt, key);
    if (r <= 0) {
        return r;
    }
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_init(mac, key.mac, sizeof key.mac, params) != 1) {
        return -1;
    }
    OPENSSL_cleanse(&key, sizeof key);
    return r;
}

inline bool set_ticket_key_cb(SSL_CTX* ctx) {
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) == 1;
}

// OpenSSL asks for the staple after it chose the certificate (RSA or ECDSA), through a callback
// that must hand over a malloc'ed copy.
inline int ocsp_status_cb(SSL* ssl, void* arg) {
    const auto& staples = *static_cast<const std::vector<OcspStaple>*>(arg);
    const X509* leaf = SSL_get_certificate(ssl);
    for (const OcspStaple& s : staples) {
        if (leaf == nullptr || X509_cmp(s.leaf, leaf) != 0) {
            continue;
        }
        auto* copy = static_cast<unsigned char*>(OPENSSL_memdup(s.der.data(), s.der.size()));
        if (copy == nullptr) {
            return SSL_TLSEXT_ERR_NOACK;
        }
        SSL_set_tlsext_status_ocsp_resp(ssl, copy, static_cast<long>(s.der.size()));
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

inline bool set_ocsp_staples(SSL_CTX* ctx, const std::vector<OcspStaple>& staples) {
    if (staples.empty()) {
        return true;
    }
    return SSL_CTX_set_tlsext_status_cb(ctx, ocsp_status_cb) == 1 &&
           SSL_CTX_set_tlsext_status_arg(ctx, const_cast<std::vector<OcspStaple>*>(&staples)) == 1;
}

inline std::string_view ocsp_response(SSL* ssl) {
    unsigned char* data = nullptr;
    const long len = SSL_get_tlsext_status_ocsp_resp(ssl, &data);
    if (data == nullptr || len <= 0) {
        return {};
    }
    return {reinterpret_cast<const char*>(data), static_cast<std::size_t>(len)};
}

inline bool set_cipher_list(SSL_CTX* ctx, const char* list) {
    return SSL_CTX_set_cipher_list(ctx, list) == 1;
}

inline void enable_early_data(SSL_CTX*) {}
inline bool in_early_data(const SSL*) { return false; }

// OpenSSL has no configuration shedding; SSL_MODE_RELEASE_BUFFERS (set on every SSL_CTX) is
// what keeps an idle connection small there.
inline void shed_handshake_config(SSL*) {}

inline X509Ptr peer_certificate(const SSL* ssl) { return X509Ptr(SSL_get1_peer_certificate(ssl)); }

/// SSL_free marks the session of a connection closed without close_notify as not resumable,
/// which would also spoil the session a client kept for its next connection. RFC 5246 §7.2.1
/// dropped that rule (and TLS 1.3 tickets never had it), so the close is declared clean.
inline void keep_session_resumable(SSL* ssl) {
    SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
}

#endif

}  // namespace blitz::tls::compat

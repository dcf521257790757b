#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tls/certificates.hpp"
#include "tls/compat.hpp"
#include "tls/session.hpp"
#include "tls/ticket_keys.hpp"

// The implementations behind ServerContext and ClientContext, for session.cpp and tests.
namespace blitz::tls {

class ServerContextImpl;

/// The certificates that serve one set of names (at most one per key type), the SSL_CTX(s)
/// holding them, and what binds tickets to them.
///
/// Thread: immutable after ServerContext::make(). Lifetime: owned by its ServerContextImpl; the
/// SSL_CTXs point at it (app data).
struct VirtualHost {
    ServerContextImpl* owner = nullptr;
    std::size_t index = 0;
    std::vector<std::string> names;
    /// SHA-256 of the names and the client-auth policy: the session id context and the input of
    /// this host's ticket keys.
    TicketKeys::Binding binding{};
    SSL_CTX* ecdsa = nullptr;  ///< the SSL_CTX serving the ECDSA certificate, if any
    SSL_CTX* rsa = nullptr;    ///< the one serving RSA (the same SSL_CTX with OpenSSL)
    std::uint16_t ecdsa_sigalg = 0;
    std::vector<compat::OcspStaple> staples;
};

/// Thread: see ServerContext. Lifetime: shared_ptr, kept by every session started from it.
class ServerContextImpl final : public ServerContext {
public:
    explicit ServerContextImpl(const TlsOptions& options);
    ~ServerContextImpl() override = default;
    const TlsOptions& options() const noexcept override { return options_; }

    /// Loads the certificates and builds the SSL_CTXs.
    Result<void, std::string> build();

    /// The SSL_CTX new sessions start on (the default host's); the ClientHello callback moves
    /// them to the SSL_CTX of the host and key type they get.
    SSL_CTX* initial_ctx() const noexcept;
    /// The host serving `sni`: exact name, else one-label wildcard, else the default (the host
    /// of the first certificate).
    const VirtualHost& select(std::string_view sni) const noexcept;
    std::size_t host_count() const noexcept { return hosts_.size(); }
    TicketKeys& ticket_keys() noexcept { return keys_; }

    /// The host whose SSL_CTX `ssl` currently uses (null for an SSL not made by a server context).
    static VirtualHost* host_of(const SSL* ssl) noexcept;

private:
    Result<void, std::string> check_options() const;
    Result<void, std::string> configure(SSL_CTX* ctx, VirtualHost& host);
    Result<void, std::string> add_certificate(SSL_CTX* ctx, const LoadedCertificate& cert);
    TicketKeys::Binding binding_for(const std::vector<std::string>& names) const;

    TlsOptions options_;
    std::vector<std::unique_ptr<VirtualHost>> hosts_;
    std::vector<CtxPtr> ctxs_;
    std::vector<std::pair<std::string, std::size_t>> exact_;     // sorted by name
    std::vector<std::pair<std::string, std::size_t>> wildcard_;  // "*.a.b" stored as "a.b"
    StorePtr client_store_;
    std::vector<X509Ptr> client_cas_;
    TicketKeys keys_;
};

/// Thread: shared by all reactors (SSL_CTX is thread-safe for SSL_new). Lifetime: shared_ptr.
class ClientContextImpl final : public ClientContext {
public:
    explicit ClientContextImpl(const UpstreamTlsOptions& options) : options_(options) {}
    const UpstreamTlsOptions& options() const noexcept override { return options_; }
    Result<void, std::string> build();
    SSL_CTX* ctx() const noexcept { return ctx_.get(); }

private:
    UpstreamTlsOptions options_;
    std::shared_ptr<X509_STORE> trust_;
    CtxPtr ctx_;
};

/// Defined in session.cpp: keeps a client's new session (TLS 1.3 tickets arrive after the
/// handshake) for Session::take_session().
int on_new_client_session(SSL* ssl, SSL_SESSION* session);
/// Defined in session.cpp: the reason a callback refused the handshake, for error_reason().
void note_refusal(SSL* ssl, const char* reason) noexcept;

}  // namespace blitz::tls

#include "tls/context.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace blitz::tls {

namespace {

// TLS 1.2 suites when `ciphers` is empty: forward secrecy and AEAD only (RFC 7525 §4.2).
constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kDefaultGroups = "X25519:P-256:P-384";
// Debian's bundle; BoringSSL's compiled-in default paths are Android's, so it is loaded by name.
constexpr const char* kSystemBundle = "/etc/ssl/certs/ca-certificates.crt";
// RFC 8446 §4.6.1: a ticket lifetime is at most 7 days.
constexpr long kMaxTicketLifetime = 7 * 24 * 3600;

std::uint16_t u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }

// RFC 6066 §3: ServerNameList, the first host_name entry.
std::string_view parse_server_name(std::span<const std::uint8_t> ext) {
    if (ext.size() < 2) {
        return {};
    }
    const std::size_t end = std::min<std::size_t>(ext.size(), 2 + u16(ext.data()));
    std::size_t i = 2;
    while (i + 3 <= end) {
        const std::uint8_t type = ext[i];
        const std::size_t len = u16(ext.data() + i + 1);
        i += 3;
        if (i + len > end) {
            return {};
        }
        if (type == 0) {
            return {reinterpret_cast<const char*>(ext.data() + i), len};
        }
        i += len;
    }
    return {};
}

// Whether a list of 16-bit code points (after a length prefix of `prefix` bytes) holds any of
// `wanted`.
bool list_has(std::span<const std::uint8_t> ext, std::size_t prefix,
              std::initializer_list<std::uint16_t> wanted) {
    for (std::size_t i = prefix; i + 2 <= ext.size(); i += 2) {
        const std::uint16_t v = u16(ext.data() + i);
        if (std::find(wanted.begin(), wanted.end(), v) != wanted.end()) {
            return true;
        }
    }
    return false;
}

// Where the library cannot choose between a host's certificates itself (one SSL_CTX per key
// type, see compat.hpp): may this client verify our ECDSA signature? TLS 1.3 (RFC 8446 §4.2.3)
// binds the curve to the scheme; TLS 1.2 (RFC 5246 §7.4.1.4.1, RFC 8422 §5.1) needs an ECDSA
// signature algorithm and an ECDHE_ECDSA suite. Without signature_algorithms a TLS 1.2 client
// implies SHA-1, which gets the RSA certificate.
bool client_takes_ecdsa(const compat::ClientHello& h, std::uint16_t tls13_sigalg) {
    const bool tls13 = !h.supported_versions.empty() && list_has(h.supported_versions, 1, {0x0304});
    if (tls13) {
        return list_has(h.signature_algorithms, 2, {tls13_sigalg});
    }
    return list_has(h.signature_algorithms, 2, {0x0403, 0x0503, 0x0603}) &&
           list_has(h.cipher_suites, 0, {0xC02B, 0xC02C, 0xCCA9});
}

int select_alpn(SSL* ssl, const std::uint8_t** out, std::uint8_t* out_len, const std::uint8_t* in,
                unsigned in_len, void*) {
    const VirtualHost* host = ServerContextImpl::host_of(ssl);
    if (host == nullptr) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    // Server preference: the first of our protocols the client offered (RFC 7301 §3.2).
    for (const std::string& proto : host->owner->options().alpn) {
        for (unsigned i = 0; i < in_len;) {
            const unsigned len = in[i];
            if (i + 1 + len > in_len) {
                break;
            }
            if (len == proto.size() && std::memcmp(in + i + 1, proto.data(), len) == 0) {
                *out = in + i + 1;
                *out_len = static_cast<std::uint8_t>(len);
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + len;
        }
    }
    note_refusal(ssl, "no shared ALPN protocol");
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

bool alpn_ok(const std::vector<std::string>& protos) {
    return std::all_of(protos.begin(), protos.end(),
                       [](const std::string& p) { return !p.empty() && p.size() <= 255; });
}

std::string alpn_wire(const std::vector<std::string>& protos) {
    std::string wire;
    for (const std::string& p : protos) {
        wire += static_cast<char>(p.size());
        wire += p;
    }
    return wire;
}

std::string join_groups(const std::vector<std::string>& groups) {
    std::string s;
    for (const std::string& g : groups) {
        if (!s.empty()) {
            s += ':';
        }
        s += g;
    }
    return s;
}

Result<std::shared_ptr<X509_STORE>, std::string> bundle_trust(const std::string& path, const char* what) {
    auto cas = load_ca_bundle(path, what);
    if (!cas) {
        return fail(cas.error());
    }
    std::shared_ptr<X509_STORE> store(X509_STORE_new(), X509_STORE_free);
    if (!store) {
        return fail(std::string("tls: out of memory"));
    }
    for (const X509Ptr& ca : *cas) {
        X509_STORE_add_cert(store.get(), ca.get());
    }
    ERR_clear_error();
    return store;
}

// The system bundle is parsed once per process and shared by every client context while one
// uses it (it holds ~150 certificates).
Result<std::shared_ptr<X509_STORE>, std::string> system_trust() {
    static std::mutex mutex;
    static std::weak_ptr<X509_STORE> cache;
    std::lock_guard lock(mutex);
    if (auto store = cache.lock()) {
        return store;
    }
    auto store = bundle_trust(kSystemBundle, "system CA bundle");
    if (store) {
        cache = *store;
    }
    return store;
}

std::string library_error(const char* what) {
    std::string s = what;
    const unsigned long e = ERR_peek_last_error();
    if (const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr) {
        s += " (";
        s += reason;
        s += ')';
    }
    ERR_clear_error();
    return s;
}

}  // namespace

// ---- the library's callbacks ----

bool compat::on_client_hello(const compat::ClientHello& hello, std::uint8_t& alert) noexcept {
    const VirtualHost* current = ServerContextImpl::host_of(hello.ssl);
    if (current == nullptr) {
        alert = SSL_AD_INTERNAL_ERROR;
        return false;
    }
    const ServerContextImpl& cx = *current->owner;
    // ALPACA: with alpn_strict a client that names no protocol is not served either.
    if (cx.options().alpn_strict && !hello.has_alpn) {
        note_refusal(hello.ssl, "client offered no ALPN protocol (alpn_strict)");
        alert = SSL_AD_NO_APPLICATION_PROTOCOL;
        return false;
    }
    // The host is chosen here, before the library decrypts a ticket, so that a ticket is only
    // ever checked against the keys of the host it would resume on (nginx CVE-2025-23419).
    const VirtualHost& host = cx.select(parse_server_name(hello.server_name));
    SSL_CTX* target = host.ecdsa != nullptr ? host.ecdsa : host.rsa;
    if (host.ecdsa != nullptr && host.rsa != nullptr && host.ecdsa != host.rsa &&
        !client_takes_ecdsa(hello, host.ecdsa_sigalg)) {
        target = host.rsa;
    }
    if (target != SSL_get_SSL_CTX(hello.ssl) && SSL_set_SSL_CTX(hello.ssl, target) == nullptr) {
        alert = SSL_AD_INTERNAL_ERROR;
        return false;
    }
    return true;
}

int compat::on_ticket_key(SSL* ssl, const std::uint8_t* name, compat::TicketKey& key) noexcept {
    VirtualHost* host = ServerContextImpl::host_of(ssl);
    if (host == nullptr) {
        return name == nullptr ? -1 : 0;
    }
    TicketKeys& keys = host->owner->ticket_keys();
    if (name == nullptr) {
        return keys.encrypt_key(host->index, key) ? 1 : -1;
    }
    // A known ticket is always renewed: RFC 8446 §C.4 asks clients to use each ticket once, and
    // OpenSSL issues a fresh one after a resumption only when told to renew.
    return keys.decrypt_key(host->index, name, key) > 0 ? 2 : 0;
}

// ---- ServerContext ----

ServerContextImpl::ServerContextImpl(const TlsOptions& options) : options_(options) {}

VirtualHost* ServerContextImpl::host_of(const SSL* ssl) noexcept {
    const SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
    return ctx != nullptr ? static_cast<VirtualHost*>(SSL_CTX_get_app_data(ctx)) : nullptr;
}

SSL_CTX* ServerContextImpl::initial_ctx() const noexcept {
    const VirtualHost& h = *hosts_.front();
    return h.ecdsa != nullptr ? h.ecdsa : h.rsa;
}

const VirtualHost& ServerContextImpl::select(std::string_view sni) const noexcept {
    const VirtualHost& fallback = *hosts_.front();
    if (sni.empty() || sni.size() > 254) {
        return fallback;
    }
    char lower[256];
    std::size_t n = 0;
    for (char c : sni) {
        lower[n++] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    if (lower[n - 1] == '.') {
        --n;
    }
    const std::string_view name(lower, n);
    auto find = [](const std::vector<std::pair<std::string, std::size_t>>& table,
                   std::string_view key) -> const std::size_t* {
        auto it = std::lower_bound(table.begin(), table.end(), key,
                                   [](const auto& e, std::string_view k) { return e.first < k; });
        return it != table.end() && it->first == key ? &it->second : nullptr;
    };
    if (const std::size_t* i = find(exact_, name)) {
        return *hosts_[*i];
    }
    // RFC 6125 §6.4.3: "*" stands for exactly the first label.
    const std::size_t dot = name.find('.');
    if (dot != std::string_view::npos && dot > 0 && dot + 1 < name.size()) {
        if (const std::size_t* i = find(wildcard_, name.substr(dot + 1))) {
            return *hosts_[*i];
        }
    }
    return fallback;
}

Result<void, std::string> ServerContextImpl::check_options() const {
    if (options_.certificates.empty()) {
        return fail(std::string("tls: at least one certificate is needed"));
    }
    if (!alpn_ok(options_.alpn)) {
        return fail(std::string("tls: ALPN protocol names must be 1 to 255 bytes"));
    }
    if (options_.alpn_strict && options_.alpn.empty()) {
        return fail(std::string("tls: alpn_strict needs at least one ALPN protocol"));
    }
    if (options_.groups.empty()) {
        return fail(std::string("tls: groups must not be empty"));
    }
    if (options_.client_auth != ClientAuth::None && options_.client_ca.empty()) {
        return fail(std::string(
            "tls: client_auth needs client_ca, the PEM bundle of the CAs that issue client "
            "certificates"));
    }
    if (options_.early_data && !compat::kEarlyData) {
        return fail(
            std::string("tls: early_data (0-RTT) needs a BoringSSL build; this one uses OpenSSL "
                        "(meson option tls=openssl)"));
    }
    if (options_.session_tickets && options_.ticket_key_rotation.count() < 1) {
        return fail(std::string("tls: ticket_key_rotation must be at least one second"));
    }
    return {};
}

TicketKeys::Binding ServerContextImpl::binding_for(const std::vector<std::string>& names) const {
    std::string input = "blitz tls host";
    input += '\0';
    input += static_cast<char>(options_.client_auth);
    for (const X509Ptr& ca : client_cas_) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (X509_digest(ca.get(), EVP_sha256(), md, &len) == 1) {
            input.append(reinterpret_cast<const char*>(md), len);
        }
    }
    for (const std::string& n : names) {
        input += '\n';
        input += n;
    }
    TicketKeys::Binding b{};
    unsigned int len = 0;
    EVP_Digest(input.data(), input.size(), b.data(), &len, EVP_sha256(), nullptr);
    return b;
}

Result<void, std::string> ServerContextImpl::add_certificate(SSL_CTX* ctx,
                                                             const LoadedCertificate& cert) {
    // With OpenSSL, use_certificate selects the slot of the leaf's key type; the chain and the
    // key that follow go to that slot.
    if (SSL_CTX_use_certificate(ctx, cert.leaf.get()) != 1) {
        return fail(library_error("tls: the library refused a certificate"));
    }
    for (const X509Ptr& c : cert.chain) {
        if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) {
            return fail(library_error("tls: the library refused a chain certificate"));
        }
    }
    if (SSL_CTX_use_PrivateKey(ctx, cert.key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        return fail(library_error("tls: the library refused a private key"));
    }
    return {};
}

Result<void, std::string> ServerContextImpl::configure(SSL_CTX* ctx, VirtualHost& host) {
    const bool tickets = options_.session_tickets;
    SSL_CTX_set_min_proto_version(
        ctx, options_.min_version == TlsVersion::Tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                                 (tickets ? 0 : SSL_OP_NO_TICKET));
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    const std::string ciphers = options_.ciphers.empty() ? kDefaultCiphers : options_.ciphers;
    if (!compat::set_cipher_list(ctx, ciphers.c_str())) {
        ERR_clear_error();
        return fail("tls: ciphers \"" + ciphers + "\" is not a usable TLS 1.2 cipher list");
    }
    const std::string groups = join_groups(options_.groups);
    if (SSL_CTX_set1_curves_list(ctx, groups.c_str()) != 1) {
        ERR_clear_error();
        return fail("tls: groups \"" + groups + "\" names an unknown group");
    }
    // Resumption is stateless (tickets) only: no per-session state is kept on the server.
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, host.binding.data(), host.binding.size());
    SSL_CTX_set_num_tickets(ctx, tickets ? 1 : 0);
    if (tickets) {
        // A ticket can outlive its key by at most one rotation period.
        const long lifetime = std::min<long>(
            kMaxTicketLifetime, 2 * static_cast<long>(options_.ticket_key_rotation.count()));
        SSL_CTX_set_timeout(ctx, static_cast<std::uint32_t>(lifetime));
        if (!compat::set_ticket_key_cb(ctx)) {
            return fail(library_error("tls: cannot install the ticket key callback"));
        }
    }
    if (!options_.alpn.empty()) {
        SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
    }
    compat::set_client_hello_cb(ctx);
    if (options_.client_auth != ClientAuth::None) {
        const int mode =
            SSL_VERIFY_PEER |
            (options_.client_auth == ClientAuth::Required ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0);
        SSL_CTX_set_verify(ctx, mode, nullptr);
        X509_STORE_up_ref(client_store_.get());
        SSL_CTX_set_cert_store(ctx, client_store_.get());
        for (const X509Ptr& ca : client_cas_) {
            if (SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {
                return fail(library_error("tls: cannot add a client CA name"));
            }
        }
    }
    if (options_.early_data) {
        compat::enable_early_data(ctx);
    }
    SSL_CTX_set_app_data(ctx, &host);
    return {};
}

Result<void, std::string> ServerContextImpl::build() {
    if (auto ok = check_options(); !ok) {
        return ok;
    }
    if (options_.client_auth != ClientAuth::None) {
        auto cas = load_ca_bundle(options_.client_ca, "client CA bundle");
        if (!cas) {
            return fail(cas.error());
        }
        client_cas_ = std::move(*cas);
        client_store_.reset(X509_STORE_new());
        if (!client_store_) {
            return fail(std::string("tls: out of memory"));
        }
        for (const X509Ptr& ca : client_cas_) {
            X509_STORE_add_cert(client_store_.get(), ca.get());
        }
        ERR_clear_error();
    }

    // Certificates with the same names form one virtual host (one of each key type).
    std::vector<LoadedCertificate> certs;
    std::vector<std::size_t> host_of_cert;
    std::vector<std::vector<std::size_t>> members;
    for (const CertificateOptions& c : options_.certificates) {
        auto loaded = load_certificate(c, true);
        if (!loaded) {
            return fail(loaded.error());
        }
        std::size_t h = 0;
        while (h < members.size() && certs[members[h].front()].names != loaded->names) {
            ++h;
        }
        if (h == members.size()) {
            members.emplace_back();
        }
        for (std::size_t other : members[h]) {
            if (certs[other].type == loaded->type) {
                return fail("tls: certificates \"" + options_.certificates[other].cert +
                            "\" and \"" + c.cert +
                            "\" serve the same names with the same key type");
            }
        }
        members[h].push_back(certs.size());
        certs.push_back(std::move(*loaded));
    }

    for (std::size_t h = 0; h < members.size(); ++h) {
        auto host = std::make_unique<VirtualHost>();
        host->owner = this;
        host->index = h;
        host->names = certs[members[h].front()].names;
        host->binding = binding_for(host->names);
        for (std::size_t i : members[h]) {
            LoadedCertificate& cert = certs[i];
            SSL_CTX* ctx = nullptr;
            const bool share = !compat::kContextPerKeyType && (host->ecdsa || host->rsa);
            if (share) {
                ctx = host->ecdsa != nullptr ? host->ecdsa : host->rsa;
            } else {
                ctxs_.emplace_back(SSL_CTX_new(TLS_method()));
                ctx = ctxs_.back().get();
                if (ctx == nullptr) {
                    return fail(library_error("tls: cannot create an SSL_CTX"));
                }
                if (auto ok = configure(ctx, *host); !ok) {
                    return ok;
                }
            }
            if (auto ok = add_certificate(ctx, cert); !ok) {
                return fail(ok.error() + " from \"" + options_.certificates[i].cert + "\"");
            }
            if (cert.type == KeyType::Ecdsa) {
                host->ecdsa = ctx;
                host->ecdsa_sigalg = cert.tls13_sigalg;
            } else {
                host->rsa = ctx;
            }
            if (!cert.ocsp.empty()) {
                host->staples.push_back({cert.leaf.get(), std::move(cert.ocsp)});
            }
        }
        // The staples' leaves stay alive through the SSL_CTXs' references.
        SSL_CTX* const distinct[] = {host->ecdsa, host->rsa != host->ecdsa ? host->rsa : nullptr};
        for (SSL_CTX* ctx : distinct) {
            if (ctx != nullptr && !compat::set_ocsp_staples(ctx, host->staples)) {
                return fail(library_error("tls: cannot set an OCSP staple"));
            }
        }
        for (const std::string& name : host->names) {
            const bool wild = name.starts_with("*.");
            auto& table = wild ? wildcard_ : exact_;
            const std::string key = wild ? name.substr(2) : name;
            // The first certificate that names a host serves it.
            if (std::none_of(table.begin(), table.end(),
                             [&](const auto& e) { return e.first == key; })) {
                table.emplace_back(key, h);
            }
        }
        hosts_.push_back(std::move(host));
    }
    std::sort(exact_.begin(), exact_.end());
    std::sort(wildcard_.begin(), wildcard_.end());

    if (options_.session_tickets) {
        std::vector<TicketKeys::Binding> bindings;
        for (const auto& host : hosts_) {
            bindings.push_back(host->binding);
        }
        if (!keys_.init(options_.ticket_key_rotation, std::move(bindings))) {
            return fail(std::string("tls: the random number generator failed"));
        }
    }
    return {};
}

Result<std::shared_ptr<ServerContext>, std::string> ServerContext::make(const TlsOptions& options) {
    auto cx = std::make_shared<ServerContextImpl>(options);
    if (auto ok = cx->build(); !ok) {
        return fail(ok.error());
    }
    return std::shared_ptr<ServerContext>(std::move(cx));
}

// ---- ClientContext ----

Result<void, std::string> ClientContextImpl::build() {
    if (!alpn_ok(options_.alpn)) {
        return fail(std::string("upstream tls: ALPN protocol names must be 1 to 255 bytes"));
    }
    if (options_.cert.empty() != options_.key.empty()) {
        return fail(std::string("upstream tls: a client certificate needs both cert and key"));
    }
    ctx_.reset(SSL_CTX_new(TLS_method()));
    SSL_CTX* ctx = ctx_.get();
    if (ctx == nullptr) {
        return fail(library_error("upstream tls: cannot create an SSL_CTX"));
    }
    SSL_CTX_set_min_proto_version(
        ctx, options_.min_version == TlsVersion::Tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!compat::set_cipher_list(ctx, kDefaultCiphers) ||
        SSL_CTX_set1_curves_list(ctx, kDefaultGroups) != 1) {
        return fail(library_error("upstream tls: cannot set the cipher or group list"));
    }
    if (options_.verify) {
        auto trust = options_.ca.empty() ? system_trust() : bundle_trust(options_.ca, "CA bundle");
        if (!trust) {
            return fail("upstream tls: " + trust.error());
        }
        trust_ = std::move(*trust);
        X509_STORE_up_ref(trust_.get());
        SSL_CTX_set_cert_store(ctx, trust_.get());
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    if (!options_.alpn.empty()) {
        const std::string wire = alpn_wire(options_.alpn);
        // Unlike most of the API, 0 is success here.
        if (SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const std::uint8_t*>(wire.data()),
                                    static_cast<unsigned>(wire.size())) != 0) {
            return fail(library_error("upstream tls: cannot set the ALPN list"));
        }
    }
    if (!options_.cert.empty()) {
        auto cert =
            load_certificate(CertificateOptions{.cert = options_.cert, .key = options_.key}, false);
        if (!cert) {
            return fail("upstream tls: " + cert.error());
        }
        if (SSL_CTX_use_certificate(ctx, cert->leaf.get()) != 1 ||
            SSL_CTX_use_PrivateKey(ctx, cert->key.get()) != 1) {
            return fail(library_error("upstream tls: the library refused the client certificate"));
        }
        for (const X509Ptr& c : cert->chain) {
            if (SSL_CTX_add1_chain_cert(ctx, c.get()) != 1) {
                return fail(library_error("upstream tls: the library refused a chain certificate"));
            }
        }
    }
    if (options_.session_reuse) {
        // Sessions are handed to the caller (one per endpoint and reactor), never cached here.
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, on_new_client_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    return {};
}

Result<std::shared_ptr<ClientContext>, std::string> ClientContext::make(
    const UpstreamTlsOptions& options) {
    auto cx = std::make_shared<ClientContextImpl>(options);
    if (auto ok = cx->build(); !ok) {
        return fail(ok.error());
    }
    return std::shared_ptr<ClientContext>(std::move(cx));
}

}  // namespace blitz::tls

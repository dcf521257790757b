#include "tls/session.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include <arpa/inet.h>

#include "tls/certificates.hpp"
#include "tls/compat.hpp"
#include "tls/context.hpp"

namespace blitz::tls {

namespace {

// RFC 8446 §5.1: the largest TLSPlaintext fragment.
constexpr std::size_t kRecord = 16384;
// Bytes a record adds to its plaintext: header 5 + TLS 1.3 inner type 1 + AEAD tag 16, or in
// TLS 1.2 header 5 + explicit nonce 8 + tag 16 (GCM). Rounded up.
constexpr std::size_t kRecordOverhead = 32;
// One SSL_write at most, so that int lengths never overflow.
constexpr std::size_t kMaxSeal = 1 << 30;

// Plaintext bytes whose records fit in `room` bytes.
std::size_t plaintext_fitting(std::size_t room) {
    const std::size_t full = room / (kRecord + kRecordOverhead);
    const std::size_t rest = room % (kRecord + kRecordOverhead);
    return full * kRecord + (rest > kRecordOverhead ? rest - kRecordOverhead : 0);
}

bool is_ip_address(const char* host) {
    unsigned char buf[sizeof(in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

}  // namespace

// The BIO both directions of every session go through: reads copy from the span lent by
// set_input(), writes append to the output queue. Neither ever blocks: an empty input is a retry
// (WANT_READ), and output is always accepted.
struct SessionIo {
    static Session* of(BIO* bio) { return static_cast<Session*>(BIO_get_data(bio)); }

    static int write(BIO* bio, const char* data, int len) {
        BIO_clear_retry_flags(bio);
        if (len <= 0) {
            return 0;
        }
        return of(bio)->out_.append(data, static_cast<std::size_t>(len)) ? len : -1;
    }

    static int read(BIO* bio, char* out, int len) {
        BIO_clear_retry_flags(bio);
        Session* s = of(bio);
        const std::size_t left = s->in_len_ - s->in_pos_;
        if (left == 0) {
            BIO_set_retry_read(bio);
            return -1;
        }
        const std::size_t n = std::min(left, static_cast<std::size_t>(std::max(len, 0)));
        std::memcpy(out, s->in_ + s->in_pos_, n);
        s->in_pos_ += n;
        return static_cast<int>(n);
    }

    static long ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

    static int create(BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
    }

    static BIO_METHOD* method() {
        static BIO_METHOD* const m = [] {
            BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "blitz tls");
            if (bm != nullptr) {
                BIO_meth_set_write(bm, write);
                BIO_meth_set_read(bm, read);
                BIO_meth_set_ctrl(bm, ctrl);
                BIO_meth_set_create(bm, create);
            }
            return bm;
        }();
        return m;
    }

    static void keep_session(Session& s, SSL_SESSION* session) {
        if (s.next_session_ != nullptr) {
            SSL_SESSION_free(s.next_session_);
        }
        s.next_session_ = session;
    }

    static void refuse(Session& s, const char* reason) { s.refusal_ = reason; }
};

int on_new_client_session(SSL* ssl, SSL_SESSION* session) {
    auto* s = static_cast<Session*>(SSL_get_app_data(ssl));
    if (s == nullptr || SSL_SESSION_is_resumable(session) != 1) {
        return 0;
    }
    SessionIo::keep_session(*s, session);
    return 1;  // the reference is ours now
}

void note_refusal(SSL* ssl, const char* reason) noexcept {
    if (auto* s = static_cast<Session*>(SSL_get_app_data(ssl))) {
        SessionIo::refuse(*s, reason);
    }
}

Session::Session(BufferSource& buffers) noexcept : out_(buffers) {}

std::string_view failure_kind_name(FailureKind kind) noexcept {
    constexpr std::string_view kNames[] = {"malformed", "version", "cipher", "alpn", "certificate", "other"};
    return kNames[static_cast<std::size_t>(kind)];
}

// error_ holds the library's reason, lower-cased with spaces (both libraries' spellings meet
// there): the kind is read from its words.
FailureKind Session::failure_kind() const noexcept {
    const std::string_view e = error_;
    const auto has = [e](std::string_view word) { return e.find(word) != std::string_view::npos; };
    if (has("alpn") || has("application protocol")) {
        return FailureKind::Alpn;
    }
    if (has("certificate")) {
        return FailureKind::Certificate;
    }
    if (has("version") && !has("wrong version number")) {
        return FailureKind::Version;  // "unsupported protocol", "tlsv1 alert protocol version"
    }
    if (has("unsupported protocol")) {
        return FailureKind::Version;
    }
    if (has("cipher") || has("group") || has("curve") || has("signature") || has("sigalg")) {
        return FailureKind::Cipher;
    }
    if (has("wrong version number") || has("record") || has("decode") || has("unexpected message") ||
        has("http request") || has("packet") || has("length") || has("excess")) {
        return FailureKind::Malformed;
    }
    return FailureKind::Other;
}

Session::~Session() { reset(); }

void Session::reset() noexcept {
    if (ssl_ != nullptr) {
        if (!failed_) {
            compat::keep_session_resumable(ssl_);
        }
        SSL_free(ssl_);
        ssl_ = nullptr;
    }
    if (next_session_ != nullptr) {
        SSL_SESSION_free(next_session_);
        next_session_ = nullptr;
    }
    out_.clear();
    peer_.reset();
    context_.reset();
    in_ = nullptr;
    in_len_ = 0;
    in_pos_ = 0;
    refusal_ = nullptr;
    error_.clear();
    established_ = false;
    verify_peer_ = false;
    failed_ = false;
    closed_ = false;
    shutdown_sent_ = false;
    ERR_clear_error();
}

bool Session::begin(SSL_CTX* ctx) noexcept {
    reset();
    BIO_METHOD* method = SessionIo::method();
    ssl_ = method != nullptr ? SSL_new(ctx) : nullptr;
    BIO* bio = ssl_ != nullptr ? BIO_new(method) : nullptr;
    if (bio == nullptr) {
        reset();
        return false;
    }
    BIO_set_data(bio, this);
    SSL_set_bio(ssl_, bio, bio);  // one reference serves both directions
    SSL_set_app_data(ssl_, this);
    compat::shed_handshake_config(ssl_);
    return true;
}

bool Session::start_server(const std::shared_ptr<ServerContext>& context) noexcept {
    auto* cx = static_cast<ServerContextImpl*>(context.get());
    if (!begin(cx->initial_ctx())) {
        return false;
    }
    SSL_set_accept_state(ssl_);
    verify_peer_ = cx->options().client_auth != ClientAuth::None;
    context_ = context;
    return true;
}

bool Session::start_client(const std::shared_ptr<ClientContext>& context,
                           std::string_view server_name, SSL_SESSION* reuse) noexcept {
    auto* cx = static_cast<ClientContextImpl*>(context.get());
    const UpstreamTlsOptions& o = cx->options();
    std::string_view name = o.server_name.empty() ? server_name : std::string_view(o.server_name);
    if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
        name = name.substr(1, name.size() - 2);
    }
    char host[256];
    if (name.size() >= sizeof host || (o.verify && name.empty())) {
        reset();
        error_ = name.empty() ? "no server name to verify the certificate against"
                              : "server name too long";
        return false;
    }
    if (!begin(cx->ctx())) {
        return false;
    }
    std::memcpy(host, name.data(), name.size());
    host[name.size()] = '\0';
    const bool ip = is_ip_address(host);
    // RFC 6066 §3: literal IP addresses are not sent as SNI.
    if (!ip && !name.empty() && SSL_set_tlsext_host_name(ssl_, host) != 1) {
        reset();
        return false;
    }
    if (o.verify) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                          : X509_VERIFY_PARAM_set1_host(param, host, name.size());
        if (ok != 1) {
            reset();
            return false;
        }
    }
    if (reuse != nullptr && SSL_set_session(ssl_, reuse) != 1) {
        ERR_clear_error();  // not resumable here: a full handshake follows
    }
    SSL_set_connect_state(ssl_);
    verify_peer_ = o.verify;
    context_ = context;
    return true;
}

void Session::set_input(const char* data, std::size_t len) noexcept {
    in_ = data;
    in_len_ = len;
    in_pos_ = 0;
}

bool Session::handshake_done() const noexcept {
    return established_ || (ssl_ != nullptr && compat::in_early_data(ssl_));
}

Status Session::fail_status(int ret) noexcept {
    const int e = SSL_get_error(ssl_, ret);
    if (e == SSL_ERROR_WANT_READ) {
        return Status::WantRead;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        closed_ = true;
        ERR_clear_error();
        return Status::Closed;
    }
    failed_ = true;
    const unsigned long err = ERR_peek_error();
    if (refusal_ != nullptr) {
        error_ = refusal_;
        ERR_clear_error();
        return Status::Error;
    }
    if (ERR_GET_LIB(err) == ERR_LIB_SSL && ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        error_ = "certificate verify failed: ";
        error_ += X509_verify_cert_error_string(SSL_get_verify_result(ssl_));
    } else {
        const char* reason = err != 0 ? ERR_reason_error_string(err) : nullptr;
        error_ = reason != nullptr ? reason : "tls failure";
    }
    // The libraries spell reasons differently ("WRONG_VERSION_NUMBER", "wrong version number").
    for (char& c : error_) {
        if (c == '_') {
            c = ' ';
        } else if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    ERR_clear_error();
    return Status::Error;
}

Status Session::handshake() noexcept {
    if (ssl_ == nullptr || failed_) {
        return Status::Error;
    }
    if (closed_) {
        return Status::Closed;
    }
    if (handshake_done()) {
        return Status::Ok;
    }
    const int r = SSL_do_handshake(ssl_);
    if (r == 1) {
        established_ = SSL_in_init(ssl_) == 0;
        return Status::Ok;
    }
    return fail_status(r);
}

Status Session::read(char* out, std::size_t cap, std::size_t& produced) noexcept {
    produced = 0;
    if (ssl_ == nullptr || failed_) {
        return Status::Error;
    }
    if (cap == 0) {
        error_ = "read into an empty buffer";
        return Status::Error;
    }
    if (closed_) {
        return Status::Closed;
    }
    if (!handshake_done()) {
        const Status s = handshake();
        if (s != Status::Ok) {
            return s;
        }
    }
    const int n = SSL_read(ssl_, out, static_cast<int>(std::min<std::size_t>(cap, INT_MAX)));
    if (!established_ && SSL_in_init(ssl_) == 0) {
        established_ = true;  // the end of a 0-RTT handshake
    }
    if (n > 0) {
        produced = static_cast<std::size_t>(n);
        return Status::Ok;
    }
    return fail_status(n);
}

bool Session::seal(const char* data, std::size_t len) noexcept {
    const int r = SSL_write(ssl_, data, static_cast<int>(len));
    if (r == static_cast<int>(len)) {
        return true;
    }
    if (r <= 0) {
        fail_status(r);
    }
    return false;
}

std::size_t Session::write(const iovec* iov, unsigned count, std::size_t budget) noexcept {
    if (ssl_ == nullptr || failed_ || shutdown_sent_ || !handshake_done()) {
        return 0;
    }
    char staging[kRecord];
    std::size_t consumed = 0;
    unsigned i = 0;
    std::size_t off = 0;
    auto skip_done = [&] {
        while (i < count && off == iov[i].iov_len) {
            ++i;
            off = 0;
        }
    };
    skip_done();
    while (i < count && consumed < budget) {
        const std::size_t want = std::min(budget - consumed, kRecord) + kRecordOverhead;
        const std::size_t allowed =
            std::min({budget - consumed, plaintext_fitting(out_.room(want)), kMaxSeal});
        if (allowed == 0) {
            break;
        }
        const char* base = static_cast<const char*>(iov[i].iov_base) + off;
        const std::size_t left = iov[i].iov_len - off;
        const std::size_t record = std::min(allowed, kRecord);
        if (left >= record) {
            // A piece of a record or more: encrypted where it is. Whole records only, unless
            // this is its end.
            std::size_t n = std::min(left, allowed);
            if (n < left && n > kRecord) {
                n -= n % kRecord;
            }
            if (!seal(base, n)) {
                break;
            }
            consumed += n;
            off += n;
            skip_done();
            continue;
        }
        // Small pieces (a head, a chunk header, a short body) share one record.
        std::size_t staged = 0;
        while (i < count && staged < record) {
            const std::size_t take = std::min(iov[i].iov_len - off, record - staged);
            std::memcpy(staging + staged, static_cast<const char*>(iov[i].iov_base) + off, take);
            staged += take;
            off += take;
            skip_done();
        }
        if (!seal(staging, staged)) {
            break;
        }
        consumed += staged;
    }
    out_.trim();
    return consumed;
}

void Session::shutdown() noexcept {
    if (ssl_ == nullptr || failed_ || shutdown_sent_ || !established_) {
        return;
    }
    SSL_shutdown(ssl_);
    shutdown_sent_ = true;
    ERR_clear_error();
}

std::string_view Session::alpn() const noexcept {
    if (ssl_ == nullptr) {
        return {};
    }
    const unsigned char* p = nullptr;
    unsigned len = 0;
    SSL_get0_alpn_selected(ssl_, &p, &len);
    return {reinterpret_cast<const char*>(p), p != nullptr ? len : 0};
}

std::string_view Session::server_name() const noexcept {
    const char* n = ssl_ != nullptr ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
    return n != nullptr ? std::string_view(n) : std::string_view();
}

std::string_view Session::version() const noexcept {
    return ssl_ != nullptr && handshake_done() ? std::string_view(SSL_get_version(ssl_))
                                               : std::string_view();
}

std::string_view Session::cipher() const noexcept {
    const SSL_CIPHER* c = ssl_ != nullptr ? SSL_get_current_cipher(ssl_) : nullptr;
    const char* name = c != nullptr ? SSL_CIPHER_standard_name(c) : nullptr;
    return name != nullptr ? std::string_view(name) : std::string_view();
}

bool Session::resumed() const noexcept { return ssl_ != nullptr && SSL_session_reused(ssl_) == 1; }

bool Session::in_early_data() const noexcept {
    return ssl_ != nullptr && compat::in_early_data(ssl_);
}

bool Session::peer_verified() const noexcept {
    if (ssl_ == nullptr || !verify_peer_ || !handshake_done() ||
        SSL_get_verify_result(ssl_) != X509_V_OK) {
        return false;
    }
    return static_cast<bool>(compat::peer_certificate(ssl_));
}

bool Session::peer_presented() const noexcept {
    return ssl_ != nullptr && handshake_done() && static_cast<bool>(compat::peer_certificate(ssl_));
}

const PeerText* Session::peer() noexcept {
    if (ssl_ == nullptr || !established_) {
        return nullptr;
    }
    if (!peer_) {
        peer_ = std::make_unique<PeerText>();
        if (X509Ptr cert = compat::peer_certificate(ssl_)) {
            describe_peer(cert.get(), peer_verified(), *peer_);
        }
    }
    return peer_.get();
}

std::string_view Session::peer_subject() noexcept {
    const PeerText* p = peer();
    return p != nullptr ? std::string_view(p->subject) : std::string_view();
}

std::string_view Session::peer_san() noexcept {
    const PeerText* p = peer();
    return p != nullptr ? std::string_view(p->san) : std::string_view();
}

std::span<const std::string_view> Session::peer_sans() noexcept {
    const PeerText* p = peer();
    return p != nullptr ? std::span<const std::string_view>(p->san_views)
                        : std::span<const std::string_view>();
}

std::string_view Session::peer_xfcc() noexcept {
    const PeerText* p = peer();
    return p != nullptr ? std::string_view(p->xfcc) : std::string_view();
}

std::string_view Session::ocsp_response() const noexcept {
    return ssl_ != nullptr ? compat::ocsp_response(ssl_) : std::string_view();
}

SSL_SESSION* Session::take_session() noexcept {
    SSL_SESSION* s = next_session_;
    next_session_ = nullptr;
    return s;
}

Detected detect(const char* data, std::size_t len) noexcept {
    if (len == 0) {
        return Detected::NeedMore;
    }
    // RFC 8446 §5.1: ContentType handshake(22) opens every TLS connection.
    return static_cast<unsigned char>(data[0]) == 0x16 ? Detected::Tls : Detected::Plain;
}

}  // namespace blitz::tls

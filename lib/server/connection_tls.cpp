// The TLS side of a downstream connection: protocol detection, the handshake, decryption into
// receive buffers, and ciphertext sends that stand in for plaintext ones.
//
// Plaintext is decrypted into buffers of the receive pool, so everything after it (the codec,
// forwarded body spans and their reference counts) works exactly as on a plain connection. On
// the way out, submit() hands plaintext iovecs to the session, which encrypts what fits into its
// output buffer; the completion of that ciphertext is reported to the output code as a send of
// the plaintext it carried, so the output code does not know TLS is there.

#include <blitz/log.hpp>

#include "server/connection.hpp"
#include "server/reactor.hpp"
#include "server/tls_state.hpp"

namespace blitz::server {

bool Connection::tls_start() {
    tls_ = reactor_.take_tls();
    if (tls_ == nullptr || !tls_->session.start_server(config().tls)) {
        close_now();
        return false;
    }
    return true;
}

bool Connection::detect_protocol(const char* data, std::size_t len) {
    if (tls::detect(data, len) == tls::Detected::Tls) {
        return tls_start();
    }
    state_ = State::Head;
    arm_timer();
    switch (config().options.tls->plaintext) {
        case PlaintextPolicy::Serve:
            return true;
        case PlaintextPolicy::Redirect:
            routes_ = config().plain_routes.get();
            return true;
        case PlaintextPolicy::Reject:
            break;
    }
    local_error(400, "plain HTTP on a TLS port", true);
    return false;
}

void Connection::tls_input(const char* data, std::size_t len) {
    if (tls_->failed) {
        return;  // an alert is on its way out; nothing more is read
    }
    tls::Session& s = tls_->session;
    s.set_input(data, len);
    if (!s.handshake_done()) {
        const tls::Status st = s.handshake();
        if (st == tls::Status::WantRead) {
            flush();  // the server's flight
            return;
        }
        if (st != tls::Status::Ok) {
            if (log_level() <= LogLevel::Debug) {
                const std::string_view why = s.error_reason();
                log(LogLevel::Debug, "tls: handshake failed: %.*s", static_cast<int>(why.size()), why.data());
            }
            tls_->failed = true;
            reactor_.metrics().tls_handshake_failures[static_cast<std::size_t>(s.failure_kind())].add();
            note_close(CloseReason::Tls);
            if (!tls_send_control()) {
                close_now();
            }
            return;
        }
        tls_handshake_done();
    }
    io::BufferPool& pool = reactor_.io().buffers();
    while (!closing_ && state_ != State::Closed && state_ != State::Linger) {
        const int bid = pool.take();
        if (bid < 0) {
            note_close(CloseReason::Error);
            close_now();  // no memory for the plaintext: the request cannot be read
            return;
        }
        auto b = static_cast<std::uint16_t>(bid);
        std::size_t n = 0;
        const tls::Status st = s.read(pool.data(b), pool.buffer_bytes(), n);
        if (st != tls::Status::Ok) {
            pool.release(b);
            if (st == tls::Status::Error) {
                if (log_level() <= LogLevel::Debug) {
                    const std::string_view why = s.error_reason();
                    log(LogLevel::Debug, "tls: %.*s", static_cast<int>(why.size()), why.data());
                }
                tls_->failed = true;
                note_close(CloseReason::Tls);
                if (!tls_send_control()) {
                    close_now();
                }
            } else if (st == tls::Status::Closed) {
                note_close(CloseReason::Client);
                close_now();  // close_notify: as a plain peer's EOF
            }
            break;
        }
        consume_input(pool.data(b), n, b);
    }
    flush();  // tickets or key updates written while reading
}

void Connection::tls_handshake_done() {
    reactor_.metrics().tls_handshakes.add();
    state_ = State::Head;
    last_activity_ms_ = reactor_.now_ms();
    if (tls_->session.alpn() == "h2" && config().options.http2.enabled && !h2_begin()) {
        return;
    }
    arm_timer();
}

bool Connection::tls_send_control() {
    tls::Session& s = tls_->session;
    if (send_inflight_ || !s.has_output()) {
        return false;
    }
    tls_send_output();
    return true;
}

void Connection::tls_send_output() {
    const std::string_view out = tls_->session.pending_output();
    tls_->iov.iov_base = const_cast<char*>(out.data());
    tls_->iov.iov_len = out.size();
    send_inflight_ = true;
    reactor_.io().send(fd_, &tls_->iov, 1, io::pack(io::Op::Send, generation_, slot_));
}

void Connection::tls_submit(const iovec* iov, unsigned count) {
    tls::Session& s = tls_->session;
    const std::size_t consumed = s.write(iov, count, ~std::size_t{0});
    if (consumed == 0 || !s.has_output()) {
        send_inflight_ = false;
        close_now();  // no output buffer could be had
        return;
    }
    tls_->plain_inflight = static_cast<std::uint32_t>(consumed);
    tls_->data_inflight = true;
    tls_send_output();
}

std::int32_t Connection::tls_sent(std::int32_t res) {
    tls::Session& s = tls_->session;
    s.output_sent(static_cast<std::size_t>(res));
    if (s.has_output()) {
        // The rest of this ciphertext, or records queued behind it (a ticket, a key update):
        // the plaintext counts as sent when all of it is out.
        tls_send_output();
        return -1;
    }
    if (tls_->data_inflight) {
        tls_->data_inflight = false;
        const auto plain = static_cast<std::int32_t>(tls_->plain_inflight);
        tls_->plain_inflight = 0;
        return plain;
    }
    // A flight without plaintext is out.
    if (tls_->failed) {
        close_now();
    } else if (tls_->notify_queued) {
        begin_linger();
    } else {
        flush();
    }
    return -1;
}

bool Connection::tls_close_notify() {
    if (tls_ == nullptr || tls_->notify_queued || tls_->failed || !tls_->session.handshake_done()) {
        return false;
    }
    tls_->notify_queued = true;
    tls_->session.shutdown();
    return tls_send_control();
}

void Connection::tls_release() noexcept {
    if (tls_ != nullptr) {
        reactor_.give_tls(tls_);
        tls_ = nullptr;
    }
}

std::string_view Connection::client_cert_xfcc() noexcept {
    if (tls_ == nullptr || !config().options.tls->forward_client_cert || !tls_->session.peer_verified()) {
        return {};
    }
    return tls_->session.peer_xfcc();
}

const TlsInfo* Connection::exchange_tls() noexcept {
    if (tls_ == nullptr) {
        return nullptr;
    }
    if (!tls_->info_ready) {
        tls::Session& s = tls_->session;
        TlsInfo& i = tls_->info;
        i.version = s.version();
        i.cipher = s.cipher();
        i.server_name = s.server_name();
        i.alpn = s.alpn();
        i.resumed = s.resumed();
        i.client_presented = s.peer_presented();
        i.client_verified = s.peer_verified();
        i.client_subject = s.peer_subject();
        i.client_san = s.peer_san();
        i.client_sans = s.peer_sans();
        tls_->info_ready = true;
    }
    return &tls_->info;
}

}  // namespace blitz::server

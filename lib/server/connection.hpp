#pragma once

#include <cstdint>
#include <memory>

#include <sys/socket.h>

#include <blitz/exchange.hpp>
#include <blitz/router.hpp>

#include "core/timer_wheel.hpp"
#include "http1/parser.hpp"
#include "http1/proxy.hpp"
#include "io/backend.hpp"
#include "http/exchange_driver.hpp"
#include "server/proxy.hpp"

namespace blitz::server {

class ReactorImpl;
class ProxyState;
class H2Session;
class H2Stream;
struct TlsState;
class SendQueue;
struct ListenerSlot;
struct ListenerConfig;
struct ListenerShared;

/// One downstream HTTP/1.1 connection: feeds received buffers to the codec, runs each
/// exchange through its route's filters and action, and writes responses in order.
///
/// Thread: its reactor's. Lifetime: pooled by the reactor; close() cancels its operations and
/// the reactor recycles it when none is in flight (and no paused exchange still refers to it).
class Connection final : private detail::ExchangeDriver, private Downstream {
public:
    Connection(ReactorImpl& reactor) noexcept;
    ~Connection();

    void open(int fd, ListenerSlot& listener, std::uint32_t slot, std::uint32_t generation);
    void on_recv(const io::Completion& c);
    void on_send(const io::Completion& c);
    /// Re-arms multishot recv after the buffer pool ran dry.
    void rearm_recv();
    /// Closes at once (server stop): cancels operations; in-flight exchanges are aborted.
    void close_now() noexcept;
    /// Notes why the connection is about to close (the first reason given is kept).
    void note_close(CloseReason reason) noexcept {
        if (!close_noted_) {
            close_noted_ = true;
            close_reason_ = reason;
        }
    }
    CloseReason close_reason() const noexcept { return close_reason_; }
    /// The client's TCP port (0 when it cannot be had).
    std::uint16_t client_port() noexcept { return fetch_peer() ? peer_port_ : 0; }
    /// The client's IP as text into `buf` (INET6_ADDRSTRLEN bytes); its length, 0 when it cannot
    /// be had. For a line about to be written: no copy into an exchange's arena.
    std::size_t format_client_ip(char* buf, std::size_t len) noexcept;
    /// Graceful close (shutdown, or its listener removed by a reload): what is in flight is
    /// answered with `Connection: close` (HTTP/2: GOAWAY, streams finish); an idle connection
    /// gets a short grace for a request already on the wire, then a FIN.
    void drain() noexcept;

    /// Bytes the reactor reserves per pooled exchange.
    static std::size_t active_bytes() noexcept;

    std::uint32_t slot() const noexcept { return slot_; }
    ListenerSlot* listener() const noexcept { return listener_; }
    bool recyclable() const noexcept;

private:
    // Handshake: before HTTP (waiting for the first byte of a detecting listener, or a TLS
    // handshake in progress).
    // H2: the connection speaks HTTP/2 (h2_ has the streams).
    enum class State : std::uint8_t { Handshake, Head, Body, Drain, Tunnel, H2, Linger, Closed };
    enum class Phase : std::uint8_t {
        RequestHeaders, AwaitBody, Action, AwaitResponse, ResponseHeaders,
        ProxyHead,  // a proxied response's filters run (one may hold its head)
        Done,
        Streaming  // a proxied response is being forwarded
    };

    struct Active;  // the exchange in progress (pooled by the reactor)

    // Input.
    /// Runs received (or decrypted) bytes in receive buffer `bid` through the codec.
    void consume_input(char* data, std::size_t len, std::uint16_t bid);
    void process(char* data, std::size_t len);
    bool process_head(char*& p, char* end);
    void process_body(char*& p, char* end);
    void stash_partial_head(const char* p, std::size_t n);

    // Exchanges.
    void start_exchange(http1::RequestHead& head, std::size_t head_bytes);
    void advance();
    void deliver_body(std::span<const char> chunk, bool end);
    void finish_response();
    void end_exchange() noexcept;
    void detach_exchange();
    void local_error(int status, const char* reason, bool close, std::string_view allow = {});
    void send_continue();

    // Output.
    void append(std::string_view bytes);
    static void release_out(ReactorImpl& reactor, char*& buf, std::uint32_t& cap) noexcept;
    char* reserve_out(std::size_t n);
    void flush();
    /// flush() at the end of the reactor's turn, once however often it is asked for: a proxied
    /// response's head and the body bytes behind it go out in one send.
    void flush_later();
    void deferred_flush();
    /// Sends plaintext: straight to the socket, or encrypted by the TLS session.
    void submit(const iovec* iov, unsigned count);
    void begin_linger();
    void arm_timer();
    void tighten_timer(std::uint64_t deadline_ms);
    static void on_timer(detail::TimerWheel::Timer* t);
    void timer_fired();
    bool peer_gone() const noexcept;
    void maybe_recycle() noexcept;
    /// Between requests: takes up the listener's current generation (after a reload).
    void refresh_config() noexcept;
    const ListenerShared& config() const noexcept;

    // Proxying (Downstream, called by ProxyState).
    friend class ProxyState;
    bool peer_trusted() noexcept override;
    std::string_view client_cert_xfcc() noexcept override;
    bool fetch_peer() noexcept;
    void proxy_error(int status, const char* reason, const char* cause) override;
    HeadOutcome proxy_head(const http1::ResponseHead& head, bool upgrade) override;
    void proxy_replaced() override;
    Flow proxy_filters(Active& a);
    static bool proxied_passthrough(const Active& a) noexcept;
    bool send_proxied_head();
    void release_proxy_head();
    SendQueue& body_queue();
    void proxy_body(const char* data, std::uint32_t len, std::int32_t bid) override;
    void proxy_continue() override;
    void proxy_trailers(Headers fields) override;
    void proxy_tunnel() override;
    void proxy_done(bool clean) override;
    void proxy_block_input() override;
    void proxy_unblock_input() override;
    std::uint64_t response_backlog() const noexcept override;
    std::uint64_t output_backlog() const noexcept;
    void complete_exchange(bool keep);
    bool keep_alive_allowed() const noexcept;
    void resume_input();

    // HTTP/2 (h2_connection.cpp holds the session and its streams).
    /// Whether these first bytes of a plain connection are (a prefix of) the HTTP/2 preface.
    bool h2_preface(const char* data, std::size_t len) const noexcept;
    bool h2_begin();
    void h2_input(const char* data, std::size_t len, std::int32_t bid);
    void h2_sent();
    /// Closes a connection whose HTTP/2 session has ended, once its output is out.
    void h2_check_done();
    /// The streamed output queue (HTTP/2 frames), taken from the reactor on first use.
    SendQueue& output_queue();

    // TLS (connection_tls.cpp).
    /// Decides what the first bytes of a detecting listener are; false when they were refused.
    bool detect_protocol(const char* data, std::size_t len);
    bool tls_start();
    /// Encrypts plaintext from the iovecs and sends the ciphertext.
    void tls_submit(const iovec* iov, unsigned count);
    void tls_input(const char* data, std::size_t len);
    void tls_handshake_done();
    /// Sends ciphertext the session has queued without plaintext behind it (handshake flights,
    /// tickets, alerts); false when there is none.
    bool tls_send_control();
    /// Sends what the session has pending (the one ciphertext send in flight).
    void tls_send_output();
    /// A ciphertext send completed; returns the plaintext bytes it carried, or -1 when more
    /// ciphertext went out (or the connection closed) and the completion is not done yet.
    std::int32_t tls_sent(std::int32_t res);
    bool tls_close_notify();
    void tls_release() noexcept;

    // ExchangeDriver
    void exchange_resume() override;
    void exchange_read_body() override;
    Reactor& exchange_reactor() noexcept override;
    std::string_view exchange_client_address() noexcept override;
    bool exchange_aborted() const noexcept override;
    const TlsInfo* exchange_tls() noexcept override;

    ReactorImpl& reactor_;
    ListenerSlot* listener_ = nullptr;
    ListenerConfig* config_ = nullptr;    // the listener generation pinned (see refresh_config)
    const RouteTable* routes_ = nullptr;  // config_'s routes (or plain_routes)
    int fd_ = -1;
    std::uint32_t slot_ = 0;
    std::uint32_t generation_ = 0;
    std::uint32_t requests_ = 0;
    State state_ = State::Closed;
    bool recv_armed_ = false;
    bool send_inflight_ = false;
    bool flush_queued_ = false;  // in the reactor's flush_ list
    bool close_after_send_ = false;
    bool closing_ = false;      // cancel issued; waiting for operations to finish
    bool in_process_ = false;
    bool draining_ = false;
    bool close_noted_ = false;
    CloseReason close_reason_ = CloseReason::Server;
    bool input_blocked_ : 1 = false;  // a proxied request body waits for its upstream
    bool queue_send_ : 1 = false;     // the send in flight is from queue_
    std::uint16_t peer_port_ = 0;
    std::uint8_t peer_family_ = 0;    // AF_INET/AF_INET6 once the peer address was fetched
    std::uint8_t peer_[16] = {};
    std::uint64_t accepted_ms_ = 0;
    std::uint64_t last_activity_ms_ = 0;
    std::uint64_t head_started_ms_ = 0;
    std::uint64_t drained_ = 0;
    std::uint64_t drain_idle_ms_ = 0;  // draining: an idle connection closes then
    detail::TimerWheel::Timer timer_;

    // Partial request head carried across receive buffers (rare path, heap).
    char* partial_ = nullptr;
    std::uint32_t partial_len_ = 0;
    std::uint32_t partial_cap_ = 0;

    http1::BodyDecoder body_;
    Active* active_ = nullptr;

    // Output: `out_` is being filled while `sending_` is in flight.
    char* out_ = nullptr;
    std::uint32_t out_len_ = 0;
    std::uint64_t queued_ = 0;  // response bytes handed to the output, ever (per-exchange counts)
    std::uint32_t out_cap_ = 0;
    char* sending_ = nullptr;
    std::uint32_t sending_len_ = 0;
    std::uint32_t sending_cap_ = 0;
    std::uint32_t sent_ = 0;
    std::int32_t current_bid_ = -1;  // receive buffer being processed, -1 for partial_
    iovec iov_{};
    SendQueue* queue_ = nullptr;  // streamed output (proxied bodies), made on demand
    TlsState* tls_ = nullptr;     // TLS connections only, from the reactor's pool
    H2Session* h2_ = nullptr;     // HTTP/2 connections only

    friend class ReactorImpl;
    friend class H2Session;
    friend class H2Stream;
};

}  // namespace blitz::server

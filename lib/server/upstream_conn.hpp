#pragma once

#include <cerrno>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include <sys/uio.h>

#include "core/timer_wheel.hpp"
#include "io/backend.hpp"
#include "server/engine_metrics.hpp"
#include "server/send_queue.hpp"
#include "upstream/cluster.hpp"

namespace blitz::server {

class ReactorImpl;
class UpstreamConn;
struct EndpointPool;
struct TlsState;
class UpstreamH2Session;

/// What an upstream connection reports to the exchange using it.
///
/// Thread: the reactor's. Lifetime: the owner detaches (UpstreamConn::set_owner(nullptr))
/// before it goes.
class UpstreamOwner {
public:
    /// The connect (and, for a TLS upstream, the handshake) finished: `error` is 0, -errno, or
    /// UpstreamConn::kTlsFailed.
    virtual void upstream_connected(UpstreamConn& c, int error) = 0;
    /// Bytes arrived in receive buffer `bid` (reference-counted: hold it to keep the bytes).
    virtual void upstream_data(UpstreamConn& c, char* data, std::size_t len, std::uint16_t bid) = 0;
    /// The peer closed (`error` 0) or the socket failed (-errno).
    virtual void upstream_closed(UpstreamConn& c, int error) = 0;
    /// Everything queued was written.
    virtual void upstream_drained(UpstreamConn& c) = 0;
    /// The connection's timer fired (see UpstreamConn::arm_timer).
    virtual void upstream_timer(UpstreamConn& c) = 0;
    /// For an owner waiting in EndpointPool::waiters: `c` is a pooled connection handed over
    /// (now Busy), or nullptr when a connection slot came free (connect one, or pick again).
    virtual void upstream_available(UpstreamConn* c) = 0;

protected:
    ~UpstreamOwner() = default;
};

/// One TCP connection to an upstream endpoint: connect, multishot receive, and sends from its
/// owner's SendQueue. Idle in its pool it keeps receiving, so a close by the server is seen at
/// once (the pending-EOF check) and the connection is never handed out.
///
/// For a TLS upstream the connection stays Connecting until the handshake completed (the connect
/// timeout covers both); the owner only ever sees plaintext from the finished session, decrypted
/// into receive buffers.
///
/// Thread: its reactor's. Lifetime: pooled by the reactor; close() cancels its operations and
/// it is recycled when none is in flight.
class UpstreamConn {
public:
    enum class State : std::uint8_t { Free, Connecting, Busy, Idle, Closing };
    /// upstream_connected() error for a failed TLS handshake (certificate, name, protocol).
    static constexpr int kTlsFailed = -EPROTO;

    explicit UpstreamConn(ReactorImpl& reactor) noexcept;
    UpstreamConn(const UpstreamConn&) = delete;
    UpstreamConn& operator=(const UpstreamConn&) = delete;
    ~UpstreamConn();

    /// Opens a non-blocking socket to the pool's endpoint and starts connecting. False (with
    /// `error` = errno) when no socket could be made.
    bool open(EndpointPool& pool, std::uint32_t slot, std::uint32_t generation, int& error);
    void set_owner(UpstreamOwner* owner) noexcept { owner_ = owner; }
    UpstreamOwner* owner() const noexcept { return owner_; }

    /// Sends what is unwritten in `queue` (which must stay alive until drained or detached).
    void send_from(SendQueue* queue);
    /// Re-arms receiving after the buffer pool ran dry.
    void rearm() { arm_recv(); }
    /// Stops / resumes receiving (back-pressure from a slow client).
    void pause_recv();
    void resume_recv();
    /// Whether the connection was used for a request before (a keep-alive reuse).
    bool reused() const noexcept { return requests_ > 1; }
    std::uint32_t requests() const noexcept { return requests_; }
    void count_request() noexcept { ++requests_; }

    void arm_timer(std::uint64_t deadline_ms);
    void cancel_timer() noexcept;

    /// Out of the pool's idle list, for a new request.
    void take_from_pool() noexcept;
    /// Back to the pool (idle, receiving) if the pool wants it, else closed.
    void release_to_pool();
    /// Closes (cancels operations); recycled when they have finished.
    void close() noexcept;

    State state() const noexcept { return state_; }
    bool connected() const noexcept { return state_ == State::Busy || state_ == State::Idle; }
    EndpointPool* pool() const noexcept { return pool_; }

    void on_connect(const io::Completion& c);
    void on_recv(const io::Completion& c);
    void on_send(const io::Completion& c);

    std::uint32_t slot() const noexcept { return slot_; }
    std::uint32_t generation() const noexcept { return generation_; }
    int fd() const noexcept { return fd_; }
    bool recyclable() const noexcept { return state_ == State::Closing && inflight_ == 0; }

private:
    void start_send();
    void arm_recv();
    void connected_ok();
    void fail_connect(int error);
    bool tls_begin();
    void tls_input(const char* data, std::size_t len);
    /// Sends ciphertext written without plaintext behind it (handshake, alerts).
    void tls_send_control();
    void send_ciphertext();
    static void on_timer(detail::TimerWheel::Timer* t);
    void maybe_recycle() noexcept;

    ReactorImpl& reactor_;
    EndpointPool* pool_ = nullptr;
    UpstreamOwner* owner_ = nullptr;
    SendQueue* queue_ = nullptr;
    int fd_ = -1;
    std::uint32_t slot_ = 0;
    std::uint32_t generation_ = 0;
    std::uint32_t requests_ = 0;
    std::uint32_t inflight_ = 0;  // operations the backend still owes a completion for
    State state_ = State::Free;
    bool recv_armed_ = false;
    bool recv_paused_ = false;
    bool send_inflight_ = false;
    std::uint64_t idle_since_ms_ = 0;
    detail::TimerWheel::Timer timer_;
    TlsState* tls_ = nullptr;  // TLS upstreams only, from the reactor's pool
};

/// One reactor's connections to one endpoint.
///
/// Thread: the reactor's. Lifetime: made on the first request to the endpoint; freed when the
/// endpoint left its set and its last connection closed.
struct EndpointPool {
    EndpointPool() = default;
    EndpointPool(const EndpointPool&) = delete;
    EndpointPool& operator=(const EndpointPool&) = delete;
    ~EndpointPool();

    /// This reactor's series of the endpoint, found again after a re-rank moved endpoint
    /// labels; `attempt` counts one attempt of the endpoint for the ranking.
    EndpointSeries& metrics(bool attempt = false) {
        return upstream_series->endpoint(endpoint.text, series_ref, attempt);
    }
    /// Changes the endpoint's open connections gauge, remembering the pool's share of it.
    void count_open(std::int64_t n) {
        metrics().open.add(n);
        series_ref.open += n;
    }
    /// Changes the endpoint's idle connections gauge, remembering the pool's share of it.
    void count_idle(std::int64_t n) {
        metrics().idle.add(n);
        series_ref.idle += n;
    }

    upstream::Endpoint endpoint;   // a stable copy: the set it came from may be replaced
    upstream::LocalCluster* cluster = nullptr;
    std::vector<UpstreamConn*> idle;  // most recently used last
    /// HTTP/2 sessions taking new streams (an HTTP/2 upstream's; their connections are not in
    /// `idle`: a session keeps its own).
    std::vector<UpstreamH2Session*> h2;
    /// Requests waiting for a connection at the connection limit, oldest first (bounded by the
    /// circuit breaker's max_pending_requests).
    std::vector<UpstreamOwner*> waiters;
    std::uint32_t open = 0;           // connections open (busy, idle, connecting)
    UpstreamSeries* upstream_series = nullptr;  // this reactor's metrics of the upstream
    EndpointRef series_ref;  // ...and of the endpoint (open, idle): see metrics()
    bool orphaned = false;            // the endpoint left the set
    /// The last TLS session the endpoint gave (offered for resumption by the next connection).
    SSL_SESSION* tls_session = nullptr;
};

/// Per-reactor proxy state: each upstream's local view, pools and balancer.
///
/// Thread: the reactor's. Lifetime: owned by the reactor.
class ProxyContext {
public:
    explicit ProxyContext(ReactorImpl& reactor) noexcept : reactor_(reactor) {}
    ~ProxyContext();

    upstream::LocalCluster& cluster(const std::shared_ptr<upstream::Cluster>& c);
    /// The pool of endpoint `index` of `cluster` (made on first use).
    EndpointPool& pool(upstream::LocalCluster& cluster, int index);
    /// An idle connection from `pool`, or nullptr.
    UpstreamConn* take_idle(EndpointPool& pool);
    /// A new connection to `pool`'s endpoint (connecting), or nullptr with `error` set.
    UpstreamConn* connect(EndpointPool& pool, int& error);
    /// An HTTP/2 session to `pool`'s endpoint with room for another stream, or nullptr.
    UpstreamH2Session* h2_session(EndpointPool& pool) noexcept;
    /// A new HTTP/2 session to `pool`'s endpoint (connecting), or nullptr with `error` set.
    UpstreamH2Session* h2_connect(EndpointPool& pool, int& error);
    /// Called by a session that ended, just before it deletes itself.
    void h2_gone(UpstreamH2Session* session) noexcept;
    /// Called by a connection that closed for good.
    void connection_closed(EndpointPool& pool) noexcept;
    /// Closes every idle connection (stopping).
    void close_idle() noexcept;
    /// Forgets the upstreams not in `live` that have no request here any more (a reload
    /// dropped them): their idle connections close, busy ones finish first.
    void keep_only(const std::vector<const upstream::Cluster*>& live);

private:
    static void drop_pool(void* context, void* pool);

    ReactorImpl& reactor_;
    std::unordered_map<const upstream::Cluster*, std::unique_ptr<upstream::LocalCluster>> clusters_;
    std::vector<UpstreamH2Session*> sessions_;  // every HTTP/2 session not yet deleted
};

}  // namespace blitz::server

#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <deque>
#include <list>
#include <mutex>
#include <string>
#include <vector>

#include <blitz/http.hpp>
#include <blitz/listener.hpp>
#include <blitz/reactor.hpp>
#include <blitz/router.hpp>

#include "core/block_pool.hpp"
#include "core/timer_wheel.hpp"
#include "io/backend.hpp"
#include "net/address.hpp"
#include "net/cidr.hpp"
#include "server/engine_metrics.hpp"
#include "server/observe.hpp"
#include "tls/session.hpp"

namespace blitz::upstream {
class Cluster;
}

namespace blitz::server {

class Connection;
class UpstreamConn;
class ProxyContext;
class SendQueue;
struct TlsState;

class ProxyState;
struct ListenerShared;

/// What a connection knows of an exchange that ended, beyond the Exchange itself.
struct ExchangeEnd {
    std::uint64_t started_us = 0;  ///< the reactor clock when the request head was complete
    std::uint64_t bytes_received = 0;
    std::uint64_t bytes_sent = 0;
    const ProxyState* proxy = nullptr;
    const ListenerShared* listener = nullptr;
    const ExchangeObs* obs = nullptr;
    Connection* connection = nullptr;  ///< the client's (its port is read only when logged)
};

/// One generation of a listener: its options, routes and TLS context, and the sockets it
/// accepts on. A reload makes a new generation for every listener (the sockets of a listener
/// whose address stays are carried over).
///
/// Thread: immutable once published. Lifetime: shared by the server core and every reactor;
/// a reactor lets go of an old generation when its last connection or stream using it ends.
struct ListenerShared {
    ListenerOptions options;
    std::shared_ptr<const RouteTable> routes;
    std::shared_ptr<tls::ServerContext> tls;  // with options.tls
    /// Plain HTTP on a detecting TLS listener whose policy is Redirect: one route, 308 to https.
    std::shared_ptr<const RouteTable> plain_routes;
    /// Listening sockets. Usually one per reactor (SO_REUSEPORT); inherited ones may be fewer
    /// or more (see fds_for()).
    std::vector<int> fds;
    net::SocketAddress bound;
    std::string url;
    net::CidrSet trusted_proxies;
    /// The admin listener's: its requests are not counted in the request metrics or logged.
    bool admin = false;
    /// access_log or a route's access_log is set (else nothing is formatted per request).
    bool logs = false;
    /// The listener's access log (null: none), and routes' own by Route::order (null: the
    /// listener's; a disabled target: none).
    std::shared_ptr<const LogTarget> access_log;
    std::vector<std::shared_ptr<const LogTarget>> route_logs;
    /// Upstreams the routes proxy to (a reactor forgets the others' pools).
    std::vector<const upstream::Cluster*> clusters;

    /// The sockets reactor `index` of `reactors` accepts on: every socket is taken by exactly
    /// one reactor, and every reactor takes at least one (sharing when there are fewer).
    std::vector<int> fds_for(unsigned index, unsigned reactors) const;
};

/// What a reactor needs from the server that owns it.
class ReactorOwner {
public:
    /// The listeners' current generation.
    virtual std::vector<std::shared_ptr<const ListenerShared>> listeners() const = 0;
    /// Reactors in all (fixed for the server's life).
    virtual unsigned reactor_count() const noexcept = 0;
    /// The span exporter, or nullptr without tracing (fixed for the server's life).
    virtual trace::Exporter* exporter() const noexcept = 0;
    /// Asks every reactor to stop (called on SIGTERM/SIGINT read by reactor 0).
    virtual void stop_all() noexcept = 0;

protected:
    ~ReactorOwner() = default;
};

/// A listener generation as one reactor uses it. Connections and HTTP/2 streams pin the
/// generation they work with by a plain counter (reactor-local: nothing shared is touched per
/// request); a reload makes a new one current and the reactor frees the old one when its last
/// user lets go, so requests in flight finish on the routes they started with.
struct ListenerConfig {
    std::shared_ptr<const ListenerShared> shared;
    std::uint32_t users = 0;  // pins, plus one while current
};

/// Per-reactor state of one listening socket.
struct ListenerSlot {
    ListenerConfig* config = nullptr;  // the current generation (null: removed and drained)
    std::uint32_t index = 0;           // in the reactor's slot list (accept user_data)
    int fd = -1;
    std::uint32_t max_connections = 0;  // this reactor's share; 0 = unlimited
    std::uint32_t connections = 0;
    bool accepting = false;
    bool closed = false;
    /// Gone from the configuration: not accepting, its connections finish and close.
    bool removed = false;
};

/// The reactor implementation: one thread, one backend, its connections and timers.
///
/// Thread: everything but post()/post_after()/request_stop() runs on the reactor thread.
/// Lifetime: owned by the server core; created on its own thread (io_uring SINGLE_ISSUER).
class ReactorImpl final : public Reactor, private io::CompletionHandler, private tls::BufferSource {
public:
    static constexpr std::size_t kOutBlockBytes = 16 * 1024;
    /// TLS output buffers: two full records and then some.
    static constexpr std::size_t kTlsBufferBytes = 40 * 1024;

    ReactorImpl(ReactorOwner& owner, unsigned index, MetricsLimits limits,
                std::shared_ptr<metrics::LabelFamilies> label_families = nullptr);
    ~ReactorImpl() override;

    /// Creates the backend and arms listeners; on the reactor's thread.
    Result<void, std::string> init(const io::BackendOptions& options, std::string& fallback_reason);
    /// Runs until stopped and every connection is gone.
    void run();
    /// Thread-safe.
    void request_stop() noexcept;
    /// Takes up the listeners' current generation (ReactorOwner::listeners()): new sockets are
    /// accepted on, kept ones switch to the new generation for their next request, removed ones
    /// stop accepting and their connections drain. Reactor thread (posted by Server::reload()).
    void apply_listeners();
    /// Graceful stop: accepting stops, every connection finishes what it has started (HTTP/1.1
    /// responses say `Connection: close`, HTTP/2 gets GOAWAY) and closes; whatever is left at
    /// `deadline` is closed, then the reactor stops. Reactor thread.
    void begin_drain(std::uint64_t deadline_ms);
    bool draining() const noexcept { return drain_deadline_ms_ != 0; }
    /// Pins the current generation of `l` for a connection or stream; unpin() when done.
    ListenerConfig* pin(ListenerSlot& l) noexcept {
        ++l.config->users;
        return l.config;
    }
    void unpin(ListenerConfig* c) noexcept;

    // Reactor
    unsigned index() const noexcept override { return index_; }
    blitz::Backend backend() const noexcept override;
    std::chrono::steady_clock::time_point now() const noexcept override { return now_; }
    void post(std::function<void()> task) override;
    void post_after(std::chrono::milliseconds delay, std::function<void()> task) override;

    // For connections.
    io::Backend& io() noexcept { return *backend_; }
    detail::TimerWheel& timers() noexcept { return *timers_; }
    detail::BlockPool& blocks() noexcept { return blocks_; }
    std::uint64_t now_ms() const noexcept { return now_ms_; }
    std::string_view date() const noexcept { return {date_, 29}; }
    std::span<Header> header_scratch(std::size_t n);
    char* take_out_block();
    void give_out_block(char* block) noexcept;
    TlsState* take_tls();
    void give_tls(TlsState* t) noexcept;
    void* take_active_memory();
    void give_active_memory(void* p) noexcept;
    /// Memory for one HTTP/2 stream (H2Stream::bytes()), recycled like exchanges'.
    void* take_stream_memory();
    void give_stream_memory(void* p) noexcept;
    void rearm_recv_later(Connection* c);
    /// Flushes `c` at the end of this turn (Connection::flush_later()).
    void flush_later(Connection* c) { flush_.push_back(c); }
    void connection_closed(Connection* c) noexcept;

    // Receive buffers shared by several owners (a forwarded body span waiting to be sent):
    // own_buffer() gives the receiver the first reference, hold_buffer() adds one, and the
    // buffer goes back to the pool when put_buffer() drops the last.
    void own_buffer(std::uint16_t bid) noexcept { buffer_refs_[bid] = 1; }
    void hold_buffer(std::uint16_t bid) noexcept { ++buffer_refs_[bid]; }
    void put_buffer(std::uint16_t bid) noexcept;

    // Proxying.
    ProxyContext& proxy() noexcept { return *proxy_; }
    EngineMetrics& metrics() noexcept { return metrics_; }
    ReactorObserver& observer() noexcept { return *observer_; }
    /// An exchange's request head is complete: its request id and trace context, when the
    /// listener has ids or tracing runs.
    void exchange_started(Exchange& ex, ExchangeObs& obs, const ListenerShared& listener) {
        if (listener.options.request_id || tracing_) {
            observer_->started(ex, obs, listener);
        }
    }
    /// An exchange ended (its response handed to the connection): counted in the metrics,
    /// logged, traced. `end` says what the protocol's connection knows of it.
    void exchange_ended(const Exchange& ex, const ExchangeEnd& end);
    /// The loop turn's time in microseconds (steady clock), for request durations.
    std::uint64_t now_us() const noexcept {
        return static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now_.time_since_epoch()).count());
    }
    UpstreamConn* allocate_upstream(std::uint32_t& slot, std::uint32_t& generation);
    void upstream_closed(UpstreamConn* c) noexcept;
    void rearm_upstream_later(UpstreamConn* c);
    SendQueue* take_queue();
    void give_queue(SendQueue* q) noexcept;
    bool stopping() const noexcept { return stopping_; }

private:
    void on_completion(const io::Completion& c) override;
    char* take_buffer() noexcept override;
    void give_buffer(char* buffer) noexcept override;
    std::size_t buffer_bytes() const noexcept override { return kTlsBufferBytes; }
    void on_accept(ListenerSlot& l, const io::Completion& c);
    void arm_accept(ListenerSlot& l);
    void on_wake();
    void begin_stop();
    ListenerSlot& add_slot(int fd);
    void set_config(ListenerSlot& l, const std::shared_ptr<const ListenerShared>& shared);
    void remove_slot(ListenerSlot& l);
    /// Lets go of a removed listener's generation once its last connection is gone.
    void release_removed(ListenerSlot& l) noexcept;
    /// Drops the pools of upstreams no generation here routes to any more.
    void forget_clusters();
    void update_clock() noexcept;
    void run_tasks();
    void run_timed_tasks();
    std::int64_t next_timeout_ms() noexcept;
    Connection* allocate_connection(std::uint32_t& slot, std::uint32_t& generation);

    ReactorOwner& owner_;
    unsigned index_;
    int wake_fd_ = -1;
    std::unique_ptr<io::Backend> backend_;
    std::unique_ptr<detail::TimerWheel> timers_;
    detail::BlockPool blocks_;
    // A deque: connections point at their slot, and reloads append slots.
    std::deque<ListenerSlot> listeners_;
    std::list<ListenerConfig> configs_;  // generations in use here
    std::uint64_t drain_deadline_ms_ = 0;

    // Connection table: slot -> connection; user_data carries slot + generation.
    std::vector<Connection*> slots_;
    std::vector<std::uint32_t> generations_;
    std::vector<std::uint32_t> free_slots_;
    std::vector<Connection*> free_connections_;
    std::size_t live_connections_ = 0;
    std::vector<Connection*> rearm_;
    std::vector<Connection*> rearm_swap_;
    std::vector<Connection*> flush_;
    std::vector<Connection*> flush_swap_;
    std::vector<std::uint16_t> buffer_refs_;
    EngineMetrics metrics_;  // before proxy_: pools closing at destruction still count in it
    std::unique_ptr<ProxyContext> proxy_;
    std::unique_ptr<ReactorObserver> observer_;
    bool tracing_ = false;  // the server exports spans
    std::vector<UpstreamConn*> up_slots_;
    std::vector<std::uint32_t> up_generations_;
    std::vector<std::uint32_t> up_free_slots_;
    std::vector<UpstreamConn*> up_free_;
    std::vector<UpstreamConn*> up_rearm_;
    std::vector<UpstreamConn*> up_rearm_swap_;
    std::vector<SendQueue*> queues_free_;
    std::vector<char*> out_blocks_;
    std::vector<char*> tls_buffers_;
    std::vector<TlsState*> tls_free_;
    std::vector<void*> active_free_;
    std::vector<void*> stream_free_;
    std::vector<Header> scratch_;

    std::chrono::steady_clock::time_point now_;
    std::uint64_t now_ms_ = 0;
    std::int64_t date_second_ = -1;
    char date_[32] = {};

    std::mutex tasks_mutex_;
    std::vector<std::function<void()>> tasks_;
    std::vector<std::function<void()>> running_tasks_;
    struct TimedTask {
        std::uint64_t due_ms;
        std::function<void()> fn;
    };
    std::vector<TimedTask> timed_;  // few and config-time: a plain vector is enough
    std::atomic<bool> tasks_pending_{false};
    std::atomic<bool> stop_requested_{false};
    bool stopping_ = false;

    friend class Connection;
};

}  // namespace blitz::server

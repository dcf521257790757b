#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
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
#include "tls/session.hpp"

namespace blitz::server {

class Connection;
class UpstreamConn;
class ProxyContext;
class SendQueue;
struct TlsState;

/// A listener as every reactor shares it: options, routes, and one socket per reactor.
///
/// Thread: immutable once reactors start. Lifetime: owned by the server core.
struct ListenerShared {
    ListenerOptions options;
    std::shared_ptr<const RouteTable> routes;
    std::shared_ptr<tls::ServerContext> tls;  // with options.tls
    /// Plain HTTP on a detecting TLS listener whose policy is Redirect: one route, 308 to https.
    std::shared_ptr<const RouteTable> plain_routes;
    std::vector<int> fds;  // [reactor index]
    net::SocketAddress bound;
    std::string url;
    net::CidrSet trusted_proxies;
};

/// What a reactor needs from the server that owns it.
class ReactorOwner {
public:
    virtual const std::vector<std::unique_ptr<ListenerShared>>& listeners() const = 0;
    /// Asks every reactor to stop (called on SIGTERM/SIGINT read by reactor 0).
    virtual void stop_all() noexcept = 0;

protected:
    ~ReactorOwner() = default;
};

/// Counters of one reactor (summed over reactors when reported).
struct ReactorStats {
    std::uint64_t retries = 0;                 ///< proxied requests sent again
    std::uint64_t keepalive_race_retries = 0;  ///< of which: a reused connection closed under us
};

/// Per-reactor state of one listener.
struct ListenerSlot {
    ListenerShared* shared = nullptr;
    int fd = -1;
    std::uint32_t max_connections = 0;  // this reactor's share; 0 = unlimited
    std::uint32_t connections = 0;
    bool accepting = false;
    bool closed = false;
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

    ReactorImpl(ReactorOwner& owner, unsigned index, int signal_fd) noexcept;
    ~ReactorImpl() override;

    /// Creates the backend and arms listeners; on the reactor's thread.
    Result<void, std::string> init(const io::BackendOptions& options, std::string& fallback_reason);
    /// Runs until stopped and every connection is gone.
    void run();
    /// Thread-safe.
    void request_stop() noexcept;

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
    void connection_closed(Connection* c) noexcept;

    // Receive buffers shared by several owners (a forwarded body span waiting to be sent):
    // own_buffer() gives the receiver the first reference, hold_buffer() adds one, and the
    // buffer goes back to the pool when put_buffer() drops the last.
    void own_buffer(std::uint16_t bid) noexcept { buffer_refs_[bid] = 1; }
    void hold_buffer(std::uint16_t bid) noexcept { ++buffer_refs_[bid]; }
    void put_buffer(std::uint16_t bid) noexcept;

    // Proxying.
    ProxyContext& proxy() noexcept { return *proxy_; }
    ReactorStats& stats() noexcept { return stats_; }
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
    void on_accept(ListenerSlot& l, std::uint32_t index, const io::Completion& c);
    void arm_accept(ListenerSlot& l, std::uint32_t index);
    void on_wake();
    void on_signal();
    void begin_stop();
    void update_clock() noexcept;
    void run_tasks();
    void run_timed_tasks();
    std::int64_t next_timeout_ms() noexcept;
    Connection* allocate_connection(std::uint32_t& slot, std::uint32_t& generation);

    ReactorOwner& owner_;
    unsigned index_;
    int signal_fd_;
    int wake_fd_ = -1;
    std::unique_ptr<io::Backend> backend_;
    std::unique_ptr<detail::TimerWheel> timers_;
    detail::BlockPool blocks_;
    std::vector<ListenerSlot> listeners_;

    // Connection table: slot -> connection; user_data carries slot + generation.
    std::vector<Connection*> slots_;
    std::vector<std::uint32_t> generations_;
    std::vector<std::uint32_t> free_slots_;
    std::vector<Connection*> free_connections_;
    std::size_t live_connections_ = 0;
    std::vector<Connection*> rearm_;
    std::vector<Connection*> rearm_swap_;
    std::vector<std::uint16_t> buffer_refs_;
    std::unique_ptr<ProxyContext> proxy_;
    ReactorStats stats_;
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

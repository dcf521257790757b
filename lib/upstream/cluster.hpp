#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <blitz/result.hpp>
#include <blitz/upstream.hpp>

#include "net/address.hpp"
#include "tls/session.hpp"

/// Upstream clusters without I/O: endpoint sets (swapped atomically on re-resolution), health
/// shared between reactors, load-balancing policies, outlier detection, circuit-breaker and
/// retry-budget accounting. The proxy engine (lib/proxy) does the I/O and calls in here.
namespace blitz::upstream {

/// Health of one endpoint, shared by every reactor (written on failures and by checks only,
/// read on each pick: relaxed atomics, no lock).
///
/// Thread: any. Lifetime: shared_ptr, carried over to the next endpoint set while the same
/// address stays in it.
struct EndpointHealth {
    std::atomic<bool> healthy{true};                 ///< active health checks' verdict
    std::atomic<std::uint64_t> ejected_until_ms{0};  ///< outlier detection (steady ms)
    std::atomic<std::uint32_t> ejections{0};         ///< times ejected (back-off multiplier)
    std::atomic<std::uint32_t> consecutive_5xx{0};
    std::atomic<std::uint32_t> consecutive_gateway_failures{0};
};

/// One resolved endpoint.
struct Endpoint {
    net::SocketAddress address;
    std::string text;      ///< "10.0.0.1:8080" / "[::1]:80"
    std::string hostname;  ///< the configured name for resolved endpoints, else empty
    std::uint32_t weight = 1;
    std::shared_ptr<EndpointHealth> health;
};

/// An endpoint given by host name, as configured; the resolver turns it into endpoints.
struct NamedEndpoint {
    std::string host;
    std::uint16_t port = 0;
    std::uint32_t weight = 1;
    std::size_t index = 0;  ///< position in UpstreamOptions::endpoints
};

/// An immutable endpoint set; a new one is published whole (DNS answers, config). Addresses are
/// unique in a set (publish() keeps the first of duplicates).
struct EndpointSet {
    std::vector<Endpoint> endpoints;
    std::uint64_t version = 0;
};

/// What happened to one attempt, as outlier detection counts it.
enum class Outcome : std::uint8_t {
    Success,         ///< a response below 500 (or a 5xx we do not count)
    Status5xx,       ///< a 5xx response from the endpoint
    ConnectFailure,  ///< connect refused / timed out
    Reset,           ///< closed or reset before a complete response
    Timeout,         ///< no response head within the per-try timeout
};

/// An upstream cluster as all reactors share it.
///
/// Thread: any (see each member). Lifetime: shared_ptr held by Upstream handles and by the
/// background services while a server runs.
class Cluster {
public:
    /// Validates `options` (see Upstream::make for the rules) and builds the cluster with the
    /// endpoints given as literal addresses; endpoints given by host name appear once resolved.
    static Result<std::shared_ptr<Cluster>, std::string> make(UpstreamOptions options);

    const UpstreamOptions& options() const noexcept { return options_; }
    /// Current endpoint set (atomic load). Thread: any.
    std::shared_ptr<const EndpointSet> endpoints() const noexcept;
    /// Version of the current set: a cheap check before endpoints(). Thread: any.
    std::uint64_t version() const noexcept { return version_.load(std::memory_order_acquire); }
    /// Publishes a new set (resolver thread, tests). Health objects of addresses that stay are
    /// carried over. Thread: any.
    void publish(std::vector<Endpoint> endpoints);
    /// Whether some endpoint is given by host name (needs the resolver).
    bool needs_resolution() const noexcept { return !named_.empty(); }
    /// The endpoints given as literal addresses (without health objects), in config order.
    const std::vector<Endpoint>& literal_endpoints() const noexcept { return literals_; }
    /// The endpoints given by host name, in config order.
    const std::vector<NamedEndpoint>& named_endpoints() const noexcept { return named_; }
    /// The policy's factory (builtin or custom), one per cluster so that policies which share
    /// per-set tables between reactors (ring hash, Maglev) build them once.
    const std::shared_ptr<LoadBalancerFactory>& balancer_factory() const noexcept {
        return factory_;
    }
    /// TLS toward the endpoints (options().tls.enabled), else null.
    const std::shared_ptr<tls::ClientContext>& tls() const noexcept { return tls_; }

    /// Feeds outlier detection with an attempt's outcome (`now_ms` on the steady clock).
    /// Ejects the endpoint when a consecutive-failure threshold is reached and the maximum
    /// ejected share (floor of max_ejection_percent of the set) allows it, never the last
    /// available one. The n-th ejection in a row lasts base_ejection × 2^(n-1), capped at
    /// max_ejection; the count restarts after max_ejection without ejection. Thread: any
    /// reactor (Success only reads shared state unless a counter needs resetting).
    void report(const Endpoint& endpoint, Outcome outcome, std::uint64_t now_ms) noexcept;

    /// Whether `e` may receive requests now: healthy and not ejected.
    static bool available(const Endpoint& e, std::uint64_t now_ms) noexcept;
    /// Panic mode: fewer than panic_threshold_percent of `total` endpoints are available.
    bool panic(std::uint64_t available, std::uint64_t total) const noexcept {
        return available * 100 < std::uint64_t{options_.panic_threshold_percent} * total;
    }
    /// Endpoints of the current set ejected at the last ejection decision (a gauge; exact
    /// counts are recomputed over the set whenever an ejection is decided). Thread: any.
    std::uint32_t ejected_count() const noexcept {
        return ejected_.load(std::memory_order_relaxed);
    }

    /// Reactors sharing the circuit-breaker limits (set by the server before it starts).
    void set_reactor_count(unsigned n) noexcept { reactors_ = n == 0 ? 1 : n; }
    unsigned reactor_count() const noexcept { return reactors_; }

private:
    explicit Cluster(UpstreamOptions options);
    void try_eject(const Endpoint& endpoint, Outcome outcome, std::uint32_t failures,
                   std::uint64_t now_ms) noexcept;

    UpstreamOptions options_;
    std::vector<Endpoint> literals_;
    std::vector<NamedEndpoint> named_;
    std::shared_ptr<LoadBalancerFactory> factory_;
    std::shared_ptr<tls::ClientContext> tls_;
    std::shared_ptr<const EndpointSet> set_;  // accessed with std::atomic_load/store
    std::atomic<std::uint64_t> version_{0};
    std::atomic<std::uint32_t> ejected_{0};
    /// Held (try-lock, never waited for) while one reactor decides an ejection.
    std::atomic<bool> deciding_{false};
    std::mutex publish_mutex_;  // serialises publishers (resolver thread, tests)
    unsigned reactors_ = 1;
};

/// The steady clock in milliseconds, the time base of `now_ms` arguments here.
std::uint64_t steady_now_ms() noexcept;

/// A request's key for consistent hashing under `policy`, when it has one.
bool request_hash(const HashPolicy& policy, const Exchange& ex, std::uint64_t& hash) noexcept;

/// The built-in policy for `balance` (not Custom).
std::shared_ptr<LoadBalancerFactory> builtin_balancer(Balance balance);

/// One endpoint as one reactor sees it.
struct LocalEndpoint {
    const Endpoint* endpoint = nullptr;
    std::uint32_t active_requests = 0;
    /// The engine's per-endpoint state (its connection pool); carried over by refresh() while
    /// the endpoint stays.
    void* pool = nullptr;
};

/// One reactor's view of a cluster: its balancer, per-endpoint counters and the
/// circuit-breaker share.
///
/// Thread: one reactor's. Lifetime: owned by the reactor's proxy state.
class LocalCluster {
public:
    /// Called for the `pool` of an endpoint that left the set.
    using DropPool = void (*)(void* context, void* pool);

    LocalCluster(std::shared_ptr<Cluster> cluster, DropPool drop, void* drop_context);
    ~LocalCluster();

    Cluster& cluster() const noexcept { return *cluster_; }
    /// Takes up a newer endpoint set if one was published (a version check otherwise).
    void refresh();
    std::span<LocalEndpoint> endpoints() noexcept { return endpoints_; }

    /// What pick() chose.
    struct Pick {
        int index = -1;      ///< into endpoints(); -1 when no endpoint may be used
        bool panic = false;  ///< chosen in panic mode (UpstreamOptions::panic_threshold_percent)
    };
    /// Picks an available endpoint not in `tried` (indices already attempted by this
    /// request); if every available one was tried, any available one. In panic mode (too few
    /// available endpoints) every endpoint counts as available.
    Pick pick(const PickContext& ctx, std::span<const int> tried, std::uint64_t now_ms);

    // Circuit breaker (this reactor's share of the cluster's limits).
    bool can_open_connection() const noexcept;
    bool can_queue() const noexcept;
    bool can_start_request() const noexcept;
    /// Whether a retry is allowed now: the retry limit and the retry budget.
    bool can_retry() const noexcept;
    std::uint32_t connections = 0;
    std::uint32_t pending = 0;
    std::uint32_t requests = 0;
    std::uint32_t retries = 0;

private:
    std::uint32_t share(std::uint32_t limit) const noexcept;

    std::shared_ptr<Cluster> cluster_;
    std::shared_ptr<const EndpointSet> set_;
    std::uint64_t version_ = ~std::uint64_t{0};
    std::vector<LocalEndpoint> endpoints_;
    std::vector<EndpointInfo> infos_;
    std::unique_ptr<LoadBalancer> balancer_;
    std::shared_ptr<LoadBalancerFactory> factory_;
    DropPool drop_;
    void* drop_context_;
};

/// Background work for clusters: resolving host names (c-ares, honouring TTLs) and active
/// health checks, on one thread of its own so reactors never block.
///
/// Thread: start/stop from the server's thread. Lifetime: owned by the server core.
class Services {
public:
    Services();
    ~Services();
    /// Resolves every cluster's names once (bounded by `timeout`), so a server starts with
    /// endpoints, then starts the thread. Err names an endpoint that resolved to nothing.
    Result<void, std::string> start(std::vector<std::shared_ptr<Cluster>> clusters,
                                    std::chrono::milliseconds timeout);
    void stop() noexcept;
    /// Uses these DNS servers ("127.0.0.1:5353,[::1]:53") instead of the system's; call before
    /// start() (tests, embedders with their own resolver).
    void set_dns_servers(std::string servers);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace blitz::upstream

#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blitz/result.hpp>
#include <blitz/tls.hpp>

namespace blitz {

class Exchange;

namespace upstream {
class Cluster;
}

/// One endpoint of an upstream: "10.0.0.1:8080", "[2001:db8::1]:80", or "host.name:8080" (a
/// name is resolved off the reactor threads and re-resolved as its DNS TTL says; every address
/// it resolves to becomes an endpoint with this weight).
struct EndpointOptions {
    std::string address;
    std::uint32_t weight = 1;  ///< 1..10000

    bool operator==(const EndpointOptions&) const = default;
};

/// The protocol spoken to an upstream's endpoints.
enum class UpstreamProtocol : std::uint8_t {
    Http1,  ///< HTTP/1.1, one request at a time per pooled connection
    /// HTTP/2 (RFC 9113): cleartext with prior knowledge, or over TLS with ALPN "h2" only.
    /// Requests are multiplexed over a few connections per endpoint (gRPC needs this).
    Http2,
};

/// Load-balancing policies.
enum class Balance : std::uint8_t {
    RoundRobin,          ///< each endpoint in turn, weights ignored
    WeightedRoundRobin,  ///< smooth weighted round robin (nginx's): spread, never bursty
    LeastRequest,        ///< power of two random choices, fewer active requests wins (weighted)
    Random,              ///< uniformly random (weighted)
    RingHash,            ///< consistent hashing on a ring (Karger et al.), see HashPolicy
    Maglev,              ///< Maglev consistent hashing (Eisenbud et al., NSDI '16), see HashPolicy
    Custom,              ///< UpstreamOptions::custom_balancer
};

/// What consistent hashing hashes. Without a value (no such header or cookie) the request is
/// balanced as by Random.
struct HashPolicy {
    enum class Source : std::uint8_t { ClientIp, Header, Cookie };
    Source source = Source::ClientIp;
    std::string name;  ///< header or cookie name

    bool operator==(const HashPolicy&) const = default;
};

/// Active HTTP health checking: GET `path` on each endpoint every `interval` (± `jitter`
/// percent); `unhealthy_threshold` failures in a row mark it down, `healthy_threshold`
/// successes in a row mark it up again. Endpoints start healthy.
struct HealthCheckOptions {
    bool enabled = false;
    std::string path = "/health";
    std::string host;  ///< Host header; empty: the endpoint's address
    /// Inclusive status ranges that count as healthy.
    std::vector<std::pair<int, int>> expected_statuses{{200, 399}};
    std::chrono::milliseconds interval{5'000};
    std::chrono::milliseconds timeout{1'000};
    std::uint32_t jitter_percent = 10;
    std::uint32_t healthy_threshold = 2;
    std::uint32_t unhealthy_threshold = 3;

    bool operator==(const HealthCheckOptions&) const = default;
};

/// Passive outlier detection: an endpoint that fails `consecutive_5xx` responses or
/// `consecutive_gateway_failures` connects/resets/timeouts in a row is ejected for
/// `base_ejection` × (times ejected before), capped at `max_ejection`; at most
/// `max_ejection_percent` of a cluster's endpoints are ejected at once (never all of them).
struct OutlierOptions {
    bool enabled = true;
    std::uint32_t consecutive_5xx = 5;
    std::uint32_t consecutive_gateway_failures = 5;
    std::chrono::milliseconds base_ejection{30'000};
    std::chrono::milliseconds max_ejection{300'000};
    std::uint32_t max_ejection_percent = 50;

    bool operator==(const OutlierOptions&) const = default;
};

/// Upstream connection pool, per reactor and endpoint.
struct PoolOptions {
    /// Connections open at once to one endpoint from one reactor; 0 = no limit (the circuit
    /// breaker's max_connections still applies).
    std::uint32_t max_connections_per_endpoint = 0;
    /// Idle keep-alive connections kept per endpoint and reactor; more are closed.
    std::uint32_t max_idle_per_endpoint = 64;
    /// An idle pooled connection is closed after this. Below the keep-alive timeouts of common
    /// servers (Node.js and Apache: 5 s), so we close first rather than racing their close.
    std::chrono::milliseconds idle_timeout{4'000};
    std::chrono::milliseconds connect_timeout{1'000};

    bool operator==(const PoolOptions&) const = default;
};

/// Circuit-breaker limits for the whole cluster (split evenly between reactors, rounded up):
/// at a limit the request is answered 503 at once instead of queueing.
struct CircuitBreakerOptions {
    std::uint32_t max_connections = 1024;
    std::uint32_t max_pending_requests = 1024;  ///< waiting for a connection
    std::uint32_t max_requests = 1024;          ///< in flight
    std::uint32_t max_retries = 3;              ///< retries in flight

    bool operator==(const CircuitBreakerOptions&) const = default;
};

/// Retries allowed beyond the circuit breaker: at most `percent` of active requests may be
/// retries (but `min_retry_concurrency` are always allowed), so retries cannot amplify an
/// overload into a retry storm.
struct RetryBudgetOptions {
    bool enabled = true;
    std::uint32_t percent = 20;
    std::uint32_t min_retry_concurrency = 3;

    bool operator==(const RetryBudgetOptions&) const = default;
};

/// Re-resolution of endpoint host names: the record's TTL, clamped to [min_ttl, max_ttl].
struct DnsOptions {
    std::chrono::milliseconds min_ttl{5'000};
    std::chrono::milliseconds max_ttl{300'000};
    /// Address families used: "v4", "v6" or "any" (both).
    std::string family = "any";

    bool operator==(const DnsOptions&) const = default;
};

/// What a load-balancing policy sees of one endpoint.
struct EndpointInfo {
    std::string_view address;     ///< "10.0.0.1:8080"
    std::uint32_t weight = 1;
    std::uint32_t active_requests = 0;  ///< on this reactor
    bool available = true;  ///< healthy, not ejected, and not already tried by this request
};

/// The request being balanced.
struct PickContext {
    const Exchange* exchange = nullptr;
    /// The request's hash by the upstream's HashPolicy, when it has one.
    std::uint64_t hash = 0;
    bool has_hash = false;
    std::uint32_t attempt = 0;  ///< 0 for the first try, then retries
};

/// A load-balancing policy for one reactor and one endpoint set (made again when the set
/// changes: DNS, config). Embedders implement it for Balance::Custom.
///
/// Thread: one reactor's. Lifetime: owned by the reactor's view of its upstream.
class LoadBalancer {
public:
    virtual ~LoadBalancer() = default;
    /// Index of an available endpoint in `endpoints`, or -1 when none is.
    virtual int pick(std::span<const EndpointInfo> endpoints, const PickContext& ctx) = 0;
};

/// Makes a LoadBalancer per reactor and endpoint set.
///
/// Thread: create() is called from reactor threads concurrently. Lifetime: shared_ptr.
class LoadBalancerFactory {
public:
    virtual ~LoadBalancerFactory() = default;
    virtual std::unique_ptr<LoadBalancer> create(std::span<const EndpointInfo> endpoints) = 0;
};

/// Settings of one upstream (cluster).
struct UpstreamOptions {
    std::string name;
    std::vector<EndpointOptions> endpoints;
    Balance balance = Balance::RoundRobin;
    HashPolicy hash;                                    ///< RingHash and Maglev
    std::shared_ptr<LoadBalancerFactory> custom_balancer;  ///< Balance::Custom
    PoolOptions pool;
    HealthCheckOptions health_check;
    OutlierOptions outlier;
    CircuitBreakerOptions circuit_breaker;
    RetryBudgetOptions retry_budget;
    DnsOptions dns;
    UpstreamTlsOptions tls;
    /// Panic mode (Envoy's healthy panic threshold): while fewer than this percent of the
    /// endpoints are available (healthy and not ejected), requests are balanced across all of
    /// them, so a bad health check or a cluster-wide blip degrades the service instead of
    /// failing every request with 503. 0 turns it off: then an upstream with no available
    /// endpoint answers 503 `no_healthy_upstream`.
    std::uint32_t panic_threshold_percent = 50;
    UpstreamProtocol protocol = UpstreamProtocol::Http1;

    bool operator==(const UpstreamOptions&) const = default;
};

/// An upstream cluster: endpoints, balancing, health, pools and limits. Routes refer to it
/// (RouteBuilder::proxy); every reactor keeps its own pools and balancer state for it, and
/// health and endpoint sets are shared through atomics.
///
/// Thread: immutable handle, shared by all reactors. Lifetime: shared_ptr; background work
/// (DNS, health checks) runs while a started Server uses it.
class Upstream {
public:
    /// Validates the options (a name, at least one endpoint, "host:port" addresses, weights in
    /// range, thresholds ≥ 1, a factory for Balance::Custom) and makes the upstream. Host names
    /// are resolved when the server starts.
    static Result<std::shared_ptr<Upstream>, std::string> make(UpstreamOptions options);

    const UpstreamOptions& options() const noexcept;
    const std::string& name() const noexcept;

    /// The implementation (engine use).
    const std::shared_ptr<upstream::Cluster>& cluster() const noexcept { return cluster_; }

    explicit Upstream(std::shared_ptr<upstream::Cluster> cluster) noexcept
        : cluster_(std::move(cluster)) {}

private:
    std::shared_ptr<upstream::Cluster> cluster_;
};

}  // namespace blitz

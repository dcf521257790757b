#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.hpp"
#include "metrics/exposition.hpp"
#include "server/engine_metrics.hpp"

namespace blitz::server {

/// EngineMetrics summed over reactors at scrape time (GET /metrics, /stats): per-label series
/// are summed by label value (each reactor's cap keeps its own slots).
///
/// Thread: the scraping one. Lifetime: a value.
struct EngineTotals {
    struct Route {
        std::uint64_t requests[kStatusClasses] = {};
        metrics::Histogram::Snapshot duration;
    };
    struct Endpoint {
        std::uint64_t responses[kStatusClasses] = {};
        std::uint64_t errors = 0;
        std::int64_t active = 0;
        std::int64_t idle = 0;
    };
    struct Upstream {
        std::uint64_t errors[kUpstreamErrors] = {};
        std::uint64_t retries = 0;
        std::uint64_t panics = 0;
        std::int64_t requests_active = 0;
        std::int64_t requests_pending = 0;
        std::int64_t retries_active = 0;
        metrics::Histogram::Snapshot duration;
        metrics::Histogram::Snapshot connect;
        metrics::Histogram::Snapshot first_byte;
        std::map<std::string, Endpoint, std::less<>> endpoints;
    };

    /// Adds one reactor's metrics (its label families read on their own).
    void add(const EngineMetrics& m);
    /// Adds every reactor's metrics: each label family is read whole, for all reactors sharing
    /// it, under its mutex (a scrape: see metrics::LabelFamily).
    void add(std::span<const EngineMetrics* const> reactors);

    std::uint64_t requests[kMethodCount][kStatusClasses] = {};
    std::uint64_t all_requests = 0;
    metrics::Histogram::Snapshot duration;
    std::int64_t in_flight = 0;
    std::uint64_t connections_accepted = 0;
    std::int64_t connections_active = 0;
    std::uint64_t connections_closed[kCloseReasons] = {};
    std::uint64_t bytes_received = 0;
    std::uint64_t bytes_sent = 0;
    std::uint64_t tls_handshakes = 0;
    std::uint64_t tls_handshake_failures[kTlsFailures] = {};
    std::uint64_t h2_streams = 0;
    std::uint64_t h2_floods[http2::kFloodKinds] = {};
    std::uint64_t h2_stream_limits[kH2StreamLimits] = {};
    std::int64_t recv_buffers_in_use = 0;
    std::int64_t recv_buffers_allocated = 0;
    std::uint64_t retries = 0;
    std::uint64_t keepalive_race_retries = 0;
    std::uint64_t access_log_lines = 0;
    std::uint64_t access_log_dropped = 0;
    std::map<std::string, Route, std::less<>> routes;
    std::map<std::string, Upstream, std::less<>> upstreams;

private:
    using UpstreamList = std::vector<std::pair<std::string, const UpstreamSeries*>>;
    void add_unlabelled(const EngineMetrics& m, UpstreamList& endpoint_reads);
};

/// Writes the engine's metric families (every blitz_* family but the upstream health ones).
void write_engine_metrics(metrics::Writer& w, const EngineTotals& t);

/// Appends the engine's counters as JSON members (`"requests":...,`), for GET /stats.
void append_engine_stats(std::string& out, const EngineTotals& t);

}  // namespace blitz::server

namespace blitz::upstream {
class Cluster;
}

namespace blitz::server {

/// blitz_upstream_endpoint_healthy{upstream,endpoint}: 1 when an endpoint takes requests (its
/// health checks pass and outlier detection has not ejected it), from the clusters' shared
/// state.
void write_upstream_health(metrics::Writer& w, std::span<const upstream::Cluster* const> clusters);

/// blitz_upstream_requests_active / _pending and blitz_upstream_circuit_breaker_open{upstream,
/// limit}: 1 while what a circuit-breaker limit counts (over all reactors) is at the limit, so
/// new requests get 503 at once.
void write_circuit_breakers(metrics::Writer& w, std::span<const upstream::Cluster* const> clusters,
                            const EngineTotals& t);

/// GET /upstreams: every upstream with its endpoints (address, configured host name, weight,
/// health, ejection, pooled connections active/idle and answers from the totals).
void append_upstreams_json(std::string& out, std::span<const upstream::Cluster* const> clusters, const EngineTotals& t);

/// One route of GET /routes: match, action, and its requests from the totals.
void append_route_json(std::string& out, const Route& route, const EngineTotals& t);

using detail::append_json_string;

}  // namespace blitz::server

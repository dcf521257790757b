#pragma once

#include <cstdint>

#include <blitz/http.hpp>

#include "metrics/histogram.hpp"
#include "metrics/instruments.hpp"

namespace blitz::server {

/// One reactor's counters of the engine: written by that reactor only, with no locked
/// instruction (metrics::Counter), and summed over reactors when /metrics is scraped.
///
/// Thread: written by its reactor, read by any thread. Lifetime: the reactor's.
struct alignas(64) EngineMetrics {
    static constexpr std::size_t kStatusClasses = 5;  // 1xx .. 5xx

    /// A request was answered (its response handed to the connection): counted by method and
    /// status class, its time from the request head to now observed.
    void request_done(Method method, int status, std::uint64_t started_us, std::uint64_t now_us) noexcept {
        const int cls = status / 100 - 1;
        if (cls >= 0 && cls < static_cast<int>(kStatusClasses)) {
            requests[static_cast<std::size_t>(method)][static_cast<std::size_t>(cls)].add();
        }
        duration.observe(now_us > started_us ? now_us - started_us : 0);
    }

    metrics::Counter requests[kMethodCount][kStatusClasses];
    metrics::Gauge in_flight;  ///< exchanges begun and not ended (HTTP/1.1 requests, HTTP/2 streams)
    metrics::Histogram duration;
    metrics::Counter connections_accepted;
    metrics::Gauge connections_active;
    metrics::Counter tls_handshakes;
    metrics::Counter tls_handshake_failures;
    metrics::Counter retries;                 ///< proxied requests sent again
    metrics::Counter keepalive_race_retries;  ///< of which: a reused connection closed under us
};

/// EngineMetrics summed over reactors at scrape time (GET /metrics, /stats).
///
/// Thread: the scraping one. Lifetime: a value.
struct EngineTotals {
    void add(const EngineMetrics& m) noexcept {
        for (std::size_t i = 0; i < kMethodCount; ++i) {
            for (std::size_t j = 0; j < EngineMetrics::kStatusClasses; ++j) {
                requests[i][j] += m.requests[i][j].value();
                all_requests += m.requests[i][j].value();
            }
        }
        m.duration.merge_into(duration);
        in_flight += m.in_flight.value();
        connections_accepted += m.connections_accepted.value();
        connections_active += m.connections_active.value();
        tls_handshakes += m.tls_handshakes.value();
        tls_handshake_failures += m.tls_handshake_failures.value();
        retries += m.retries.value();
        keepalive_race_retries += m.keepalive_race_retries.value();
    }

    std::uint64_t requests[kMethodCount][EngineMetrics::kStatusClasses] = {};
    std::uint64_t all_requests = 0;
    metrics::Histogram::Snapshot duration;
    std::int64_t in_flight = 0;
    std::uint64_t connections_accepted = 0;
    std::int64_t connections_active = 0;
    std::uint64_t tls_handshakes = 0;
    std::uint64_t tls_handshake_failures = 0;
    std::uint64_t retries = 0;
    std::uint64_t keepalive_race_retries = 0;
};

}  // namespace blitz::server

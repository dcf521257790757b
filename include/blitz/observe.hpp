#pragma once

#include <chrono>
#include <cstdint>
#include <string>

/// Options of the access log, request ids and tracing (docs/observability.md).
namespace blitz {

/// An access log: one line per exchange (HTTP/1.1 request or HTTP/2 stream), buffered per
/// reactor and written by the reactor's I/O backend, never blocking a request.
///
/// Thread: config-time value. Lifetime: copied into the listener or route.
struct AccessLogOptions {
    /// False: no log here (a route can silence its listener's log).
    bool enabled = true;
    /// A file, opened for appending (created 0640) and reopened on SIGUSR1 for log rotation;
    /// "stderr" for the standard error.
    std::string path = "stderr";
    /// "json" (one JSON object per line) or a template of literal text and `$name` / `${name}`
    /// fields (`$$` is a dollar sign; in a config file, whose `${VAR}` and `$$` are expanded
    /// first, write `$name` and `$$$$`), e.g. nginx's combined format:
    /// `$client - - [$time_local] "$method $path $protocol" $status $bytes_sent "$referer" "$user_agent"`.
    std::string format = "json";
    /// Each reactor's buffer (two of this size); a line that finds both full is dropped and
    /// counted (blitz_access_log_dropped_lines_total), never waited for.
    std::uint32_t buffer_bytes = 64 * 1024;
    /// A partly filled buffer is written at least this often.
    std::chrono::milliseconds flush_interval{1000};

    bool operator==(const AccessLogOptions&) const = default;
};

/// Request ids: each request gets one, taken from the client when trusted or generated (a
/// UUID v4), passed to the upstream in `header`, logged, and echoed in the response.
///
/// Thread: config-time value. Lifetime: copied into the listener.
struct RequestIdOptions {
    std::string header = "X-Request-Id";
    /// Keep a valid id the client sent (1..128 visible ASCII characters, no quotes or
    /// backslashes); false: always generate one (an edge that must not trust clients).
    bool trust_incoming = true;
    /// Send the id back in the response (responses of routes; not the local 4xx of requests
    /// that match no route or cannot be read).
    bool echo = true;

    bool operator==(const RequestIdOptions&) const = default;
};

/// Tracing: W3C `traceparent`/`tracestate` are always propagated to upstreams (with our own
/// span as the parent); sampled requests are exported as OpenTelemetry spans (a SERVER span per
/// request, a CLIENT span per upstream attempt) with OTLP/HTTP JSON to `collector`, in batches,
/// dropped and counted rather than waited for when the collector is slow or down.
///
/// Thread: config-time value. Lifetime: copied into the server.
struct TracingOptions {
    /// "IPv4:port" or "[IPv6]:port" of the OTLP/HTTP receiver (an OpenTelemetry Collector's
    /// port 4318).
    std::string collector;
    std::string path = "/v1/traces";
    /// Share of new traces sampled (0..1); a request whose `traceparent` says sampled is
    /// always sampled, one that says not sampled never is (OpenTelemetry's ParentBased).
    double sample_ratio = 0.01;
    std::string service_name = "blitz";
    /// Spans per batch (each reactor hands a batch over when full or at flush_interval).
    std::uint32_t batch_spans = 512;
    /// Batches waiting for the exporter thread at most; more are dropped.
    std::uint32_t queue_batches = 64;
    std::chrono::milliseconds flush_interval{1000};
    /// Connect, send and answer timeout of one export.
    std::chrono::milliseconds timeout{2000};

    bool operator==(const TracingOptions&) const = default;
};

}  // namespace blitz

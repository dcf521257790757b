#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <blitz/result.hpp>

#include "net/address.hpp"
#include "trace/span.hpp"

namespace blitz::trace {

/// Settings of the span exporter (config key "tracing", without sample_ratio).
///
/// Thread: value type. Lifetime: value type; copied into the Exporter.
struct ExporterOptions {
    /// OTLP/HTTP collector as a numeric address, "127.0.0.1:4318" or "[::1]:4318".
    std::string collector;
    /// Request target of the POST.
    std::string path = "/v1/traces";
    /// Resource attribute service.name of every span.
    std::string service_name = "blitz";
    /// Spans per batch (one POST each).
    std::size_t batch_spans = 512;
    /// Batches waiting for export at most; a submit beyond is dropped.
    std::size_t queue_batches = 64;
    /// A Batcher submits a non-empty batch at least this often.
    std::uint32_t flush_interval_ms = 1000;
    /// Budget of one POST attempt (connect, send and response together), and of stop()'s
    /// final flush.
    std::uint32_t timeout_ms = 2000;
    /// Share of new traces the reactors sample (their Sampler's ratio; unused by the export).
    double sample_ratio = 1.0;
};

/// Sends span batches to an OTLP/HTTP collector as JSON (POST `path`, Content-Type
/// application/json) from one background thread over one HTTP/1.1 keep-alive connection.
/// Reactors hand over whole batches with submit(), which never blocks on the network: a
/// short mutex per batch, and a full queue drops the batch (counted) instead of waiting. A
/// failed POST (connection error, timeout, 429 or 5xx) is retried once on a new connection;
/// a batch that still fails, or is refused with another status, is dropped and counted. A
/// kept-alive connection the collector closed while idle is reopened without counting a
/// failure or using up the retry.
///
/// Thread: submit(), the counters and options() from any thread; stop() from the owning
/// thread. Lifetime: created by start(), owned by the server; outlives every Batcher using
/// it; the destructor calls stop().
class Exporter {
public:
    /// Validates `options` (collector must be a numeric address and port, path must start
    /// with '/', batch_spans and queue_batches non-zero) and starts the export thread. No
    /// connection is made until the first batch.
    static Result<std::unique_ptr<Exporter>> start(ExporterOptions options);
    ~Exporter();
    Exporter(const Exporter&) = delete;
    Exporter& operator=(const Exporter&) = delete;

    /// Queues `batch` for export. Returns false when the queue is full or the exporter is
    /// stopped: the batch's spans are counted as dropped and `batch` is left as it was (the
    /// caller may clear() and reuse it). On true `batch` is moved from. Never blocks on I/O.
    bool submit(Batch&& batch) noexcept;
    /// Stops accepting batches, exports what is queued within timeout_ms (what is left after
    /// that is dropped and counted), closes the connection and joins the thread. Idempotent.
    void stop() noexcept;

    /// Spans the collector accepted (2xx) so far.
    std::uint64_t spans_exported() const noexcept {
        return spans_exported_.load(std::memory_order_relaxed);
    }
    /// Spans lost: queue full, exporter stopped, or export failed after its retry.
    std::uint64_t spans_dropped() const noexcept {
        return spans_dropped_.load(std::memory_order_relaxed);
    }
    /// Failed POST attempts (a retried batch that fails twice counts two).
    std::uint64_t export_failures() const noexcept {
        return export_failures_.load(std::memory_order_relaxed);
    }
    const ExporterOptions& options() const noexcept { return options_; }

private:
    enum class Outcome : std::uint8_t { Ok, Retryable, Permanent, StaleConnection };

    Exporter(ExporterOptions options, const net::SocketAddress& address, int wake_fd);
    void run();
    void export_batch(const Batch& batch);
    Outcome post(std::string_view body, std::int64_t deadline_ns);
    bool connect(std::int64_t deadline_ns);
    bool wait(short events, std::int64_t deadline_ns);
    std::int64_t effective_deadline(std::int64_t deadline_ns) const noexcept;
    void close_connection() noexcept;

    const ExporterOptions options_;
    const net::SocketAddress address_;
    std::string request_head_prefix_;  // request line and fixed headers, up to Content-Length

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<Batch> ring_;  // queue_batches slots
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    bool stopping_ = false;                          // under mu_
    bool joined_ = false;                            // only the owning thread
    std::atomic<std::int64_t> stop_deadline_ns_{0};  // 0 while running

    // Export thread only.
    int fd_ = -1;
    int wake_fd_ = -1;  // eventfd written by stop() to cut a poll() short
    std::string body_;
    std::string head_buf_;
    std::string response_;

    std::atomic<std::uint64_t> spans_exported_{0};
    std::atomic<std::uint64_t> spans_dropped_{0};
    std::atomic<std::uint64_t> export_failures_{0};
    std::thread thread_;
};

/// Collects one reactor's finished spans into a Batch and submits it to the Exporter when
/// batch_spans is reached (or the batch's text space is used up) and at least every
/// flush_interval_ms (driven by tick()). After a refused submit the batch's storage is
/// reused, so a reactor allocates only when a batch was handed over.
///
/// Thread: reactor-local. Lifetime: owned by the reactor's tracing state; must not outlive
/// the Exporter; call flush() before the Exporter stops.
class Batcher {
public:
    explicit Batcher(Exporter& exporter);

    /// Appends a span (submitting the current batch first if it is full) and returns it for
    /// set() and for setting `status`. Valid until the next add(), tick() or flush().
    Span& add(SpanKind kind, std::string_view name, const TraceId& trace, const SpanId& id,
              std::optional<SpanId> parent, std::uint64_t start_unix_ns, std::uint64_t end_unix_ns);
    /// Adds a string attribute to the span add() returned last (copied; see Batch::set).
    void set(Span& span, std::string_view key, std::string_view value) noexcept {
        batch_.set(span, key, value);
    }
    /// Adds an integer attribute to the span add() returned last.
    void set(Span& span, std::string_view key, std::int64_t value) noexcept {
        batch_.set(span, key, value);
    }
    /// Submits the batch when it is full or flush_interval_ms has passed since the last
    /// submit (or since it was last seen empty). `now_ms` is any monotonic millisecond clock.
    void tick(std::uint64_t now_ms);
    /// Submits the batch now if it holds spans.
    void flush();
    /// Spans waiting in the current batch.
    std::size_t pending() const noexcept { return batch_.size(); }

private:
    Exporter& exporter_;
    Batch batch_;
    std::uint64_t last_flush_ms_ = 0;
    bool clock_started_ = false;
};

}  // namespace blitz::trace

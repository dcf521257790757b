#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <sys/uio.h>
#include <time.h>

#include <blitz/exchange.hpp>
#include <blitz/observe.hpp>

#include "accesslog/format.hpp"
#include "accesslog/sink.hpp"
#include "accesslog/writer.hpp"
#include "core/timer_wheel.hpp"
#include "io/backend.hpp"
#include "trace/context.hpp"
#include "trace/exporter.hpp"
#include "trace/ids.hpp"
#include "trace/sampler.hpp"

namespace blitz::server {

class ReactorImpl;
struct ListenerShared;
struct ExchangeEnd;

/// The wall clock in nanoseconds since 1970 (span and log times).
inline std::uint64_t unix_now_ns() noexcept {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

/// One access log as the server runs it: its options, file and compiled format. The server
/// keeps one object per distinct configuration, so a reload that leaves a log unchanged keeps it
/// (and every reactor's buffer for it).
///
/// Thread: immutable once made; shared by generations and reactors. Lifetime: shared_ptr.
struct LogTarget {
    AccessLogOptions options;
    std::shared_ptr<accesslog::Sink> sink;  ///< null when !options.enabled
    accesslog::Format format = accesslog::Format::json();
};

/// What the engine decided for one exchange when it began: its request id and trace context.
///
/// Thread: the exchange's reactor. Lifetime: part of the exchange's connection or stream.
struct ExchangeObs {
    const RequestIdOptions* request_id_options = nullptr;  ///< the listener's, when it has ids
    std::string_view request_id;                           ///< the client's or ours (arena)
    bool request_id_generated = false;  ///< ours: goes upstream instead of whatever the client sent
    bool traced = false;                ///< tracing runs: our traceparent goes upstream
    bool sampled = false;
    bool has_parent = false;
    // Set only when `traced` (left uninitialised otherwise: an exchange costs no stores here).
    trace::TraceId trace;
    trace::SpanId span;    ///< the SERVER span of this exchange
    trace::SpanId parent;  ///< the client's span, when has_parent
    std::string_view tracestate;  ///< forwarded when valid (arena or a request header)
    std::uint64_t start_unix_ns;
};

/// A reactor's part of the access logs and tracing: a buffered writer per log, the id
/// generator, the sampler and the span batch.
///
/// Thread: the reactor's. Lifetime: owned by its reactor; flush() before the reactor ends.
class ReactorObserver {
public:
    ReactorObserver(ReactorImpl& reactor, trace::Exporter* exporter);
    ~ReactorObserver();
    ReactorObserver(const ReactorObserver&) = delete;
    ReactorObserver& operator=(const ReactorObserver&) = delete;

    /// Request id and trace context of an exchange whose request head is complete.
    void started(Exchange& ex, ExchangeObs& obs, const ListenerShared& listener);
    /// Adds the request id to a response about to be sent (RequestIdOptions::echo).
    static void echo(Exchange& ex, const ExchangeObs& obs);
    /// The exchange ended: its access-log line and SERVER span.
    void ended(const Exchange& ex, const ExchangeEnd& end, std::uint64_t duration_us);
    /// A CLIENT span for one upstream attempt (sampled exchanges only).
    void client_span(const Exchange& ex, const ExchangeObs& obs, const trace::SpanId& id, std::uint64_t start_unix_ns,
                     std::string_view upstream, std::string_view endpoint, int status, std::string_view error,
                     std::uint32_t attempt);
    /// A new span id for an upstream attempt.
    trace::SpanId new_span_id() { return ids_.span_id(); }
    /// Whether spans are exported (and traceparent replaced).
    bool tracing() const noexcept { return batcher_ != nullptr; }

    /// A log write finished (io::Op::LogWrite, slot = the writer).
    void write_done(std::uint32_t slot, std::int32_t result);
    /// Writes whatever is buffered (stop, drain) and submits the span batch.
    void flush();
    /// Logs no generation uses any more: their writers finish their writes and go.
    void keep_only(const std::vector<const LogTarget*>& live);

    /// Whether a log still has bytes to write (the reactor waits for them before it ends).
    bool writing() const noexcept;

private:
    struct Log;
    Log* log_for(const std::shared_ptr<const LogTarget>& target);
    void start_write(Log& log);
    static void on_flush_timer(detail::TimerWheel::Timer* t);

    ReactorImpl& reactor_;
    std::vector<std::unique_ptr<Log>> logs_;  // slot = index; a retired slot is reused
    trace::IdGenerator ids_;
    std::unique_ptr<trace::Sampler> sampler_;
    std::unique_ptr<trace::Batcher> batcher_;
    detail::TimerWheel::Timer span_timer_;
};

}  // namespace blitz::server

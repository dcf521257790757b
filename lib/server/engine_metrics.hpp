#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <utility>

#include <blitz/http.hpp>
#include <blitz/router.hpp>
#include <blitz/upstream.hpp>

#include "http2/session.hpp"
#include "metrics/histogram.hpp"
#include "metrics/instruments.hpp"
#include "metrics/label_cap.hpp"
#include "tls/session.hpp"

namespace blitz::server {

/// Why a downstream connection closed (blitz_connections_closed_total{reason}).
enum class CloseReason : std::uint8_t {
    Server,         ///< we ended it between requests: Connection: close, keep-alive limits, age
    Client,         ///< the client closed (FIN, close_notify)
    Error,          ///< a socket error or reset, or no memory for its input
    Timeout,        ///< idle, header, body or handshake timeout
    ProtocolError,  ///< a request we could not read (4xx then close), an HTTP/2 protocol error
    Flood,          ///< an HTTP/2 flood limit
    Tls,            ///< a failed TLS handshake or record
    Drain,          ///< graceful shutdown or a removed listener
};
inline constexpr std::size_t kCloseReasons = 8;
std::string_view close_reason_name(CloseReason reason) noexcept;

/// An HTTP/2 limit that refuses or ends one stream while its connection goes on
/// (blitz_http2_limit_hits_total{limit}, beside the floods that end a connection).
enum class H2StreamLimit : std::uint8_t {
    ConcurrentStreams,  ///< a stream beyond max_concurrent_streams: REFUSED_STREAM
    RequestHead,        ///< a header or trailer section beyond the head limits: 431 (HPACK bombs)
    ZeroWindow,         ///< a response held by a closed window past zero_window_timeout_ms: reset
};
inline constexpr std::size_t kH2StreamLimits = 3;
std::string_view h2_stream_limit_name(H2StreamLimit limit) noexcept;

/// Why an upstream attempt failed (blitz_upstream_errors_total{cause}).
enum class UpstreamError : std::uint8_t {
    ConnectFailure,
    ConnectTimeout,
    Tls,
    Reset,
    Timeout,
    BadResponse,
    NoEndpoint,   ///< no healthy endpoint: 503
    CircuitOpen,  ///< a circuit-breaker limit: 503
};
inline constexpr std::size_t kUpstreamErrors = 8;
std::string_view upstream_error_name(UpstreamError error) noexcept;

/// TLS handshake failures by reason: the library's kinds, then ours.
inline constexpr std::size_t kTlsFailTimeout = tls::kFailureKinds;  // no handshake in time
inline constexpr std::size_t kTlsFailEof = tls::kFailureKinds + 1;  // the client left mid-handshake
inline constexpr std::size_t kTlsFailures = tls::kFailureKinds + 2;
std::string_view tls_failure_name(std::size_t index) noexcept;

inline constexpr std::size_t kStatusClasses = 5;  // 1xx .. 5xx

/// The slot of a status in per-class arrays, or -1 outside 100..599.
inline int status_class(int status) noexcept {
    const int cls = status / 100 - 1;
    return cls >= 0 && cls < static_cast<int>(kStatusClasses) ? cls : -1;
}

/// Per-label-value series made on first use: slot i of a LabelCap owns series i (whichever
/// value holds the slot: a rank that gives the slot another value first moves the series'
/// counts to the overflow slot's). The owning reactor makes a series once (at most cap + 1
/// times in the cap's life); scrapes read the published pointers, which never change.
///
/// Thread: get() and find() on the owning reactor; peek() from any thread. Lifetime: the
/// reactor's.
template <typename T>
class SeriesSlots {
public:
    explicit SeriesSlots(std::size_t slots) : slots_(new std::atomic<T*>[slots]), count_(slots) {
        for (std::size_t i = 0; i < slots; ++i) {
            slots_[i].store(nullptr, std::memory_order_relaxed);
        }
    }
    ~SeriesSlots() {
        for (std::size_t i = 0; i < count_; ++i) {
            delete slots_[i].load(std::memory_order_relaxed);
        }
    }
    SeriesSlots(const SeriesSlots&) = delete;
    SeriesSlots& operator=(const SeriesSlots&) = delete;

    template <typename... Args>
    T& get(std::size_t slot, Args&&... args) {
        T* s = slots_[slot].load(std::memory_order_relaxed);
        if (s == nullptr) {
            s = new T(std::forward<Args>(args)...);
            slots_[slot].store(s, std::memory_order_release);
        }
        return *s;
    }
    /// The series of `slot` if made (owning reactor).
    T* find(std::size_t slot) noexcept { return slots_[slot].load(std::memory_order_relaxed); }
    const T* peek(std::size_t slot) const noexcept { return slots_[slot].load(std::memory_order_acquire); }

private:
    std::unique_ptr<std::atomic<T*>[]> slots_;
    std::size_t count_;
};

/// A route's metric label: its name, or its path (or path regex) when unnamed.
inline std::string_view route_label(const Route& r) noexcept {
    return !r.name.empty() ? std::string_view(r.name) : !r.path_regex.empty() ? std::string_view(r.path_regex) : std::string_view(r.path);
}

/// One route's series (label: route_label()).
struct RouteSeries {
    metrics::Counter requests[kStatusClasses];
    metrics::Histogram duration;

    /// Hands every count to `to` (the overflow series) and starts from zero (reactor).
    void move_into(RouteSeries& to) noexcept {
        for (std::size_t i = 0; i < kStatusClasses; ++i) {
            requests[i].move_into(to.requests[i]);
        }
        duration.move_into(to.duration);
    }
};

/// One upstream endpoint's series.
struct EndpointSeries {
    metrics::Counter responses[kStatusClasses];  ///< attempts answered, by status class
    metrics::Counter errors;                     ///< attempts failed without a usable response
    metrics::Gauge open;                         ///< pooled connections open (busy, idle, connecting)
    metrics::Gauge idle;                         ///< of which: waiting for a request

    /// No connection counted here: only then does this reactor's own ranking let its label
    /// value leave the slot.
    bool gauges_zero() const noexcept { return open.value() == 0 && idle.value() == 0; }
    /// Hands the counters and the gauges to `to` (the overflow series) and starts from zero
    /// (reactor). The gauges are not zero only when another reactor demoted the endpoint
    /// (LabelCap::demote()): the pools' shares of them are in `to` from then on, which their
    /// EndpointRef notices by `moves`.
    void move_into(EndpointSeries& to) noexcept {
        for (std::size_t i = 0; i < kStatusClasses; ++i) {
            responses[i].move_into(to.responses[i]);
        }
        errors.move_into(to.errors);
        to.open.add(open.value());
        open.sub(open.value());
        to.idle.add(idle.value());
        idle.sub(idle.value());
        ++moves;
    }

    std::uint64_t moves = 0;  ///< move_into() calls (reactor): see EndpointRef
};

/// Where a pool last found its endpoint's series: refreshed by UpstreamSeries::endpoint() when
/// the endpoint cap's generation changed, with the pool's gauge contributions moved along.
///
/// Thread: the reactor's. Lifetime: the pool's.
struct EndpointRef {
    EndpointSeries* series = nullptr;
    std::size_t slot = 0;
    std::uint64_t generation = 0;
    std::int64_t open = 0;  ///< what the pool added to series->open
    std::int64_t idle = 0;  ///< what the pool added to series->idle
    std::uint64_t moves = 0;  ///< series->moves when the pool last counted there
};

/// One upstream's series (label: the upstream's name).
struct UpstreamSeries {
    /// The series of one upstream, whose endpoint cap is a member of `family` (the
    /// upstream's endpoint label family, shared with the other reactors).
    UpstreamSeries(std::size_t max_endpoints, metrics::LabelFamily& family)
        : family(&family), endpoint_names(max_endpoints), endpoints(endpoint_names.slots()) {
        std::lock_guard lock(family.mutex);
        member = family.attach();
    }
    ~UpstreamSeries() {
        std::lock_guard lock(family->mutex);
        family->detach(member);
    }
    UpstreamSeries(const UpstreamSeries&) = delete;
    UpstreamSeries& operator=(const UpstreamSeries&) = delete;

    /// The series of endpoint `address` for a pool that caches it in `ref`; `attempt` counts
    /// one attempt of the endpoint for the ranking. A kept endpoint costs a generation compare
    /// and an increment; one in "other" a label lookup, so that its traffic ranks it.
    EndpointSeries& endpoint(std::string_view address, EndpointRef& ref, bool attempt) {
        const bool fresh = ref.series != nullptr && ref.generation == endpoint_names.generation();
        if (fresh && (ref.slot != endpoint_names.overflow_slot() || !attempt)) {
            if (attempt) {
                endpoint_names.count(ref.slot);
            }
            return *ref.series;
        }
        const std::size_t slot = endpoint_names.slot(address, attempt ? 1 : 0);
        EndpointSeries& now = endpoints.get(slot);
        if (ref.series != nullptr) {
            // Where the pool's connections are counted: in its old series, or in "other" if a
            // demotion moved that series' gauges there (EndpointSeries::move_into()).
            EndpointSeries* held = ref.series->moves == ref.moves
                                       ? ref.series
                                       : &endpoints.get(endpoint_names.overflow_slot());
            if (held != &now) {
                // Promoted out of "other", or demoted into it: the connections follow.
                held->open.sub(ref.open);
                held->idle.sub(ref.idle);
                now.open.add(ref.open);
                now.idle.add(ref.idle);
            }
        }
        ref.series = &now;
        ref.slot = slot;
        ref.generation = endpoint_names.generation();
        ref.moves = now.moves;
        return now;
    }
    /// Re-ranks the endpoint labels (EngineMetrics::maintain()) as a member of the family:
    /// applies the other reactors' demotions first (an endpoint another reactor demoted goes
    /// to "other" here too, with its connection gauges: see EndpointSeries::move_into()), and
    /// publishes its own. This reactor's own ranking keeps endpoints with connections counted
    /// on it (`movable`).
    void rank_endpoints() {
        const auto movable = [this](std::size_t s) {
            const EndpointSeries* e = endpoints.find(s);
            return e == nullptr || e->gauges_zero();
        };
        const auto move = [this](std::size_t s) {
            if (EndpointSeries* from = endpoints.find(s)) {
                from->move_into(endpoints.get(endpoint_names.overflow_slot()));
            }
        };
        endpoint_names.rank_shared(*family, member, movable, move);
    }

    metrics::Counter errors[kUpstreamErrors];
    metrics::Counter retries;
    metrics::Counter panics;  ///< attempts balanced in panic mode
    // What the circuit breaker counts (this reactor's part): requests in flight, waiting for a
    // connection, and retries in flight.
    metrics::Gauge requests_active;
    metrics::Gauge requests_pending;
    metrics::Gauge retries_active;
    metrics::Histogram duration;    ///< attempt sent .. response complete
    metrics::Histogram connect;     ///< connect started .. connected (TLS included)
    metrics::Histogram first_byte;  ///< request sent .. first response byte
    metrics::LabelFamily* family;   ///< the upstream's endpoint label family (shared)
    std::size_t member = 0;         ///< endpoint_names' member id in `family`
    metrics::LabelCap endpoint_names;
    SeriesSlots<EndpointSeries> endpoints;
};

/// How many label values the per-route and per-endpoint series keep (ServerOptions::metrics).
struct MetricsLimits {
    std::size_t max_routes = 200;
    std::size_t max_endpoints = 200;
    static constexpr std::size_t kMaxUpstreams = 256;
};

/// One reactor's counters of the engine: written by that reactor only, with no locked
/// instruction (metrics::Counter), and summed over reactors when /metrics is scraped.
///
/// **Labels over reactors.** The route and endpoint label caps of all reactors share their
/// label families (`families`, made by the engine): a value one reactor's ranking demotes is
/// demoted by every reactor at its next maintain(), and a scrape hides it (adds its series to
/// "other") until all did, so no summed series ever drops (metrics::LabelFamily has the
/// argument). An endpoint demoted by another reactor leaves this one's slot even with
/// connections open here: its gauges move to "other" with its counters (exported gauges are
/// per upstream, so the sum does not change), and the pools follow (EndpointRef::moves).
/// Without `families` the metrics make their own (a single reactor, tests).
///
/// Thread: written by its reactor, read by any thread. Lifetime: the reactor's.
struct alignas(64) EngineMetrics {
    explicit EngineMetrics(MetricsLimits limits = {},
                           std::shared_ptr<metrics::LabelFamilies> shared = nullptr)
        : max_endpoints(limits.max_endpoints),
          families(shared != nullptr ? std::move(shared)
                                     : std::make_shared<metrics::LabelFamilies>()),
          route_names(limits.max_routes), routes(route_names.slots()),
          upstream_names(MetricsLimits::kMaxUpstreams), upstreams(upstream_names.slots()) {
        std::lock_guard lock(families->routes().mutex);
        route_member = families->routes().attach();
    }
    ~EngineMetrics() {
        std::lock_guard lock(families->routes().mutex);
        families->routes().detach(route_member);
    }
    EngineMetrics(const EngineMetrics&) = delete;
    EngineMetrics& operator=(const EngineMetrics&) = delete;

    /// A request was answered (its response handed to the connection): counted by method and
    /// status class, and by route with its duration (the overall duration histogram is the sum
    /// of the routes' and `unrouted_duration`, merged at scrape time: one observation per
    /// request).
    void request_done(Method method, const Route* route, int status, std::uint64_t duration_us) {
        const int cls = status_class(status);
        if (cls >= 0) {
            requests[static_cast<std::size_t>(method)][static_cast<std::size_t>(cls)].add();
        }
        if (route == nullptr) {
            unrouted_duration.observe(duration_us);
            return;
        }
        RouteSeries& series = this->route(*route);
        if (cls >= 0) {
            series.requests[static_cast<std::size_t>(cls)].add();
        }
        series.duration.observe(duration_us);
    }
    /// The series of `r`, counting one request of its label for the ranking: a small
    /// direct-mapped cache by route address spares the label lookup (a hash of the name) on
    /// every request. Only routes with a slot of their own are cached (the cache is cleared
    /// when a rank moves labels); a route in "other" is looked up each time, so that its
    /// traffic ranks it.
    RouteSeries& route(const Route& r) {
        if (const RouteRef* hit = route_cache_.find(&r)) {
            route_names.count(hit->slot);
            return *hit->series;
        }
        const std::size_t slot = route_names.slot(route_label(r));
        RouteSeries& series = routes.get(slot);
        if (slot != route_names.overflow_slot()) {
            route_cache_.put(&r, RouteRef{&series, slot});
        }
        return series;
    }
    /// The series of upstream `u` (by its name), cached by address like routes. Upstream
    /// names are configured (at most kMaxUpstreams per reactor keep a series): their cap keeps
    /// the first values seen and is never re-ranked, so these pointers never move.
    UpstreamSeries& upstream(const Upstream& u) {
        if (UpstreamSeries* const* hit = upstream_cache_.find(&u)) {
            return **hit;
        }
        UpstreamSeries& series = upstream(u.name());
        upstream_cache_.put(&u, &series);
        return series;
    }
    /// Called by the reactor every turn: once per kRankIntervalMs it re-ranks the route and
    /// endpoint labels by their recent traffic (LabelCap::rank()), and every kDecayRanks ranks
    /// halves the counts. Off the request path.
    void maintain(std::uint64_t now_ms) {
        if (now_ms >= next_rank_ms_) {
            next_rank_ms_ = now_ms + kRankIntervalMs;
            rank_labels();
        }
    }
    /// One ranking round of maintain(), now (tests).
    void rank_labels();
    static constexpr std::uint64_t kRankIntervalMs = 1000;
    static constexpr unsigned kDecayRanks = 10;
    /// A reload brings new route tables and upstreams: addresses may be reused, so the caches
    /// start over.
    void forget_addresses() noexcept {
        route_cache_.clear();
        upstream_cache_.clear();
    }
    UpstreamSeries& upstream(std::string_view name) {
        const std::size_t slot = upstream_names.slot(name);
        if (UpstreamSeries* s = upstreams.find(slot)) {
            return *s;
        }
        // First use on this reactor: the family is found by the series' label ("other" for
        // the overflow), as every reactor's series of that label share it.
        return upstreams.get(slot, max_endpoints, families->endpoints(upstream_names.value(slot)));
    }

    metrics::Counter requests[kMethodCount][kStatusClasses];
    metrics::Gauge in_flight;  ///< exchanges begun and not ended (HTTP/1.1 requests, HTTP/2 streams)
    metrics::Histogram unrouted_duration;  ///< requests no route answered (404, 405, 400)
    metrics::Counter connections_accepted;
    metrics::Gauge connections_active;
    metrics::Counter connections_closed[kCloseReasons];
    metrics::Counter bytes_received;  ///< from clients (TLS: plaintext)
    metrics::Counter bytes_sent;      ///< to clients (TLS: plaintext)
    metrics::Counter tls_handshakes;
    metrics::Counter tls_handshake_failures[kTlsFailures];
    metrics::Counter h2_streams;
    metrics::Counter h2_floods[http2::kFloodKinds];
    metrics::Counter h2_stream_limits[kH2StreamLimits];
    metrics::Gauge recv_buffers_in_use;
    metrics::Gauge recv_buffers_allocated;
    metrics::Counter access_log_lines;    ///< lines buffered for writing
    metrics::Counter access_log_dropped;  ///< lines lost: buffers full, or their write failed
    metrics::Counter retries;                 ///< proxied requests sent again
    metrics::Counter keepalive_race_retries;  ///< of which: a reused connection closed under us
    std::size_t max_endpoints;
    std::shared_ptr<metrics::LabelFamilies> families;  ///< shared by the engine's reactors
    std::size_t route_member = 0;                      ///< route_names' member id
    metrics::LabelCap route_names;
    SeriesSlots<RouteSeries> routes;
    metrics::LabelCap upstream_names;
    SeriesSlots<UpstreamSeries> upstreams;

private:
    /// Series by the address of what they count (a Route, an Upstream): direct-mapped, a miss
    /// replaces the entry.
    template <class Key, class Value>
    class AddressCache {
    public:
        const Value* find(const Key* key) const noexcept {
            const Entry& e = entries_[index(key)];
            return e.key == key ? &e.value : nullptr;
        }
        void put(const Key* key, Value value) noexcept { entries_[index(key)] = Entry{key, value}; }
        void clear() noexcept { entries_ = {}; }

    private:
        static constexpr unsigned kBits = 6;
        static std::size_t index(const Key* key) noexcept {
            return (reinterpret_cast<std::uintptr_t>(key) * 0x9E3779B97F4A7C15u) >> (64 - kBits);
        }
        struct Entry {
            const Key* key = nullptr;
            Value value{};
        };
        std::array<Entry, std::size_t{1} << kBits> entries_{};
    };
    struct RouteRef {
        RouteSeries* series = nullptr;
        std::size_t slot = 0;
    };
    AddressCache<Route, RouteRef> route_cache_;               // reactor-only
    AddressCache<Upstream, UpstreamSeries*> upstream_cache_;  // reactor-only
    std::uint64_t next_rank_ms_ = 0;
    unsigned ranks_ = 0;
};

}  // namespace blitz::server

#include "server/engine_report.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "upstream/cluster.hpp"

namespace blitz::server {

std::string_view close_reason_name(CloseReason reason) noexcept {
    constexpr std::string_view kNames[kCloseReasons] = {"server",         "client", "error", "timeout",
                                                        "protocol_error", "flood",  "tls",   "drain"};
    return kNames[static_cast<std::size_t>(reason)];
}

std::string_view h2_stream_limit_name(H2StreamLimit limit) noexcept {
    constexpr std::string_view kNames[kH2StreamLimits] = {"concurrent_streams", "request_head", "zero_window"};
    return kNames[static_cast<std::size_t>(limit)];
}

std::string_view upstream_error_name(UpstreamError error) noexcept {
    constexpr std::string_view kNames[kUpstreamErrors] = {"connect_failure", "connect_timeout", "tls",
                                                          "reset",           "timeout",         "bad_response",
                                                          "no_endpoint",     "circuit_open"};
    return kNames[static_cast<std::size_t>(error)];
}

std::string_view tls_failure_name(std::size_t index) noexcept {
    if (index == kTlsFailTimeout) {
        return "timeout";
    }
    if (index == kTlsFailEof) {
        return "eof";
    }
    return tls::failure_kind_name(static_cast<tls::FailureKind>(index));
}

namespace {

constexpr std::string_view kClasses[kStatusClasses] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

template <std::size_t N>
void add_counts(std::uint64_t (&into)[N], const metrics::Counter (&from)[N]) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
        into[i] += from[i].value();
    }
}

// Calls apply(value, copy) for every series a cap published (kept values, then the overflow),
// with copy = take(series) read in one consistent pass: the reactor may re-rank the cap (move
// a value's counts to "other" and give its slot to another value) while we read, so the pass
// is repeated until no rank ran during it (LabelCap::read_begin(), read_valid()). apply() runs
// only on a consistent copy: every series before a move, or every series after it.
template <typename T, typename Take, typename Apply>
void each_series(const metrics::LabelCap& cap, const SeriesSlots<T>& slots, Take take,
                 Apply apply) {
    using Copy = decltype(take(std::declval<const T&>()));
    std::vector<std::pair<std::string, Copy>> copies;
    for (;;) {
        copies.clear();
        const std::uint64_t begin = cap.read_begin();
        const std::size_t kept = cap.size();
        for (std::size_t i = 0; i < kept; ++i) {
            if (cap.vacant(i)) {
                continue;  // its value was demoted; its series is empty until it is refilled
            }
            if (const T* s = slots.peek(i)) {
                copies.emplace_back(cap.value(i), take(*s));
            }
        }
        if (const T* s = slots.peek(cap.overflow_slot())) {
            copies.emplace_back(cap.value(cap.overflow_slot()), take(*s));
        }
        if (cap.read_valid(begin)) {
            break;
        }
    }
    for (auto& [value, copy] : copies) {
        apply(value, copy);
    }
}

template <typename Map>
auto& entry(Map& map, std::string_view key) {
    auto it = map.find(key);
    if (it == map.end()) {
        it = map.emplace(std::string(key), typename Map::mapped_type{}).first;
    }
    return it->second;
}

}  // namespace

void EngineMetrics::rank_labels() {
    const bool decay = ++ranks_ % kDecayRanks == 0;
    // Routes have no gauges: any of them may leave its slot.
    const auto move = [this](std::size_t s) {
        if (RouteSeries* from = routes.find(s)) {
            from->move_into(routes.get(route_names.overflow_slot()));
        }
    };
    const std::size_t moved = route_names.rank_shared(
        families->routes(), route_member, [](std::size_t) { return true; }, move);
    if (moved != 0) {
        route_cache_.clear();  // cached slots may hold other routes now
    }
    if (decay) {
        route_names.decay();
    }
    const std::size_t kept = upstream_names.size();
    for (std::size_t i = 0; i <= kept; ++i) {
        if (UpstreamSeries* u = upstreams.find(i == kept ? upstream_names.overflow_slot() : i)) {
            u->rank_endpoints();
            if (decay) {
                u->endpoint_names.decay();
            }
        }
    }
}

void EngineTotals::add(const EngineMetrics& m) {
    const EngineMetrics* const one[] = {&m};
    add(one);
}

// What has no re-ranked label, and the upstreams' own series; the upstreams' endpoint series
// are read by family in add().
void EngineTotals::add_unlabelled(const EngineMetrics& m, UpstreamList& endpoint_reads) {
    for (std::size_t i = 0; i < kMethodCount; ++i) {
        for (std::size_t j = 0; j < kStatusClasses; ++j) {
            requests[i][j] += m.requests[i][j].value();
            all_requests += m.requests[i][j].value();
        }
    }
    m.unrouted_duration.merge_into(duration);
    in_flight += m.in_flight.value();
    connections_accepted += m.connections_accepted.value();
    connections_active += m.connections_active.value();
    add_counts(connections_closed, m.connections_closed);
    bytes_received += m.bytes_received.value();
    bytes_sent += m.bytes_sent.value();
    tls_handshakes += m.tls_handshakes.value();
    add_counts(tls_handshake_failures, m.tls_handshake_failures);
    h2_streams += m.h2_streams.value();
    add_counts(h2_floods, m.h2_floods);
    add_counts(h2_stream_limits, m.h2_stream_limits);
    recv_buffers_in_use += m.recv_buffers_in_use.value();
    recv_buffers_allocated += m.recv_buffers_allocated.value();
    retries += m.retries.value();
    keepalive_race_retries += m.keepalive_race_retries.value();
    access_log_lines += m.access_log_lines.value();
    access_log_dropped += m.access_log_dropped.value();
    // Upstream names are never re-ranked: the series themselves are read below, each
    // endpoint cap by family in add().
    each_series(m.upstream_names, m.upstreams, [](const UpstreamSeries& s) { return &s; },
                [&](std::string_view name, const UpstreamSeries* series) {
        const UpstreamSeries& s = *series;
        Upstream& u = entry(upstreams, name);
        add_counts(u.errors, s.errors);
        u.retries += s.retries.value();
        u.panics += s.panics.value();
        u.requests_active += s.requests_active.value();
        u.requests_pending += s.requests_pending.value();
        u.retries_active += s.retries_active.value();
        s.duration.merge_into(u.duration);
        s.connect.merge_into(u.connect);
        s.first_byte.merge_into(u.first_byte);
        endpoint_reads.emplace_back(std::string(name), series);
    });
}

// The label families' series, each family read whole under its mutex: no reactor's cap of the
// family changes while we copy (rank_shared() takes the same mutex), and a value whose demotion
// some reactor has not applied yet is exported in "other" (metrics::LabelFamily explains why
// every series then only grows or disappears). Each cap is still read through its seqlock.
void EngineTotals::add(std::span<const EngineMetrics* const> reactors) {
    UpstreamList endpoint_reads;
    for (const EngineMetrics* m : reactors) {
        add_unlabelled(*m, endpoint_reads);
    }
    const auto label = [](const metrics::LabelFamily& family, std::string_view value) {
        return family.pending(value) ? metrics::LabelCap::kOverflow : value;
    };
    std::vector<const metrics::LabelFamily*> read;
    for (std::size_t i = 0; i < reactors.size(); ++i) {
        metrics::LabelFamily& family = reactors[i]->families->routes();
        if (std::find(read.begin(), read.end(), &family) != read.end()) {
            continue;
        }
        read.push_back(&family);
        std::lock_guard lock(family.mutex);
        for (std::size_t j = i; j < reactors.size(); ++j) {
            const EngineMetrics& m = *reactors[j];
            if (&m.families->routes() != &family) {
                continue;
            }
            each_series(
                m.route_names, m.routes,
                [](const RouteSeries& s) {
                    Route c;
                    add_counts(c.requests, s.requests);
                    s.duration.merge_into(c.duration);
                    return c;
                },
                [&](std::string_view name, const Route& c) {
                    Route& r = entry(routes, label(family, name));
                    for (std::size_t k = 0; k < kStatusClasses; ++k) {
                        r.requests[k] += c.requests[k];
                    }
                    r.duration.merge(c.duration);
                    duration.merge(c.duration);
                });
        }
    }
    for (std::size_t i = 0; i < endpoint_reads.size(); ++i) {
        metrics::LabelFamily& family = *endpoint_reads[i].second->family;
        if (std::find(read.begin(), read.end(), &family) != read.end()) {
            continue;
        }
        read.push_back(&family);
        std::lock_guard lock(family.mutex);
        for (std::size_t j = i; j < endpoint_reads.size(); ++j) {
            const auto& [name, series] = endpoint_reads[j];
            if (series->family != &family) {
                continue;
            }
            Upstream& u = entry(upstreams, name);
            each_series(
                series->endpoint_names, series->endpoints,
                [](const EndpointSeries& e) {
                    Endpoint c;
                    add_counts(c.responses, e.responses);
                    c.errors = e.errors.value();
                    c.idle = e.idle.value();
                    c.active = e.open.value() - c.idle;
                    return c;
                },
                [&](std::string_view address, const Endpoint& c) {
                    Endpoint& out = entry(u.endpoints, label(family, address));
                    for (std::size_t k = 0; k < kStatusClasses; ++k) {
                        out.responses[k] += c.responses[k];
                    }
                    out.errors += c.errors;
                    out.active += c.active;
                    out.idle += c.idle;
                });
        }
    }
}

void write_engine_metrics(metrics::Writer& w, const EngineTotals& t) {
    using metrics::MetricType;
    w.family("blitz_requests_total", "Requests answered, by method and status class.", MetricType::Counter);
    for (std::size_t i = 0; i < kMethodCount; ++i) {
        const std::string_view method =
            i == static_cast<std::size_t>(Method::Other) ? std::string_view("other") : method_token(static_cast<Method>(i));
        for (std::size_t j = 0; j < kStatusClasses; ++j) {
            if (t.requests[i][j] != 0) {
                w.counter({{"method", method}, {"code", kClasses[j]}}, t.requests[i][j]);
            }
        }
    }
    w.family("blitz_requests_in_flight", "Requests (and HTTP/2 streams) begun and not yet ended.", MetricType::Gauge);
    w.gauge({}, t.in_flight);
    w.family("blitz_request_duration_seconds", "Time from a complete request head to its response handed to the connection.",
             MetricType::Histogram);
    w.histogram({}, t.duration);

    w.family("blitz_route_requests_total", "Requests answered, by route and status class.", MetricType::Counter);
    for (const auto& [name, r] : t.routes) {
        for (std::size_t j = 0; j < kStatusClasses; ++j) {
            if (r.requests[j] != 0) {
                w.counter({{"route", name}, {"code", kClasses[j]}}, r.requests[j]);
            }
        }
    }
    w.family("blitz_route_request_duration_seconds", "Request duration by route.", MetricType::Histogram);
    for (const auto& [name, r] : t.routes) {
        w.histogram({{"route", name}}, r.duration);
    }

    w.family("blitz_connections_accepted_total", "Downstream connections accepted.", MetricType::Counter);
    w.counter({}, t.connections_accepted);
    w.family("blitz_connections_active", "Downstream connections open.", MetricType::Gauge);
    w.gauge({}, t.connections_active);
    w.family("blitz_connections_closed_total", "Downstream connections closed, by reason.", MetricType::Counter);
    for (std::size_t i = 0; i < kCloseReasons; ++i) {
        w.counter({{"reason", close_reason_name(static_cast<CloseReason>(i))}}, t.connections_closed[i]);
    }
    w.family("blitz_received_bytes_total", "Bytes received from clients (after TLS).", MetricType::Counter);
    w.counter({}, t.bytes_received);
    w.family("blitz_sent_bytes_total", "Bytes sent to clients (before TLS).", MetricType::Counter);
    w.counter({}, t.bytes_sent);
    w.family("blitz_tls_handshakes_total", "TLS handshakes completed.", MetricType::Counter);
    w.counter({}, t.tls_handshakes);
    w.family("blitz_tls_handshake_failures_total", "TLS handshakes that failed, by reason.", MetricType::Counter);
    for (std::size_t i = 0; i < kTlsFailures; ++i) {
        w.counter({{"reason", tls_failure_name(i)}}, t.tls_handshake_failures[i]);
    }
    w.family("blitz_http2_streams_total", "HTTP/2 request streams opened.", MetricType::Counter);
    w.counter({}, t.h2_streams);
    w.family("blitz_http2_limit_hits_total",
             "HTTP/2 limits hit: floods end the connection (GOAWAY ENHANCE_YOUR_CALM); concurrent_streams, "
             "request_head and zero_window refuse or end one stream.",
             MetricType::Counter);
    for (std::size_t i = 0; i < http2::kFloodKinds; ++i) {
        w.counter({{"limit", http2::flood_name(static_cast<http2::Flood>(i + 1))}}, t.h2_floods[i]);
    }
    for (std::size_t i = 0; i < kH2StreamLimits; ++i) {
        w.counter({{"limit", h2_stream_limit_name(static_cast<H2StreamLimit>(i))}}, t.h2_stream_limits[i]);
    }
    w.family("blitz_access_log_lines_total", "Access log lines buffered for writing.", MetricType::Counter);
    w.counter({}, t.access_log_lines);
    w.family("blitz_access_log_dropped_lines_total",
             "Access log lines lost: both buffers full (the disk is slower than the traffic) or a failed write.",
             MetricType::Counter);
    w.counter({}, t.access_log_dropped);
    w.family("blitz_recv_buffers", "Receive buffers of the reactors' buffer rings.", MetricType::Gauge);
    w.gauge({{"state", "in_use"}}, t.recv_buffers_in_use);
    w.gauge({{"state", "allocated"}}, t.recv_buffers_allocated);

    w.family("blitz_upstream_retries_total", "Proxied requests sent again.", MetricType::Counter);
    w.counter({}, t.retries);
    w.family("blitz_upstream_keepalive_race_retries_total",
             "Retries because a reused upstream connection closed before answering.", MetricType::Counter);
    w.counter({}, t.keepalive_race_retries);
    w.family("blitz_upstream_requests_total", "Upstream attempts answered, by upstream, endpoint and status class.",
             MetricType::Counter);
    for (const auto& [name, u] : t.upstreams) {
        for (const auto& [address, e] : u.endpoints) {
            for (std::size_t j = 0; j < kStatusClasses; ++j) {
                if (e.responses[j] != 0) {
                    w.counter({{"upstream", name}, {"endpoint", address}, {"code", kClasses[j]}}, e.responses[j]);
                }
            }
        }
    }
    w.family("blitz_upstream_errors_total", "Upstream attempts that failed, and requests refused, by cause.",
             MetricType::Counter);
    for (const auto& [name, u] : t.upstreams) {
        for (std::size_t i = 0; i < kUpstreamErrors; ++i) {
            if (u.errors[i] != 0) {
                w.counter({{"upstream", name}, {"cause", upstream_error_name(static_cast<UpstreamError>(i))}}, u.errors[i]);
            }
        }
    }
    w.family("blitz_upstream_panic_total",
             "Upstream attempts balanced in panic mode: too few endpoints available, so across all of them.",
             MetricType::Counter);
    for (const auto& [name, u] : t.upstreams) {
        w.counter({{"upstream", name}}, u.panics);
    }
    w.family("blitz_upstream_request_duration_seconds", "Upstream attempt: request sent until response complete.",
             MetricType::Histogram);
    for (const auto& [name, u] : t.upstreams) {
        w.histogram({{"upstream", name}}, u.duration);
    }
    w.family("blitz_upstream_connect_duration_seconds", "Upstream connection set-up (TCP and TLS).", MetricType::Histogram);
    for (const auto& [name, u] : t.upstreams) {
        w.histogram({{"upstream", name}}, u.connect);
    }
    w.family("blitz_upstream_first_byte_seconds", "Upstream attempt: request sent until the first response byte.",
             MetricType::Histogram);
    for (const auto& [name, u] : t.upstreams) {
        w.histogram({{"upstream", name}}, u.first_byte);
    }
    w.family("blitz_upstream_connections", "Pooled upstream connections, by state.", MetricType::Gauge);
    for (const auto& [name, u] : t.upstreams) {
        std::int64_t active = 0;
        std::int64_t idle = 0;
        for (const auto& [address, e] : u.endpoints) {
            active += e.active;
            idle += e.idle;
        }
        w.gauge({{"upstream", name}, {"state", "active"}}, active);
        w.gauge({{"upstream", name}, {"state", "idle"}}, idle);
    }
}

void append_engine_stats(std::string& out, const EngineTotals& t) {
    const auto num = [&out](std::string_view key, auto value) {
        out += '"';
        out += key;
        out += "\":";
        out += std::to_string(value);
        out += ',';
    };
    num("requests", t.all_requests);
    num("requests_in_flight", t.in_flight);
    num("connections_accepted", t.connections_accepted);
    num("connections_active", t.connections_active);
    num("bytes_received", t.bytes_received);
    num("bytes_sent", t.bytes_sent);
    out += "\"request_duration_us\":{";
    const char* sep = "";
    for (const auto& [name, q] : {std::pair{"p50", 0.5}, {"p90", 0.9}, {"p99", 0.99}, {"p999", 0.999}}) {
        out += sep;
        out += '"';
        out += name;
        out += "\":";
        out += std::to_string(static_cast<std::uint64_t>(t.duration.quantile(q)));
        sep = ",";
    }
    out += "},";
    num("upstream_retries", t.retries);
    num("upstream_keepalive_race_retries", t.keepalive_race_retries);
    out.pop_back();
}

}  // namespace blitz::server

namespace blitz::server {

void write_upstream_health(metrics::Writer& w, std::span<const upstream::Cluster* const> clusters) {
    w.family("blitz_upstream_endpoint_healthy", "1 when an upstream endpoint takes requests (health checks pass, not ejected).",
             metrics::MetricType::Gauge);
    const std::uint64_t now = upstream::steady_now_ms();
    for (const upstream::Cluster* c : clusters) {
        const auto set = c->endpoints();
        for (const auto& e : set->endpoints) {
            w.gauge({{"upstream", c->options().name}, {"endpoint", e.text}}, upstream::Cluster::available(e, now) ? 1 : 0);
        }
    }
}

void write_circuit_breakers(metrics::Writer& w, std::span<const upstream::Cluster* const> clusters,
                            const EngineTotals& t) {
    using metrics::MetricType;
    const auto totals_of = [&t](const upstream::Cluster* c) {
        const auto it = t.upstreams.find(c->options().name);
        return it != t.upstreams.end() ? it->second : EngineTotals::Upstream{};
    };
    w.family("blitz_upstream_requests_active", "Requests in flight to an upstream.", MetricType::Gauge);
    for (const upstream::Cluster* c : clusters) {
        w.gauge({{"upstream", c->options().name}}, totals_of(c).requests_active);
    }
    w.family("blitz_upstream_requests_pending", "Requests waiting for an upstream connection.", MetricType::Gauge);
    for (const upstream::Cluster* c : clusters) {
        w.gauge({{"upstream", c->options().name}}, totals_of(c).requests_pending);
    }
    w.family("blitz_upstream_circuit_breaker_open",
             "1 while a circuit-breaker limit of an upstream is reached (new requests get 503).", MetricType::Gauge);
    for (const upstream::Cluster* c : clusters) {
        const EngineTotals::Upstream u = totals_of(c);
        std::int64_t connections = 0;
        for (const auto& [address, e] : u.endpoints) {
            connections += e.active + e.idle;
        }
        const CircuitBreakerOptions& cb = c->options().circuit_breaker;
        const std::pair<std::string_view, bool> limits[] = {
            {"connections", connections >= static_cast<std::int64_t>(cb.max_connections)},
            {"pending_requests", u.requests_pending >= static_cast<std::int64_t>(cb.max_pending_requests)},
            {"requests", u.requests_active >= static_cast<std::int64_t>(cb.max_requests)},
            {"retries", u.retries_active >= static_cast<std::int64_t>(cb.max_retries)},
        };
        for (const auto& [limit, open] : limits) {
            w.gauge({{"upstream", c->options().name}, {"limit", limit}}, open ? 1 : 0);
        }
    }
}

void append_upstreams_json(std::string& out, std::span<const upstream::Cluster* const> clusters, const EngineTotals& t) {
    const std::uint64_t now = upstream::steady_now_ms();
    out += "{\"upstreams\":[";
    const char* sep = "";
    for (const upstream::Cluster* c : clusters) {
        const std::string& name = c->options().name;
        const auto totals = t.upstreams.find(name);
        out += sep;
        sep = ",";
        out += "{\"name\":";
        append_json_string(out, name);
        const auto set = c->endpoints();
        const auto up = std::count_if(set->endpoints.begin(), set->endpoints.end(),
                                      [now](const upstream::Endpoint& e) { return upstream::Cluster::available(e, now); });
        out += c->panic(static_cast<std::uint64_t>(up), set->endpoints.size()) ? ",\"panic\":true"
                                                                             : ",\"panic\":false";
        out += ",\"endpoints\":[";
        const char* esep = "";
        for (const auto& e : set->endpoints) {
            const EngineTotals::Endpoint* et = nullptr;
            if (totals != t.upstreams.end()) {
                if (auto it = totals->second.endpoints.find(e.text); it != totals->second.endpoints.end()) {
                    et = &it->second;
                }
            }
            const std::uint64_t until = e.health->ejected_until_ms.load(std::memory_order_relaxed);
            out += esep;
            esep = ",";
            out += "{\"address\":";
            append_json_string(out, e.text);
            if (!e.hostname.empty()) {
                out += ",\"hostname\":";
                append_json_string(out, e.hostname);
            }
            out += ",\"weight\":" + std::to_string(e.weight);
            out += ",\"healthy\":";
            out += e.health->healthy.load(std::memory_order_relaxed) ? "true" : "false";
            out += ",\"ejected\":";
            out += until > now ? "true" : "false";
            if (until > now) {
                out += ",\"ejected_for_ms\":" + std::to_string(until - now);
            }
            out += ",\"ejections\":" + std::to_string(e.health->ejections.load(std::memory_order_relaxed));
            out += ",\"connections\":{\"active\":" + std::to_string(et != nullptr ? et->active : 0) +
                   ",\"idle\":" + std::to_string(et != nullptr ? et->idle : 0) + "}";
            std::uint64_t answered = 0;
            if (et != nullptr) {
                for (const std::uint64_t n : et->responses) {
                    answered += n;
                }
            }
            out += ",\"responses\":" + std::to_string(answered);
            out += ",\"errors\":" + std::to_string(et != nullptr ? et->errors : 0) + "}";
        }
        out += "]}";
    }
    out += "]}";
}

}  // namespace blitz::server

namespace blitz::server {

namespace {

// The config keys of a text matcher, so /routes reads like the route it came from.
std::string_view match_kind_name(MatchKind kind) noexcept {
    switch (kind) {
        case MatchKind::Exact:
            return "exact";
        case MatchKind::Prefix:
            return "prefix";
        case MatchKind::Suffix:
            return "suffix";
        case MatchKind::Regex:
            return "regex";
        case MatchKind::Present:
            return "present";
        case MatchKind::Absent:
            return "absent";
    }
    return "exact";
}

void append_cert_text_json(std::string& out, std::string_view key, const CertTextMatcher& m) {
    out += ",\"";
    out += key;
    out += "\":{\"kind\":";
    append_json_string(out, match_kind_name(m.kind));
    if (m.kind != MatchKind::Present && m.kind != MatchKind::Absent) {
        out += ",\"value\":";
        append_json_string(out, m.value);
    }
    out += '}';
}

void append_client_cert_json(std::string& out, const ClientCertMatcher& m) {
    // Fields join with a leading comma; the first one replaces it by the opening brace.
    const std::size_t start = out.size();
    if (m.presented) {
        out += *m.presented ? ",\"presented\":true" : ",\"presented\":false";
    }
    if (m.verified) {
        out += *m.verified ? ",\"verified\":true" : ",\"verified\":false";
    }
    if (m.subject) {
        append_cert_text_json(out, "subject", *m.subject);
    }
    if (m.san) {
        append_cert_text_json(out, "san", *m.san);
    }
    if (out.size() == start) {
        out += '{';
    } else {
        out[start] = '{';
    }
    out += '}';
}

}  // namespace

void append_route_json(std::string& out, const Route& r, const EngineTotals& t) {
    out += "{\"name\":";
    append_json_string(out, route_label(r));
    if (!r.host.empty()) {
        out += ",\"host\":";
        append_json_string(out, r.host);
    }
    if (!r.path_regex.empty()) {
        out += ",\"path_regex\":";
        append_json_string(out, r.path_regex);
    } else {
        out += r.prefix ? ",\"prefix\":" : ",\"path\":";
        append_json_string(out, r.path);
    }
    if (!r.methods.is_all()) {
        out += ",\"methods\":[";
        const char* sep = "";
        for (std::size_t i = 0; i < kMethodCount; ++i) {
            const auto m = static_cast<Method>(i);
            if (m != Method::Other && r.methods.contains(m)) {
                out += sep;
                sep = ",";
                append_json_string(out, method_token(m));
            }
        }
        out += ']';
    }
    if (r.priority != 0) {
        out += ",\"priority\":" + std::to_string(r.priority);
    }
    if (!r.headers.empty()) {
        out += ",\"header_matchers\":" + std::to_string(r.headers.size());
    }
    if (!r.query.empty()) {
        out += ",\"query_matchers\":" + std::to_string(r.query.size());
    }
    if (r.client_cert) {
        out += ",\"client_cert\":";
        append_client_cert_json(out, *r.client_cert);
    }
    out += ",\"action\":";
    if (r.handler) {
        out += "\"handler\"";
    } else if (r.proxy.upstream != nullptr) {
        out += "\"proxy\",\"upstream\":";
        append_json_string(out, r.proxy.upstream->name());
    } else if (r.redirect) {
        out += "\"redirect\",\"status\":" + std::to_string(r.redirect->status);
    } else {
        out += "\"direct\",\"status\":" + std::to_string(r.direct.status);
    }
    out += ",\"filters\":" + std::to_string(r.filters.size());
    std::uint64_t requests = 0;
    if (auto it = t.routes.find(route_label(r)); it != t.routes.end()) {
        for (const std::uint64_t n : it->second.requests) {
            requests += n;
        }
    }
    out += ",\"requests\":" + std::to_string(requests) + "}";
}

}  // namespace blitz::server

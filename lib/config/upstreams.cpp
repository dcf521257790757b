#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blitz/upstream.hpp>

#include "config/parts.hpp"
#include "config/syntax.hpp"
#include "http/token.hpp"
#include "upstream/cluster.hpp"

namespace blitz::config {
namespace {

constexpr std::array<std::string_view, 6> kBalances = {
    "round_robin", "weighted_round_robin", "least_request", "random", "ring_hash", "maglev"};
constexpr Balance kBalanceValues[] = {Balance::RoundRobin,   Balance::WeightedRoundRobin,
                                      Balance::LeastRequest, Balance::Random,
                                      Balance::RingHash,     Balance::Maglev};
constexpr std::array<std::string_view, 2> kProtocols = {"http1", "h2"};
constexpr std::array<std::string_view, 3> kHashSources = {"client_ip", "header", "cookie"};
constexpr std::array<std::string_view, 3> kFamilies = {"v4", "v6", "any"};
constexpr std::int64_t kMaxWeight = 10'000;
constexpr std::int64_t kMaxThreshold = 10'000;

constexpr std::string_view kAddress =
    "\"host:port\", \"IPv4:port\" or \"[IPv6]:port\" with a port from 1 to 65535 (e.g. "
    "\"10.0.0.1:8080\", \"[::1]:8080\", \"backend.internal:80\")";

struct EndpointState {
    EndpointOptions endpoint;
    bool has_address = false;
};

struct HashState {
    HashPolicy policy;
    Place name;
};

struct HealthState {
    HealthCheckOptions options;
    bool has_enabled = false;
};

struct UpstreamState {
    UpstreamOptions options;
    Place name;
    Place endpoints;
    Place hash;
    UpstreamTlsPlaces tls;
};

bool read_address(Walker& w, Node& n, std::string& out) {
    Text t;
    if (!w.text(n, kAddress, t)) {
        return false;
    }
    if (!is_authority(t.value, true)) {
        return w.mismatch(n, kAddress, t);
    }
    out = std::move(t.value);
    return true;
}

const std::array<Field<EndpointState>, 2> kEndpointFields = {{
    {"address",
     [](Walker& w, Node& n, EndpointState& e) {
         e.has_address = true;
         return read_address(w, n, e.endpoint.address);
     }},
    {"weight", [](Walker& w, Node& n,
                  EndpointState& e) { return w.integer(n, 1, kMaxWeight, e.endpoint.weight); }},
}};

bool read_endpoints(Walker& w, Node& n, UpstreamState& u) {
    u.endpoints = Walker::place(n);
    std::vector<std::string> paths;
    std::size_t count = 0;
    const bool ok = w.elements(n, "an array of endpoints", count, [&](Node& e, std::size_t) {
        const Place at = Walker::place(e);
        EndpointState state;
        if (e.type == od::json_type::object) {
            if (!w.object(e, kEndpointFields, state)) {
                return false;
            }
            if (!state.has_address) {
                return w.fail(at, "missing required key \"address\"");
            }
        } else if (e.type == od::json_type::string) {
            if (!read_address(w, e, state.endpoint.address)) {
                return false;
            }
        } else {
            return w.mismatch(e, "an endpoint: an address string (" + std::string(kAddress) +
                                     ") or an object with \"address\" and \"weight\"");
        }
        for (std::size_t i = 0; i < paths.size(); ++i) {
            if (u.options.endpoints[i].address == state.endpoint.address) {
                return w.fail(at, "duplicate endpoint " + quote(state.endpoint.address) +
                                      " (also " + paths[i] + ")");
            }
        }
        paths.push_back(at.path);
        u.options.endpoints.push_back(std::move(state.endpoint));
        return true;
    });
    if (ok && count == 0) {
        return w.fail(n.offset, n.path, "expected at least one endpoint, found an empty array");
    }
    return ok;
}

const std::array<Field<HashState>, 2> kHashFields = {{
    {"source",
     [](Walker& w, Node& n, HashState& h) {
         std::size_t i = 0;
         if (!w.choice(n, kHashSources, i)) {
             return false;
         }
         constexpr HashPolicy::Source kValues[] = {
             HashPolicy::Source::ClientIp, HashPolicy::Source::Header, HashPolicy::Source::Cookie};
         h.policy.source = kValues[i];
         return true;
     }},
    {"name",
     [](Walker& w, Node& n, HashState& h) {
         // A header name and a cookie name are both tokens (RFC 9110 §5.1, RFC 6265 §4.1.1).
         constexpr std::string_view kExpected = "a header or cookie name (an RFC 9110 token)";
         h.name = Walker::place(n);
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (!http::is_token(t.value)) {
             return w.mismatch(n, kExpected, t);
         }
         h.policy.name = std::move(t.value);
         return true;
     }},
}};

bool read_hash(Walker& w, Node& n, UpstreamState& u) {
    u.hash = Walker::place(n);
    HashState h;
    if (!w.object(n, kHashFields, h)) {
        return false;
    }
    const bool named = h.policy.source != HashPolicy::Source::ClientIp;
    if (named && !h.name.set) {
        return w.fail(u.hash,
                      std::string("missing required key \"name\" (the ") +
                          (h.policy.source == HashPolicy::Source::Header ? "header" : "cookie") +
                          " to hash)");
    }
    if (!named && h.name.set) {
        return w.fail(
            h.name, "\"name\" is used only with \"source\": \"header\" or \"source\": \"cookie\"");
    }
    u.options.hash = std::move(h.policy);
    return true;
}

const std::array<Field<PoolOptions>, 4> kPoolFields = {{
    {"max_connections_per_endpoint",
     [](Walker& w, Node& n, PoolOptions& p) {
         return w.integer(n, 0, kMaxU32, p.max_connections_per_endpoint);
     }},
    {"max_idle_per_endpoint",
     [](Walker& w, Node& n, PoolOptions& p) {
         return w.integer(n, 0, kMaxU32, p.max_idle_per_endpoint);
     }},
    {"idle_timeout_ms",
     [](Walker& w, Node& n, PoolOptions& p) { return w.milliseconds(n, 1, p.idle_timeout); }},
    {"connect_timeout_ms",
     [](Walker& w, Node& n, PoolOptions& p) { return w.milliseconds(n, 1, p.connect_timeout); }},
}};

/// One element of "expected_statuses": a status, or an inclusive range "200-399".
bool read_status_range(Walker& w, Node& n, std::pair<int, int>& out) {
    constexpr std::string_view kExpected =
        "a status code from 200 to 599 or a range of them (\"200-399\")";
    if (n.type == od::json_type::number) {
        std::int64_t v = 0;
        if (!w.integer(n, 200, 599, v, std::string(kExpected))) {
            return false;
        }
        out = {static_cast<int>(v), static_cast<int>(v)};
        return true;
    }
    Text t;
    if (!w.text(n, kExpected, t)) {
        return false;
    }
    // "200-399", or one status from an environment expression ("${HEALTHY_STATUS}").
    const std::string_view s = t.value;
    const std::size_t dash = s.find('-', 1);
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    bool ok = false;
    if (dash == std::string_view::npos) {
        ok = t.raw != t.value && parse_integer(s, lo);
        hi = lo;
    } else {
        ok = parse_integer(s.substr(0, dash), lo) && parse_integer(s.substr(dash + 1), hi);
    }
    if (!ok || lo < 200 || hi > 599 || lo > hi) {
        return w.mismatch(n, kExpected, t);
    }
    out = {static_cast<int>(lo), static_cast<int>(hi)};
    return true;
}

const std::array<Field<HealthState>, 9> kHealthFields = {{
    {"enabled",
     [](Walker& w, Node& n, HealthState& h) {
         h.has_enabled = true;
         return w.boolean(n, h.options.enabled);
     }},
    {"path",
     [](Walker& w, Node& n, HealthState& h) {
         constexpr std::string_view kExpected =
             "a path starting with '/', of visible ASCII characters, without '#'";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (!is_wire_path(t.value, true)) {
             return w.mismatch(n, kExpected, t);
         }
         h.options.path = std::move(t.value);
         return true;
     }},
    {"host",
     [](Walker& w, Node& n, HealthState& h) {
         constexpr std::string_view kExpected =
             "a host with an optional port (\"api.internal\", \"10.0.0.1:8080\", \"[::1]:8080\")";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (!is_authority(t.value, false)) {
             return w.mismatch(n, kExpected, t);
         }
         h.options.host = std::move(t.value);
         return true;
     }},
    {"expected_statuses",
     [](Walker& w, Node& n, HealthState& h) {
         h.options.expected_statuses.clear();
         std::size_t count = 0;
         const bool ok = w.elements(n, "an array of statuses and status ranges", count,
                                    [&](Node& e, std::size_t) {
                                        std::pair<int, int> range;
                                        if (!read_status_range(w, e, range)) {
                                            return false;
                                        }
                                        h.options.expected_statuses.push_back(range);
                                        return true;
                                    });
         if (ok && count == 0) {
             return w.fail(n.offset, n.path, "expected at least one status, found an empty array");
         }
         return ok;
     }},
    {"interval_ms",
     [](Walker& w, Node& n, HealthState& h) { return w.milliseconds(n, 1, h.options.interval); }},
    {"timeout_ms",
     [](Walker& w, Node& n, HealthState& h) { return w.milliseconds(n, 1, h.options.timeout); }},
    {"jitter_percent",
     [](Walker& w, Node& n, HealthState& h) {
         return w.integer(n, 0, 100, h.options.jitter_percent);
     }},
    {"healthy_threshold",
     [](Walker& w, Node& n, HealthState& h) {
         return w.integer(n, 1, kMaxThreshold, h.options.healthy_threshold);
     }},
    {"unhealthy_threshold",
     [](Walker& w, Node& n, HealthState& h) {
         return w.integer(n, 1, kMaxThreshold, h.options.unhealthy_threshold);
     }},
}};

const std::array<Field<OutlierOptions>, 6> kOutlierFields = {{
    {"enabled", [](Walker& w, Node& n, OutlierOptions& o) { return w.boolean(n, o.enabled); }},
    {"consecutive_5xx",
     [](Walker& w, Node& n, OutlierOptions& o) {
         return w.integer(n, 1, kMaxThreshold, o.consecutive_5xx);
     }},
    {"consecutive_gateway_failures",
     [](Walker& w, Node& n, OutlierOptions& o) {
         return w.integer(n, 1, kMaxThreshold, o.consecutive_gateway_failures);
     }},
    {"base_ejection_ms",
     [](Walker& w, Node& n, OutlierOptions& o) { return w.milliseconds(n, 1, o.base_ejection); }},
    {"max_ejection_ms",
     [](Walker& w, Node& n, OutlierOptions& o) { return w.milliseconds(n, 1, o.max_ejection); }},
    {"max_ejection_percent",
     [](Walker& w, Node& n, OutlierOptions& o) {
         return w.integer(n, 0, 100, o.max_ejection_percent);
     }},
}};

const std::array<Field<CircuitBreakerOptions>, 4> kCircuitBreakerFields = {{
    {"max_connections",
     [](Walker& w, Node& n, CircuitBreakerOptions& c) {
         return w.integer(n, 1, kMaxU32, c.max_connections);
     }},
    {"max_pending_requests",
     [](Walker& w, Node& n, CircuitBreakerOptions& c) {
         return w.integer(n, 0, kMaxU32, c.max_pending_requests);
     }},
    {"max_requests",
     [](Walker& w, Node& n, CircuitBreakerOptions& c) {
         return w.integer(n, 1, kMaxU32, c.max_requests);
     }},
    {"max_retries",
     [](Walker& w, Node& n, CircuitBreakerOptions& c) {
         return w.integer(n, 0, kMaxU32, c.max_retries);
     }},
}};

const std::array<Field<RetryBudgetOptions>, 3> kRetryBudgetFields = {{
    {"enabled", [](Walker& w, Node& n, RetryBudgetOptions& r) { return w.boolean(n, r.enabled); }},
    {"percent",
     [](Walker& w, Node& n, RetryBudgetOptions& r) { return w.integer(n, 0, 100, r.percent); }},
    {"min_retry_concurrency",
     [](Walker& w, Node& n, RetryBudgetOptions& r) {
         return w.integer(n, 0, kMaxU32, r.min_retry_concurrency);
     }},
}};

const std::array<Field<DnsOptions>, 3> kDnsFields = {{
    {"min_ttl_ms",
     [](Walker& w, Node& n, DnsOptions& d) { return w.milliseconds(n, 1, d.min_ttl); }},
    {"max_ttl_ms",
     [](Walker& w, Node& n, DnsOptions& d) { return w.milliseconds(n, 1, d.max_ttl); }},
    {"family",
     [](Walker& w, Node& n, DnsOptions& d) {
         std::size_t i = 0;
         if (!w.choice(n, kFamilies, i)) {
             return false;
         }
         d.family = std::string(kFamilies[i]);
         return true;
     }},
}};

/// "lo_key (lo) must not exceed hi_key (hi)" at the object, when lo > hi.
bool ordered(Walker& w, const Place& at, std::string_view lo_key, std::chrono::milliseconds lo,
             std::string_view hi_key, std::chrono::milliseconds hi) {
    if (lo <= hi) {
        return true;
    }
    return w.fail(at, std::string(lo_key) + " (" + std::to_string(lo.count()) +
                          ") must not exceed " + std::string(hi_key) + " (" +
                          std::to_string(hi.count()) + ")");
}

const std::array<Field<UpstreamState>, 13> kUpstreamFields = {{
    {"name",
     [](Walker& w, Node& n, UpstreamState& u) {
         // Names appear in logs and in the response header that names a proxy error's cause.
         constexpr std::string_view kExpected = "a name of letters, digits, '.', '-' and '_'";
         u.name = Walker::place(n);
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         const bool ok =
             !t.value.empty() && std::all_of(t.value.begin(), t.value.end(), [](char c) {
                 return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
             });
         if (!ok) {
             return w.mismatch(n, kExpected, t);
         }
         u.options.name = std::move(t.value);
         return true;
     }},
    {"endpoints", [](Walker& w, Node& n, UpstreamState& u) { return read_endpoints(w, n, u); }},
    {"lb",
     [](Walker& w, Node& n, UpstreamState& u) {
         std::size_t i = 0;
         if (!w.choice(n, kBalances, i)) {
             return false;
         }
         u.options.balance = kBalanceValues[i];
         return true;
     }},
    {"hash", [](Walker& w, Node& n, UpstreamState& u) { return read_hash(w, n, u); }},
    {"pool",
     [](Walker& w, Node& n, UpstreamState& u) { return w.object(n, kPoolFields, u.options.pool); }},
    {"health_check",
     [](Walker& w, Node& n, UpstreamState& u) {
         HealthState h;
         if (!w.object(n, kHealthFields, h)) {
             return false;
         }
         // Writing the object asks for checks; "enabled": false keeps it written but off.
         if (!h.has_enabled) {
             h.options.enabled = true;
         }
         u.options.health_check = std::move(h.options);
         return true;
     }},
    {"outlier_detection",
     [](Walker& w, Node& n, UpstreamState& u) {
         const Place at = Walker::place(n);
         OutlierOptions& o = u.options.outlier;
         return w.object(n, kOutlierFields, o) &&
                ordered(w, at, "base_ejection_ms", o.base_ejection, "max_ejection_ms",
                        o.max_ejection);
     }},
    {"circuit_breaker",
     [](Walker& w, Node& n, UpstreamState& u) {
         return w.object(n, kCircuitBreakerFields, u.options.circuit_breaker);
     }},
    {"retry_budget",
     [](Walker& w, Node& n, UpstreamState& u) {
         return w.object(n, kRetryBudgetFields, u.options.retry_budget);
     }},
    {"dns",
     [](Walker& w, Node& n, UpstreamState& u) {
         const Place at = Walker::place(n);
         DnsOptions& d = u.options.dns;
         return w.object(n, kDnsFields, d) &&
                ordered(w, at, "min_ttl_ms", d.min_ttl, "max_ttl_ms", d.max_ttl);
     }},
    {"tls",
     [](Walker& w, Node& n, UpstreamState& u) {
         return read_upstream_tls(w, n, u.options.tls, u.tls);
     }},
    {"panic_threshold_percent",
     [](Walker& w, Node& n, UpstreamState& u) {
         return w.integer(n, 0, 100, u.options.panic_threshold_percent);
     }},
    {"protocol",
     [](Walker& w, Node& n, UpstreamState& u) {
         std::size_t i = 0;
         if (!w.choice(n, kProtocols, i)) {
             return false;
         }
         u.options.protocol = i == 0 ? UpstreamProtocol::Http1 : UpstreamProtocol::Http2;
         return true;
     }},
}};

}  // namespace

namespace {

// The running upstream of that name when reloading changed nothing about it: same options, and
// no TLS file it names written since the running configuration was loaded.
std::shared_ptr<Upstream> unchanged(const Config* previous, const UpstreamOptions& options) {
    if (previous == nullptr) {
        return nullptr;
    }
    for (const auto& up : previous->upstreams) {
        const UpstreamOptions& running = up->cluster()->options();
        if (running.name != options.name) {
            continue;
        }
        if (!(running == options)) {
            return nullptr;
        }
        for (const std::string* file : {&options.tls.ca, &options.tls.cert, &options.tls.key}) {
            std::error_code ec;
            if (!file->empty() && std::filesystem::last_write_time(*file, ec) >= previous->loaded_at) {
                return nullptr;
            }
        }
        return up;
    }
    return nullptr;
}

}  // namespace

bool read_upstream(Walker& w, Node& n, UpstreamSet& upstreams) {
    UpstreamState u;
    const Place at = Walker::place(n);
    if (!w.object(n, kUpstreamFields, u)) {
        return false;
    }
    if (!u.name.set) {
        return w.fail(at, "missing required key \"name\"");
    }
    if (!u.endpoints.set) {
        return w.fail(at, "missing required key \"endpoints\"");
    }
    const Balance b = u.options.balance;
    if (u.hash.set && b != Balance::RingHash && b != Balance::Maglev) {
        return w.fail(u.hash, "\"hash\" is used only by \"lb\": \"ring_hash\" or \"maglev\"");
    }
    for (std::size_t i = 0; i < upstreams.names.size(); ++i) {
        if (upstreams.names[i] == u.options.name) {
            return w.fail(u.name, "duplicate upstream name " + quote(u.options.name) +
                                      " (also $.upstreams[" + std::to_string(i) + "])");
        }
    }
    std::string name = u.options.name;
    if (std::shared_ptr<Upstream> same = unchanged(upstreams.previous, u.options)) {
        upstreams.upstreams.push_back(std::move(same));
        upstreams.names.push_back(std::move(name));
        return true;
    }
    // Kept for placing an error about one of its files; a few strings, at load time only.
    const UpstreamTlsOptions tls = u.options.tls;
    auto made = Upstream::make(std::move(u.options));
    if (!made) {
        return upstream_error(w, at, tls, u.tls, made.error());
    }
    upstreams.upstreams.push_back(std::move(*made));
    upstreams.names.push_back(std::move(name));
    return true;
}

std::vector<std::string_view> upstream_keys(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::Upstream:
            return keys_of(kUpstreamFields);
        case ObjectKind::Endpoint:
            return keys_of(kEndpointFields);
        case ObjectKind::Hash:
            return keys_of(kHashFields);
        case ObjectKind::Pool:
            return keys_of(kPoolFields);
        case ObjectKind::HealthCheck:
            return keys_of(kHealthFields);
        case ObjectKind::Outlier:
            return keys_of(kOutlierFields);
        case ObjectKind::CircuitBreaker:
            return keys_of(kCircuitBreakerFields);
        case ObjectKind::RetryBudget:
            return keys_of(kRetryBudgetFields);
        case ObjectKind::Dns:
            return keys_of(kDnsFields);
        default:
            return {};
    }
}

}  // namespace blitz::config

#include "upstream/cluster.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <blitz/log.hpp>

#include "http/token.hpp"

namespace blitz::upstream {

namespace {

constexpr std::uint32_t kMaxWeight = 10'000;

/// A DNS name as resolvers accept it (http::is_hostname, with a trailing dot for a fully
/// qualified name). An all-numeric name is not accepted: it is a malformed IPv4 address, not
/// something to send to DNS.
bool valid_hostname(std::string_view host) noexcept {
    if (host.ends_with('.')) {
        host.remove_suffix(1);
    }
    return http::is_hostname(host) && host.find_first_not_of("0123456789.") != host.npos;
}

/// A port 1..65535 in decimal; 0 on failure.
std::uint16_t parse_port(std::string_view s) noexcept {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), p);
    if (s.empty() || s.size() > 5 || ec != std::errc{} || end != s.data() + s.size() || p == 0 ||
        p > 65535) {
        return 0;
    }
    return static_cast<std::uint16_t>(p);
}

/// Bytes that could end a request line or header early if a config value carried them.
bool has_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

std::string check_endpoint(const EndpointOptions& e, std::size_t index,
                           std::vector<Endpoint>& literals, std::vector<NamedEndpoint>& named) {
    const std::string where = "endpoint #" + std::to_string(index) + " ";
    if (e.weight < 1 || e.weight > kMaxWeight) {
        return where + "weight " + std::to_string(e.weight) + " is out of range 1..10000";
    }
    const std::string what = where + "address \"" + e.address + "\": ";
    net::SocketAddress addr;
    if (net::SocketAddress::parse(e.address, addr)) {
        if (addr.port() == 0) {
            return what + "port must be 1..65535";
        }
        Endpoint ep;
        ep.address = addr;
        ep.text = addr.to_string();
        ep.weight = e.weight;
        literals.push_back(std::move(ep));
        return {};
    }
    std::string_view text = e.address;
    auto colon = text.rfind(':');
    // A '[' starts an IPv6 literal, which SocketAddress::parse has rejected; a second ':' is an
    // IPv6 address without brackets.
    if (text.empty() || text.front() == '[' || colon == std::string_view::npos ||
        text.substr(0, colon).find(':') != std::string_view::npos ||
        !valid_hostname(text.substr(0, colon))) {
        return what + "expected host:port";
    }
    std::uint16_t port = parse_port(text.substr(colon + 1));
    if (port == 0) {
        return what + "port must be 1..65535";
    }
    named.push_back(NamedEndpoint{.host = std::string(text.substr(0, colon)),
                                  .port = port,
                                  .weight = e.weight,
                                  .index = index});
    return {};
}

std::string check_health(const HealthCheckOptions& h) {
    if (!h.enabled) {
        return {};
    }
    if (!h.path.starts_with('/') || has_control(h.path) || h.path.find(' ') != std::string::npos) {
        return "health_check.path \"" + h.path +
               "\" must start with '/' and contain no spaces or control characters";
    }
    if (has_control(h.host)) {
        return "health_check.host must not contain control characters";
    }
    if (h.expected_statuses.empty()) {
        return "health_check.expected_statuses must not be empty";
    }
    for (const auto& [lo, hi] : h.expected_statuses) {
        if (lo < 100 || hi > 599 || lo > hi) {
            return "health_check.expected_statuses range " + std::to_string(lo) + ".." +
                   std::to_string(hi) + " is not within 100..599 with low <= high";
        }
    }
    if (h.interval.count() <= 0) {
        return "health_check.interval must be > 0";
    }
    if (h.timeout.count() <= 0) {
        return "health_check.timeout must be > 0";
    }
    if (h.jitter_percent > 100) {
        return "health_check.jitter_percent must be <= 100";
    }
    if (h.healthy_threshold < 1) {
        return "health_check.healthy_threshold must be >= 1";
    }
    if (h.unhealthy_threshold < 1) {
        return "health_check.unhealthy_threshold must be >= 1";
    }
    return {};
}

std::string check_outlier(const OutlierOptions& o) {
    if (!o.enabled) {
        return {};
    }
    if (o.consecutive_5xx < 1) {
        return "outlier.consecutive_5xx must be >= 1";
    }
    if (o.consecutive_gateway_failures < 1) {
        return "outlier.consecutive_gateway_failures must be >= 1";
    }
    if (o.base_ejection.count() <= 0) {
        return "outlier.base_ejection must be > 0";
    }
    if (o.max_ejection < o.base_ejection) {
        return "outlier.max_ejection must be >= outlier.base_ejection";
    }
    if (o.max_ejection_percent > 100) {
        return "outlier.max_ejection_percent must be <= 100";
    }
    return {};
}

std::string check_options(const UpstreamOptions& o, std::vector<Endpoint>& literals,
                          std::vector<NamedEndpoint>& named) {
    if (o.endpoints.empty()) {
        return "needs at least one endpoint";
    }
    for (std::size_t i = 0; i < o.endpoints.size(); ++i) {
        if (auto e = check_endpoint(o.endpoints[i], i, literals, named); !e.empty()) {
            return e;
        }
    }
    if (o.panic_threshold_percent > 100) {
        return "panic_threshold_percent must be <= 100";
    }
    if (o.balance == Balance::Custom && !o.custom_balancer) {
        return "balance is custom but custom_balancer is not set";
    }
    if (o.balance != Balance::Custom && o.custom_balancer) {
        return "custom_balancer is set but balance is not custom";
    }
    if (o.hash.source == HashPolicy::Source::Header && !http::is_token(o.hash.name)) {
        return "hash on a header needs a header name (a token), got \"" + o.hash.name + "\"";
    }
    // RFC 6265 §4.1.1: cookie-name is a token.
    if (o.hash.source == HashPolicy::Source::Cookie && !http::is_token(o.hash.name)) {
        return "hash on a cookie needs a cookie name (a token), got \"" + o.hash.name + "\"";
    }
    if (o.pool.idle_timeout.count() <= 0) {
        return "pool.idle_timeout must be > 0";
    }
    if (o.pool.connect_timeout.count() <= 0) {
        return "pool.connect_timeout must be > 0";
    }
    if (auto e = check_health(o.health_check); !e.empty()) {
        return e;
    }
    if (auto e = check_outlier(o.outlier); !e.empty()) {
        return e;
    }
    // max_pending_requests and max_retries may be 0 (never queue, never retry).
    if (o.circuit_breaker.max_connections < 1) {
        return "circuit_breaker.max_connections must be >= 1";
    }
    if (o.circuit_breaker.max_requests < 1) {
        return "circuit_breaker.max_requests must be >= 1";
    }
    if (o.retry_budget.enabled && o.retry_budget.percent > 100) {
        return "retry_budget.percent must be <= 100";
    }
    if (o.dns.family != "v4" && o.dns.family != "v6" && o.dns.family != "any") {
        return "dns.family must be \"v4\", \"v6\" or \"any\", got \"" + o.dns.family + "\"";
    }
    if (o.dns.min_ttl.count() <= 0) {
        return "dns.min_ttl must be > 0";
    }
    if (o.dns.max_ttl < o.dns.min_ttl) {
        return "dns.max_ttl must be >= dns.min_ttl";
    }
    return {};
}

const char* outcome_name(Outcome o) noexcept {
    switch (o) {
        case Outcome::Success:
            return "success";
        case Outcome::Status5xx:
            return "5xx responses";
        case Outcome::ConnectFailure:
            return "gateway failures (last: connect failure)";
        case Outcome::Reset:
            return "gateway failures (last: reset)";
        case Outcome::Timeout:
            break;
    }
    return "gateway failures (last: timeout)";
}

}  // namespace

std::uint64_t steady_now_ms() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

Cluster::Cluster(UpstreamOptions options) : options_(std::move(options)) {}

Result<std::shared_ptr<Cluster>, std::string> Cluster::make(UpstreamOptions options) {
    if (options.name.empty()) {
        return fail(std::string("upstream name must not be empty"));
    }
    std::vector<Endpoint> literals;
    std::vector<NamedEndpoint> named;
    if (auto e = check_options(options, literals, named); !e.empty()) {
        return fail("upstream \"" + options.name + "\": " + e);
    }
    std::shared_ptr<Cluster> cluster(new Cluster(std::move(options)));
    cluster->literals_ = std::move(literals);
    cluster->named_ = std::move(named);
    const UpstreamOptions& o = cluster->options_;
    cluster->factory_ =
        o.balance == Balance::Custom ? o.custom_balancer : builtin_balancer(o.balance);
    if (o.tls.enabled) {
        UpstreamTlsOptions tls = o.tls;
        if (o.protocol == UpstreamProtocol::Http2) {
            tls.alpn = {"h2"};  // RFC 9113 §3.2
        }
        auto context = tls::ClientContext::make(tls);
        if (!context) {
            return fail("upstream \"" + o.name + "\": tls: " + context.error());
        }
        cluster->tls_ = std::move(*context);
        if (!o.tls.verify) {
            log(LogLevel::Warn,
                "upstream \"%s\": TLS certificates are not verified (tls.verify is false)",
                o.name.c_str());
        }
    }
    cluster->publish(cluster->literals_);
    return cluster;
}

std::shared_ptr<const EndpointSet> Cluster::endpoints() const noexcept {
    return std::atomic_load_explicit(&set_, std::memory_order_acquire);
}

void Cluster::publish(std::vector<Endpoint> endpoints) {
    std::lock_guard lock(publish_mutex_);
    auto old = std::atomic_load_explicit(&set_, std::memory_order_acquire);
    std::unordered_map<std::string_view, std::shared_ptr<EndpointHealth>> carried;
    if (old) {
        for (const auto& e : old->endpoints) {
            carried.emplace(e.text, e.health);
        }
    }
    auto next = std::make_shared<EndpointSet>();
    next->endpoints.reserve(endpoints.size());
    std::unordered_set<std::string> seen;
    for (auto& e : endpoints) {
        if (e.text.empty()) {
            e.text = e.address.to_string();
        }
        if (!seen.insert(e.text).second) {
            continue;
        }
        if (!e.health) {
            auto it = carried.find(e.text);
            e.health = it != carried.end() ? it->second : std::make_shared<EndpointHealth>();
        }
        next->endpoints.push_back(std::move(e));
    }
    if (factory_ &&
        (options_.balance == Balance::RingHash || options_.balance == Balance::Maglev)) {
        // Builds the shared lookup table here, on the publishing thread, so the reactors that
        // take up the set find it made instead of one of them stalling to build it.
        std::vector<EndpointInfo> infos;
        infos.reserve(next->endpoints.size());
        for (const auto& e : next->endpoints) {
            infos.push_back(EndpointInfo{.address = e.text, .weight = e.weight});
        }
        factory_->create(infos);
    }
    next->version = version_.load(std::memory_order_relaxed) + 1;
    const std::uint64_t version = next->version;
    std::atomic_store_explicit(&set_, std::shared_ptr<const EndpointSet>(std::move(next)),
                               std::memory_order_release);
    // After the set: a reader that sees the new version finds at least that set.
    version_.store(version, std::memory_order_release);
}

bool Cluster::available(const Endpoint& e, std::uint64_t now_ms) noexcept {
    if (!e.health) {
        return true;
    }
    return e.health->healthy.load(std::memory_order_relaxed) &&
           e.health->ejected_until_ms.load(std::memory_order_relaxed) <= now_ms;
}

void Cluster::report(const Endpoint& endpoint, Outcome outcome, std::uint64_t now_ms) noexcept {
    const OutlierOptions& o = options_.outlier;
    if (!o.enabled || !endpoint.health) {
        return;
    }
    EndpointHealth& h = *endpoint.health;
    switch (outcome) {
        case Outcome::Success:
            // Successes are the common case on every reactor: a store on each would bounce the
            // cache line between cores, so write only when there is something to reset.
            if (h.consecutive_5xx.load(std::memory_order_relaxed) != 0) {
                h.consecutive_5xx.store(0, std::memory_order_relaxed);
            }
            if (h.consecutive_gateway_failures.load(std::memory_order_relaxed) != 0) {
                h.consecutive_gateway_failures.store(0, std::memory_order_relaxed);
            }
            return;
        case Outcome::Status5xx:
            if (auto n = h.consecutive_5xx.fetch_add(1, std::memory_order_relaxed) + 1;
                n >= o.consecutive_5xx) {
                try_eject(endpoint, outcome, n, now_ms);
            }
            return;
        case Outcome::ConnectFailure:
        case Outcome::Reset:
        case Outcome::Timeout:
            if (auto n = h.consecutive_gateway_failures.fetch_add(1, std::memory_order_relaxed) + 1;
                n >= o.consecutive_gateway_failures) {
                try_eject(endpoint, outcome, n, now_ms);
            }
            return;
    }
}

// Ejection runs on failures only. One reactor decides at a time (a try-lock: a reactor that
// finds another one deciding does not wait; the endpoint's counter stays at the threshold, so
// its next failure tries again). The number ejected is recounted over the set on every
// decision, so ejections that expired need no bookkeeping and the count cannot drift.
//
// Back-off: the n-th ejection in a row lasts base_ejection × 2^(n-1), capped at max_ejection.
// The multiplier starts again from 1 once the endpoint has stayed in for max_ejection since
// its last ejection ended, so an endpoint that failed once a week ago is not punished today.
void Cluster::try_eject(const Endpoint& endpoint, Outcome outcome, std::uint32_t failures,
                        std::uint64_t now_ms) noexcept {
    EndpointHealth& h = *endpoint.health;
    if (h.ejected_until_ms.load(std::memory_order_relaxed) > now_ms) {
        return;  // already out; late results of requests it served meanwhile
    }
    bool expected = false;
    if (!deciding_.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
        return;
    }
    const OutlierOptions& o = options_.outlier;
    auto set = std::atomic_load_explicit(&set_, std::memory_order_acquire);
    std::uint32_t total = 0;
    std::uint32_t ejected = 0;
    std::uint32_t others_available = 0;
    bool member = false;
    for (const auto& e : set->endpoints) {
        ++total;
        if (e.health.get() == &h) {
            member = true;
        } else if (available(e, now_ms)) {
            ++others_available;
        }
        if (e.health->ejected_until_ms.load(std::memory_order_relaxed) > now_ms) {
            ++ejected;
        }
    }
    const std::uint64_t allowed = std::uint64_t{total} * o.max_ejection_percent / 100;
    // An endpoint that left the set is not ejected; nor is the last one available.
    if (member && others_available > 0 && ejected + 1 <= allowed) {
        std::uint32_t prior = h.ejections.load(std::memory_order_relaxed);
        const std::uint64_t last_until = h.ejected_until_ms.load(std::memory_order_relaxed);
        const auto max = static_cast<std::uint64_t>(o.max_ejection.count());
        if (prior > 0 && last_until + max <= now_ms) {
            prior = 0;
        }
        auto duration = static_cast<std::uint64_t>(o.base_ejection.count());
        for (std::uint32_t i = 0; i < prior && duration < max; ++i) {
            duration *= 2;
        }
        duration = std::min(duration, max);
        h.ejections.store(prior + 1, std::memory_order_relaxed);
        h.ejected_until_ms.store(now_ms + duration, std::memory_order_relaxed);
        ++ejected;
        log(LogLevel::Warn,
            "upstream \"%s\": endpoint %s ejected for %llu ms after %u consecutive %s",
            options_.name.c_str(), endpoint.text.c_str(), static_cast<unsigned long long>(duration),
            failures, outcome_name(outcome));
        // Back in after the ejection, it must fail a whole threshold again to go out again.
        h.consecutive_5xx.store(0, std::memory_order_relaxed);
        h.consecutive_gateway_failures.store(0, std::memory_order_relaxed);
    }
    ejected_.store(ejected, std::memory_order_relaxed);
    deciding_.store(false, std::memory_order_release);
}

}  // namespace blitz::upstream

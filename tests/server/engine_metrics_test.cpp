// EngineMetrics' label ranking as the reactor drives it and a scrape reads it: the route cache
// and endpoint pools follow a re-rank, and moved counts stay counted.

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include <blitz/http.hpp>
#include <blitz/router.hpp>

#include "server/engine_metrics.hpp"
#include "server/engine_report.hpp"

using blitz::Method;
using blitz::Route;
using blitz::server::EndpointRef;
using blitz::server::EndpointSeries;
using blitz::server::EngineMetrics;
using blitz::server::EngineTotals;
using blitz::server::MetricsLimits;
using blitz::server::UpstreamSeries;
using Families = blitz::metrics::LabelFamilies;

namespace {

Route named(const char* name) {
    Route r;
    r.name = name;
    return r;
}

// `n` requests of route `r` answered 200 on reactor `m`.
void done(EngineMetrics& m, const Route& r, int n) {
    for (int i = 0; i < n; ++i) {
        m.request_done(Method::Get, &r, 200, 150);
    }
}

std::uint64_t answered(const EngineTotals& t, const char* route) {
    const auto it = t.routes.find(route);
    return it == t.routes.end() ? 0 : it->second.requests[1] + it->second.requests[4];
}

// What a pool does when a connection opens or closes (EndpointPool::count_open()).
void count_open(UpstreamSeries& u, const char* address, EndpointRef& ref, std::int64_t n) {
    u.endpoint(address, ref, false).open.add(n);
    ref.open += n;
}

// A scrape of several reactors, as GET /metrics sums them (EngineTotals::add()).
EngineTotals scrape(std::vector<const EngineMetrics*> reactors) {
    EngineTotals t;
    t.add(reactors);
    return t;
}

// Every exported route series ("route/code" requests, "route/count" durations): a counter with
// a zero value is not exported.
std::map<std::string, std::uint64_t> series_of(const EngineTotals& t) {
    std::map<std::string, std::uint64_t> out;
    for (const auto& [name, r] : t.routes) {
        for (std::size_t j = 0; j < blitz::server::kStatusClasses; ++j) {
            if (r.requests[j] != 0) {
                out[name + "/" + std::to_string(j)] = r.requests[j];
            }
        }
        out[name + "/count"] = r.duration.count();
    }
    return out;
}

// Checks that no series of `now` is below its value in `before`: a series may grow or
// disappear, never decrease (Prometheus would read a counter reset).
void check_monotonic(const std::map<std::string, std::uint64_t>& before,
                     const std::map<std::string, std::uint64_t>& now) {
    for (const auto& [name, value] : before) {
        const auto it = now.find(name);
        if (it != now.end()) {
            INFO(name);
            CHECK(it->second >= value);
        }
    }
}

}  // namespace

TEST_CASE(
    "server::EngineMetrics demotes a route on every reactor and a scrape hides it until all did",
    "[server][metrics]") {
    const auto families = std::make_shared<Families>();
    const MetricsLimits limits{.max_routes = 2, .max_endpoints = 2};
    EngineMetrics a(limits, families);
    EngineMetrics b(limits, families);
    const Route ra = named("a");
    const Route rb = named("b");
    const Route x = named("x");
    const Route late = named("late");
    done(a, ra, 5);
    done(a, x, 1);
    done(b, x, 10);
    done(b, rb, 10);
    a.rank_labels();  // the slots are full: "other" is ranked from now on
    b.rank_labels();
    done(a, late, 40);
    EngineTotals t = scrape({&a, &b});
    CHECK(answered(t, "x") == 11);
    CHECK(answered(t, "other") == 40);
    auto last = series_of(t);

    // Reactor a gives x's slot (its least busy) to late; b still keeps x.
    a.rank_labels();
    t = scrape({&a, &b});
    check_monotonic(last, series_of(t));
    last = series_of(t);
    CHECK(t.routes.count("x") == 0);
    CHECK(answered(t, "other") == 40 + 1 + 10);  // b's x counts are exported in "other"
    CHECK(answered(t, "a") == 5);
    CHECK(answered(t, "b") == 10);

    // b counts x on its own series until its next round: still hidden in "other".
    done(b, x, 3);
    done(a, x, 2);  // a sends x to "other" now
    t = scrape({&a, &b});
    check_monotonic(last, series_of(t));
    last = series_of(t);
    CHECK(t.routes.count("x") == 0);
    CHECK(answered(t, "other") == 51 + 3 + 2);

    // b applies the demotion: its x counts move to its "other", the export does not change.
    b.rank_labels();
    t = scrape({&a, &b});
    CHECK(series_of(t) == last);
    {
        std::lock_guard lock(families->routes().mutex);
        CHECK(families->routes().log_size() == 0);  // every reactor applied it
    }
    CHECK(b.route_names.slot("x", 0) == b.route_names.overflow_slot());
    done(b, x, 4);
    t = scrape({&a, &b});
    check_monotonic(last, series_of(t));
    CHECK(t.routes.count("x") == 0);
    CHECK(answered(t, "other") == 56 + 4);
    CHECK(t.all_requests == 5 + 1 + 10 + 10 + 40 + 3 + 2 + 4);
}

TEST_CASE(
    "server::EngineMetrics gives a route demoted elsewhere no series while a reactor keeps it",
    "[server][metrics]") {
    const auto families = std::make_shared<Families>();
    const MetricsLimits limits{.max_routes = 2, .max_endpoints = 2};
    EngineMetrics a(limits, families);
    EngineMetrics b(limits, families);
    EngineMetrics c(limits, families);
    const Route ra = named("a");
    const Route x = named("x");
    const Route late = named("late");
    done(a, ra, 5);
    done(a, x, 1);
    done(b, x, 10);
    a.rank_labels();
    done(a, late, 40);
    a.rank_labels();  // x demoted on a; b keeps it
    auto last = series_of(scrape({&a, &b, &c}));
    // c has free slots and much x traffic, but x is pending: it gets no series on c.
    for (int round = 0; round < 3; ++round) {
        done(c, x, 50);
        c.rank_labels();
        const auto now = series_of(scrape({&a, &b, &c}));
        check_monotonic(last, now);
        CHECK(now.count("x/1") == 0);
        last = now;
    }
    CHECK(c.route_names.slot("x", 0) == c.route_names.overflow_slot());
    b.rank_labels();  // the last holder applies it: x is no longer pending
    // Cool-down: for a few rounds x comes back only if it dominates; then it may, as a new
    // series from zero.
    for (unsigned round = 0; round <= blitz::metrics::LabelCap::kCoolRounds + 1; ++round) {
        c.rank_labels();
        const auto now = series_of(scrape({&a, &b, &c}));
        check_monotonic(last, now);
        last = now;
    }
    done(c, x, 7);
    const EngineTotals t = scrape({&a, &b, &c});
    check_monotonic(last, series_of(t));
    CHECK(answered(t, "x") == 7);  // a new series: c's x requests since it took a slot
    CHECK(answered(t, "other") == 40 + 1 + 10 + 150);
}

TEST_CASE("server::EngineMetrics keeps every route series monotonic under random traffic and ranks",
          "[server][metrics]") {
    const auto families = std::make_shared<Families>();
    const MetricsLimits limits{.max_routes = 2, .max_endpoints = 2};
    EngineMetrics a(limits, families);
    EngineMetrics b(limits, families);
    std::vector<Route> routes;
    for (const char* name : {"r0", "r1", "r2", "r3", "r4", "r5"}) {
        routes.push_back(named(name));
    }
    std::mt19937 rng(7);
    std::map<std::string, std::uint64_t> last;
    std::uint64_t sent = 0;
    for (int step = 0; step < 400; ++step) {
        // Each reactor favours different routes, and the favourites change over time.
        for (EngineMetrics* m : {&a, &b}) {
            const std::size_t bias = (static_cast<std::size_t>(step / 50) + (m == &a ? 0 : 3)) % 6;
            for (int i = 0; i < 20; ++i) {
                const std::size_t r = rng() % 3 == 0 ? rng() % 6 : bias;
                m->request_done(Method::Get, &routes[r], rng() % 5 == 0 ? 500 : 200, 100);
                ++sent;
            }
        }
        if (rng() % 3 == 0) {
            a.rank_labels();
        }
        if (rng() % 4 == 0) {
            b.rank_labels();
        }
        const EngineTotals t = scrape({&a, &b});
        const auto now = series_of(t);
        check_monotonic(last, now);
        std::uint64_t sum = 0;
        for (const auto& [name, r] : t.routes) {
            sum += r.duration.count();
        }
        CHECK(sum == sent);
        last = now;
    }
}

TEST_CASE(
    "server::EngineMetrics stops writing a displaced route's series and moves its counts to other",
    "[server][metrics]") {
    EngineMetrics m({.max_routes = 2, .max_endpoints = 2});
    const Route a = named("a");
    const Route b = named("b");
    const Route late = named("late");
    std::uint64_t requests = 0;
    const auto done = [&](const Route& r, int status) {
        m.request_done(Method::Get, &r, status, 150);
        ++requests;
    };
    done(a, 200);
    done(b, 200);
    done(b, 500);
    m.rank_labels();  // the slots are full: "other" is ranked from now on
    for (int i = 0; i < 40; ++i) {
        done(late, 200);
    }
    m.rank_labels();
    // a (1 request) made room for late; a's route address was cached with the slot late holds
    // now, and must not write there.
    for (int i = 0; i < 5; ++i) {
        done(a, 200);
    }
    done(late, 200);
    EngineTotals t;
    t.add(m);
    CHECK(answered(t, "late") == 1);
    CHECK(answered(t, "b") == 2);
    CHECK(t.routes.count("a") == 0);
    CHECK(answered(t, "other") == 1 + 40 + 5);
    std::uint64_t sum = 0;
    for (const auto& [name, r] : t.routes) {
        sum += r.duration.count();
    }
    CHECK(sum == requests);
    CHECK(t.duration.count() == requests);
    CHECK(t.all_requests == requests);
}

TEST_CASE(
    "server::UpstreamSeries keeps an endpoint with connections and carries a promoted one's gauges",
    "[server][metrics]") {
    EngineMetrics m({.max_routes = 2, .max_endpoints = 1});
    UpstreamSeries& u = m.upstream("origin");
    EndpointRef e1;
    EndpointRef e2;
    u.endpoint("10.0.0.1:80", e1, true).responses[1].add();
    count_open(u, "10.0.0.1:80", e1, 1);
    count_open(u, "10.0.0.2:80", e2, 2);  // in "other" with its two connections
    m.rank_labels();
    for (int i = 0; i < 30; ++i) {
        u.endpoint("10.0.0.2:80", e2, true).responses[1].add();
    }
    m.rank_labels();
    // 10.0.0.1 has a connection open: it keeps its slot however idle.
    CHECK(u.endpoint_names.value(0) == "10.0.0.1:80");
    count_open(u, "10.0.0.1:80", e1, -1);
    m.rank_labels();
    CHECK(u.endpoint_names.value(0) == "10.0.0.2:80");
    // 10.0.0.2's next use moves its connections out of "other" into its new series.
    u.endpoint("10.0.0.2:80", e2, true).responses[1].add();
    count_open(u, "10.0.0.2:80", e2, -1);
    const EndpointSeries* other = u.endpoints.peek(u.endpoint_names.overflow_slot());
    REQUIRE(other != nullptr);
    CHECK(other->open.value() == 0);
    CHECK(u.endpoints.peek(0)->open.value() == 1);
    CHECK(u.endpoint("10.0.0.1:80", e1, true).open.value() == 0);  // 10.0.0.1 is in "other" now
    EngineTotals t;
    t.add(m);
    const auto& endpoints = t.upstreams.at("origin").endpoints;
    CHECK(endpoints.at("10.0.0.2:80").responses[1] == 1);
    CHECK(endpoints.at("other").responses[1] == 1 + 30);
    CHECK(endpoints.at("10.0.0.2:80").active == 1);
    CHECK(endpoints.at("other").active == 0);
    CHECK(endpoints.count("10.0.0.1:80") == 0);
}

TEST_CASE(
    "server::UpstreamSeries moves an endpoint demoted elsewhere to other with its connections",
    "[server][metrics]") {
    const auto families = std::make_shared<Families>();
    const MetricsLimits limits{.max_routes = 2, .max_endpoints = 1};
    EngineMetrics a(limits, families);
    EngineMetrics b(limits, families);
    UpstreamSeries& ua = a.upstream("origin");
    UpstreamSeries& ub = b.upstream("origin");
    EndpointRef a1;
    EndpointRef a2;
    EndpointRef b1;
    ua.endpoint("10.0.0.1:80", a1, true).responses[1].add();
    ub.endpoint("10.0.0.1:80", b1, true).responses[1].add(3);
    count_open(ub, "10.0.0.1:80", b1, 2);  // b has two connections to 10.0.0.1
    a.rank_labels();
    b.rank_labels();
    for (int i = 0; i < 30; ++i) {
        ua.endpoint("10.0.0.2:80", a2, true).responses[1].add();
    }
    a.rank_labels();  // a demotes 10.0.0.1 (no connections on a)
    const auto endpoints = [&] { return scrape({&a, &b}).upstreams.at("origin").endpoints; };
    auto e = endpoints();
    CHECK(e.count("10.0.0.1:80") == 0);
    CHECK(e.at("other").responses[1] == 1 + 30 + 3);
    CHECK(e.at("other").active == 2);
    b.rank_labels();  // b applies it despite its connections: they move to "other" too
    e = endpoints();
    CHECK(e.count("10.0.0.1:80") == 0);
    CHECK(e.at("other").responses[1] == 34);
    CHECK(e.at("other").active == 2);
    // b's pool closes its connections: they leave "other", whatever slot 10.0.0.1 had.
    count_open(ub, "10.0.0.1:80", b1, -2);
    e = endpoints();
    CHECK(e.at("other").active == 0);
    CHECK(ub.endpoints.peek(0)->open.value() == 0);
    CHECK(ub.endpoints.peek(ub.endpoint_names.overflow_slot())->open.value() == 0);
}

// EngineMetrics' label ranking as the reactor drives it and a scrape reads it: the route cache
// and endpoint pools follow a re-rank, and moved counts stay counted.

#include <cstdint>
#include <string>

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
using blitz::server::UpstreamSeries;

namespace {

Route named(const char* name) {
    Route r;
    r.name = name;
    return r;
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

}  // namespace

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

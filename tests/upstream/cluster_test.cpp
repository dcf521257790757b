#include "upstream/cluster.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <blitz/upstream.hpp>

using blitz::Balance;
using blitz::HashPolicy;
using blitz::Upstream;
using blitz::UpstreamOptions;
using blitz::upstream::Cluster;
using blitz::upstream::Endpoint;
using blitz::upstream::Outcome;
using Catch::Matchers::Equals;
using namespace std::chrono_literals;

namespace {

UpstreamOptions options(std::vector<std::string> addresses) {
    UpstreamOptions o;
    o.name = "api";
    for (auto& a : addresses) {
        o.endpoints.push_back({.address = std::move(a)});
    }
    return o;
}

std::shared_ptr<Cluster> make(UpstreamOptions o) {
    auto c = Cluster::make(std::move(o));
    REQUIRE(c);
    return c.value();
}

/// The current set's endpoint with this address.
Endpoint endpoint(const Cluster& c, const std::string& text) {
    auto set = c.endpoints();
    for (const auto& e : set->endpoints) {
        if (e.text == text) {
            return e;
        }
    }
    FAIL("no endpoint " << text);
    return {};
}

Endpoint literal(const std::string& text) {
    Endpoint e;
    REQUIRE(blitz::net::SocketAddress::parse(text, e.address));
    e.text = text;
    return e;
}

class NullFactory final : public blitz::LoadBalancerFactory {
 public:
    std::unique_ptr<blitz::LoadBalancer> create(std::span<const blitz::EndpointInfo>) override {
        return nullptr;
    }
};

}  // namespace

TEST_CASE("Upstream::make accepts literal and named endpoints", "[upstream]") {
    auto u = Upstream::make(
        options({"127.0.0.1:9001", "[::1]:9002", "localhost:9003", "svc.example.:80"}));
    REQUIRE(u);
    const Upstream& up = *u.value();
    CHECK(up.name() == "api");
    CHECK(up.options().endpoints.size() == 4);
    Cluster& c = *up.cluster();
    CHECK(c.needs_resolution());
    auto set = c.endpoints();
    REQUIRE(set->endpoints.size() == 2);
    CHECK(set->endpoints[0].text == "127.0.0.1:9001");
    CHECK(set->endpoints[1].text == "[::1]:9002");
    CHECK(set->endpoints[1].address.port() == 9002);
    CHECK(set->version == c.version());
    REQUIRE(c.named_endpoints().size() == 2);
    CHECK(c.named_endpoints()[0].host == "localhost");
    CHECK(c.named_endpoints()[0].port == 9003);
    CHECK(c.named_endpoints()[0].index == 2);
    CHECK(c.named_endpoints()[1].host == "svc.example.");

    auto literal_only = Cluster::make(options({"10.0.0.1:80"}));
    REQUIRE(literal_only);
    CHECK_FALSE(literal_only.value()->needs_resolution());
}

TEST_CASE("Upstream::make rejects invalid options with a message naming the field", "[upstream]") {
    struct Case {
        std::function<void(UpstreamOptions&)> change;
        std::string message;
    };
    const std::vector<Case> cases = {
        {[](auto& o) { o.name.clear(); }, "upstream name must not be empty"},
        {[](auto& o) { o.endpoints.clear(); }, "upstream \"api\": needs at least one endpoint"},
        {[](auto& o) { o.endpoints[0].address = "x"; },
         "upstream \"api\": endpoint #0 address \"x\": expected host:port"},
        {[](auto& o) { o.endpoints[1].address = "1.2.3.4"; },
         "upstream \"api\": endpoint #1 address \"1.2.3.4\": expected host:port"},
        {[](auto& o) { o.endpoints[0].address = "[::1:80"; },
         "upstream \"api\": endpoint #0 address \"[::1:80\": expected host:port"},
        {[](auto& o) { o.endpoints[0].address = "::1:80"; },
         "upstream \"api\": endpoint #0 address \"::1:80\": expected host:port"},
        {[](auto& o) { o.endpoints[0].address = "1.2.3.999:80"; },
         "upstream \"api\": endpoint #0 address \"1.2.3.999:80\": expected host:port"},
        {[](auto& o) { o.endpoints[0].address = "bad-.example:80"; },
         "upstream \"api\": endpoint #0 address \"bad-.example:80\": expected host:port"},
        {[](auto& o) { o.endpoints[0].address = "a b:80"; },
         "upstream \"api\": endpoint #0 address \"a b:80\": expected host:port"},
        {[](auto& o) { o.endpoints[0].address = "host:0"; },
         "upstream \"api\": endpoint #0 address \"host:0\": port must be 1..65535"},
        {[](auto& o) { o.endpoints[0].address = "host:65536"; },
         "upstream \"api\": endpoint #0 address \"host:65536\": port must be 1..65535"},
        {[](auto& o) { o.endpoints[0].address = "127.0.0.1:0"; },
         "upstream \"api\": endpoint #0 address \"127.0.0.1:0\": port must be 1..65535"},
        {[](auto& o) { o.endpoints[1].weight = 0; },
         "upstream \"api\": endpoint #1 weight 0 is out of range 1..10000"},
        {[](auto& o) { o.endpoints[0].weight = 10001; },
         "upstream \"api\": endpoint #0 weight 10001 is out of range 1..10000"},
        {[](auto& o) { o.balance = Balance::Custom; },
         "upstream \"api\": balance is custom but custom_balancer is not set"},
        {[](auto& o) { o.custom_balancer = std::make_shared<NullFactory>(); },
         "upstream \"api\": custom_balancer is set but balance is not custom"},
        {[](auto& o) { o.hash = {.source = HashPolicy::Source::Header, .name = ""}; },
         "upstream \"api\": hash on a header needs a header name (a token), got \"\""},
        {[](auto& o) { o.hash = {.source = HashPolicy::Source::Cookie, .name = "a b"}; },
         "upstream \"api\": hash on a cookie needs a cookie name (a token), got \"a b\""},
        {[](auto& o) { o.pool.idle_timeout = 0ms; },
         "upstream \"api\": pool.idle_timeout must be > 0"},
        {[](auto& o) { o.pool.connect_timeout = -1ms; },
         "upstream \"api\": pool.connect_timeout must be > 0"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.interval = 0ms;
         },
         "upstream \"api\": health_check.interval must be > 0"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.timeout = 0ms;
         },
         "upstream \"api\": health_check.timeout must be > 0"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.healthy_threshold = 0;
         },
         "upstream \"api\": health_check.healthy_threshold must be >= 1"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.unhealthy_threshold = 0;
         },
         "upstream \"api\": health_check.unhealthy_threshold must be >= 1"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.expected_statuses = {{300, 200}};
         },
         "upstream \"api\": health_check.expected_statuses range 300..200 is not within 100..599 "
         "with low <= high"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.expected_statuses = {{200, 200}, {99, 200}};
         },
         "upstream \"api\": health_check.expected_statuses range 99..200 is not within 100..599 "
         "with low <= high"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.expected_statuses.clear();
         },
         "upstream \"api\": health_check.expected_statuses must not be empty"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.path = "health";
         },
         "upstream \"api\": health_check.path \"health\" must start with '/' and contain no spaces "
         "or "
         "control characters"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.path = "/h\r\nX: y";
         },
         "must start with '/' and contain no spaces or control characters"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.host = "a\r\nb";
         },
         "upstream \"api\": health_check.host must not contain control characters"},
        {[](auto& o) {
             o.health_check.enabled = true;
             o.health_check.jitter_percent = 101;
         },
         "upstream \"api\": health_check.jitter_percent must be <= 100"},
        {[](auto& o) { o.outlier.consecutive_5xx = 0; },
         "upstream \"api\": outlier.consecutive_5xx must be >= 1"},
        {[](auto& o) { o.outlier.consecutive_gateway_failures = 0; },
         "upstream \"api\": outlier.consecutive_gateway_failures must be >= 1"},
        {[](auto& o) { o.outlier.base_ejection = 0ms; },
         "upstream \"api\": outlier.base_ejection must be > 0"},
        {[](auto& o) { o.outlier.max_ejection = 1ms; },
         "upstream \"api\": outlier.max_ejection must be >= outlier.base_ejection"},
        {[](auto& o) { o.outlier.max_ejection_percent = 101; },
         "upstream \"api\": outlier.max_ejection_percent must be <= 100"},
        {[](auto& o) { o.circuit_breaker.max_connections = 0; },
         "upstream \"api\": circuit_breaker.max_connections must be >= 1"},
        {[](auto& o) { o.circuit_breaker.max_requests = 0; },
         "upstream \"api\": circuit_breaker.max_requests must be >= 1"},
        {[](auto& o) { o.retry_budget.percent = 101; },
         "upstream \"api\": retry_budget.percent must be <= 100"},
        {[](auto& o) { o.dns.family = "v5"; },
         "upstream \"api\": dns.family must be \"v4\", \"v6\" or \"any\", got \"v5\""},
        {[](auto& o) { o.dns.min_ttl = 0ms; }, "upstream \"api\": dns.min_ttl must be > 0"},
        {[](auto& o) { o.dns.max_ttl = 1ms; },
         "upstream \"api\": dns.max_ttl must be >= dns.min_ttl"},
    };
    for (const auto& c : cases) {
        UpstreamOptions o = options({"127.0.0.1:9001", "backend:9002"});
        c.change(o);
        auto u = Upstream::make(std::move(o));
        REQUIRE_FALSE(u);
        CHECK_THAT(u.error(), Catch::Matchers::ContainsSubstring(c.message));
    }
}

TEST_CASE("Upstream::make ignores the settings of disabled features", "[upstream]") {
    UpstreamOptions o = options({"127.0.0.1:9001"});
    o.health_check.interval = 0ms;  // health checks are off
    o.outlier.enabled = false;
    o.outlier.consecutive_5xx = 0;
    o.retry_budget.enabled = false;
    o.retry_budget.percent = 500;
    o.circuit_breaker.max_retries = 0;
    o.circuit_breaker.max_pending_requests = 0;
    CHECK(Upstream::make(std::move(o)));
}

TEST_CASE("Cluster::publish carries health over for addresses that stay and bumps the version",
          "[upstream]") {
    auto c = make(options({"10.0.0.1:80", "10.0.0.2:80"}));
    const std::uint64_t v1 = c->version();
    auto first = c->endpoints();
    auto h1 = endpoint(*c, "10.0.0.1:80").health;
    auto h2 = endpoint(*c, "10.0.0.2:80").health;
    REQUIRE(h1);
    REQUIRE(h2);
    CHECK(h1 != h2);
    h1->healthy = false;

    c->publish({literal("10.0.0.3:80"), literal("10.0.0.1:80")});
    CHECK(c->version() == v1 + 1);
    auto set = c->endpoints();
    CHECK(set->version == v1 + 1);
    REQUIRE(set->endpoints.size() == 2);
    CHECK(set->endpoints[0].text == "10.0.0.3:80");
    CHECK(set->endpoints[1].health == h1);
    CHECK_FALSE(set->endpoints[1].health->healthy);
    CHECK(set->endpoints[0].health != h2);
    CHECK(set->endpoints[0].health->healthy);
    // Readers holding the old set still see it whole.
    CHECK(first->endpoints.size() == 2);
    CHECK(first->endpoints[1].text == "10.0.0.2:80");

    // An address that left and came back starts afresh.
    c->publish({literal("10.0.0.2:80")});
    CHECK(endpoint(*c, "10.0.0.2:80").health != h2);
    CHECK(c->version() == v1 + 2);
}

TEST_CASE("Cluster::publish keeps the first of duplicate addresses and fills in their text",
          "[upstream]") {
    auto c = make(options({"10.0.0.1:80"}));
    Endpoint a = literal("10.0.0.9:80");
    a.weight = 3;
    Endpoint b = literal("10.0.0.9:80");
    b.weight = 7;
    Endpoint untitled;
    REQUIRE(blitz::net::SocketAddress::parse("[::1]:8080", untitled.address));
    c->publish({a, b, untitled});
    auto set = c->endpoints();
    REQUIRE(set->endpoints.size() == 2);
    CHECK(set->endpoints[0].weight == 3);
    CHECK(set->endpoints[1].text == "[::1]:8080");
}

namespace {

UpstreamOptions outlier_options(std::size_t n, std::uint32_t max_percent) {
    std::vector<std::string> addresses;
    for (std::size_t i = 0; i < n; ++i) {
        addresses.push_back("10.0.0." + std::to_string(i + 1) + ":80");
    }
    UpstreamOptions o = options(addresses);
    o.outlier.consecutive_5xx = 3;
    o.outlier.consecutive_gateway_failures = 2;
    o.outlier.base_ejection = 1000ms;
    o.outlier.max_ejection = 8000ms;
    o.outlier.max_ejection_percent = max_percent;
    return o;
}

void fail_times(Cluster& c, const Endpoint& e, Outcome o, int n, std::uint64_t now) {
    for (int i = 0; i < n; ++i) {
        c.report(e, o, now);
    }
}

}  // namespace

TEST_CASE("Cluster::report ejects after consecutive 5xx and a success resets the count",
          "[upstream]") {
    auto c = make(outlier_options(3, 50));
    Endpoint e = endpoint(*c, "10.0.0.1:80");
    const std::uint64_t now = 1'000'000;
    fail_times(*c, e, Outcome::Status5xx, 2, now);
    c->report(e, Outcome::Success, now);
    CHECK(e.health->consecutive_5xx == 0);
    fail_times(*c, e, Outcome::Status5xx, 2, now);
    CHECK(Cluster::available(e, now));
    c->report(e, Outcome::Status5xx, now);
    CHECK_FALSE(Cluster::available(e, now));
    CHECK_FALSE(Cluster::available(e, now + 999));
    CHECK(Cluster::available(e, now + 1000));
    CHECK(e.health->ejections == 1);
    CHECK(c->ejected_count() == 1);
    // The counters start again after an ejection.
    CHECK(e.health->consecutive_5xx == 0);
}

TEST_CASE("Cluster::report counts gateway failures on their own threshold", "[upstream]") {
    auto c = make(outlier_options(3, 50));
    Endpoint e = endpoint(*c, "10.0.0.2:80");
    const std::uint64_t now = 5'000;
    c->report(e, Outcome::ConnectFailure, now);
    c->report(e, Outcome::Status5xx, now);  // a 5xx does not reset the gateway count
    CHECK(Cluster::available(e, now));
    c->report(e, Outcome::Reset, now);
    CHECK_FALSE(Cluster::available(e, now));

    Endpoint t = endpoint(*c, "10.0.0.3:80");
    c->report(t, Outcome::Timeout, now);
    c->report(t, Outcome::Success, now);
    c->report(t, Outcome::Timeout, now);
    CHECK(Cluster::available(t, now));
}

TEST_CASE("Cluster::report does nothing with outlier detection disabled", "[upstream]") {
    UpstreamOptions o = outlier_options(3, 100);
    o.outlier.enabled = false;
    auto c = make(std::move(o));
    Endpoint e = endpoint(*c, "10.0.0.1:80");
    fail_times(*c, e, Outcome::Status5xx, 50, 100);
    CHECK(Cluster::available(e, 100));
    CHECK(e.health->consecutive_5xx == 0);
}

TEST_CASE("Cluster ejection back-off doubles per ejection up to the maximum", "[upstream]") {
    auto c = make(outlier_options(2, 50));
    Endpoint e = endpoint(*c, "10.0.0.1:80");
    std::uint64_t now = 10'000;
    std::vector<std::uint64_t> durations;
    for (int i = 0; i < 6; ++i) {
        fail_times(*c, e, Outcome::Status5xx, 3, now);
        const std::uint64_t until = e.health->ejected_until_ms;
        REQUIRE(until > now);
        durations.push_back(until - now);
        now = until + 10;  // fails again soon after coming back
    }
    CHECK(durations == std::vector<std::uint64_t>{1000, 2000, 4000, 8000, 8000, 8000});

    // After staying in for max_ejection since the last ejection ended, the back-off restarts.
    now = e.health->ejected_until_ms + 8000;
    fail_times(*c, e, Outcome::Status5xx, 3, now);
    CHECK(e.health->ejected_until_ms - now == 1000);
    CHECK(e.health->ejections == 1);
}

TEST_CASE("Cluster ejects at most max_ejection_percent and recounts expired ejections",
          "[upstream]") {
    auto c = make(outlier_options(4, 50));
    const std::uint64_t now = 50'000;
    Endpoint a = endpoint(*c, "10.0.0.1:80");
    Endpoint b = endpoint(*c, "10.0.0.2:80");
    Endpoint d = endpoint(*c, "10.0.0.3:80");
    fail_times(*c, a, Outcome::Status5xx, 3, now);
    fail_times(*c, b, Outcome::Status5xx, 3, now + 500);
    fail_times(*c, d, Outcome::Status5xx, 3, now + 500);
    CHECK_FALSE(Cluster::available(a, now + 500));
    CHECK_FALSE(Cluster::available(b, now + 500));
    CHECK(Cluster::available(d, now + 500));  // 2 of 4 are out already
    CHECK(c->ejected_count() == 2);
    // Its counter stays at the threshold: the next failure after a's ejection ended ejects it,
    // with no bookkeeping for a's return.
    c->report(d, Outcome::Status5xx, now + 1000);
    CHECK_FALSE(Cluster::available(d, now + 1000));
    CHECK(Cluster::available(a, now + 1000));
    CHECK(c->ejected_count() == 2);
}

TEST_CASE("Cluster never ejects the last available endpoint", "[upstream]") {
    auto c = make(outlier_options(2, 100));
    const std::uint64_t now = 7'000;
    Endpoint a = endpoint(*c, "10.0.0.1:80");
    Endpoint b = endpoint(*c, "10.0.0.2:80");
    fail_times(*c, a, Outcome::Status5xx, 3, now);
    CHECK_FALSE(Cluster::available(a, now));
    fail_times(*c, b, Outcome::Status5xx, 10, now);
    CHECK(Cluster::available(b, now));

    // Nor one whose only peer failed its health checks.
    auto c2 = make(outlier_options(2, 100));
    Endpoint x = endpoint(*c2, "10.0.0.1:80");
    Endpoint y = endpoint(*c2, "10.0.0.2:80");
    x.health->healthy = false;
    fail_times(*c2, y, Outcome::ConnectFailure, 5, now);
    CHECK(Cluster::available(y, now));

    // A single-endpoint cluster keeps its endpoint whatever the share allows.
    auto c3 = make(outlier_options(1, 100));
    Endpoint only = endpoint(*c3, "10.0.0.1:80");
    fail_times(*c3, only, Outcome::Status5xx, 10, now);
    CHECK(Cluster::available(only, now));
}

TEST_CASE("Cluster does not eject an endpoint that left the set", "[upstream]") {
    auto c = make(outlier_options(3, 100));
    Endpoint gone = endpoint(*c, "10.0.0.1:80");
    c->publish({literal("10.0.0.2:80"), literal("10.0.0.3:80")});
    fail_times(*c, gone, Outcome::Status5xx, 5, 100);
    CHECK(gone.health->ejected_until_ms == 0);
}

TEST_CASE("Cluster::available needs healthy and not ejected", "[upstream]") {
    auto c = make(options({"10.0.0.1:80"}));
    Endpoint e = endpoint(*c, "10.0.0.1:80");
    CHECK(Cluster::available(e, 0));
    e.health->healthy = false;
    CHECK_FALSE(Cluster::available(e, 0));
    e.health->healthy = true;
    e.health->ejected_until_ms = 100;
    CHECK_FALSE(Cluster::available(e, 99));
    CHECK(Cluster::available(e, 100));
}

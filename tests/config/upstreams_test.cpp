#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include <blitz/config.hpp>
#include <blitz/upstream.hpp>

#include "helpers.hpp"

namespace {

using namespace std::chrono_literals;
using blitz::Balance;
using blitz::config::test::error_of;
using blitz::config::test::parse_ok;
using blitz::config::test::require_error_at;
using blitz::config::test::ScopedEnv;
using blitz::config::test::with_top;

/// A document with one upstream object whose members are `members`.
std::string upstream(std::string_view members) {
    return with_top(R"("upstreams": [{)" + std::string(members) + "}]");
}

/// A document with the upstream "u" on one endpoint, with `members` added.
std::string upstream_with(std::string_view members) {
    return upstream(R"("name": "u", "endpoints": ["127.0.0.1:9001"], )" + std::string(members));
}

const blitz::UpstreamOptions& options_of(const blitz::Config& c, std::size_t i = 0) {
    REQUIRE(c.upstreams.size() > i);
    REQUIRE(c.upstreams[i] != nullptr);
    return c.upstreams[i]->options();
}

constexpr std::string_view kComplete = R"({
  "listeners": [{"address": "127.0.0.1:8080"}],
  "routes": [],
  "upstreams": [
    {"name": "api",
     "endpoints": ["10.0.0.1:8080", {"address": "[2001:db8::1]:8443", "weight": 5},
                   {"address": "backend.internal:80"}],
     "lb": "maglev",
     "hash": {"source": "cookie", "name": "session"},
     "pool": {"max_connections_per_endpoint": 10, "max_idle_per_endpoint": 4,
              "idle_timeout_ms": 3000, "connect_timeout_ms": 250},
     "health_check": {"path": "/ready?deep=1", "host": "api.internal", "expected_statuses": [200, "204-299"],
                      "interval_ms": 2000, "timeout_ms": 500, "jitter_percent": 0,
                      "healthy_threshold": 1, "unhealthy_threshold": 4},
     "outlier_detection": {"enabled": false, "consecutive_5xx": 7, "consecutive_gateway_failures": 2,
                           "base_ejection_ms": 1000, "max_ejection_ms": 9000, "max_ejection_percent": 30},
     "circuit_breaker": {"max_connections": 100, "max_pending_requests": 0, "max_requests": 200,
                         "max_retries": 5},
     "retry_budget": {"enabled": false, "percent": 50, "min_retry_concurrency": 1},
     "dns": {"min_ttl_ms": 1000, "max_ttl_ms": 60000, "family": "v6"},
     "panic_threshold_percent": 30, "protocol": "h2"},
    {"name": "web", "endpoints": ["127.0.0.1:9002"]}
  ]
})";

}  // namespace

TEST_CASE("config::parse_config reads every key of an upstream", "[config]") {
    const blitz::Config c = parse_ok(kComplete);
    REQUIRE(c.upstreams.size() == 2);
    const blitz::UpstreamOptions& o = options_of(c);
    CHECK(o.name == "api");
    REQUIRE(o.endpoints.size() == 3);
    CHECK(o.endpoints[0].address == "10.0.0.1:8080");
    CHECK(o.endpoints[0].weight == 1);
    CHECK(o.endpoints[1].address == "[2001:db8::1]:8443");
    CHECK(o.endpoints[1].weight == 5);
    CHECK(o.endpoints[2].address == "backend.internal:80");
    CHECK(o.endpoints[2].weight == 1);
    CHECK(o.balance == Balance::Maglev);
    CHECK(o.hash.source == blitz::HashPolicy::Source::Cookie);
    CHECK(o.hash.name == "session");
    CHECK(o.pool.max_connections_per_endpoint == 10);
    CHECK(o.pool.max_idle_per_endpoint == 4);
    CHECK(o.pool.idle_timeout == 3000ms);
    CHECK(o.pool.connect_timeout == 250ms);
    CHECK(o.health_check.enabled);
    CHECK(o.health_check.path == "/ready?deep=1");
    CHECK(o.health_check.host == "api.internal");
    CHECK(o.health_check.expected_statuses ==
          std::vector<std::pair<int, int>>{{200, 200}, {204, 299}});
    CHECK(o.health_check.interval == 2000ms);
    CHECK(o.health_check.timeout == 500ms);
    CHECK(o.health_check.jitter_percent == 0);
    CHECK(o.health_check.healthy_threshold == 1);
    CHECK(o.health_check.unhealthy_threshold == 4);
    CHECK_FALSE(o.outlier.enabled);
    CHECK(o.outlier.consecutive_5xx == 7);
    CHECK(o.outlier.consecutive_gateway_failures == 2);
    CHECK(o.outlier.base_ejection == 1000ms);
    CHECK(o.outlier.max_ejection == 9000ms);
    CHECK(o.outlier.max_ejection_percent == 30);
    CHECK(o.circuit_breaker.max_connections == 100);
    CHECK(o.circuit_breaker.max_pending_requests == 0);
    CHECK(o.circuit_breaker.max_requests == 200);
    CHECK(o.circuit_breaker.max_retries == 5);
    CHECK_FALSE(o.retry_budget.enabled);
    CHECK(o.retry_budget.percent == 50);
    CHECK(o.retry_budget.min_retry_concurrency == 1);
    CHECK(o.dns.min_ttl == 1000ms);
    CHECK(o.dns.max_ttl == 60000ms);
    CHECK(o.dns.family == "v6");
    CHECK(o.panic_threshold_percent == 30);
    CHECK(o.protocol == blitz::UpstreamProtocol::Http2);
    CHECK(options_of(c, 1).name == "web");
}

TEST_CASE("config::parse_config gives an upstream the documented defaults", "[config]") {
    const blitz::Config c = parse_ok(upstream(R"("name": "u", "endpoints": ["127.0.0.1:9001"])"));
    const blitz::UpstreamOptions& o = options_of(c);
    const blitz::UpstreamOptions d;
    CHECK(o.balance == Balance::RoundRobin);
    CHECK(o.hash.source == blitz::HashPolicy::Source::ClientIp);
    CHECK(o.pool.idle_timeout == 4000ms);  // below Node.js's and Apache's 5 s keep-alive
    CHECK(o.pool.max_idle_per_endpoint == d.pool.max_idle_per_endpoint);
    CHECK(o.pool.connect_timeout == d.pool.connect_timeout);
    CHECK_FALSE(o.health_check.enabled);
    CHECK(o.outlier.enabled);
    CHECK(o.outlier.consecutive_5xx == d.outlier.consecutive_5xx);
    CHECK(o.circuit_breaker.max_requests == d.circuit_breaker.max_requests);
    CHECK(o.retry_budget.enabled);
    CHECK(o.retry_budget.percent == 20);
    CHECK(o.dns.family == "any");
    CHECK(o.panic_threshold_percent == 50);  // Envoy's healthy panic threshold
    CHECK(o.protocol == blitz::UpstreamProtocol::Http1);
    CHECK(parse_ok(with_top("\"upstreams\": []")).upstreams.empty());

    // A health_check object turns checks on unless it says otherwise.
    const blitz::UpstreamOptions on = options_of(parse_ok(upstream_with(R"("health_check": {})")));
    CHECK(on.health_check.enabled);
    CHECK(on.health_check.path == "/health");
    CHECK(on.health_check.expected_statuses == std::vector<std::pair<int, int>>{{200, 399}});
    const blitz::UpstreamOptions off =
        options_of(parse_ok(upstream_with(R"("health_check": {"enabled": false, "path": "/x"})")));
    CHECK_FALSE(off.health_check.enabled);
    CHECK(off.health_check.path == "/x");
}

TEST_CASE("config::parse_config reads every balancing policy and hash source", "[config]") {
    const std::pair<const char*, Balance> policies[] = {
        {"round_robin", Balance::RoundRobin},
        {"weighted_round_robin", Balance::WeightedRoundRobin},
        {"least_request", Balance::LeastRequest},
        {"random", Balance::Random},
        {"ring_hash", Balance::RingHash},
        {"maglev", Balance::Maglev}};
    for (const auto& [text, value] : policies) {
        INFO(text);
        CHECK(
            options_of(parse_ok(upstream_with(R"("lb": ")" + std::string(text) + "\""))).balance ==
            value);
    }
    const blitz::UpstreamOptions ip = options_of(
        parse_ok(upstream_with(R"("lb": "ring_hash", "hash": {"source": "client_ip"})")));
    CHECK(ip.hash.source == blitz::HashPolicy::Source::ClientIp);
    CHECK(ip.hash.name.empty());
    const blitz::UpstreamOptions header = options_of(parse_ok(
        upstream_with(R"("hash": {"name": "X-User", "source": "header"}, "lb": "ring_hash")")));
    CHECK(header.hash.source == blitz::HashPolicy::Source::Header);
    CHECK(header.hash.name == "X-User");
}

TEST_CASE("config::parse_config reads upstream numbers from environment expressions", "[config]") {
    ScopedEnv weight("BLITZ_TEST_WEIGHT", "7");
    ScopedEnv status("BLITZ_TEST_STATUS", "204");
    ScopedEnv port("BLITZ_TEST_PORT", nullptr);
    const blitz::UpstreamOptions o = options_of(parse_ok(upstream(
        R"("name": "u", "endpoints": [{"address": "127.0.0.1:${BLITZ_TEST_PORT:-9001}", "weight": "${BLITZ_TEST_WEIGHT}"}],
           "health_check": {"expected_statuses": ["${BLITZ_TEST_STATUS}"]})")));
    CHECK(o.endpoints[0].address == "127.0.0.1:9001");
    CHECK(o.endpoints[0].weight == 7);
    CHECK(o.health_check.expected_statuses == std::vector<std::pair<int, int>>{{204, 204}});
}

TEST_CASE("config::parse_config validates upstream names", "[config]") {
    std::string j = upstream(R"("endpoints": ["127.0.0.1:1"])");
    require_error_at(j, "{\"endpoints\"", "$.upstreams[0]", "missing required key \"name\"");
    j = upstream(R"("name": "u")");
    require_error_at(j, "{\"name\"", "$.upstreams[0]", "missing required key \"endpoints\"");
    j = upstream(R"("name": "a b", "endpoints": ["127.0.0.1:1"])");
    require_error_at(j, "\"a b\"", "$.upstreams[0].name",
                     "expected a name of letters, digits, '.', '-' and '_', found \"a b\"");
    j = upstream(R"("name": "", "endpoints": ["127.0.0.1:1"])");
    require_error_at(j, "\"\"", "$.upstreams[0].name",
                     "expected a name of letters, digits, '.', '-' and '_', found \"\"");
    j = with_top(
        R"("upstreams": [{"name": "u", "endpoints": ["127.0.0.1:1"]}, {"name": "u", "endpoints": ["127.0.0.1:2"]}])");
    require_error_at(j, "\"u\"", "$.upstreams[1].name",
                     "duplicate upstream name \"u\" (also $.upstreams[0])", 1);
    j = with_top(R"("upstreams": {"name": "u"})");
    require_error_at(j, "{\"name\"", "$.upstreams",
                     "expected an array of upstream objects, found an object");
    j = with_top(R"("upstreams": ["u"])");
    require_error_at(j, "\"u\"", "$.upstreams[0]", "expected an object, found \"u\"");
    j = upstream_with(R"("balance": "random")");
    require_error_at(j, "\"balance\"", "$.upstreams[0].balance",
                     "unknown key \"balance\"; allowed keys: name, endpoints, lb, hash, pool, "
                     "health_check, outlier_detection, circuit_breaker, retry_budget, dns, tls, "
                     "panic_threshold_percent, protocol");
}

TEST_CASE("config::parse_config validates upstream endpoints", "[config]") {
    const std::string address =
        "\"host:port\", \"IPv4:port\" or \"[IPv6]:port\" with a port from 1 to 65535 (e.g. "
        "\"10.0.0.1:8080\", \"[::1]:8080\", \"backend.internal:80\")";
    const std::string address_expected = "expected " + address + ", found ";
    for (const char* bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "[::1]", "::1:80",
                            "256.1.1.1:80", "1.2.3:80", "a b:80", "-a.com:80", "host:+80",
                            "host:080", "[::1]x:80", "[fe80::1%eth0]:80", ":80", "http://a:80"}) {
        INFO(bad);
        const blitz::ConfigError e =
            error_of(upstream(R"("name": "u", "endpoints": [")" + std::string(bad) + "\"]"));
        CHECK(e.path == "$.upstreams[0].endpoints[0]");
        CHECK(e.message == address_expected + "\"" + bad + "\"");
    }
    for (const char* good : {"10.0.0.1:1", "[::1]:65535", "[::ffff:1.2.3.4]:80", "backend:8080",
                             "svc_1.ns.cluster.local:80", "a-b.example.com.:443"}) {
        INFO(good);
        CHECK(options_of(
                  parse_ok(upstream(R"("name": "u", "endpoints": [")" + std::string(good) + "\"]")))
                  .endpoints[0]
                  .address == good);
    }
    std::string j = upstream(R"("name": "u", "endpoints": [{"address": "x"}])");
    require_error_at(j, "\"x\"", "$.upstreams[0].endpoints[0].address", address_expected + "\"x\"");
    j = upstream(R"("name": "u", "endpoints": [])");
    require_error_at(j, "[]", "$.upstreams[0].endpoints",
                     "expected at least one endpoint, found an empty array", 1);
    j = upstream(R"("name": "u", "endpoints": "127.0.0.1:1")");
    require_error_at(j, "\"127.0.0.1:1\"", "$.upstreams[0].endpoints",
                     "expected an array of endpoints, found \"127.0.0.1:1\"");
    j = upstream(R"("name": "u", "endpoints": [8080])");
    require_error_at(j, "8080]", "$.upstreams[0].endpoints[0]",
                     "expected an endpoint: an address string (" + address +
                         ") or an object with \"address\" and \"weight\", found 8080");
    j = upstream(R"("name": "u", "endpoints": [{"weight": 2}])");
    require_error_at(j, "{\"weight\"", "$.upstreams[0].endpoints[0]",
                     "missing required key \"address\"");
    j = upstream(R"("name": "u", "endpoints": [{"address": "a:1", "weight": 0}])");
    require_error_at(j, "0}", "$.upstreams[0].endpoints[0].weight",
                     "expected an integer from 1 to 10000, found 0");
    j = upstream(R"("name": "u", "endpoints": [{"address": "a:1", "weight": 10001}])");
    require_error_at(j, "10001", "$.upstreams[0].endpoints[0].weight",
                     "expected an integer from 1 to 10000, found 10001");
    j = upstream(R"("name": "u", "endpoints": ["a:1", {"address": "a:1", "weight": 3}])");
    require_error_at(j, "{\"address\": \"a:1\"", "$.upstreams[0].endpoints[1]",
                     "duplicate endpoint \"a:1\" (also $.upstreams[0].endpoints[0])");
    j = upstream(R"("name": "u", "endpoints": [{"address": "a:1", "port": 3}])");
    require_error_at(j, "\"port\"", "$.upstreams[0].endpoints[0].port",
                     "unknown key \"port\"; allowed keys: address, weight");
}

TEST_CASE("config::parse_config validates balancing and hashing", "[config]") {
    std::string j = upstream_with(R"("lb": "least_conn")");
    require_error_at(j, "\"least_conn\"", "$.upstreams[0].lb",
                     "expected one of \"round_robin\", \"weighted_round_robin\", "
                     "\"least_request\", \"random\", \"ring_hash\", \"maglev\", found "
                     "\"least_conn\"");
    j = upstream_with(R"("hash": {"source": "client_ip"})");
    require_error_at(j, "{\"source\"", "$.upstreams[0].hash",
                     "\"hash\" is used only by \"lb\": \"ring_hash\" or \"maglev\"");
    j = upstream_with(R"("lb": "maglev", "hash": {"source": "header"})");
    require_error_at(j, "{\"source\"", "$.upstreams[0].hash",
                     "missing required key \"name\" (the header to hash)");
    j = upstream_with(R"("lb": "maglev", "hash": {"source": "cookie"})");
    require_error_at(j, "{\"source\"", "$.upstreams[0].hash",
                     "missing required key \"name\" (the cookie to hash)");
    j = upstream_with(R"("lb": "maglev", "hash": {"name": "X-A"})");
    require_error_at(j, "\"X-A\"", "$.upstreams[0].hash.name",
                     "\"name\" is used only with \"source\": \"header\" or \"source\": \"cookie\"");
    j = upstream_with(R"("lb": "maglev", "hash": {"source": "header", "name": "X A"})");
    require_error_at(j, "\"X A\"", "$.upstreams[0].hash.name",
                     "expected a header or cookie name (an RFC 9110 token), found \"X A\"");
    j = upstream_with(R"("lb": "maglev", "hash": {"source": "ip"})");
    require_error_at(j, "\"ip\"", "$.upstreams[0].hash.source",
                     "expected one of \"client_ip\", \"header\", \"cookie\", found \"ip\"");
}

TEST_CASE("config::parse_config validates pools, limits and DNS of an upstream", "[config]") {
    std::string j = upstream_with(R"("pool": {"idle_timeout_ms": 0})");
    require_error_at(j, "0}", "$.upstreams[0].pool.idle_timeout_ms",
                     "expected an integer from 1 to 86400000, found 0");
    j = upstream_with(R"("pool": {"max_idle_per_endpoint": -1})");
    require_error_at(j, "-1", "$.upstreams[0].pool.max_idle_per_endpoint",
                     "expected an integer from 0 to 4294967295, found -1");
    j = upstream_with(R"("circuit_breaker": {"max_requests": 0})");
    require_error_at(j, "0}", "$.upstreams[0].circuit_breaker.max_requests",
                     "expected an integer from 1 to 4294967295, found 0");
    j = upstream_with(R"("retry_budget": {"percent": 101})");
    require_error_at(j, "101", "$.upstreams[0].retry_budget.percent",
                     "expected an integer from 0 to 100, found 101");
    j = upstream_with(R"("outlier_detection": {"consecutive_5xx": 0})");
    require_error_at(j, "0}", "$.upstreams[0].outlier_detection.consecutive_5xx",
                     "expected an integer from 1 to 10000, found 0");
    j = upstream_with(R"("outlier_detection": {"max_ejection_percent": 101})");
    require_error_at(j, "101", "$.upstreams[0].outlier_detection.max_ejection_percent",
                     "expected an integer from 0 to 100, found 101");
    j = upstream_with(R"("protocol": "h3")");
    require_error_at(j, "\"h3\"", "$.upstreams[0].protocol", "expected one of \"http1\", \"h2\", found \"h3\"");
    j = upstream_with(R"("panic_threshold_percent": 101)");
    require_error_at(j, "101", "$.upstreams[0].panic_threshold_percent",
                     "expected an integer from 0 to 100, found 101");
    j = upstream_with(R"("outlier_detection": {"base_ejection_ms": 400000})");
    require_error_at(j, "{\"base_ejection_ms\"", "$.upstreams[0].outlier_detection",
                     "base_ejection_ms (400000) must not exceed max_ejection_ms (300000)");
    j = upstream_with(R"("dns": {"max_ttl_ms": 10, "min_ttl_ms": 20})");
    require_error_at(j, "{\"max_ttl_ms\"", "$.upstreams[0].dns",
                     "min_ttl_ms (20) must not exceed max_ttl_ms (10)");
    j = upstream_with(R"("dns": {"family": "ipv4"})");
    require_error_at(j, "\"ipv4\"", "$.upstreams[0].dns.family",
                     "expected one of \"v4\", \"v6\", \"any\", found \"ipv4\"");
    j = upstream_with(R"("dns": {"ttl_ms": 1})");
    require_error_at(j, "\"ttl_ms\"", "$.upstreams[0].dns.ttl_ms",
                     "unknown key \"ttl_ms\"; allowed keys: min_ttl_ms, max_ttl_ms, family");
}

TEST_CASE("config::parse_config validates health checks", "[config]") {
    std::string j = upstream_with(R"("health_check": {"path": "health"})");
    require_error_at(j, "\"health\"", "$.upstreams[0].health_check.path",
                     "expected a path starting with '/', of visible ASCII characters, without "
                     "'#', found \"health\"");
    j = upstream_with(R"("health_check": {"host": "a b"})");
    require_error_at(j, "\"a b\"", "$.upstreams[0].health_check.host",
                     "expected a host with an optional port (\"api.internal\", \"10.0.0.1:8080\", "
                     "\"[::1]:8080\"), found \"a b\"");
    j = upstream_with(R"("health_check": {"expected_statuses": []})");
    require_error_at(j, "[]", "$.upstreams[0].health_check.expected_statuses",
                     "expected at least one status, found an empty array", 1);
    const std::string status_expected =
        "expected a status code from 200 to 599 or a range of them (\"200-399\"), found ";
    for (const char* bad : {"\"300-200\"", "\"abc\"", "199", "600", "\"200\"", "\"200-\"",
                            "\"-200\"", "\"200-600\"", "1.5", "true"}) {
        INFO(bad);
        const blitz::ConfigError e = error_of(upstream_with(
            R"("health_check": {"expected_statuses": [200, )" + std::string(bad) + "]}"));
        CHECK(e.path == "$.upstreams[0].health_check.expected_statuses[1]");
        CHECK(e.message == status_expected + bad);
    }
    j = upstream_with(R"("health_check": {"jitter_percent": 101})");
    require_error_at(j, "101", "$.upstreams[0].health_check.jitter_percent",
                     "expected an integer from 0 to 100, found 101");
    j = upstream_with(R"("health_check": {"healthy_threshold": 0})");
    require_error_at(j, "0}", "$.upstreams[0].health_check.healthy_threshold",
                     "expected an integer from 1 to 10000, found 0");
    j = upstream_with(R"("health_check": {"unhealthy_threshold": 0})");
    require_error_at(j, "0}", "$.upstreams[0].health_check.unhealthy_threshold",
                     "expected an integer from 1 to 10000, found 0");
    j = upstream_with(R"("health_check": {"interval_ms": 0})");
    require_error_at(j, "0}", "$.upstreams[0].health_check.interval_ms",
                     "expected an integer from 1 to 86400000, found 0");
    j = upstream_with(R"("health_check": {"enabled": 1})");
    require_error_at(j, "1}", "$.upstreams[0].health_check.enabled",
                     "expected true or false, found 1");
}

#include <array>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include <blitz/upstream.hpp>

#include "upstream/cluster.hpp"

using blitz::Balance;
using blitz::EndpointInfo;
using blitz::PickContext;
using blitz::UpstreamOptions;
using blitz::upstream::Cluster;
using blitz::upstream::Endpoint;
using blitz::upstream::LocalCluster;

namespace {

UpstreamOptions options(std::vector<std::string> addresses, Balance balance = Balance::RoundRobin) {
    UpstreamOptions o;
    o.name = "api";
    o.balance = balance;
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

Endpoint literal(const std::string& text) {
    Endpoint e;
    REQUIRE(blitz::net::SocketAddress::parse(text, e.address));
    return e;
}

struct Drops {
    std::vector<void*> pools;
    static void drop(void* context, void* pool) {
        static_cast<Drops*>(context)->pools.push_back(pool);
    }
};

}  // namespace

TEST_CASE("LocalCluster::refresh carries pools and counters over and drops pools that left",
          "[upstream]") {
    auto c = make(options({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}));
    Drops drops;
    LocalCluster local(c, &Drops::drop, &drops);
    REQUIRE(local.endpoints().size() == 3);
    int pool1 = 0;
    int pool2 = 0;
    local.endpoints()[0].pool = &pool1;
    local.endpoints()[0].active_requests = 4;
    local.endpoints()[1].pool = &pool2;

    local.refresh();  // nothing new: nothing changes
    CHECK(local.endpoints()[0].pool == &pool1);
    CHECK(drops.pools.empty());

    c->publish({literal("10.0.0.3:80"), literal("10.0.0.1:80"), literal("10.0.0.4:80")});
    local.refresh();
    REQUIRE(local.endpoints().size() == 3);
    CHECK(local.endpoints()[0].endpoint->text == "10.0.0.3:80");
    CHECK(local.endpoints()[0].pool == nullptr);
    CHECK(local.endpoints()[1].endpoint->text == "10.0.0.1:80");
    CHECK(local.endpoints()[1].pool == &pool1);
    CHECK(local.endpoints()[1].active_requests == 4);
    CHECK(local.endpoints()[2].pool == nullptr);
    CHECK(drops.pools == std::vector<void*>{&pool2});
}

TEST_CASE("LocalCluster::pick skips tried and unavailable endpoints", "[upstream]") {
    UpstreamOptions o = options({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"});
    o.panic_threshold_percent = 0;
    auto c = make(std::move(o));
    LocalCluster local(c, nullptr, nullptr);
    const std::uint64_t now = 1000;
    auto set = c->endpoints();
    set->endpoints[1].health->healthy = false;

    for (int i = 0; i < 20; ++i) {
        const int tried[] = {0};
        CHECK(local.pick({}, tried, now).index == 2);
    }
    // Every available endpoint tried: a retry may go to one of them again, never to the
    // unhealthy one.
    for (int i = 0; i < 20; ++i) {
        const int tried[] = {0, 2};
        const int p = local.pick({}, tried, now).index;
        CHECK((p == 0 || p == 2));
    }
    set->endpoints[0].health->ejected_until_ms = now + 1;
    set->endpoints[2].health->healthy = false;
    CHECK(local.pick({}, {}, now).index == -1);
    CHECK(local.pick({}, {}, now + 1).index == 0);
}

TEST_CASE("LocalCluster::pick balances across every endpoint below the panic threshold",
          "[upstream]") {
    UpstreamOptions o = options({"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"});
    o.panic_threshold_percent = 50;
    auto c = make(std::move(o));
    LocalCluster local(c, nullptr, nullptr);
    auto set = c->endpoints();
    const std::uint64_t now = 1000;

    // Two of four available: at the threshold, not below it.
    set->endpoints[0].health->healthy = false;
    set->endpoints[1].health->ejected_until_ms = now + 10;
    for (int i = 0; i < 20; ++i) {
        const LocalCluster::Pick p = local.pick({}, {}, now);
        CHECK((p.index == 2 || p.index == 3));
        CHECK_FALSE(p.panic);
    }
    // One of four: every endpoint is eligible again, the down and the ejected one included.
    set->endpoints[2].health->healthy = false;
    std::set<int> seen;
    for (int i = 0; i < 40; ++i) {
        const LocalCluster::Pick p = local.pick({}, {}, now);
        CHECK(p.panic);
        seen.insert(p.index);
    }
    CHECK(seen == std::set<int>{0, 1, 2, 3});
    // A retry still goes to an endpoint not tried yet, then to any once all were tried.
    const int three[] = {0, 1, 3};
    CHECK(local.pick({}, three, now).index == 2);
    const int all[] = {0, 1, 2, 3};
    CHECK(local.pick({}, all, now).index >= 0);
    // Once the ejection ends, two of four are available: out of panic.
    const LocalCluster::Pick calm = local.pick({}, {}, now + 10);
    CHECK_FALSE(calm.panic);
    CHECK((calm.index == 1 || calm.index == 3));
}

TEST_CASE("LocalCluster::pick without panic mode finds no endpoint when none is available",
          "[upstream]") {
    UpstreamOptions o = options({"10.0.0.1:80", "10.0.0.2:80"});
    o.panic_threshold_percent = 0;
    auto c = make(std::move(o));
    LocalCluster local(c, nullptr, nullptr);
    auto set = c->endpoints();
    set->endpoints[0].health->healthy = false;
    set->endpoints[1].health->healthy = false;
    const LocalCluster::Pick p = local.pick({}, {}, 0);
    CHECK(p.index == -1);
    CHECK_FALSE(p.panic);
}

TEST_CASE("LocalCluster::pick follows a new endpoint set", "[upstream]") {
    auto c = make(options({"10.0.0.1:80"}));
    LocalCluster local(c, nullptr, nullptr);
    CHECK(local.pick({}, {}, 0).index == 0);
    c->publish({});
    CHECK(local.pick({}, {}, 0).index == -1);
    c->publish({literal("10.0.0.7:80"), literal("10.0.0.8:80")});
    const int p = local.pick({}, {}, 0).index;
    REQUIRE((p == 0 || p == 1));
    CHECK(local.endpoints()[static_cast<std::size_t>(p)].endpoint->text.starts_with("10.0.0."));
}

namespace {

/// A policy that answers what the test says and records what it saw.
struct Scripted final : blitz::LoadBalancer {
    int answer = 0;
    std::vector<EndpointInfo> seen;
    int pick(std::span<const EndpointInfo> endpoints, const PickContext&) override {
        seen.assign(endpoints.begin(), endpoints.end());
        return answer;
    }
};

struct ScriptedFactory final : blitz::LoadBalancerFactory {
    Scripted* last = nullptr;
    int creates = 0;
    std::unique_ptr<blitz::LoadBalancer> create(std::span<const EndpointInfo>) override {
        ++creates;
        auto b = std::make_unique<Scripted>();
        last = b.get();
        return b;
    }
};

}  // namespace

TEST_CASE("LocalCluster gives a custom policy the endpoint infos and checks its answer",
          "[upstream]") {
    auto factory = std::make_shared<ScriptedFactory>();
    UpstreamOptions o = options({"10.0.0.1:80", "10.0.0.2:80"}, Balance::Custom);
    o.endpoints[1].weight = 5;
    o.custom_balancer = factory;
    auto c = make(std::move(o));
    LocalCluster local(c, nullptr, nullptr);
    CHECK(factory->creates == 1);
    local.endpoints()[1].active_requests = 9;

    factory->last->answer = 1;
    CHECK(local.pick({}, {}, 0).index == 1);
    REQUIRE(factory->last->seen.size() == 2);
    CHECK(factory->last->seen[0].address == "10.0.0.1:80");
    CHECK(factory->last->seen[1].weight == 5);
    CHECK(factory->last->seen[1].active_requests == 9);
    CHECK(factory->last->seen[1].available);

    factory->last->answer = 7;
    CHECK(local.pick({}, {}, 0).index == -1);
    factory->last->answer = 0;
    const int tried[] = {0};
    CHECK(local.pick({}, tried, 0).index == -1);  // 0 was tried: not available to this pick

    c->publish({literal("10.0.0.3:80")});
    CHECK(local.pick({}, {}, 0).index == 0);
    CHECK(factory->creates == 2);  // a policy for the new set
    REQUIRE(factory->last->seen.size() == 1);
    CHECK(factory->last->seen[0].address == "10.0.0.3:80");
}

TEST_CASE("LocalCluster splits circuit-breaker limits between reactors, rounding up",
          "[upstream]") {
    UpstreamOptions o = options({"10.0.0.1:80"});
    o.circuit_breaker = {
        .max_connections = 10, .max_pending_requests = 5, .max_requests = 3, .max_retries = 0};
    auto c = make(std::move(o));
    c->set_reactor_count(3);
    LocalCluster local(c, nullptr, nullptr);

    local.connections = 3;
    CHECK(local.can_open_connection());
    local.connections = 4;  // ceil(10 / 3)
    CHECK_FALSE(local.can_open_connection());
    local.pending = 1;
    CHECK(local.can_queue());
    local.pending = 2;  // ceil(5 / 3)
    CHECK_FALSE(local.can_queue());
    local.requests = 0;
    CHECK(local.can_start_request());
    local.requests = 1;  // ceil(3 / 3)
    CHECK_FALSE(local.can_start_request());
    CHECK_FALSE(local.can_retry());  // max_retries 0

    c->set_reactor_count(0);  // treated as one
    CHECK(c->reactor_count() == 1);
    CHECK(local.can_start_request());
    local.requests = 3;
    CHECK_FALSE(local.can_start_request());
}

TEST_CASE("LocalCluster::can_retry applies the retry budget", "[upstream]") {
    UpstreamOptions o = options({"10.0.0.1:80"});
    o.circuit_breaker.max_retries = 1000;
    o.retry_budget = {.enabled = true, .percent = 20, .min_retry_concurrency = 3};
    auto c = make(o);
    LocalCluster local(c, nullptr, nullptr);

    local.requests = 10;  // 20% is 2: the minimum of 3 applies
    local.retries = 2;
    CHECK(local.can_retry());
    local.retries = 3;
    CHECK_FALSE(local.can_retry());

    local.requests = 100;  // 20% is 20
    local.retries = 19;
    CHECK(local.can_retry());
    local.retries = 20;
    CHECK_FALSE(local.can_retry());

    c->set_reactor_count(2);  // the minimum is shared too: ceil(3 / 2) = 2
    local.requests = 1;
    local.retries = 1;
    CHECK(local.can_retry());
    local.retries = 2;
    CHECK_FALSE(local.can_retry());

    o.retry_budget.enabled = false;
    o.circuit_breaker.max_retries = 4;
    auto unbudgeted = make(o);
    LocalCluster plain(unbudgeted, nullptr, nullptr);
    plain.requests = 1;
    plain.retries = 3;
    CHECK(plain.can_retry());
    plain.retries = 4;
    CHECK_FALSE(plain.can_retry());
}

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include <blitz/arena.hpp>
#include <blitz/exchange.hpp>
#include <blitz/upstream.hpp>

#include "http/exchange_driver.hpp"
#include "upstream/cluster.hpp"
#include "upstream/hash.hpp"

using blitz::Balance;
using blitz::EndpointInfo;
using blitz::HashPolicy;
using blitz::LoadBalancer;
using blitz::PickContext;
using blitz::upstream::builtin_balancer;

namespace {

/// Endpoint infos over addresses it owns ("10.0.0.<i>:80").
struct Endpoints {
    std::vector<std::string> addresses;
    std::vector<EndpointInfo> infos;

    explicit Endpoints(std::vector<std::uint32_t> weights) {
        addresses.reserve(weights.size());
        for (std::size_t i = 0; i < weights.size(); ++i) {
            addresses.push_back("10.0.0." + std::to_string(i + 1) + ":80");
        }
        for (std::size_t i = 0; i < weights.size(); ++i) {
            infos.push_back(EndpointInfo{.address = addresses[i], .weight = weights[i]});
        }
    }
    static Endpoints equal(std::size_t n) { return Endpoints(std::vector<std::uint32_t>(n, 1)); }
    std::unique_ptr<LoadBalancer> balancer(Balance b) const {
        return builtin_balancer(b)->create(infos);
    }
};

std::vector<int> counts(LoadBalancer& b, const std::vector<EndpointInfo>& infos, int picks,
                        const PickContext& ctx = {}) {
    std::vector<int> out(infos.size(), 0);
    for (int i = 0; i < picks; ++i) {
        const int p = b.pick(infos, ctx);
        REQUIRE(p >= 0);
        REQUIRE(static_cast<std::size_t>(p) < infos.size());
        ++out[static_cast<std::size_t>(p)];
    }
    return out;
}

/// Each count within ±`tolerance` (relative) of its share of `picks`.
void check_shares(const std::vector<int>& got, const std::vector<double>& shares, int picks,
                  double tolerance) {
    REQUIRE(got.size() == shares.size());
    for (std::size_t i = 0; i < got.size(); ++i) {
        const double expected = shares[i] * picks;
        CAPTURE(i, got[i], expected);
        CHECK(std::abs(got[i] - expected) <= tolerance * expected);
    }
}

PickContext hashed(std::uint64_t h) { return PickContext{.hash = h, .has_hash = true}; }

}  // namespace

TEST_CASE("RoundRobin takes each available endpoint in turn and ignores weights", "[upstream]") {
    Endpoints e({1, 5, 1, 1});
    auto b = e.balancer(Balance::RoundRobin);
    const int first = b->pick(e.infos, {});
    REQUIRE(first >= 0);
    for (int i = 1; i < 8; ++i) {
        CHECK(b->pick(e.infos, {}) == (first + i) % 4);
    }
    e.infos[2].available = false;
    auto c = counts(*b, e.infos, 3000);
    CHECK(c == std::vector<int>{1000, 1000, 0, 1000});
    for (auto& i : e.infos) {
        i.available = false;
    }
    CHECK(b->pick(e.infos, {}) == -1);
}

TEST_CASE("WeightedRoundRobin is nginx's smooth weighted round robin", "[upstream]") {
    Endpoints e({5, 1, 1});
    auto b = e.balancer(Balance::WeightedRoundRobin);
    std::vector<int> seq;
    for (int i = 0; i < 7; ++i) {
        seq.push_back(b->pick(e.infos, {}));
    }
    CHECK(seq == std::vector<int>{0, 0, 1, 0, 2, 0, 0});

    Endpoints w({1, 1, 2});
    auto wb = w.balancer(Balance::WeightedRoundRobin);
    CHECK(counts(*wb, w.infos, 40'000) == std::vector<int>{10'000, 10'000, 20'000});
    w.infos[2].available = false;
    CHECK(counts(*wb, w.infos, 1'000) == std::vector<int>{500, 500, 0});
    w.infos[0].available = false;
    w.infos[1].available = false;
    CHECK(wb->pick(w.infos, {}) == -1);
}

TEST_CASE("Random spreads picks by weight over available endpoints", "[upstream]") {
    Endpoints e({1, 1, 2});
    auto b = e.balancer(Balance::Random);
    check_shares(counts(*b, e.infos, 100'000), {0.25, 0.25, 0.5}, 100'000, 0.03);
    e.infos[1].available = false;
    check_shares(counts(*b, e.infos, 90'000), {1.0 / 3, 0, 2.0 / 3}, 90'000, 0.03);
    e.infos[0].available = false;
    e.infos[2].available = false;
    CHECK(b->pick(e.infos, {}) == -1);
}

TEST_CASE("LeastRequest avoids the busier of two random endpoints", "[upstream]") {
    Endpoints e = Endpoints::equal(3);
    auto b = e.balancer(Balance::LeastRequest);
    check_shares(counts(*b, e.infos, 90'000), {1.0 / 3, 1.0 / 3, 1.0 / 3}, 90'000, 0.03);

    e.infos[0].active_requests = 10;
    auto busy = counts(*b, e.infos, 3'000);
    CHECK(busy[0] == 0);  // always paired with an idler one
    CHECK(busy[1] > 1'000);
    CHECK(busy[2] > 1'000);

    e.infos[1].available = false;
    e.infos[2].available = false;
    CHECK(counts(*b, e.infos, 10) == std::vector<int>{10, 0, 0});  // the only one left
    e.infos[0].available = false;
    CHECK(b->pick(e.infos, {}) == -1);
}

TEST_CASE("LeastRequest compares active requests per unit of weight", "[upstream]") {
    Endpoints e({1, 2});
    auto b = e.balancer(Balance::LeastRequest);
    e.infos[0].active_requests = 2;
    e.infos[1].active_requests = 3;  // 2/1 > 3/2
    CHECK(counts(*b, e.infos, 500) == std::vector<int>{0, 500});
    e.infos[1].active_requests = 5;  // 2/1 < 5/2
    CHECK(counts(*b, e.infos, 500) == std::vector<int>{500, 0});

    Endpoints idle({1, 1, 2});
    auto ib = idle.balancer(Balance::LeastRequest);
    check_shares(counts(*ib, idle.infos, 100'000), {0.25, 0.25, 0.5}, 100'000, 0.03);
}

TEST_CASE("Consistent hashing maps a key to the same endpoint on every reactor", "[upstream]") {
    const Balance kind = GENERATE(Balance::RingHash, Balance::Maglev);
    CAPTURE(static_cast<int>(kind));
    Endpoints e = Endpoints::equal(10);
    auto factory = builtin_balancer(kind);
    auto a = factory->create(e.infos);
    auto b = factory->create(e.infos);
    auto fresh = builtin_balancer(kind)->create(e.infos);  // another process, same endpoints
    for (std::uint64_t key = 0; key < 2'000; ++key) {
        const int p = a->pick(e.infos, hashed(key));
        REQUIRE(p >= 0);
        CHECK(a->pick(e.infos, hashed(key)) == p);
        CHECK(b->pick(e.infos, hashed(key)) == p);
        CHECK(fresh->pick(e.infos, hashed(key)) == p);
    }
}

TEST_CASE("Consistent hashing spreads keys by weight", "[upstream]") {
    const Balance kind = GENERATE(Balance::RingHash, Balance::Maglev);
    CAPTURE(static_cast<int>(kind));
    // Maglev's table gives each endpoint its share within a slot or two; a ring's points
    // land at random, so its shares vary more (1024 points per endpoint: about 3% each).
    const double tolerance = kind == Balance::Maglev ? 0.03 : 0.07;
    const int keys = 100'000;

    Endpoints e = Endpoints::equal(10);
    auto b = e.balancer(kind);
    std::vector<int> got(10, 0);
    for (std::uint64_t key = 0; key < keys; ++key) {
        ++got[static_cast<std::size_t>(b->pick(e.infos, hashed(key)))];
    }
    check_shares(got, std::vector<double>(10, 0.1), keys, tolerance);

    Endpoints w({1, 1, 2});
    auto wb = w.balancer(kind);
    std::vector<int> weighted(3, 0);
    for (std::uint64_t key = 0; key < keys; ++key) {
        ++weighted[static_cast<std::size_t>(
            wb->pick(w.infos, hashed(blitz::upstream::hash_bytes(std::to_string(key)))))];
    }
    check_shares(weighted, {0.25, 0.25, 0.5}, keys, tolerance);
}

TEST_CASE("Consistent hashing moves few keys when an endpoint leaves", "[upstream]") {
    const Balance kind = GENERATE(Balance::RingHash, Balance::Maglev);
    CAPTURE(static_cast<int>(kind));
    const int keys = 50'000;
    Endpoints all = Endpoints::equal(10);
    Endpoints nine = Endpoints::equal(10);
    nine.infos.erase(nine.infos.begin() + 4);  // 10.0.0.5 leaves
    auto before = all.balancer(kind);
    auto after = nine.balancer(kind);
    int moved = 0;
    int moved_elsewhere = 0;  // keys that were not on the endpoint that left
    for (std::uint64_t key = 0; key < keys; ++key) {
        const auto was =
            all.infos[static_cast<std::size_t>(before->pick(all.infos, hashed(key)))].address;
        const auto now =
            nine.infos[static_cast<std::size_t>(after->pick(nine.infos, hashed(key)))].address;
        if (was != now) {
            ++moved;
            moved_elsewhere += was != "10.0.0.5:80";
        }
    }
    CAPTURE(moved, moved_elsewhere);
    CHECK(moved <= keys * 15 / 100);
    CHECK(moved >= keys * 5 / 100);  // the leaver's own keys had to move
    if (kind == Balance::RingHash) {
        CHECK(moved_elsewhere == 0);
    } else {
        CHECK(moved_elsewhere <= keys * 5 / 100);
    }
}

TEST_CASE("Consistent hashing sends an unavailable endpoint's keys elsewhere and no others",
          "[upstream]") {
    const Balance kind = GENERATE(Balance::RingHash, Balance::Maglev);
    CAPTURE(static_cast<int>(kind));
    Endpoints e = Endpoints::equal(5);
    auto b = e.balancer(kind);
    std::vector<int> owner;
    for (std::uint64_t key = 0; key < 10'000; ++key) {
        owner.push_back(b->pick(e.infos, hashed(key)));
    }
    e.infos[2].available = false;
    std::vector<int> spread(5, 0);
    for (std::uint64_t key = 0; key < 10'000; ++key) {
        const int p = b->pick(e.infos, hashed(key));
        REQUIRE(p != 2);
        if (owner[key] == 2) {
            ++spread[static_cast<std::size_t>(p)];
        } else {
            CHECK(p == owner[key]);
        }
    }
    // The displaced keys are shared out, not piled on one neighbour.
    int receivers = 0;
    for (int s : spread) {
        receivers += s > 0;
    }
    CHECK(receivers >= 3);

    for (auto& i : e.infos) {
        i.available = false;
    }
    CHECK(b->pick(e.infos, hashed(1)) == -1);
    CHECK(b->pick(e.infos, {}) == -1);
}

TEST_CASE("Consistent hashing without a key balances as Random", "[upstream]") {
    const Balance kind = GENERATE(Balance::RingHash, Balance::Maglev);
    Endpoints e({1, 1, 2});
    auto b = e.balancer(kind);
    check_shares(counts(*b, e.infos, 100'000), {0.25, 0.25, 0.5}, 100'000, 0.03);
}

TEST_CASE("builtin_balancer has no factory for Custom", "[upstream]") {
    CHECK(builtin_balancer(Balance::Custom) == nullptr);
    CHECK(builtin_balancer(Balance::Maglev) != nullptr);
}

namespace {

class TestDriver final : public blitz::detail::ExchangeDriver {
 public:
    std::string_view ip;
    void exchange_resume() override {}
    void exchange_read_body() override {}
    blitz::Reactor& exchange_reactor() noexcept override { std::abort(); }
    std::string_view exchange_client_address() noexcept override { return ip; }
    bool exchange_aborted() const noexcept override { return false; }
    const blitz::TlsInfo* exchange_tls() noexcept override { return nullptr; }
};

/// An exchange whose request carries `fields` and whose client is `ip`.
struct TestExchange {
    TestDriver driver;
    blitz::Arena arena;
    std::vector<blitz::Header> fields;
    blitz::Exchange ex{driver, arena};

    TestExchange(std::string_view ip, std::vector<blitz::Header> headers)
        : fields(std::move(headers)) {
        driver.ip = ip;
        ex.mutable_request().headers = blitz::Headers(fields);
    }
};

bool hash_of(const HashPolicy& p, const TestExchange& t, std::uint64_t& h) {
    return blitz::upstream::request_hash(p, t.ex, h);
}

}  // namespace

TEST_CASE("request_hash keys on the client address", "[upstream]") {
    const HashPolicy ip{.source = HashPolicy::Source::ClientIp};
    TestExchange a("192.0.2.1", {});
    TestExchange a2("192.0.2.1", {{"X", "y"}});
    TestExchange b("2001:db8::1", {});
    std::uint64_t ha = 0;
    std::uint64_t ha2 = 0;
    std::uint64_t hb = 0;
    REQUIRE(hash_of(ip, a, ha));
    REQUIRE(hash_of(ip, a2, ha2));
    REQUIRE(hash_of(ip, b, hb));
    CHECK(ha == ha2);
    CHECK(ha != hb);
    TestExchange none("", {});
    std::uint64_t h = 0;
    CHECK_FALSE(hash_of(ip, none, h));
}

TEST_CASE("request_hash keys on the first value of a header", "[upstream]") {
    const HashPolicy p{.source = HashPolicy::Source::Header, .name = "X-User"};
    TestExchange a("192.0.2.1", {{"Accept", "*/*"}, {"x-user", "alice"}, {"X-User", "bob"}});
    TestExchange b("192.0.2.9", {{"X-USER", "alice"}});
    TestExchange c("192.0.2.1", {{"X-User", "bob"}});
    std::uint64_t ha = 0;
    std::uint64_t hb = 0;
    std::uint64_t hc = 0;
    REQUIRE(hash_of(p, a, ha));
    REQUIRE(hash_of(p, b, hb));
    REQUIRE(hash_of(p, c, hc));
    CHECK(ha == hb);
    CHECK(ha != hc);
    std::uint64_t h = 0;
    CHECK_FALSE(hash_of(p, TestExchange("192.0.2.1", {{"X-Other", "alice"}}), h));
    CHECK_FALSE(hash_of(p, TestExchange("192.0.2.1", {{"X-User", ""}}), h));
}

TEST_CASE("request_hash finds a cookie by exact name in Cookie fields", "[upstream]") {
    const HashPolicy p{.source = HashPolicy::Source::Cookie, .name = "sid"};
    std::uint64_t want = 0;
    REQUIRE(hash_of(p, TestExchange("192.0.2.1", {{"Cookie", "sid=abc"}}), want));
    CHECK(want == blitz::upstream::hash_bytes("abc"));

    const std::vector<std::string_view> same = {
        "a=1; sid=abc; b=2",
        "xsid=zzz; sid=abc",     // a longer name is another cookie
        "SID=zzz; sid=abc",      // names are case-sensitive
        "a=1;sid=abc",           // no space after ';'
        "a=1;  sid = abc ;b=2",  // stray whitespace
        "sid=\"abc\"",           // RFC 6265 §4.1.1: quotes are not part of the value
        "flag; sid=abc",         // a pair without '='
    };
    for (auto value : same) {
        CAPTURE(value);
        std::uint64_t h = 0;
        REQUIRE(hash_of(p, TestExchange("192.0.2.1", {{"Cookie", value}}), h));
        CHECK(h == want);
    }
    std::uint64_t h = 0;
    // Cookies split over several fields (HTTP/2); and a field name in any case.
    REQUIRE(hash_of(p, TestExchange("192.0.2.1", {{"cookie", "a=1"}, {"COOKIE", "sid=abc"}}), h));
    CHECK(h == want);

    for (auto value : {"a=1; b=2", "sid=", "sid=\"\"", "", "xsid=abc", "sid"}) {
        CAPTURE(value);
        CHECK_FALSE(hash_of(p, TestExchange("192.0.2.1", {{"Cookie", value}}), h));
    }
    CHECK_FALSE(hash_of(p, TestExchange("192.0.2.1", {{"Set-Cookie", "sid=abc"}}), h));
}

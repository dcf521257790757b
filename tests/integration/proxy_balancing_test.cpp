// Load balancing and health checking across several real backends: how requests are spread
// per policy, and how active health checks take an endpoint out and bring it back.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

/// blitzd with upstream "u" (`upstream_extra`: more keys of the upstream object) over
/// `backends`, every path proxied to it with `proxy_extra` keys in the proxy object.
ProxyConfig config_for(const std::vector<const Backend*>& backends,
                       const std::string& upstream_extra, const std::string& proxy_extra = "") {
    ProxyConfig c;
    c.upstreams = R"([{ "name": "u", "endpoints": )" + endpoint_list(backends) +
                  (upstream_extra.empty() ? "" : ", " + upstream_extra) + " }]";
    c.routes = R"([{ "match": { "path_prefix": "/" }, "proxy": { "upstream": "u")" +
               (proxy_extra.empty() ? "" : ", " + proxy_extra) + " } }]";
    return c;
}

/// Sends `n` requests one after another and counts the answers by X-Backend ("" for a
/// request without an answer, "status NNN" for one that is not 200).
std::map<std::string, int> spread(Session& s, int n, const std::string& extra_headers = "") {
    std::map<std::string, int> count;
    for (int i = 0; i < n; ++i) {
        auto res = s.exchange(request("GET", "/n" + std::to_string(i), extra_headers));
        if (!res) {
            ++count[""];
        } else if (res->status != 200) {
            ++count["status " + std::to_string(res->status)];
        } else {
            ++count[res->header("X-Backend").value_or("?")];
        }
    }
    return count;
}

std::string describe(const std::map<std::string, int>& count) {
    std::string s;
    for (const auto& [k, v] : count) {
        s += (k.empty() ? "(none)" : k) + "=" + std::to_string(v) + " ";
    }
    return s;
}

/// The backend that answered, or "" when the request failed.
std::string answered_by(Session& s, const std::string& path) {
    auto res = s.exchange(request("GET", path));
    return res && res->status == 200 ? res->header("X-Backend").value_or("?") : "";
}

/// Sends requests until `window` answers in a row come from backends other than `name`
/// (true), or the deadline passes.
bool stops_reaching(Session& s, const std::string& name, int window, Millis timeout) {
    Deadline deadline(timeout);
    int run = 0;
    while (!deadline.expired()) {
        std::string who = answered_by(s, "/probe");
        run = (!who.empty() && who != name) ? run + 1 : 0;
        if (run >= window) {
            return true;
        }
    }
    return false;
}

/// Sends requests until one is answered by `name` (true), or the deadline passes.
bool reaches(Session& s, const std::string& name, Millis timeout) {
    Deadline deadline(timeout);
    while (!deadline.expired()) {
        if (answered_by(s, "/probe") == name) {
            return true;
        }
    }
    return false;
}

bool post_to(const Backend& b, std::string_view path) {
    CommandResult r = curl({"-X", "POST", "-o", "/dev/null", "-w", "%{http_code}", b.url(path)});
    return r.out == "200";
}

}  // namespace

TEST_CASE("round_robin spreads requests evenly over three backends", "[proxy]") {
    Backend a("a"), b("b"), c("c");
    Blitzd d(config_for({&a, &b, &c}, R"("lb": "round_robin")").render());
    Session s(d);
    auto count = spread(s, 300);
    INFO(describe(count));
    CHECK(count["a"] == 100);
    CHECK(count["b"] == 100);
    CHECK(count["c"] == 100);
}

TEST_CASE("weighted_round_robin spreads requests by weight", "[proxy]") {
    Backend a("a"), b("b"), c("c");
    ProxyConfig cfg;
    cfg.upstreams = R"([{ "name": "u", "lb": "weighted_round_robin", "endpoints": [
        { "address": ")" + a.address() + R"(", "weight": 1 },
        { "address": ")" + b.address() + R"(", "weight": 1 },
        { "address": ")" + c.address() + R"(", "weight": 2 } ] }])";
    cfg.routes = R"([{ "match": { "path_prefix": "/" }, "upstream": "u" }])";
    Blitzd d(cfg.render());
    Session s(d);
    auto count = spread(s, 400);
    INFO(describe(count));
    CHECK(count["a"] == 100);
    CHECK(count["b"] == 100);
    CHECK(count["c"] == 200);
}

TEST_CASE("random spreads requests over every backend", "[proxy]") {
    Backend a("a"), b("b"), c("c");
    Blitzd d(config_for({&a, &b, &c}, R"("lb": "random")").render());
    Session s(d);
    auto count = spread(s, 300);
    INFO(describe(count));
    // Binomial(300, 1/3): the mean is 100 and these bounds are more than 6 sigma away.
    for (const char* name : {"a", "b", "c"}) {
        CHECK(count[name] > 50);
        CHECK(count[name] < 150);
    }
}

TEST_CASE("ring_hash on a header sends each value to one backend", "[proxy]") {
    Backend a("a"), b("b"), c("c");
    Blitzd d(config_for({&a, &b, &c},
                        R"("lb": "ring_hash", "hash": { "source": "header", "name": "X-User" })")
                 .render());
    Session s(d);
    std::map<std::string, std::string> owner;
    std::map<std::string, int> used;
    for (int round = 0; round < 4; ++round) {
        for (int user = 0; user < 30; ++user) {
            const std::string id = "user-" + std::to_string(user);
            auto res = s.exchange(request("GET", "/h", "X-User: " + id + "\r\n"));
            REQUIRE(res);
            REQUIRE(res->status == 200);
            const std::string who = res->header("X-Backend").value_or("?");
            if (round == 0) {
                owner[id] = who;
                ++used[who];
            }
            INFO(id << " in round " << round);
            CHECK(owner[id] == who);
        }
    }
    INFO(describe(used));
    // 30 keys on three endpoints: all on one would mean the header is not hashed.
    CHECK(used.size() >= 2);
}

TEST_CASE("maglev on a cookie sends each session to one backend", "[proxy]") {
    Backend a("a"), b("b"), c("c");
    Blitzd d(config_for({&a, &b, &c},
                        R"("lb": "maglev", "hash": { "source": "cookie", "name": "session_id" })")
                 .render());
    Session s(d);
    std::map<std::string, std::string> owner;
    std::map<std::string, int> used;
    for (int round = 0; round < 3; ++round) {
        for (int user = 0; user < 30; ++user) {
            const std::string cookie = "Cookie: theme=dark; session_id=s" + std::to_string(user) +
                                       "; lang=en\r\n";
            auto res = s.exchange(request("GET", "/m", cookie));
            REQUIRE(res);
            REQUIRE(res->status == 200);
            const std::string who = res->header("X-Backend").value_or("?");
            if (round == 0) {
                owner[cookie] = who;
                ++used[who];
            }
            CHECK(owner[cookie] == who);
        }
    }
    INFO(describe(used));
    CHECK(used.size() >= 2);
}

TEST_CASE("least_request stops picking a backend whose requests do not finish", "[proxy]") {
    Backend a("a"), b("b"), c("c");
    Blitzd d(config_for({&a, &b, &c}, R"("lb": "least_request")",
                        R"("per_try_timeout_ms": 20000, "retry": { "max_retries": 0 })")
                 .render());
    // A stopped backend's kernel still accepts connections and requests: they just never
    // finish, so its active request count only grows.
    b.pause();
    std::vector<Client> waiting;
    for (int i = 0; i < 60; ++i) {
        Client cl = d.connect();
        REQUIRE(cl.send(request("GET", "/lr" + std::to_string(i))));
        // One at a time: a request that is not answered soon is left waiting (on b, unless
        // the machine is slow) and the next one goes out.
        if (!cl.read_response(Millis(500))) {
            waiting.push_back(std::move(cl));
        }
    }
    b.resume();
    std::map<std::string, int> late;
    for (auto& cl : waiting) {
        auto res = cl.read_response(Millis(3000));
        REQUIRE(res);
        ++late[res->header("X-Backend").value_or("?")];
    }
    INFO("answered late: " << describe(late));
    // Round robin would send b 20 of them. Power of two choices compares two distinct
    // endpoints, so once b holds one request it loses every comparison to an idle one.
    CHECK(b.requests().size() <= 2);
    CHECK(a.requests().size() + c.requests().size() >= 58);
}

TEST_CASE("health checks take a failing backend out and bring it back", "[proxy]") {
    Backend a("a"), b("b"), c("c");
    Blitzd d(config_for({&a, &b, &c},
                        R"("health_check": { "path": "/health", "interval_ms": 100,
                             "timeout_ms": 500, "jitter_percent": 0,
                             "unhealthy_threshold": 2, "healthy_threshold": 2 },
                           "outlier_detection": { "enabled": false })")
                 .render());
    Session s(d);
    REQUIRE(reaches(s, "b", Millis(2000)));
    REQUIRE(post_to(b, "/__health/fail"));
    // Two failed checks 100 ms apart: well within 3 s.
    CHECK(stops_reaching(s, "b", 60, Millis(3000)));
    REQUIRE(post_to(b, "/__health/ok"));
    CHECK(reaches(s, "b", Millis(3000)));
    // The checks are real requests: GET of the configured path.
    std::size_t checks = 0;
    for (const auto& r : b.requests()) {
        checks += r.method == "GET" && r.target == "/health" ? 1 : 0;
    }
    CHECK(checks >= 4);
}

TEST_CASE("health checks mark a killed backend down and a restarted one up", "[proxy]") {
    Backend a("a");
    auto b = std::make_unique<Backend>("b");
    const std::uint16_t b_port = b->port();
    // No retries and no outlier detection: only the health checks can keep requests away.
    Blitzd d(config_for({&a, b.get()},
                        R"("health_check": { "path": "/health", "interval_ms": 100,
                             "timeout_ms": 300, "jitter_percent": 0,
                             "unhealthy_threshold": 2, "healthy_threshold": 2 },
                           "outlier_detection": { "enabled": false })",
                        R"("retry": { "max_retries": 0 })")
                 .render());
    Session s(d);
    REQUIRE(reaches(s, "b", Millis(2000)));
    b->kill();
    CHECK(stops_reaching(s, "b", 40, Millis(3000)));
    b = std::make_unique<Backend>("b", std::vector<std::string>{}, b_port);
    CHECK(reaches(s, "b", Millis(3000)));
}

// The reverse proxy when upstreams fail: a backend killed under load, slow backends and the
// timeouts, resets before and during the response and which requests are retried, the
// keep-alive race, the circuit breaker, and clusters with nothing to send to.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

ProxyConfig config_for(const std::vector<const Backend*>& backends,
                       const std::string& upstream_extra, const std::string& proxy_extra = "") {
    ProxyConfig c;
    c.upstreams = R"([{ "name": "u", "endpoints": )" + endpoint_list(backends) +
                  (upstream_extra.empty() ? "" : ", " + upstream_extra) + " }]";
    c.routes = R"([{ "match": { "path_prefix": "/" }, "proxy": { "upstream": "u")" +
               (proxy_extra.empty() ? "" : ", " + proxy_extra) + " } }]";
    return c;
}

Response must_answer(Client& c, const std::string& raw, Millis timeout = Millis(5000)) {
    INFO("request: " << raw);
    REQUIRE(c.send(raw));
    auto res = c.read_response(timeout);
    INFO("received: " << c.transcript());
    REQUIRE(res);
    return *res;
}

Response must_answer(const Server& server, const std::string& raw, Millis timeout = Millis(5000)) {
    Client c = server.connect();
    return must_answer(c, raw, timeout);
}

std::size_t logged_count(const std::vector<const Backend*>& backends, std::string_view target) {
    std::size_t n = 0;
    for (const Backend* b : backends) {
        for (const auto& r : b->requests()) {
            n += r.target == target ? 1 : 0;
        }
    }
    return n;
}

std::string all_lines(const std::vector<const Backend*>& backends) {
    std::string s;
    for (const Backend* b : backends) {
        for (const auto& r : b->requests()) {
            s += b->name() + ": " + r.line + "\n";
        }
    }
    return s;
}

/// Checks the shape of an error blitzd made itself: a short JSON body whose cause is also in
/// X-Blitz-Error.
void check_proxy_error(const Response& res, int status, std::string_view cause) {
    INFO(res.head_text() << res.body);
    CHECK(res.status == status);
    CHECK(res.header("X-Blitz-Error") == std::string(cause));
    CHECK(res.header("Content-Type").value_or("").rfind("application/json", 0) == 0);
    auto body = parse_json(res.body);
    REQUIRE(body);
    REQUIRE(body->get("error"));
    CHECK_FALSE(body->get("error")->string.empty());
    REQUIRE(body->get("cause"));
    CHECK(body->get("cause")->string == std::string(cause));
}

double elapsed_ms(Clock::time_point since) {
    return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

}  // namespace

TEST_CASE("blitzd loses at most 0.1% of requests when a backend is killed under load",
          "[proxy]") {
    Backend a("a"), b("b"), c("c");
    Blitzd d(config_for({&a, &b, &c},
                        R"("pool": { "connect_timeout_ms": 500 },
                           "outlier_detection": { "consecutive_gateway_failures": 2,
                                                  "base_ejection_ms": 30000 })",
                        R"("retry": { "max_retries": 2,
                                      "on": ["connect_failure", "reset", "per_try_timeout", "gateway_error"] })")
                 .render());
    constexpr int kThreads = 4;
    constexpr int kPerThread = 500;
    std::atomic<int> done{0};
    std::atomic<int> ok{0};
    std::mutex failures_mutex;
    std::vector<std::string> failures;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            Session s(d);
            for (int i = 0; i < kPerThread; ++i) {
                auto res = s.exchange(request("GET", "/load?t=" + std::to_string(t) + "&i=" +
                                                         std::to_string(i)));
                if (res && res->status == 200) {
                    ++ok;
                } else {
                    std::lock_guard lock(failures_mutex);
                    failures.push_back(res ? res->head_text() + res->body : "no response");
                }
                ++done;
            }
        });
    }
    // Kill b a quarter of the way through, while requests to it are in flight.
    Deadline deadline(Millis(20'000));
    while (done < kThreads * kPerThread / 4 && !deadline.expired()) {
        std::this_thread::sleep_for(Millis(1));
    }
    const int killed_at = done;
    b.kill();
    for (auto& th : threads) {
        th.join();
    }
    std::string sample;
    for (std::size_t i = 0; i < std::min<std::size_t>(failures.size(), 3); ++i) {
        sample += failures[i] + "\n";
    }
    INFO("killed after " << killed_at << " requests; " << failures.size() << " failed:\n"
                         << sample);
    CHECK(killed_at < kThreads * kPerThread / 2);
    CHECK(b.requests().size() > 0);
    CHECK(ok >= kThreads * kPerThread * 999 / 1000);
}

TEST_CASE("blitzd answers 504 when an attempt outlives per_try_timeout_ms", "[proxy]") {
    Backend a("a");
    Blitzd d(config_for({&a}, "", R"("per_try_timeout_ms": 300, "retry": { "max_retries": 0 })")
                 .render());
    const auto start = Clock::now();
    Response res = must_answer(d, request("GET", "/?delay_ms=3000"));
    const double ms = elapsed_ms(start);
    check_proxy_error(res, 504, "upstream_timeout");
    INFO("answered after " << ms << " ms");
    CHECK(ms >= 290);
    CHECK(ms < 900);
}

TEST_CASE("blitzd answers 504 when the exchange outlives timeout_ms", "[proxy]") {
    Backend a("a"), b("b");
    Blitzd d(config_for({&a, &b}, "",
                        R"("timeout_ms": 500, "per_try_timeout_ms": 200,
                           "retry": { "max_retries": 10, "on": ["per_try_timeout"],
                                      "backoff_base_ms": 0, "backoff_max_ms": 0 })")
                 .render());
    const auto start = Clock::now();
    Response res = must_answer(d, request("GET", "/slow?delay_ms=3000"));
    const double ms = elapsed_ms(start);
    INFO("answered after " << ms << " ms");
    CHECK(res.status == 504);
    CHECK(res.header("X-Blitz-Error").has_value());
    CHECK(ms >= 490);
    CHECK(ms < 1500);
    // Each try after a per-try timeout went to an endpoint.
    CHECK(logged_count({&a, &b}, "/slow?delay_ms=3000") >= 2);
}

TEST_CASE("blitzd retries a per-try timeout on another endpoint", "[proxy]") {
    Backend a("a"), b("b");
    Blitzd d(config_for({&a, &b}, "",
                        R"("per_try_timeout_ms": 250,
                           "retry": { "max_retries": 1, "on": ["per_try_timeout"] })")
                 .render());
    const auto start = Clock::now();
    Response res = must_answer(d, request("GET", "/t?delay_ms=2000"));
    const double ms = elapsed_ms(start);
    INFO("answered after " << ms << " ms");
    check_proxy_error(res, 504, "upstream_timeout");
    CHECK(ms >= 490);
    CHECK(ms < 1500);
    CHECK(a.requests().size() == 1);
    CHECK(b.requests().size() == 1);
}

TEST_CASE("blitzd does not retry a POST that the upstream reset before answering", "[proxy]") {
    Backend a("a"), b("b");
    Blitzd d(config_for({&a, &b}, "",
                        R"("retry": { "max_retries": 1, "on": ["reset", "connect_failure"] })")
                 .render());
    SECTION("POST: one attempt, then 502") {
        Response res = must_answer(d, request("POST", "/r?reset=headers", "", "payload"));
        check_proxy_error(res, 502, "upstream_reset");
        INFO(all_lines({&a, &b}));
        CHECK(logged_count({&a, &b}, "/r?reset=headers") == 1);
    }
    SECTION("PUT is idempotent: retried on the other endpoint") {
        Response res = must_answer(d, request("PUT", "/r?reset=headers", "", "payload"));
        CHECK(res.status == 502);
        INFO(all_lines({&a, &b}));
        CHECK(a.requests().size() == 1);
        CHECK(b.requests().size() == 1);
    }
    SECTION("POST with an Idempotency-Key is retried") {
        Response res = must_answer(
            d, request("POST", "/r?reset=headers", "Idempotency-Key: k-1\r\n", "payload"));
        CHECK(res.status == 502);
        INFO(all_lines({&a, &b}));
        CHECK(logged_count({&a, &b}, "/r?reset=headers") == 2);
    }
}

TEST_CASE("blitzd never retries once the response has started", "[proxy]") {
    Backend a("a"), b("b");
    Blitzd d(config_for({&a, &b}, "",
                        R"("retry": { "max_retries": 2, "on": ["reset", "5xx"] })")
                 .render());
    // The backend sends the head and half the body, then resets. A small body is all sent
    // before the reset arrives; a large one may still be queued in blitzd.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"GET", "/cut?reset=body&bytes=2000"},
        {"POST", "/cut?reset=body&bytes=2000&post=1"},
        {"GET", "/cut?reset=body&bytes=200000&chunked=1"},
    };
    for (const auto& [method, target] : cases) {
        Client c = d.connect();
        REQUIRE(c.send(request(method, target, "", "x")));
        auto res = c.read_response(Millis(2000));
        INFO(method << " " << target << " received " << c.transcript().size()
                    << " bytes: " << c.transcript().substr(0, 300));
        // The client must see a cut message, never one that looks complete, and the
        // connection must close: a client reading up to Content-Length would wait forever.
        CHECK_FALSE(res);
        CHECK(c.transcript().rfind("HTTP/1.1 200", 0) == 0);
        CHECK(c.wait_closed(Millis(2000)));
        INFO(all_lines({&a, &b}));
        CHECK(logged_count({&a, &b}, target) == 1);
    }
}

TEST_CASE("blitzd closes the client connection when the upstream dies mid-response",
          "[proxy]") {
    Backend a("a");
    Blitzd d(config_for({&a}, "").render());
    Client c = d.connect();
    // 100 bytes every 50 ms: the response is still streaming when the backend dies.
    REQUIRE(c.send(request("GET", "/stream?bytes=100000&chunked=1&chunk=100&chunk_delay_ms=50")));
    REQUIRE(c.read_until("\r\n\r\n"));
    REQUIRE(c.read_until("vwxyz", Millis(2000)));
    a.kill();
    const auto start = Clock::now();
    const bool closed = c.wait_closed(Millis(2000));
    INFO("received " << c.transcript().size() << " bytes; closed after " << elapsed_ms(start)
                     << " ms: " << c.transcript().substr(0, 300));
    CHECK(closed);
    // Cut before the last chunk: the client can tell.
    CHECK(c.transcript().find("\r\n0\r\n\r\n") == std::string::npos);
}

TEST_CASE("blitzd retries a 503 from one endpoint on the other for GET only", "[proxy]") {
    Backend a("a"), b("b");
    Blitzd d(config_for({&a, &b}, R"("outlier_detection": { "enabled": false })").render());
    Response get = must_answer(d, request("GET", "/s?status=503"));
    // Both answered 503: the client gets the last upstream answer, not a made-up one.
    CHECK(get.status == 503);
    CHECK(a.requests().size() == 1);
    CHECK(b.requests().size() == 1);
    Response post = must_answer(d, request("POST", "/p?status=503", "", "x"));
    CHECK(post.status == 503);
    CHECK(logged_count({&a, &b}, "/p?status=503") == 1);
}

TEST_CASE("blitzd retries a GET reset by one upstream on another upstream", "[proxy]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    Backend a("a");
    Nginx n(R"(    location / { return 200 "nginx\n"; })");
    ProxyConfig cfg;
    cfg.upstreams = R"([{ "name": "u", "lb": "round_robin", "endpoints": [")" + a.address() +
                    R"(", ")" + n.address() + R"("] }])";
    cfg.routes = R"([{ "match": { "path_prefix": "/" }, "upstream": "u" }])";
    Blitzd d(cfg.render());
    Session s(d);
    for (int i = 0; i < 10; ++i) {
        auto res = s.exchange(request("GET", "/?reset=headers"));
        INFO("request " << i);
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == "nginx\n");
    }
    // Round robin sent about half of them to the backend first (until outlier detection
    // ejected it); each of those was retried on nginx.
    CHECK(a.requests().size() >= 3);
}

TEST_CASE("blitzd resends a request that lost the keep-alive race on a new connection",
          "[proxy]") {
    Backend a("a");
    auto check_race = [&a](const Server& d) {
        Session s(d);
        auto first = s.exchange(request("GET", "/?reset=next"));
        REQUIRE(first);
        CHECK(first->status == 200);
        auto second = s.exchange(request("GET", "/second"), Millis(3000));
        INFO(all_lines({&a}));
        REQUIRE(second);
        CHECK(second->status == 200);
        CHECK(second->body == "a\n");
        auto log = a.requests();
        REQUIRE(log.size() == 3);
        // The second request reached the pooled connection (and was reset there) ...
        CHECK(log[1].target == "/second");
        CHECK(log[1].conn == log[0].conn);
        CHECK(log[1].seq == 2);
        // ... and was answered on a new one.
        CHECK(log[2].target == "/second");
        CHECK(log[2].conn != log[0].conn);
        CHECK(log[2].seq == 1);
    };
    SECTION("with the default retry policy") {
        Blitzd d(config_for({&a}, "").render());
        check_race(d);
    }
    SECTION("with retries turned off") {
        // Only the keep-alive race rule may send the request again (docs/config.md: "regardless
        // of this policy").
        Blitzd d(config_for({&a}, "", R"("retry": { "max_retries": 0 })").render());
        check_race(d);
    }
}

TEST_CASE("blitzd does not reuse a pooled connection the upstream has closed", "[proxy]") {
    // The backend closes idle connections after 150 ms, well before the pool's idle timeout.
    Backend a("a", {"--idle-timeout-ms", "150"});
    Blitzd d(config_for({&a}, "", R"("retry": { "max_retries": 0 })").render());
    Session s(d);
    auto first = s.exchange(request("POST", "/echo", "", "one"));
    REQUIRE(first);
    CHECK(first->body == "one");
    // Let the backend's idle close arrive: the test is about what happens after it.
    std::this_thread::sleep_for(Millis(500));
    // A POST is never resent, so only a check before reuse can make it succeed.
    auto second = s.exchange(request("POST", "/echo", "", "two"));
    REQUIRE(second);
    INFO(second->head_text() << second->body);
    CHECK(second->status == 200);
    CHECK(second->body == "two");
    auto log = a.requests();
    INFO(all_lines({&a}));
    REQUIRE(log.size() == 2);
    CHECK(log[1].conn != log[0].conn);
}

TEST_CASE("the circuit breaker answers 503 at once while max_requests are in flight",
          "[proxy]") {
    Backend a("a");
    Blitzd d(config_for({&a}, R"("circuit_breaker": { "max_requests": 1 })").render());
    Client hanging = d.connect();
    REQUIRE(hanging.send(request("GET", "/hang?hang=1")));
    REQUIRE(a.wait_for_requests(1));

    const auto start = Clock::now();
    Response res = must_answer(d, request("GET", "/second"));
    check_proxy_error(res, 503, "overflow");
    CHECK(elapsed_ms(start) < 1000);
    CHECK(a.requests().size() == 1);

    // The hanging request ends when its client goes away; then requests flow again.
    hanging.close();
    Deadline deadline(Millis(3000));
    bool recovered = false;
    while (!recovered && !deadline.expired()) {
        Client c = d.connect();
        if (c.send(request("GET", "/third"))) {
            auto r = c.read_response();
            recovered = r && r->status == 200;
        }
    }
    CHECK(recovered);
}

TEST_CASE("blitzd answers with a JSON error when no endpoint can be reached", "[proxy]") {
    ProxyConfig cfg;
    // Ports that were free a moment ago: connecting to them is refused.
    cfg.upstreams = R"([{ "name": "u", "endpoints": ["127.0.0.1:)" + std::to_string(free_loopback_port()) +
                    R"(", "127.0.0.1:)" + std::to_string(free_loopback_port()) + R"("] }])";
    cfg.routes = R"([{ "match": { "path_prefix": "/" }, "upstream": "u" }])";
    Blitzd d(cfg.render());
    Session s(d);
    for (int i = 0; i < 10; ++i) {
        const auto start = Clock::now();
        auto res = s.exchange(request("GET", "/down"), Millis(3000));
        INFO("request " << i);
        REQUIRE(res);
        INFO(res->head_text() << res->body);
        CHECK((res->status == 502 || res->status == 503));
        const auto cause = res->header("X-Blitz-Error");
        REQUIRE(cause);
        check_proxy_error(*res, res->status, *cause);
        CHECK(elapsed_ms(start) < 2000);
    }
}

TEST_CASE("blitzd answers 503 when health checks mark every endpoint down and panic mode is off",
          "[proxy]") {
    Backend a("a"), b("b");
    Blitzd d(config_for({&a, &b},
                        R"("panic_threshold_percent": 0,
                           "health_check": { "path": "/health", "interval_ms": 100,
                             "jitter_percent": 0, "unhealthy_threshold": 1 })")
                 .render());
    for (const Backend* be : {&a, &b}) {
        CommandResult r = curl({"-X", "POST", "-o", "/dev/null", "-w", "%{http_code}",
                                be->url("/__health/fail")});
        REQUIRE(r.out == "200");
    }
    Session s(d);
    Deadline deadline(Millis(3000));
    std::optional<Response> last;
    while (!deadline.expired()) {
        last = s.exchange(request("GET", "/all-down"));
        if (last && last->status != 200) {
            break;
        }
    }
    REQUIRE(last);
    check_proxy_error(*last, 503, "no_healthy_upstream");
}

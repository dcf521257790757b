// RLIMIT_NOFILE: the target rule on made-up limits, the real process limit lowered by the test
// and raised by the code under test, and the estimate from listener and upstream limits.
#include "server/fd_limit.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

using blitz::ListenerOptions;
using blitz::UpstreamOptions;
using blitz::server::estimate_fd_need;
using blitz::server::fd_limit_target;
using blitz::server::kProcessFds;
using blitz::server::kReactorFds;
using blitz::server::kUnknownNeedFdCeiling;
using blitz::server::raise_fd_limit;
using Catch::Matchers::ContainsSubstring;

namespace {

constexpr std::uint64_t kInfinity = std::numeric_limits<std::uint64_t>::max();

rlimit current() {
    rlimit lim{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
    return lim;
}

std::uint64_t hard_limit() {
    const rlimit lim = current();
    return lim.rlim_max == RLIM_INFINITY ? kInfinity : static_cast<std::uint64_t>(lim.rlim_max);
}

/// Lowers the soft limit for one test and puts the original back afterwards (the hard limit is
/// never touched: lowering it could not be undone without privileges).
class SoftLimit {
public:
    explicit SoftLimit(rlim_t soft) : saved_(current()) {
        rlimit lim = saved_;
        lim.rlim_cur = soft;
        REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
    }
    SoftLimit(const SoftLimit&) = delete;
    SoftLimit& operator=(const SoftLimit&) = delete;
    ~SoftLimit() { ::setrlimit(RLIMIT_NOFILE, &saved_); }

private:
    rlimit saved_;
};

std::uint64_t soft_now() {
    const rlimit lim = current();
    return lim.rlim_cur == RLIM_INFINITY ? kInfinity : static_cast<std::uint64_t>(lim.rlim_cur);
}

ListenerOptions listener(std::uint32_t max_connections, bool http2 = false) {
    ListenerOptions l;
    l.max_connections = max_connections;
    l.http2.enabled = http2;
    return l;
}

UpstreamOptions upstream(std::uint32_t breaker, std::uint32_t idle, std::size_t endpoints) {
    UpstreamOptions u;
    u.name = "u";
    u.circuit_breaker.max_connections = breaker;
    u.pool.max_idle_per_endpoint = idle;
    for (std::size_t i = 0; i < endpoints; ++i) {
        u.endpoints.push_back({.address = "127.0.0.1:" + std::to_string(8000 + i)});
    }
    return u;
}

std::uint64_t need(unsigned reactors, const std::vector<ListenerOptions>& ls,
                   const std::vector<UpstreamOptions>& us) {
    std::vector<const ListenerOptions*> lp;
    for (const ListenerOptions& l : ls) {
        lp.push_back(&l);
    }
    std::vector<const UpstreamOptions*> up;
    for (const UpstreamOptions& u : us) {
        up.push_back(&u);
    }
    return estimate_fd_need(reactors, lp, up);
}

}  // namespace

TEST_CASE("server::fd_limit_target raises to the need, capped at the hard limit, never lower",
          "[server][fd_limit]") {
    CHECK(fd_limit_target(1024, 524288, 20000) == 20000);
    CHECK(fd_limit_target(1024, 4096, 20000) == 4096);
    CHECK(fd_limit_target(1024, 524288, 100) == 1024);
    CHECK(fd_limit_target(65536, 524288, 20000) == 65536);
    CHECK(fd_limit_target(1024, 1024, 20000) == 1024);
    // A known need above the ceiling for unknown needs is still met.
    CHECK(fd_limit_target(1024, std::uint64_t{1} << 30, 3'000'000) == 3'000'000);
    CHECK(fd_limit_target(1024, kInfinity, 3'000'000) == 3'000'000);
}

TEST_CASE("server::fd_limit_target raises an unknown need to the hard limit, at most 2^20",
          "[server][fd_limit]") {
    CHECK(kUnknownNeedFdCeiling == 1'048'576);
    CHECK(fd_limit_target(1024, 524288, 0) == 524288);
    CHECK(fd_limit_target(1024, std::uint64_t{1} << 30, 0) == kUnknownNeedFdCeiling);
    CHECK(fd_limit_target(1024, kInfinity, 0) == kUnknownNeedFdCeiling);
    // A soft limit already above the ceiling is kept.
    CHECK(fd_limit_target(std::uint64_t{1} << 21, std::uint64_t{1} << 30, 0) ==
          std::uint64_t{1} << 21);
}

TEST_CASE("server::raise_fd_limit raises a lowered soft limit to what is needed",
          "[server][fd_limit]") {
    const std::uint64_t hard = hard_limit();
    if (hard < 1000) {
        SKIP("hard RLIMIT_NOFILE " << hard << " is too low for this test");
    }
    const SoftLimit low(256);
    const auto r = raise_fd_limit(1000);
    CHECK(r.before == 256);
    CHECK(r.after == 1000);
    CHECK(r.hard == hard);
    CHECK(r.needed == 1000);
    CHECK_FALSE(r.short_of_need);
    CHECK(r.error == 0);
    CHECK(soft_now() == 1000);
    CHECK_THAT(describe(r), ContainsSubstring("raised from 256 to 1000"));
    CHECK_THAT(describe(r), ContainsSubstring("need about 1000"));

    // Called again with a smaller need (a reload), it keeps the higher limit.
    const auto again = raise_fd_limit(500);
    CHECK(again.before == 1000);
    CHECK(again.after == 1000);
    CHECK_FALSE(again.short_of_need);
    CHECK(soft_now() == 1000);
    CHECK_THAT(describe(again), ContainsSubstring("is 1000"));
}

TEST_CASE("server::raise_fd_limit lets the process open descriptors it could not before",
          "[server][fd_limit]") {
    if (hard_limit() < 256) {
        SKIP("hard RLIMIT_NOFILE is below 256");
    }
    const SoftLimit low(64);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(null_fd >= 0);
    std::vector<int> fds;
    const auto close_all = [&fds] {
        for (int fd : fds) {
            ::close(fd);
        }
        fds.clear();
    };
    // Catch2 and the C library hold a few descriptors, so 100 dups exceed a limit of 64.
    int last = 0;
    for (int i = 0; i < 100 && last >= 0; ++i) {
        last = ::dup(null_fd);
        if (last >= 0) {
            fds.push_back(last);
        }
    }
    const int dup_errno = errno;
    close_all();
    REQUIRE(last < 0);
    CHECK(dup_errno == EMFILE);

    CHECK(raise_fd_limit(256).after == 256);
    for (int i = 0; i < 100; ++i) {
        last = ::dup(null_fd);
        if (last < 0) {
            break;
        }
        fds.push_back(last);
    }
    close_all();
    ::close(null_fd);
    CHECK(last >= 0);
}

TEST_CASE("server::raise_fd_limit reports a need beyond the hard limit as a shortfall",
          "[server][fd_limit]") {
    const std::uint64_t hard = hard_limit();
    if (hard == kInfinity) {
        SKIP("the hard RLIMIT_NOFILE is unlimited: no need exceeds it");
    }
    const SoftLimit low(static_cast<rlim_t>(std::min<std::uint64_t>(hard, 256)));
    const auto r = raise_fd_limit(hard + 1);
    CHECK(r.after == hard);
    CHECK(soft_now() == hard);
    CHECK(r.short_of_need);
    CHECK(r.error == 0);
    CHECK_THAT(describe(r), ContainsSubstring("need about " + std::to_string(hard + 1)));
    CHECK_THAT(describe(r), ContainsSubstring("raise the hard limit"));
}

TEST_CASE("server::raise_fd_limit raises an unknown need to the hard limit, at most 2^20",
          "[server][fd_limit]") {
    const std::uint64_t hard = hard_limit();
    if (hard <= 256) {
        SKIP("hard RLIMIT_NOFILE is 256 or less");
    }
    const SoftLimit low(256);
    const auto r = raise_fd_limit(0);
    CHECK(r.before == 256);
    CHECK(r.after == std::min(hard, kUnknownNeedFdCeiling));
    CHECK(soft_now() == r.after);
    CHECK_FALSE(r.short_of_need);
    CHECK_THAT(describe(r), ContainsSubstring("a listener has no max_connections"));
}

TEST_CASE("server::estimate_fd_need is unknown when a listener has no connection limit",
          "[server][fd_limit]") {
    CHECK(need(4, {listener(1000), listener(0)}, {}) == 0);
    CHECK(need(4, {listener(0)}, {upstream(1024, 64, 1)}) == 0);
}

TEST_CASE("server::estimate_fd_need counts reactors, listening sockets and connections",
          "[server][fd_limit]") {
    // No upstream: downstream connections and the fixed descriptors only.
    CHECK(need(4, {listener(1000), listener(500)}, {}) ==
          kProcessFds + 4 * (kReactorFds + 2) + 1500);
    CHECK(need(1, {}, {}) == kProcessFds + kReactorFds);
    // 0 reactors reads as one.
    CHECK(need(0, {listener(10)}, {}) == kProcessFds + kReactorFds + 1 + 10);
}

TEST_CASE("server::estimate_fd_need bounds upstream connections by the circuit breakers",
          "[server][fd_limit]") {
    const std::uint64_t fixed = kProcessFds + 4 * (kReactorFds + 1);
    // 10000 downstream connections could hold 10000 upstream ones; the breaker allows 1024.
    CHECK(need(4, {listener(10000)}, {upstream(1024, 64, 2)}) == fixed + 10000 + 1024);
    // Each reactor's share is rounded up: 1025 over 4 reactors is 257 each.
    CHECK(need(4, {listener(10000)}, {upstream(1025, 64, 2)}) == fixed + 10000 + 4 * 257);
    // Breakers add up over upstreams.
    CHECK(need(4, {listener(10000)}, {upstream(1024, 64, 2), upstream(100, 64, 2)}) ==
          fixed + 10000 + 1024 + 100);
}

TEST_CASE("server::estimate_fd_need bounds upstream connections by what can be held or pooled",
          "[server][fd_limit]") {
    const std::uint64_t fixed = kProcessFds + 2 * (kReactorFds + 1);
    // 10 HTTP/1.1 connections hold at most 10 upstream ones; the pools keep up to 64 idle per
    // endpoint and reactor: 64 × 3 × 2 = 384.
    CHECK(need(2, {listener(10)}, {upstream(5000, 64, 3)}) == fixed + 10 + 10 + 384);
    // Over HTTP/2 each of 100 concurrent streams may hold one.
    ListenerOptions h2 = listener(10, true);
    h2.http2.max_concurrent_streams = 100;
    CHECK(need(2, {h2}, {upstream(5000, 0, 3)}) == fixed + 10 + 1000);
    // Health checks take a socket per endpoint.
    UpstreamOptions checked = upstream(5000, 0, 3);
    checked.health_check.enabled = true;
    CHECK(need(2, {listener(10)}, {checked}) == fixed + 10 + 10 + 3);
}

TEST_CASE("server::estimate_fd_need saturates instead of wrapping", "[server][fd_limit]") {
    // What 2^32 - 1 HTTP/2 connections of 2^32 - 1 streams could hold, plus 2^33 idle pooled
    // connections, is past 2^64: wrapped, it would read as 1 and the breaker's bound (2^32)
    // would be lost.
    constexpr std::uint32_t kMax32 = std::numeric_limits<std::uint32_t>::max();
    ListenerOptions big = listener(kMax32, true);
    big.http2.max_concurrent_streams = kMax32;
    const UpstreamOptions u = upstream(kMax32, std::uint32_t{1} << 31, 1);
    CHECK(need(4, {big}, {u}) ==
          kProcessFds + 4 * (kReactorFds + 1) + kMax32 + (std::uint64_t{1} << 32));
}

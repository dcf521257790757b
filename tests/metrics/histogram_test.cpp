#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "metrics/histogram.hpp"

using blitz::metrics::Histogram;
using blitz::metrics::kExportBoundsMicros;

namespace {

constexpr std::size_t kLast = Histogram::kBuckets - 1;

// Nearest-rank q-quantile of sorted values: the smallest value with at least ceil(q * n)
// values at or below it.
double true_quantile(const std::vector<std::uint64_t>& sorted, double q) {
    auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
    rank = std::max<std::size_t>(rank, 1);
    return static_cast<double>(sorted[rank - 1]);
}

double relative_error(double estimate, double truth) {
    return truth == 0 ? std::abs(estimate) : std::abs(estimate - truth) / truth;
}

// Checks p50, p90, p99 and p99.9 of `values` against the exact ones; returns the worst error.
double check_quantiles(std::vector<std::uint64_t> values) {
    Histogram h;
    for (std::uint64_t v : values) {
        h.observe(v);
    }
    std::sort(values.begin(), values.end());
    const Histogram::Snapshot s = h.snapshot();
    double worst = 0;
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
        const double err = relative_error(s.quantile(q), true_quantile(values, q));
        INFO("q = " << q << " estimate " << s.quantile(q) << " truth " << true_quantile(values, q));
        CHECK(err <= Histogram::max_quantile_error() + 1e-12);
        worst = std::max(worst, err);
    }
    return worst;
}

}  // namespace

TEST_CASE("metrics::Histogram puts every fine-bucket edge in the bucket it opens", "[metrics]") {
    CHECK(Histogram::bucket_lower(0) == 0);
    CHECK(Histogram::bucket_of(0) == 0);
    for (std::size_t i = 1; i < Histogram::kBuckets; ++i) {
        const std::uint64_t lo = Histogram::bucket_lower(i);
        INFO("bucket " << i << " starts at " << lo);
        REQUIRE(lo > Histogram::bucket_lower(i - 1));
        CHECK(Histogram::bucket_of(lo) == i);
        CHECK(Histogram::bucket_of(lo - 1) == i - 1);
        CHECK(Histogram::bucket_upper(i - 1) == lo);
    }
    CHECK(Histogram::bucket_upper(kLast) == UINT64_MAX);
}

TEST_CASE("metrics::Histogram counts small values exactly and long ones in the last bucket",
          "[metrics]") {
    for (std::uint64_t v = 0; v < 8; ++v) {
        CHECK(Histogram::bucket_of(v) == v);
        CHECK(Histogram::bucket_upper(v) == v + 1);
    }
    CHECK(Histogram::bucket_lower(8) == 8);
    CHECK(Histogram::bucket_lower(9) == 10);
    // The last octave before the overflow bucket is [2^26, 2^27) µs.
    CHECK(Histogram::bucket_of((1u << 26) - 1) == kLast - 5);
    CHECK(Histogram::bucket_of(1u << 26) == kLast - 4);
    CHECK(Histogram::bucket_of((1u << 27) - 1) == kLast - 1);
    CHECK(Histogram::bucket_of(1u << 27) == kLast);
    CHECK(Histogram::bucket_of(std::uint64_t{1} << 40) == kLast);
    CHECK(Histogram::bucket_of(UINT64_MAX) == kLast);
}

TEST_CASE("metrics::Histogram has a fine-bucket edge right above every exported bound",
          "[metrics]") {
    Histogram h;
    for (std::size_t j = 0; j < kExportBoundsMicros.size(); ++j) {
        const std::uint64_t b = kExportBoundsMicros[j];
        INFO("bound " << b);
        CHECK(Histogram::bucket_lower(Histogram::bucket_of(b + 1)) == b + 1);
        h.observe(b);
        h.observe(b + 1);
    }
    const Histogram::Snapshot s = h.snapshot();
    // Each bound counts itself and everything below, but not bound + 1.
    for (std::size_t j = 0; j < kExportBoundsMicros.size(); ++j) {
        CHECK(s.count_at_most_export_bound(j) == 2 * j + 1);
    }
}

TEST_CASE("metrics::Histogram is small and splits octaves finely enough for 14% quantiles",
          "[metrics]") {
    CHECK(sizeof(Histogram) == (Histogram::kBuckets + 1) * sizeof(std::uint64_t));
    CHECK(sizeof(Histogram) <= 1024);
    CHECK(Histogram::max_quantile_error() < 0.14);
    CHECK(Histogram::max_quantile_error() > 0.11);  // four buckets per octave, not more
    // No bucket from 8 µs on is wider than a third of its lower bound.
    for (std::size_t i = 8; i < kLast; ++i) {
        const auto lo = static_cast<double>(Histogram::bucket_lower(i));
        CHECK((static_cast<double>(Histogram::bucket_upper(i)) - lo) / lo < 1.0 / 3);
    }
}

TEST_CASE("metrics::Histogram estimates any single value within the documented error",
          "[metrics]") {
    for (std::size_t i = 0; i < kLast; ++i) {
        for (std::uint64_t v : {Histogram::bucket_lower(i), Histogram::bucket_upper(i) - 1}) {
            Histogram h;
            h.observe(v);
            INFO("value " << v);
            CHECK(relative_error(h.snapshot().quantile(0.5), static_cast<double>(v)) <=
                  Histogram::max_quantile_error() + 1e-12);
        }
    }
}

TEST_CASE("metrics::Histogram snapshot counts, sums and merges over reactors", "[metrics]") {
    Histogram a;
    Histogram b;
    a.observe(10);
    a.observe(10);
    a.observe(2'000);
    b.observe(10);
    b.observe(1u << 30);
    Histogram::Snapshot s = a.snapshot();
    CHECK(s.count() == 3);
    CHECK(s.sum_micros == 2'020);
    CHECK(s.counts[Histogram::bucket_of(10)] == 2);
    b.merge_into(s);
    CHECK(s.count() == 5);
    CHECK(s.sum_micros == 2'030 + (std::uint64_t{1} << 30));
    CHECK(s.counts[Histogram::bucket_of(10)] == 3);
    CHECK(s.counts[kLast] == 1);

    Histogram::Snapshot t = b.snapshot();
    t.merge(a.snapshot());
    CHECK(t.counts == s.counts);
    CHECK(t.sum_micros == s.sum_micros);
}

TEST_CASE("metrics::Histogram quantile handles empty snapshots and clamps q", "[metrics]") {
    Histogram h;
    CHECK(h.snapshot().quantile(0.5) == 0);
    for (std::uint64_t v = 1; v <= 4; ++v) {
        h.observe(v);
    }
    const Histogram::Snapshot s = h.snapshot();
    CHECK(s.quantile(0) == 1);
    CHECK(s.quantile(-3) == 1);
    CHECK(s.quantile(0.5) == 2);
    CHECK(s.quantile(0.51) == 3);
    CHECK(s.quantile(1) == 4);
    CHECK(s.quantile(7) == 4);
    CHECK(s.quantile(std::nan("")) == 1);
    Histogram huge;
    huge.observe(1u << 28);
    CHECK(huge.snapshot().quantile(0.99) == static_cast<double>(1u << 27));
}

TEST_CASE("metrics::Histogram quantiles of known distributions are within 14%", "[metrics]") {
    SECTION("uniform from 1 ms to 9 ms") {
        std::vector<std::uint64_t> v;
        for (std::uint64_t x = 1'000; x <= 9'000; ++x) {
            v.push_back(x);
        }
        CHECK(check_quantiles(v) < 0.14);
    }
    SECTION("exponential with a 2 ms mean") {
        // Evenly spaced points of the inverse CDF: the sample has exactly this distribution.
        std::vector<std::uint64_t> v;
        const int n = 100'000;
        for (int i = 0; i < n; ++i) {
            const double u = (i + 0.5) / n;
            v.push_back(static_cast<std::uint64_t>(-2'000.0 * std::log(1 - u)));
        }
        CHECK(check_quantiles(v) < 0.14);
    }
    SECTION("log-normal around 5 ms spanning many octaves") {
        std::mt19937_64 rng(42);
        std::lognormal_distribution<double> d(std::log(5'000.0), 1.5);
        std::vector<std::uint64_t> v;
        for (int i = 0; i < 200'000; ++i) {
            v.push_back(static_cast<std::uint64_t>(d(rng)));
        }
        CHECK(check_quantiles(v) < 0.14);
    }
    SECTION("bimodal: fast cache hits and slow upstream calls") {
        std::mt19937_64 rng(7);
        std::normal_distribution<double> fast(300, 40);
        std::normal_distribution<double> slow(40'000, 8'000);
        std::vector<std::uint64_t> v;
        for (int i = 0; i < 100'000; ++i) {
            const double x = i % 10 == 0 ? slow(rng) : fast(rng);
            v.push_back(static_cast<std::uint64_t>(std::max(x, 1.0)));
        }
        CHECK(check_quantiles(v) < 0.14);
    }
}

TEST_CASE("metrics::Histogram moves its observations into another and starts from zero",
          "[metrics]") {
    Histogram from;
    Histogram to;
    for (std::uint64_t v : {1u, 150u, 150u, 70'000u}) {
        from.observe(v);
    }
    to.observe(150);
    Histogram::Snapshot both = from.snapshot();
    to.merge_into(both);
    from.move_into(to);
    const Histogram::Snapshot moved = to.snapshot();
    CHECK(moved.counts == both.counts);
    CHECK(moved.sum_micros == both.sum_micros);
    CHECK(moved.count() == 5);
    CHECK(from.snapshot().count() == 0);
    CHECK(from.snapshot().sum_micros == 0);
}

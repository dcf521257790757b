#include <cmath>
#include <limits>

#include <catch2/catch_test_macros.hpp>

#include "trace/ids.hpp"
#include "trace/sampler.hpp"

using namespace blitz::trace;

namespace {

TraceId with_low(std::uint64_t low) {
    TraceId id{};
    id.b[0] = 0xaa;  // the high half plays no part in the decision
    for (int i = 15; i >= 8; --i) {
        id.b[i] = static_cast<std::uint8_t>(low);
        low >>= 8;
    }
    return id;
}

int sampled(const Sampler& s, int draws) {
    IdGenerator gen(1234);
    int n = 0;
    for (int i = 0; i < draws; ++i) {
        n += s.sample_ratio(gen.trace_id()) ? 1 : 0;
    }
    return n;
}

}  // namespace

TEST_CASE("trace::Sampler with ratio 0 samples no new trace and ratio 1 every one", "[trace]") {
    Sampler never(0.0);
    Sampler always(1.0);
    CHECK(sampled(never, 10000) == 0);
    CHECK(sampled(always, 10000) == 10000);
    CHECK_FALSE(never.sample_ratio(with_low(0)));
    CHECK(always.sample_ratio(with_low(~std::uint64_t{0})));
    // Out-of-range ratios clamp.
    CHECK(sampled(Sampler(-0.5), 1000) == 0);
    CHECK(sampled(Sampler(std::numeric_limits<double>::quiet_NaN()), 1000) == 0);
    CHECK(sampled(Sampler(7.0), 1000) == 1000);
}

TEST_CASE("trace::Sampler compares the low 8 bytes of the trace id with ratio * 2^64", "[trace]") {
    Sampler half(0.5);
    CHECK(half.sample_ratio(with_low(0)));
    CHECK(half.sample_ratio(with_low(0x7fffffffffffffff)));
    CHECK_FALSE(half.sample_ratio(with_low(0x8000000000000000)));
    CHECK_FALSE(half.sample_ratio(with_low(~std::uint64_t{0})));
    Sampler quarter(0.25);
    CHECK(quarter.sample_ratio(with_low(0x3fffffffffffffff)));
    CHECK_FALSE(quarter.sample_ratio(with_low(0x4000000000000000)));
}

TEST_CASE("trace::Sampler samples about the configured share of random trace ids", "[trace]") {
    constexpr int kDraws = 100000;
    int half = sampled(Sampler(0.5), kDraws);
    // Binomial(100000, 0.5): sd ~158; allow 5 sd.
    CHECK(std::abs(half - kDraws / 2) < 800);
    int one_percent = sampled(Sampler(0.01), kDraws);
    CHECK(one_percent > 800);
    CHECK(one_percent < 1200);
}

TEST_CASE("trace::Sampler follows the sampled flag of an incoming parent", "[trace]") {
    TraceParent sampled_parent{with_low(~std::uint64_t{0}), SpanId{{1, 2, 3, 4, 5, 6, 7, 8}},
                               kSampledFlag};
    TraceParent unsampled_parent = sampled_parent;
    unsampled_parent.flags = 0;
    Sampler never(0.0);
    Sampler always(1.0);
    CHECK(never.should_sample(&sampled_parent, sampled_parent.trace));
    CHECK_FALSE(always.should_sample(&unsampled_parent, unsampled_parent.trace));
    // Other flag bits do not count as sampled.
    unsampled_parent.flags = 0xfe;
    CHECK_FALSE(always.should_sample(&unsampled_parent, unsampled_parent.trace));
    // Without a parent the ratio decides.
    CHECK(always.should_sample(nullptr, with_low(5)));
    CHECK_FALSE(never.should_sample(nullptr, with_low(5)));
}

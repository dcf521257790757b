#include "trace/sampler.hpp"

namespace blitz::trace {

namespace {

constexpr double kTwoPow64 = 18446744073709551616.0;

}  // namespace

Sampler::Sampler(double ratio) noexcept : always_(ratio >= 1.0), threshold_(0) {
    // ratio * 2^64 is below 2^64 for every double ratio < 1, so the conversion is defined;
    // NaN and negative ratios compare false and keep threshold 0 (never sample).
    if (!always_ && ratio > 0.0) {
        threshold_ = static_cast<std::uint64_t>(ratio * kTwoPow64);
    }
}

bool Sampler::sample_ratio(const TraceId& trace) const noexcept {
    if (always_) {
        return true;
    }
    std::uint64_t v = 0;
    for (int i = 8; i < 16; ++i) {
        v = v << 8 | trace.b[i];
    }
    return v < threshold_;
}

bool Sampler::should_sample(const TraceParent* parent, const TraceId& trace) const noexcept {
    if (parent != nullptr) {
        return (parent->flags & kSampledFlag) != 0;
    }
    return sample_ratio(trace);
}

}  // namespace blitz::trace

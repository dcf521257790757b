#pragma once

#include <cstdint>

#include "trace/context.hpp"

namespace blitz::trace {

/// Decides whether a request's trace is recorded and exported: parent-based, like
/// OpenTelemetry's ParentBased(TraceIdRatioBased(ratio)) with its default delegates. With a
/// valid incoming traceparent the parent's sampled flag decides (a sampled parent is always
/// followed, an unsampled one never); without one the trace id decides by ratio, so every
/// gateway with the same ratio makes the same decision for the same trace.
///
/// Thread: immutable after construction; any thread. Lifetime: value type, kept with the
/// tracing configuration.
class Sampler {
public:
    /// `ratio` in [0, 1]: 0 (or less, or NaN) samples no new trace, 1 (or more) every one.
    explicit Sampler(double ratio) noexcept;

    /// The ratio decision for a new trace: the trace id's last 8 bytes read big-endian, below
    /// ratio * 2^64 (OpenTelemetry TraceIdRatioBased, whose ids are random in those bytes).
    bool sample_ratio(const TraceId& trace) const noexcept;
    /// The full decision: follows `parent`'s sampled flag when a parent is given, else
    /// sample_ratio(trace).
    bool should_sample(const TraceParent* parent, const TraceId& trace) const noexcept;

private:
    bool always_;
    std::uint64_t threshold_;  // sampled when below; unused when always_
};

}  // namespace blitz::trace

#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "trace/context.hpp"

namespace blitz::trace {

/// Length of a UUID in its text form, 8-4-4-4-12 hex digits (RFC 9562 §4).
inline constexpr std::size_t kUuidSize = 36;

/// Makes trace ids, span ids and request ids from xoshiro256** (a fast, non-cryptographic
/// PRNG: ids need to be unique and unpredictable enough not to collide, not secret), seeded
/// from getrandom(2). Never yields an all-zero (invalid) trace or span id.
///
/// Thread: one generator per reactor, used only by that reactor's thread. Lifetime: owned by
/// the reactor's tracing state.
class IdGenerator {
public:
    /// Seeds from getrandom(2) (falling back to the clock and the object's address when the
    /// kernel has no entropy source to offer, which only happens in odd sandboxes).
    IdGenerator() noexcept;
    /// Seeds deterministically, for tests and reproducible benchmarks.
    explicit IdGenerator(std::uint64_t seed) noexcept;

    /// A new random, non-zero trace id.
    TraceId trace_id() noexcept;
    /// A new random, non-zero span id.
    SpanId span_id() noexcept;
    /// Writes a new random UUID version 4 (RFC 9562 §5.4), lowercase, kUuidSize bytes, no
    /// terminator: for X-Request-Id.
    void request_id(std::span<char, kUuidSize> out) noexcept;
    /// The next 64 random bits.
    std::uint64_t next() noexcept;

private:
    void seed(std::uint64_t seed) noexcept;

    std::uint64_t s_[4];
};

}  // namespace blitz::trace

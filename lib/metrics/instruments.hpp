#pragma once

#include <atomic>
#include <cstdint>

/// Per-reactor metric instruments. Each instance has exactly one writer, the reactor thread that
/// owns it; the scrape runs on another thread and sums the instances of one metric over all
/// reactors. With a single writer, `v.store(v.load(relaxed) + n, relaxed)` is an exact update:
/// no other thread stores to v, so the load always returns the writer's own last store and
/// nothing is lost. It compiles to a plain load, add and store (no `lock` prefix, no cache-line
/// ping-pong between reactors), while the atomic type keeps concurrent reads well-defined: a
/// reader sees the old or the new value, never a torn one (aligned 8-byte accesses), and, by
/// coherence, never a value older than one it saw before, so counters never go backwards.
///
/// Layout advice for the engine: keep one reactor's instruments together in one per-reactor
/// block (aligned to 64 bytes) so that no two reactors write to the same cache line.
namespace blitz::metrics {

/// A monotonic count (Prometheus counter).
///
/// Thread: add() only on the owning reactor thread; value() from any thread. Lifetime: owned
/// by the reactor's metrics block; outlives every scrape. Not copyable or movable.
class Counter {
public:
    Counter() noexcept = default;
    Counter(const Counter&) = delete;
    Counter& operator=(const Counter&) = delete;

    /// Adds `n` (single writer: a plain load, add and store).
    void add(std::uint64_t n = 1) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    /// The current count (any thread).
    std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }
    /// Adds this count to `to` and zeroes it: a label value leaving its series hands its
    /// count to the overflow series (owning reactor only, both counters its own; scrapes see
    /// the move whole through the LabelCap generation).
    void move_into(Counter& to) noexcept {
        to.add(value());
        v_.store(0, std::memory_order_relaxed);
    }

private:
    std::atomic<std::uint64_t> v_{0};
};

/// A signed level such as in-flight requests (Prometheus gauge). Per-reactor values may be
/// negative when an increment and its decrement happen on different reactors; their sum over
/// all reactors is what is exported.
///
/// Thread: add(), sub() and set() only on the owning reactor thread; value() from any thread.
/// Lifetime: owned by the reactor's metrics block; outlives every scrape. Not copyable or
/// movable.
class Gauge {
public:
    Gauge() noexcept = default;
    Gauge(const Gauge&) = delete;
    Gauge& operator=(const Gauge&) = delete;

    /// Adds `n` (single writer: a plain load, add and store).
    void add(std::int64_t n = 1) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    /// Subtracts `n`.
    void sub(std::int64_t n = 1) noexcept {
        v_.store(v_.load(std::memory_order_relaxed) - n, std::memory_order_relaxed);
    }
    /// Replaces the value.
    void set(std::int64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
    /// The current value (any thread).
    std::int64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> v_{0};
};

}  // namespace blitz::metrics

#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace blitz::metrics {

/// Caps the cardinality of one label (a host name, a path) on one reactor: the first
/// `max_values` distinct values seen keep their own slot, every later value, any value longer
/// than `max_value_bytes`, and the value "other" itself share the overflow slot, exported as
/// "other". The engine sizes its per-reactor instrument arrays by slots() and indexes them by
/// slot(); at scrape time it sums the instruments of equal values over reactors, so a metric
/// has at most reactors * max_values + 1 series for this label.
///
/// Lookups are an expected O(1) hash probe without locking or allocation; a value's first
/// sighting copies it (at most max_values times in the cap's life).
///
/// Thread: slot() only on the owning reactor thread; size() and value() from any thread (a
/// kept value is written before it is published and never changes). Lifetime: owned by the
/// reactor's metrics block; outlives every scrape.
class LabelCap {
public:
    /// The value the overflow slot is exported as.
    static constexpr std::string_view kOverflow = "other";

    /// A cap keeping `max_values` values of at most `max_value_bytes` bytes each.
    explicit LabelCap(std::size_t max_values, std::size_t max_value_bytes = 128);
    LabelCap(const LabelCap&) = delete;
    LabelCap& operator=(const LabelCap&) = delete;

    /// The slot of `value`: in [0, size()) for a kept value, overflow_slot() otherwise. A kept
    /// value's slot never changes.
    std::size_t slot(std::string_view value);
    /// The overflow slot, max_values.
    std::size_t overflow_slot() const noexcept { return max_values_; }
    /// Number of slots including the overflow slot (max_values + 1).
    std::size_t slots() const noexcept { return max_values_ + 1; }
    /// Number of kept values published so far (any thread).
    std::size_t size() const noexcept { return size_.load(std::memory_order_acquire); }
    /// The label value of the overflow slot ("other") or of a slot below a count size() has
    /// returned (on any thread).
    std::string_view value(std::size_t slot) const noexcept;

private:
    std::size_t max_values_;
    std::size_t max_value_bytes_;
    std::unique_ptr<std::string[]> values_;    // slot -> value; written once, then read-only
    std::unique_ptr<std::uint64_t[]> hashes_;  // slot -> hash of its value
    std::unique_ptr<std::uint32_t[]> index_;   // open addressing: slot + 1, 0 when free
    std::size_t index_mask_;
    std::atomic<std::size_t> size_{0};
};

}  // namespace blitz::metrics

#include "metrics/label_cap.hpp"

#include <bit>
#include <functional>

namespace blitz::metrics {

LabelCap::LabelCap(std::size_t max_values, std::size_t max_value_bytes)
    : max_values_(max_values),
      max_value_bytes_(max_value_bytes),
      values_(std::make_unique<std::string[]>(max_values)),
      hashes_(std::make_unique<std::uint64_t[]>(max_values)),
      // At most half full, so a probe always meets a free entry and stays short.
      index_(std::make_unique<std::uint32_t[]>(std::bit_ceil(2 * max_values + 2))),
      index_mask_(std::bit_ceil(2 * max_values + 2) - 1) {}

std::size_t LabelCap::slot(std::string_view value) {
    if (value.size() > max_value_bytes_ || value == kOverflow) {
        return max_values_;
    }
    const std::uint64_t h = std::hash<std::string_view>{}(value);
    const std::size_t n = size_.load(std::memory_order_relaxed);
    for (std::size_t i = h & index_mask_;; i = (i + 1) & index_mask_) {
        const std::uint32_t entry = index_[i];
        if (entry == 0) {
            if (n == max_values_) {
                return max_values_;
            }
            values_[n].assign(value);
            hashes_[n] = h;
            index_[i] = static_cast<std::uint32_t>(n + 1);
            // Release: a scraper that sees the new size also sees the value written above.
            size_.store(n + 1, std::memory_order_release);
            return n;
        }
        if (hashes_[entry - 1] == h && values_[entry - 1] == value) {
            return entry - 1;
        }
    }
}

std::string_view LabelCap::value(std::size_t slot) const noexcept {
    return slot < max_values_ ? std::string_view(values_[slot]) : kOverflow;
}

}  // namespace blitz::metrics

#include "metrics/label_cap.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <thread>

namespace blitz::metrics {

/// A kept value as scrapers read it: fixed-size storage, allocated when the slot first fills
/// and never freed or moved while the cap lives, so a scraper can always read it; rank()
/// rewrites the bytes between generation increments.
struct LabelCap::Text {
    std::atomic<std::uint32_t> length{0};
    std::unique_ptr<std::atomic<char>[]> bytes;
};

LabelCap::LabelCap(std::size_t max_values, std::size_t max_value_bytes)
    : max_values_(max_values),
      max_value_bytes_(max_value_bytes),
      texts_(std::make_unique<Text[]>(max_values)),
      hashes_(std::make_unique<std::uint64_t[]>(max_values)),
      counts_(std::make_unique<std::uint64_t[]>(max_values)),
      // At most half full, so a probe always meets a free entry and stays short.
      index_(std::make_unique<std::uint32_t[]>(std::bit_ceil(2 * max_values + 2))),
      index_mask_(std::bit_ceil(2 * max_values + 2) - 1) {}

LabelCap::~LabelCap() = default;

bool LabelCap::text_is(std::size_t slot, std::string_view value) const noexcept {
    const Text& t = texts_[slot];
    if (t.length.load(std::memory_order_relaxed) != value.size()) {
        return false;
    }
    for (std::size_t i = 0; i < value.size(); ++i) {
        if (t.bytes[i].load(std::memory_order_relaxed) != value[i]) {
            return false;
        }
    }
    return true;
}

void LabelCap::write_text(std::size_t slot, std::string_view value) noexcept {
    Text& t = texts_[slot];
    for (std::size_t i = 0; i < value.size(); ++i) {
        t.bytes[i].store(value[i], std::memory_order_relaxed);
    }
    t.length.store(static_cast<std::uint32_t>(value.size()), std::memory_order_relaxed);
}

std::size_t LabelCap::slot(std::string_view value, std::uint64_t weight) {
    if (value.size() > max_value_bytes_ || value == kOverflow) {
        return max_values_;
    }
    const std::uint64_t h = std::hash<std::string_view>{}(value);
    for (std::size_t i = h & index_mask_;; i = (i + 1) & index_mask_) {
        const std::uint32_t entry = index_[i];
        if (entry == 0) {
            const std::size_t n = size_.load(std::memory_order_relaxed);
            if (n == max_values_) {
                observe_candidate(value, h, weight);
                return max_values_;
            }
            // A free slot's first value: the one allocation of the slot's life.
            texts_[n].bytes = std::make_unique<std::atomic<char>[]>(max_value_bytes_);
            write_text(n, value);
            hashes_[n] = h;
            counts_[n] = weight;
            index_[i] = static_cast<std::uint32_t>(n + 1);
            // Release: a scraper that sees the new size also sees the value written above.
            size_.store(n + 1, std::memory_order_release);
            return n;
        }
        if (hashes_[entry - 1] == h && text_is(entry - 1, value)) {
            counts_[entry - 1] += weight;
            return entry - 1;
        }
    }
}

bool LabelCap::candidate_is(std::size_t entry, std::string_view value,
                            std::uint64_t hash) const noexcept {
    return cand_hashes_[entry] == hash && cand_lengths_[entry] == value.size() &&
           std::memcmp(&cand_texts_[entry * max_value_bytes_], value.data(), value.size()) == 0;
}

void LabelCap::observe_candidate(std::string_view value, std::uint64_t hash,
                                 std::uint64_t weight) noexcept {
    if (candidate_count_ == 0 || weight == 0) {
        return;
    }
    const std::size_t base = (hash & set_mask_) * kWays;
    std::size_t free = candidate_count_;
    for (std::size_t e = base; e < base + kWays; ++e) {
        if (cand_counts_[e] == 0) {
            free = free == candidate_count_ ? e : free;
        } else if (candidate_is(e, value, hash)) {
            cand_counts_[e] += weight;
            return;
        }
    }
    if (free != candidate_count_) {
        cand_hashes_[free] = hash;
        cand_counts_[free] = weight;
        cand_lengths_[free] = static_cast<std::uint32_t>(value.size());
        std::memcpy(&cand_texts_[free * max_value_bytes_], value.data(), value.size());
        return;
    }
    // A full set (Misra-Gries): the newcomer is not kept, and it costs every entry of the set
    // one observation, so only values busier than their neighbours stay.
    for (std::size_t e = base; e < base + kWays; ++e) {
        cand_counts_[e] -= std::min(cand_counts_[e], weight);
    }
}

void LabelCap::insert_candidate(std::string_view value, std::uint64_t hash,
                                std::uint64_t count) noexcept {
    const std::size_t base = (hash & set_mask_) * kWays;
    std::size_t weakest = base;
    for (std::size_t e = base + 1; e < base + kWays; ++e) {
        if (cand_counts_[e] < cand_counts_[weakest]) {
            weakest = e;
        }
    }
    // A displaced value keeps its count as a candidate when it is not the set's weakest: it
    // comes back if it grows busy again.
    if (count > cand_counts_[weakest] || cand_counts_[weakest] == 0) {
        cand_hashes_[weakest] = hash;
        cand_counts_[weakest] = count;
        cand_lengths_[weakest] = static_cast<std::uint32_t>(value.size());
        std::memcpy(&cand_texts_[weakest * max_value_bytes_], value.data(), value.size());
    }
}

void LabelCap::rebuild_index() noexcept {
    std::fill_n(index_.get(), index_mask_ + 1, 0u);
    const std::size_t n = size_.load(std::memory_order_relaxed);
    for (std::size_t s = 0; s < n; ++s) {
        std::size_t i = hashes_[s] & index_mask_;
        while (index_[i] != 0) {
            i = (i + 1) & index_mask_;
        }
        index_[i] = static_cast<std::uint32_t>(s + 1);
    }
}

std::size_t LabelCap::rank(const std::function<bool(std::size_t)>& movable,
                           const std::function<void(std::size_t)>& move) {
    if (max_values_ == 0 || size_.load(std::memory_order_relaxed) < max_values_) {
        return 0;  // free slots remain: nothing waits for one
    }
    if (candidate_count_ == 0) {
        // The slots just filled: from now on the overflow's values are counted. Four ways per
        // set and at least max_values sets: room for 4 to 8 candidates per kept value.
        const std::size_t sets = std::bit_ceil(max_values_);
        candidate_count_ = sets * kWays;
        set_mask_ = sets - 1;
        cand_hashes_ = std::make_unique<std::uint64_t[]>(candidate_count_);
        cand_counts_ = std::make_unique<std::uint64_t[]>(candidate_count_);
        cand_lengths_ = std::make_unique<std::uint32_t[]>(candidate_count_);
        cand_texts_ = std::make_unique<char[]>(candidate_count_ * max_value_bytes_);
        scratch_kept_.reserve(max_values_);
        scratch_cand_.reserve(candidate_count_);
        return 0;
    }
    scratch_cand_.clear();
    for (std::size_t e = 0; e < candidate_count_; ++e) {
        if (cand_counts_[e] != 0) {
            scratch_cand_.emplace_back(cand_counts_[e], e);
        }
    }
    if (scratch_cand_.empty()) {
        return 0;
    }
    scratch_kept_.clear();
    for (std::size_t s = 0; s < max_values_; ++s) {
        if (movable(s)) {
            scratch_kept_.emplace_back(counts_[s], s);
        }
    }
    const auto beats = [](std::uint64_t candidate, std::uint64_t kept) {
        return candidate > kept + kept / 4 + kMinLead;
    };
    const std::size_t pairs = std::min(scratch_kept_.size(), scratch_cand_.size());
    std::partial_sort(scratch_kept_.begin(),
                      scratch_kept_.begin() + static_cast<std::ptrdiff_t>(pairs),
                      scratch_kept_.end());
    std::partial_sort(scratch_cand_.begin(),
                      scratch_cand_.begin() + static_cast<std::ptrdiff_t>(pairs),
                      scratch_cand_.end(), std::greater<>());
    // The i-th busiest candidate against the i-th least busy kept value: both lists are
    // sorted, so the first pair that does not swap ends the moves.
    std::size_t moves = 0;
    while (moves < pairs && beats(scratch_cand_[moves].first, scratch_kept_[moves].first)) {
        ++moves;
    }
    if (moves == 0) {
        return 0;
    }
    // Seqlock write: odd while values move. The release fence keeps every store below from
    // being seen by a scraper that still reads the old even generation afterwards.
    const std::uint64_t g = generation_.load(std::memory_order_relaxed);
    generation_.store(g + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    std::string demoted;
    for (std::size_t i = 0; i < moves; ++i) {
        const std::size_t s = scratch_kept_[i].second;
        const std::size_t e = scratch_cand_[i].second;
        move(s);
        demoted = value(s);
        const std::uint64_t demoted_hash = hashes_[s];
        const std::uint64_t demoted_count = counts_[s];
        write_text(s, std::string_view(&cand_texts_[e * max_value_bytes_], cand_lengths_[e]));
        hashes_[s] = cand_hashes_[e];
        counts_[s] = cand_counts_[e];
        cand_counts_[e] = 0;
        insert_candidate(demoted, demoted_hash, demoted_count);
    }
    rebuild_index();
    generation_.store(g + 2, std::memory_order_release);
    return moves;
}

void LabelCap::decay() noexcept {
    const std::size_t n = size_.load(std::memory_order_relaxed);
    for (std::size_t s = 0; s < n; ++s) {
        counts_[s] >>= 1;
    }
    for (std::size_t e = 0; e < candidate_count_; ++e) {
        cand_counts_[e] >>= 1;
    }
}

std::string LabelCap::value(std::size_t slot) const {
    if (slot >= max_values_) {
        return std::string(kOverflow);
    }
    const Text& t = texts_[slot];
    const std::size_t n =
        std::min<std::size_t>(t.length.load(std::memory_order_relaxed), max_value_bytes_);
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = t.bytes[i].load(std::memory_order_relaxed);
    }
    return out;
}

std::uint64_t LabelCap::read_begin() const noexcept {
    for (;;) {
        const std::uint64_t g = generation_.load(std::memory_order_acquire);
        if ((g & 1) == 0) {
            return g;
        }
        std::this_thread::yield();
    }
}

bool LabelCap::read_valid(std::uint64_t begin) const noexcept {
    // Acquire fence: if any read since read_begin() saw a store of a rank(), the load below
    // sees that rank's odd (or a later) generation.
    std::atomic_thread_fence(std::memory_order_acquire);
    return generation_.load(std::memory_order_relaxed) == begin;
}

}  // namespace blitz::metrics

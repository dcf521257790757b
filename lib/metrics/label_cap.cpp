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
    std::atomic<bool> vacant{false};  // demote() emptied the slot; slot() refills it
};

std::size_t LabelFamily::attach() {
    const std::uint64_t from = log_.empty() ? next_seq_ : log_.front().seq;
    for (std::size_t m = 0; m < applied_.size(); ++m) {
        if (applied_[m] == kDetached) {
            applied_[m] = from;
            return m;
        }
    }
    applied_.push_back(from);
    return applied_.size() - 1;
}

void LabelFamily::detach(std::size_t member) noexcept {
    applied_[member] = kDetached;
    trim();
}

void LabelFamily::publish(std::size_t member, std::string_view value) {
    // Entries before it that this member has not applied yet keep their place: apply() is
    // what moves its position, so a publisher applies them at its next round.
    log_.push_back(Entry{next_seq_++, std::string(value)});
    if (applied_[member] == next_seq_ - 1) {
        applied_[member] = next_seq_;
    }
    trim();
}

bool LabelFamily::pending(std::string_view value) const noexcept {
    return std::any_of(log_.begin(), log_.end(),
                       [value](const Entry& e) { return e.value == value; });
}

void LabelFamily::trim() {
    std::uint64_t oldest = next_seq_;
    for (const std::uint64_t a : applied_) {
        if (a != kDetached) {
            oldest = std::min(oldest, a);
        }
    }
    log_.erase(log_.begin(), std::find_if(log_.begin(), log_.end(),
                                          [oldest](const Entry& e) { return e.seq >= oldest; }));
}

LabelFamily& LabelFamilies::endpoints(std::string_view name) {
    std::lock_guard lock(mutex_);
    for (auto& [n, family] : endpoints_) {
        if (n == name) {
            return *family;
        }
    }
    endpoints_.emplace_back(std::string(name), std::make_unique<LabelFamily>());
    return *endpoints_.back().second;
}

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
            // A value demoted globally takes no slot, free or vacant, while it is blocked.
            if ((n == max_values_ && vacant_.empty()) ||
                (!blocked_.empty() && blocked(value, h) != nullptr)) {
                observe_candidate(value, h, weight);
                return max_values_;
            }
            std::size_t s = n;
            if (n < max_values_) {
                // A free slot's first value: the one allocation of the slot's life.
                texts_[n].bytes = std::make_unique<std::atomic<char>[]>(max_value_bytes_);
            } else {
                s = vacant_.back();
                vacant_.pop_back();
                drop_candidate(value, h);  // kept now: rank() must not promote it again
            }
            write_text(s, value);
            hashes_[s] = h;
            counts_[s] = weight;
            index_[i] = static_cast<std::uint32_t>(s + 1);
            // Release: a scraper that sees the new size (or the slot no longer vacant) also
            // sees the value written above. The slot's series was emptied when it was
            // vacated: the new value's series starts from zero.
            if (s == n) {
                size_.store(n + 1, std::memory_order_release);
            } else {
                texts_[s].vacant.store(false, std::memory_order_release);
            }
            return s;
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

void LabelCap::drop_candidate(std::string_view value, std::uint64_t hash) noexcept {
    if (candidate_count_ == 0) {
        return;
    }
    const std::size_t base = (hash & set_mask_) * kWays;
    for (std::size_t e = base; e < base + kWays; ++e) {
        if (cand_counts_[e] != 0 && candidate_is(e, value, hash)) {
            cand_counts_[e] = 0;
        }
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
        if (texts_[s].vacant.load(std::memory_order_relaxed)) {
            continue;
        }
        std::size_t i = hashes_[s] & index_mask_;
        while (index_[i] != 0) {
            i = (i + 1) & index_mask_;
        }
        index_[i] = static_cast<std::uint32_t>(s + 1);
    }
}

std::size_t LabelCap::rank(const std::function<bool(std::size_t)>& movable,
                           const std::function<void(std::size_t)>& move) {
    return rank_impl(movable, move, nullptr);
}

std::size_t LabelCap::find_kept(std::string_view value, std::uint64_t hash) const noexcept {
    for (std::size_t i = hash & index_mask_;; i = (i + 1) & index_mask_) {
        const std::uint32_t entry = index_[i];
        if (entry == 0) {
            return max_values_;
        }
        if (hashes_[entry - 1] == hash && text_is(entry - 1, value)) {
            return entry - 1;
        }
    }
}

const LabelCap::Blocked* LabelCap::blocked(std::string_view value,
                                           std::uint64_t hash) const noexcept {
    for (const Blocked& b : blocked_) {
        if (b.hash == hash && b.value == value) {
            return &b;
        }
    }
    return nullptr;
}

void LabelCap::block(std::string_view value, std::uint64_t hash) {
    for (Blocked& b : blocked_) {
        if (b.hash == hash && b.value == value) {
            b.pending = true;
            b.rounds_left = kCoolRounds;
            return;
        }
    }
    blocked_.push_back(Blocked{hash, std::string(value), kCoolRounds, true});
}

bool LabelCap::demote(std::string_view value, const std::function<void(std::size_t)>& move) {
    if (value.size() > max_value_bytes_ || value == kOverflow) {
        return false;
    }
    const std::uint64_t h = std::hash<std::string_view>{}(value);
    block(value, h);
    const std::size_t s = find_kept(value, h);
    if (s == max_values_) {
        return false;
    }
    // Seqlock write, as in rank(): a scraper sees the slot with its counts or vacant with the
    // counts in "other", never both or neither.
    const std::uint64_t g = generation_.load(std::memory_order_relaxed);
    generation_.store(g + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    move(s);
    texts_[s].vacant.store(true, std::memory_order_relaxed);
    counts_[s] = 0;
    vacant_.push_back(static_cast<std::uint32_t>(s));
    rebuild_index();
    generation_.store(g + 2, std::memory_order_release);
    return true;
}

std::size_t LabelCap::rank_shared(LabelFamily& family, std::size_t member,
                                  const std::function<bool(std::size_t)>& movable,
                                  const std::function<void(std::size_t)>& move) {
    std::lock_guard lock(family.mutex);
    // Cool-down: a blocked value counts rounds once its demotion has left the family log.
    for (auto it = blocked_.begin(); it != blocked_.end();) {
        it->pending = it->pending && family.pending(it->value);
        if (!it->pending && it->rounds_left-- == 0) {
            it = blocked_.erase(it);
        } else {
            ++it;
        }
    }
    std::size_t changed = 0;
    family.apply(member, [&](std::string_view value) { changed += demote(value, move) ? 1 : 0; });
    std::vector<std::string> demoted;
    changed += rank_impl(movable, move, &demoted);
    for (const std::string& value : demoted) {
        family.publish(member, value);
        block(value, std::hash<std::string_view>{}(value));
    }
    return changed;
}

std::size_t LabelCap::rank_impl(const std::function<bool(std::size_t)>& movable,
                                const std::function<void(std::size_t)>& move,
                                std::vector<std::string>* demoted_values) {
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
        if (cand_counts_[e] == 0) {
            continue;
        }
        std::uint64_t count = cand_counts_[e];
        if (!blocked_.empty()) {
            const std::string_view text(&cand_texts_[e * max_value_bytes_], cand_lengths_[e]);
            if (const Blocked* b = blocked(text, cand_hashes_[e])) {
                if (b->pending) {
                    continue;  // some reactor may still keep it: no new series yet
                }
                count /= 4;  // cooling down: only a value that dominates comes back
            }
        }
        scratch_cand_.emplace_back(count, e);
    }
    if (scratch_cand_.empty()) {
        return 0;
    }
    scratch_kept_.clear();
    for (std::size_t s = 0; s < max_values_; ++s) {
        if (!texts_[s].vacant.load(std::memory_order_relaxed) && movable(s)) {
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
        if (demoted_values != nullptr) {
            demoted_values->push_back(demoted);
        }
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

bool LabelCap::vacant(std::size_t slot) const noexcept {
    return slot < max_values_ && texts_[slot].vacant.load(std::memory_order_acquire);
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

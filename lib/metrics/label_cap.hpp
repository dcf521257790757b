#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blitz::metrics {

/// The demotions of one label family (the route label; the endpoint label of one upstream),
/// shared by the LabelCaps of every reactor: a log of demoted values by sequence number, and
/// each member cap's position in it. An entry stays until every attached member applied it;
/// while it stays its value is *pending*: some reactor may still keep the value's series.
///
/// Why scrapes stay monotonic. Every change to the family, and to a member cap's slots, is
/// made with the family's mutex held: a member publishes its demotions, applies the others'
/// and is promoted values (rank_shared()) under it, and a scrape holds it while it copies every
/// member's series of the family (each copy also consistent through the cap's seqlock). So a
/// scrape sees the log and the caps at one point between those changes, and exports value X
/// only when X is not pending, summing its series, and adds the series of pending values to
/// "other". Then:
/// - A demotion of X enters the log in the same critical section in which the demoting
///   reactor moves its X counts to its "other": X disappears from the export and every
///   reactor's X counts are in "other" at once ("other" grows by them).
/// - A reactor applying the demotion moves its X counts from its X series (already exported
///   as "other") to its "other": the export does not change.
/// - A member that applied X's demotion gives X no series while X is pending (LabelCap
///   blocks it), and the entry is trimmed only once every attached member applied it. So at
///   the trim no reactor holds an X series, and dropping X from the pending set changes
///   nothing; a later promotion of X starts a new series from zero.
/// - A member attaching later (an upstream's first request on a reactor) starts at the
///   oldest entry, so it applies (and blocks) every pending value before it could be trimmed.
/// "other" therefore only grows, and a kept series only grows, or disappears, or (after a
/// trim and a new promotion) starts again from zero.
///
/// The mutex is taken by each member's round once a second, by scrapes, and by attach() once
/// per cap (an upstream's first request on a reactor): a round may wait while a scrape copies
/// the family (microseconds per series), the request path never does.
///
/// Thread: any; the mutex guards everything. Lifetime: shared (LabelFamilies), outlives its
/// member caps.
class LabelFamily {
 public:
    /// Guards the log and the members' slots: held by rank_shared() and by scrapes.
    std::mutex mutex;

    /// A new member cap that applies every entry still in the log (mutex held).
    std::size_t attach();
    /// The member leaves: its position no longer keeps entries (mutex held).
    void detach(std::size_t member) noexcept;
    /// Appends a demotion by `member`, which has applied it itself (mutex held).
    void publish(std::size_t member, std::string_view value);
    /// Calls fn(value) for each entry `member` has not applied, marks them applied and trims
    /// the entries every member applied (mutex held).
    template <typename F>
    void apply(std::size_t member, F fn) {
        for (const Entry& e : log_) {
            if (e.seq >= applied_[member]) {
                fn(std::string_view(e.value));
            }
        }
        applied_[member] = next_seq_;
        trim();
    }
    /// Whether some member may still keep `value` (mutex held).
    bool pending(std::string_view value) const noexcept;
    /// Entries in the log (mutex held; tests).
    std::size_t log_size() const noexcept { return log_.size(); }

 private:
    static constexpr std::uint64_t kDetached = ~std::uint64_t{0};
    struct Entry {
        std::uint64_t seq;
        std::string value;
    };
    void trim();

    std::vector<Entry> log_;  // oldest first
    std::uint64_t next_seq_ = 0;
    std::vector<std::uint64_t> applied_;  // member -> first seq not applied, or kDetached
};

/// The label families of an engine: the route label, and one endpoint label family per
/// upstream name. Made by the engine and shared by every reactor's EngineMetrics.
///
/// Thread: any (endpoints() locks). Lifetime: shared by the reactors' metrics.
class LabelFamilies {
 public:
    LabelFamily& routes() noexcept { return routes_; }
    /// The endpoint label family of upstream `name`, made on first use.
    LabelFamily& endpoints(std::string_view name);

 private:
    LabelFamily routes_;
    std::mutex mutex_;
    std::vector<std::pair<std::string, std::unique_ptr<LabelFamily>>> endpoints_;
};

/// Caps the cardinality of one label (a host name, a path) on one reactor by recent traffic:
/// at most `max_values` values hold a slot of their own, every other value, any value longer
/// than `max_value_bytes`, and the value "other" itself share the overflow slot, exported as
/// "other". The engine sizes its per-reactor instrument arrays by slots() and indexes them by
/// slot(); at scrape time it sums the instruments of equal values over reactors, so a metric
/// has at most reactors * max_values + 1 series for this label.
///
/// **Ranking.** The first `max_values` values seen take the free slots. Once they are full,
/// the values sent to "other" are counted in a bounded candidate table (allocated by the first
/// rank() after the slots filled, 4 to 8 times max_values entries in sets of four; a value
/// missing from a full set lowers the four counts by one and is dropped, Misra-Gries style, so
/// a busy value survives and a one-off does not, and memory never grows with the number of
/// distinct values). Kept values count their traffic too. rank(), called by the owning
/// reactor off the request path (the engine does it once a second), gives the busiest
/// candidates the slots of the least busy kept values, but only when a candidate beats the
/// value it displaces by a margin (a quarter of its count plus kMinLead), so values of equal
/// traffic never swap places back and forth. decay() halves every count, so what ranks is
/// recent traffic.
///
/// **A move.** The displaced value goes to "other" and becomes a candidate; the promoted one
/// takes its slot with a new, empty series. The caller's `move(slot)` adds the slot's
/// counters and histograms to the overflow slot's and zeroes them, so the kept series plus
/// "other" still sum to every observation. `movable(slot)` may refuse a move: the engine
/// keeps an endpoint whose connection gauges are not zero on this reactor, as a gauge cannot
/// be split out of "other" again (see EngineMetrics).
///
/// **Scrapes during a move.** A scrape runs on another thread without locks. rank() makes its
/// moves between two increments of a generation counter (a seqlock written only by rank(),
/// never on the request path): odd while moves are under way, even otherwise. A scraper takes
/// read_begin() (an even generation; it waits out a rank in progress), copies the values and
/// the series it needs, and keeps the copy only if read_valid() says the generation did not
/// change, else it copies again. So a scrape sees every series either before a move or after
/// it, never half: never a promoted value's label over the displaced value's counts, never
/// the displaced counts both in their series and in "other" or in neither. Counters still
/// only grow between scrapes: "other" gains what a series lost, and a promoted value's series
/// is new (it starts from zero). The request path's own increments are not part of the
/// seqlock: they are single-writer atomics a scraper reads old or new, as before.
///
/// **Several reactors.** Each reactor ranks its own cap, but a demotion is global: caps of the
/// same label family (the route label; the endpoint label of one upstream) share a
/// LabelFamily, and rank_shared() publishes every value it demotes there and applies, on its
/// own cap, the demotions the other reactors published (demote(): the value's counts move to
/// this reactor's "other", under this cap's seqlock). A scrape hides a value whose demotion
/// some reactor has not applied yet (LabelFamily::pending()): it adds that value's series to
/// "other". So a summed series never drops when one reactor demotes it while another still
/// keeps it (see LabelFamily for the argument). Promotions stay local; a value demoted
/// globally is blocked on this cap (no slot, free or ranked) while its demotion is pending
/// and for kCoolRounds rank rounds after, unless it dominates (four times the count it needs
/// otherwise). A slot whose value was demoted by demote() is vacant (not exported) until
/// slot() gives it to the next new value.
///
/// Lookups are an expected O(1) hash probe plus a count increment, without locking or
/// allocation; only a free slot's first value allocates its fixed-size copy (at most
/// max_values times in the cap's life). rank() allocates (the candidate table once, scratch
/// lists) and runs in O(max_values + candidates) plus partial sorts.
///
/// Thread: slot(), count(), rank(), rank_shared(), demote(), decay() and generation() only on
/// the owning reactor thread; size(), vacant(), value(), read_begin() and read_valid() from any
/// thread. Lifetime: owned by
/// the reactor's metrics block; outlives every scrape.
class LabelCap {
 public:
    /// The value the overflow slot is exported as.
    static constexpr std::string_view kOverflow = "other";
    /// A candidate takes a kept value's slot only with more than count + count / 4 + kMinLead
    /// observations (the kept value's count).
    static constexpr std::uint64_t kMinLead = 2;
    /// Rank rounds a globally demoted value stays blocked after its demotion left the family
    /// log (while pending it is always blocked).
    static constexpr unsigned kCoolRounds = 5;

    /// A cap keeping `max_values` values of at most `max_value_bytes` bytes each.
    explicit LabelCap(std::size_t max_values, std::size_t max_value_bytes = 128);
    LabelCap(const LabelCap&) = delete;
    LabelCap& operator=(const LabelCap&) = delete;
    ~LabelCap();

    /// The slot of `value`, counting `weight` observations of it for the ranking: in
    /// [0, size()) for a kept value, overflow_slot() otherwise. A kept value's slot changes
    /// only in rank() (check generation()).
    std::size_t slot(std::string_view value, std::uint64_t weight = 1);
    /// Counts one observation of the value of kept slot `slot` (a slot a cache remembered from
    /// slot() at the current generation()).
    void count(std::size_t slot) noexcept {
        if (slot < max_values_) {
            ++counts_[slot];
        }
    }
    /// Moves busy candidates into the slots of idle kept values (see the class comment): calls
    /// `move(slot)` for each slot changing hands, while the generation is odd, after
    /// `movable(slot)` allowed it. Returns the number of moves. Owning reactor only.
    std::size_t rank(const std::function<bool(std::size_t)>& movable,
                     const std::function<void(std::size_t)>& move);
    /// rank() as one member of `family` (see LabelFamily): with the family's mutex held,
    /// applies the other members' demotions (demote()), ranks, and publishes this cap's own
    /// demotions. Returns the number of slots that changed hands or were vacated.
    std::size_t rank_shared(LabelFamily& family, std::size_t member,
                            const std::function<bool(std::size_t)>& movable,
                            const std::function<void(std::size_t)>& move);
    /// Demotes `value` if kept: calls `move(slot)` while the generation is odd, leaves the slot
    /// vacant and blocks the value (see the class comment). Returns whether it was kept.
    bool demote(std::string_view value, const std::function<void(std::size_t)>& move);
    /// Halves every count, kept values' and candidates'.
    void decay() noexcept;
    /// Changes (by 2) whenever rank() moved a value: caches of slots compare it (reactor).
    std::uint64_t generation() const noexcept {
        return generation_.load(std::memory_order_relaxed);
    }

    /// The overflow slot, max_values.
    std::size_t overflow_slot() const noexcept { return max_values_; }
    /// Number of slots including the overflow slot (max_values + 1).
    std::size_t slots() const noexcept { return max_values_ + 1; }
    /// Number of kept slots published so far (any thread). Slots fill once and are never
    /// emptied: rank() gives a slot another value.
    std::size_t size() const noexcept { return size_.load(std::memory_order_acquire); }
    /// Whether kept slot `slot` has no value (demote() vacated it): a scraper skips it.
    bool vacant(std::size_t slot) const noexcept;
    /// A copy of the label value of the overflow slot ("other") or of a slot below a count
    /// size() has returned (any thread; a scraper checks read_valid() before trusting it).
    std::string value(std::size_t slot) const;

    /// Starts a consistent read of values and series (any thread): returns an even
    /// generation, waiting while a rank() is moving values.
    std::uint64_t read_begin() const noexcept;
    /// Whether nothing moved since read_begin() returned `begin`: only then are the values and
    /// series read in between one consistent picture.
    bool read_valid(std::uint64_t begin) const noexcept;

    /// The current ranking count of kept slot `slot` (reactor; tests).
    std::uint64_t kept_count(std::size_t slot) const noexcept { return counts_[slot]; }
    /// Entries of the candidate table: 0 until the first rank() after the slots filled, then
    /// fixed (tests: memory does not grow with the values seen).
    std::size_t candidate_capacity() const noexcept { return candidate_count_; }

 private:
    struct Text;
    static constexpr std::size_t kWays = 4;

    struct Blocked {
        std::uint64_t hash;
        std::string value;
        unsigned rounds_left;  // rank rounds of cool-down once no longer pending
        bool pending;
    };
    std::size_t find_kept(std::string_view value, std::uint64_t hash) const noexcept;
    const Blocked* blocked(std::string_view value, std::uint64_t hash) const noexcept;
    void block(std::string_view value, std::uint64_t hash);
    std::size_t rank_impl(const std::function<bool(std::size_t)>& movable,
                          const std::function<void(std::size_t)>& move,
                          std::vector<std::string>* demoted);
    void observe_candidate(std::string_view value, std::uint64_t hash,
                           std::uint64_t weight) noexcept;
    void drop_candidate(std::string_view value, std::uint64_t hash) noexcept;
    void insert_candidate(std::string_view value, std::uint64_t hash, std::uint64_t count) noexcept;
    bool candidate_is(std::size_t entry, std::string_view value, std::uint64_t hash) const noexcept;
    void rebuild_index() noexcept;
    void write_text(std::size_t slot, std::string_view value) noexcept;
    bool text_is(std::size_t slot, std::string_view value) const noexcept;

    std::size_t max_values_;
    std::size_t max_value_bytes_;
    std::unique_ptr<Text[]> texts_;            // slot -> value, readable by scrapers
    std::unique_ptr<std::uint64_t[]> hashes_;  // slot -> hash of its value (reactor)
    std::unique_ptr<std::uint64_t[]> counts_;  // slot -> recent observations (reactor)
    std::unique_ptr<std::uint32_t[]> index_;   // open addressing: slot + 1, 0 when free
    std::size_t index_mask_;
    std::atomic<std::size_t> size_{0};
    std::atomic<std::uint64_t> generation_{0};  // the seqlock: odd while rank() moves values

    // Candidates (reactor only): sets of kWays entries, by hash.
    std::size_t candidate_count_ = 0;
    std::size_t set_mask_ = 0;
    std::unique_ptr<std::uint64_t[]> cand_hashes_;
    std::unique_ptr<std::uint64_t[]> cand_counts_;  // 0: a free entry
    std::unique_ptr<std::uint32_t[]> cand_lengths_;
    std::unique_ptr<char[]> cand_texts_;                               // max_value_bytes per entry
    std::vector<std::pair<std::uint64_t, std::size_t>> scratch_kept_;  // rank(): (count, slot)
    std::vector<std::pair<std::uint64_t, std::size_t>> scratch_cand_;  // rank(): (count, entry)
    std::vector<std::uint32_t> vacant_;  // vacated kept slots, for slot() (reactor)
    std::vector<Blocked> blocked_;       // globally demoted values (reactor)
};

}  // namespace blitz::metrics

#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace blitz::metrics {

/// Inclusive upper bounds, in microseconds, of the `le` buckets every duration histogram is
/// exported with (a 1-2-5 series from 100 µs to 50 s, plus 60 s, a common timeout). The fine
/// buckets below have an edge at each of these, so the exported counts are exact.
inline constexpr std::array<std::uint64_t, 19> kExportBoundsMicros = {
    100,       200,        500,        1'000,      2'000,     5'000,     10'000,
    20'000,    50'000,     100'000,    200'000,    500'000,   1'000'000, 2'000'000,
    5'000'000, 10'000'000, 20'000'000, 50'000'000, 60'000'000};

namespace detail {

// Fine-bucket layout. Row 0 holds [0, 4) and row r >= 1 the octave [2^(r+1), 2^(r+2)); each row
// is split into kSubBuckets buckets. Rows are linear splits (HDR style) except where an export
// bound falls inside an octave: there one edge sits exactly at bound + 1 and the other edges
// split the pieces around it evenly, with the split that keeps the widest bucket narrowest.
inline constexpr std::size_t kSubBuckets = 4;
inline constexpr std::size_t kRows = 26;                    // the last row is [2^26, 2^27)
inline constexpr std::uint64_t kOverflowMicros = 1u << 27;  // 134.2 s: one bucket from here on
inline constexpr std::size_t kBuckets = kRows * kSubBuckets + 1;

/// Per row, the lower bounds of sub-buckets 1..3, then the row's end (unused by bucket_of). Row
/// kRows is the overflow row: its edges are never reached, so every value there lands in its
/// sub-bucket 0.
using EdgeTable = std::array<std::array<std::uint32_t, 4>, kRows + 1>;

constexpr std::uint64_t row_low(std::size_t row) {
    return row == 0 ? 0 : std::uint64_t{1} << (row + 1);
}

constexpr void split_evenly(std::uint64_t lo, std::uint64_t hi, std::size_t n, std::uint64_t* out) {
    for (std::size_t j = 1; j < n; ++j) {
        *out++ = lo + (hi - lo) * j / n;
    }
}

// Widest bucket of a row relative to its lower bound (what bounds the quantile error).
constexpr double widest(std::uint64_t lo, const std::uint64_t* edges, std::uint64_t hi) {
    double worst = 0;
    std::uint64_t prev = lo;
    for (std::size_t j = 0; j < kSubBuckets; ++j) {
        const std::uint64_t next = j < kSubBuckets - 1 ? edges[j] : hi;
        const double w = static_cast<double>(next - prev) / static_cast<double>(prev);
        worst = w > worst ? w : worst;
        prev = next;
    }
    return worst;
}

constexpr EdgeTable make_edge_table() {
    EdgeTable t{};
    for (std::size_t row = 0; row < kRows; ++row) {
        const std::uint64_t lo = row_low(row);
        const std::uint64_t hi = std::uint64_t{1} << (row + 2);
        // Points that must be edges: lo, each export bound + 1 strictly inside, hi.
        std::uint64_t points[kSubBuckets + 1] = {lo};
        std::size_t npoints = 1;
        for (std::uint64_t b : kExportBoundsMicros) {
            if (b + 1 > lo && b + 1 < hi) {
                points[npoints++] = b + 1;
            }
        }
        points[npoints++] = hi;
        const std::size_t segments = npoints - 1;
        std::uint64_t best[kSubBuckets - 1] = {};
        double best_width = 1e300;
        // Every way to give each segment at least one bucket (at most 3 segments, 4 buckets).
        for (std::size_t a = 1; a <= kSubBuckets; ++a) {
            for (std::size_t b = 0; b <= kSubBuckets; ++b) {
                for (std::size_t c = 0; c <= kSubBuckets; ++c) {
                    const std::size_t n[3] = {a, b, c};
                    bool valid = a + b + c == kSubBuckets;
                    for (std::size_t s = 0; s < 3; ++s) {
                        valid = valid && ((s < segments) == (n[s] > 0));
                    }
                    if (!valid) {
                        continue;
                    }
                    std::uint64_t edges[kSubBuckets - 1] = {};
                    std::uint64_t* out = edges;
                    for (std::size_t s = 0; s < segments; ++s) {
                        split_evenly(points[s], points[s + 1], n[s], out);
                        out += n[s] - 1;
                        if (s + 1 < segments) {
                            *out++ = points[s + 1];
                        }
                    }
                    const double w = widest(lo == 0 ? 1 : lo, edges, hi);
                    if (w < best_width) {
                        best_width = w;
                        for (std::size_t j = 0; j < kSubBuckets - 1; ++j) {
                            best[j] = edges[j];
                        }
                    }
                }
            }
        }
        for (std::size_t j = 0; j < kSubBuckets - 1; ++j) {
            t[row][j] = static_cast<std::uint32_t>(best[j]);
        }
        t[row][3] = static_cast<std::uint32_t>(hi);
    }
    t[kRows] = {UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
    return t;
}

inline constexpr EdgeTable kEdges = make_edge_table();

constexpr std::uint64_t bucket_lower(std::size_t i) {
    const std::size_t row = i / kSubBuckets;
    const std::size_t sub = i % kSubBuckets;
    if (row >= kRows) {
        return kOverflowMicros;
    }
    return sub == 0 ? row_low(row) : kEdges[row][sub - 1];
}

// Index of the fine bucket whose upper edge is export bound `b` + 1.
constexpr std::array<std::size_t, kExportBoundsMicros.size()> make_export_buckets() {
    std::array<std::size_t, kExportBoundsMicros.size()> r{};
    for (std::size_t j = 0; j < r.size(); ++j) {
        for (std::size_t i = 0; i + 1 < kBuckets; ++i) {
            if (bucket_lower(i + 1) == kExportBoundsMicros[j] + 1) {
                r[j] = i;
            }
        }
    }
    return r;
}

inline constexpr auto kExportBuckets = make_export_buckets();

constexpr bool edges_increase() {
    for (std::size_t i = 0; i + 1 < kBuckets; ++i) {
        if (bucket_lower(i) >= bucket_lower(i + 1)) {
            return false;
        }
    }
    return true;
}
static_assert(edges_increase(), "fine buckets must be non-empty and ordered");

constexpr bool export_bounds_on_edges() {
    for (std::size_t j = 0; j < kExportBuckets.size(); ++j) {
        if (bucket_lower(kExportBuckets[j] + 1) != kExportBoundsMicros[j] + 1) {
            return false;
        }
    }
    return true;
}
static_assert(export_bounds_on_edges(), "each export bound must be a fine-bucket edge");

}  // namespace detail

/// A latency histogram in microseconds with log-linear buckets (each power of two split in
/// four; the splits are moved so that every kExportBoundsMicros bound is an edge). 105 buckets
/// cover 0 µs to 134 s; longer values share the last bucket. observe() is a constant-time index
/// computation (one bit scan, three compares against a 16-byte table row) plus two
/// single-writer counter updates: no loop, no allocation, no locked instruction.
///
/// Thread: observe() only on the owning reactor thread (single writer); snapshot() and
/// merge_into() from any thread at any time. Lifetime: owned by the reactor's metrics block;
/// outlives every scrape that may read it. Not copyable or movable (atomics).
class Histogram {
public:
    static constexpr std::size_t kBuckets = detail::kBuckets;

    /// A plain copy of one or more histograms' counts, summed over reactors at scrape time.
    ///
    /// Thread: value type. Lifetime: owns its contents.
    struct Snapshot {
        std::array<std::uint64_t, kBuckets> counts{};
        std::uint64_t sum_micros = 0;

        /// Adds `other` bucket by bucket (histograms of the same metric on other reactors).
        void merge(const Snapshot& other) noexcept;
        /// Total number of observations (the sum of all buckets).
        std::uint64_t count() const noexcept;
        /// Observations <= kExportBoundsMicros[j], j < kExportBoundsMicros.size() (exact: the
        /// bound + 1 is a fine-bucket edge).
        std::uint64_t count_at_most_export_bound(std::size_t j) const noexcept;
        /// Estimated q-quantile (q in [0, 1], clamped) in microseconds; 0 when empty. The
        /// bucket holding the nearest-rank q-quantile is found exactly; the estimate is the
        /// point of that bucket with the least worst-case relative error, so it is within
        /// max_quantile_error() of the true value for any distribution below 134 s.
        double quantile(double q) const noexcept;
    };

    Histogram() noexcept = default;
    Histogram(const Histogram&) = delete;
    Histogram& operator=(const Histogram&) = delete;

    /// Records one duration. Values are whole microseconds (callers truncate).
    void observe(std::uint64_t micros) noexcept {
        // Single writer: a relaxed load and store is an exact increment without a locked
        // instruction, and a concurrent reader sees either the old or the new value.
        auto& c = counts_[bucket_of(micros)];
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        sum_.store(sum_.load(std::memory_order_relaxed) + micros, std::memory_order_relaxed);
    }

    /// Adds this histogram's current counts to `into`. Each bucket is read atomically; an
    /// observe() racing with the read may be counted in its bucket but not yet in the sum (or
    /// the reverse), which Prometheus tolerates; counts never go backwards between scrapes.
    void merge_into(Snapshot& into) const noexcept;
    /// This histogram's current counts alone.
    Snapshot snapshot() const noexcept;
    /// Adds this histogram's counts and sum to `to` and zeroes them: a label value leaving its
    /// series hands its observations to the overflow series. Owning reactor only (both
    /// histograms its own); a scrape sees the move whole through the LabelCap generation.
    void move_into(Histogram& to) noexcept;

    /// Fine bucket of a value: constant time, branch-free.
    static std::size_t bucket_of(std::uint64_t micros) noexcept {
        const std::uint64_t v = micros < detail::kOverflowMicros ? micros : detail::kOverflowMicros;
        // v | 3 puts [0, 4) in row 0; each later octave is one row.
        const std::size_t row = static_cast<unsigned>(std::bit_width(v | 3)) - 2u;
        const auto& e = detail::kEdges[row];
        return row * detail::kSubBuckets + (v >= e[0]) + (v >= e[1]) + (v >= e[2]);
    }
    /// Smallest value of fine bucket `i` (i < kBuckets).
    static std::uint64_t bucket_lower(std::size_t i) noexcept { return detail::bucket_lower(i); }
    /// One past the largest value of fine bucket `i`; UINT64_MAX for the last bucket.
    static std::uint64_t bucket_upper(std::size_t i) noexcept {
        return i + 1 < kBuckets ? detail::bucket_lower(i + 1) : UINT64_MAX;
    }
    /// Worst relative error of Snapshot::quantile() over every bucket below the last.
    static double max_quantile_error() noexcept;

private:
    std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
    std::atomic<std::uint64_t> sum_{0};
};

}  // namespace blitz::metrics

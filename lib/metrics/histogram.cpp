#include "metrics/histogram.hpp"

#include <cmath>

namespace blitz::metrics {

namespace {

// The value of bucket i reported as a quantile. The bucket holds the integers lo..m; the
// harmonic mean 2*lo*m/(lo+m) is as far, relatively, from lo as from m, so whichever value of
// the bucket is the true quantile, the estimate is off by at most (m-lo)/(m+lo).
double representative(std::size_t i) noexcept {
    const auto lo = static_cast<double>(Histogram::bucket_lower(i));
    if (i + 1 == Histogram::kBuckets || lo == 0) {
        return lo;
    }
    const auto m = static_cast<double>(Histogram::bucket_upper(i) - 1);
    return 2 * lo * m / (lo + m);
}

}  // namespace

void Histogram::Snapshot::merge(const Snapshot& other) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) {
        counts[i] += other.counts[i];
    }
    sum_micros += other.sum_micros;
}

std::uint64_t Histogram::Snapshot::count() const noexcept {
    std::uint64_t n = 0;
    for (std::uint64_t c : counts) {
        n += c;
    }
    return n;
}

std::uint64_t Histogram::Snapshot::count_at_most_export_bound(std::size_t j) const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i <= detail::kExportBuckets[j]; ++i) {
        n += counts[i];
    }
    return n;
}

double Histogram::Snapshot::quantile(double q) const noexcept {
    const std::uint64_t n = count();
    if (n == 0) {
        return 0;
    }
    q = std::isnan(q) ? 0 : (q < 0 ? 0 : (q > 1 ? 1 : q));
    // Nearest rank: the smallest value with at least ceil(q * n) observations at or below it.
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(n)));
    rank = rank == 0 ? 1 : (rank > n ? n : rank);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        seen += counts[i];
        if (seen >= rank) {
            return representative(i);
        }
    }
    return representative(kBuckets - 1);
}

void Histogram::merge_into(Snapshot& into) const noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) {
        into.counts[i] += counts_[i].load(std::memory_order_relaxed);
    }
    into.sum_micros += sum_.load(std::memory_order_relaxed);
}

void Histogram::move_into(Histogram& to) noexcept {
    // Single writer for both: plain loads and stores, as in observe().
    for (std::size_t i = 0; i < kBuckets; ++i) {
        const std::uint64_t n = counts_[i].load(std::memory_order_relaxed);
        auto& into = to.counts_[i];
        into.store(into.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
        counts_[i].store(0, std::memory_order_relaxed);
    }
    to.sum_.store(to.sum_.load(std::memory_order_relaxed) + sum_.load(std::memory_order_relaxed),
                  std::memory_order_relaxed);
    sum_.store(0, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const noexcept {
    Snapshot s;
    merge_into(s);
    return s;
}

double Histogram::max_quantile_error() noexcept {
    double worst = 0;
    for (std::size_t i = 0; i + 1 < kBuckets; ++i) {
        const auto lo = static_cast<double>(bucket_lower(i));
        const auto m = static_cast<double>(bucket_upper(i) - 1);
        if (lo > 0) {
            const double e = (m - lo) / (m + lo);
            worst = e > worst ? e : worst;
        }
    }
    return worst;
}

}  // namespace blitz::metrics

// The built-in load-balancing policies and the request hash for consistent hashing.
//
// Every policy instance belongs to one reactor and one endpoint set: picks take no lock and
// allocate nothing. The consistent-hashing tables (ring, Maglev) depend only on the endpoint
// set, so their factories build each table once and share it read-only between reactors.

#include <algorithm>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <blitz/exchange.hpp>
#include <blitz/http.hpp>

#include "upstream/cluster.hpp"
#include "upstream/hash.hpp"

namespace blitz::upstream {

namespace {

using Infos = std::span<const EndpointInfo>;

bool any_available(Infos eps) noexcept {
    return std::any_of(eps.begin(), eps.end(), [](const EndpointInfo& e) { return e.available; });
}

/// Weighted random choice among the available endpoints other than `except`; -1 when none is.
int weighted_random(Infos eps, Rng& rng, int except = -1) noexcept {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < eps.size(); ++i) {
        total += eps[i].available && static_cast<int>(i) != except ? eps[i].weight : 0;
    }
    if (total == 0) {
        return -1;
    }
    std::uint64_t r = rng.below64(total);
    for (std::size_t i = 0; i < eps.size(); ++i) {
        if (!eps[i].available || static_cast<int>(i) == except) {
            continue;
        }
        if (r < eps[i].weight) {
            return static_cast<int>(i);
        }
        r -= eps[i].weight;
    }
    return -1;
}

/// The k-th available endpoint (0-based); -1 when there are not that many.
int nth_available(Infos eps, std::uint32_t k) noexcept {
    for (std::size_t i = 0; i < eps.size(); ++i) {
        if (eps[i].available && k-- == 0) {
            return static_cast<int>(i);
        }
    }
    return -1;
}

class RoundRobin final : public LoadBalancer {
 public:
    /// Starts at a random endpoint, so reactors do not all send their first request to the
    /// same one.
    explicit RoundRobin(std::size_t n) noexcept
        : next_(n == 0 ? 0 : rng_.below(static_cast<std::uint32_t>(n))) {}

    int pick(Infos eps, const PickContext&) override {
        const std::size_t n = eps.size();
        std::size_t i = next_ < n ? next_ : 0;
        for (std::size_t k = 0; k < n; ++k, i = i + 1 == n ? 0 : i + 1) {
            if (eps[i].available) {
                next_ = i + 1;
                return static_cast<int>(i);
            }
        }
        return -1;
    }

 private:
    Rng rng_;
    std::size_t next_;
};

/// nginx's smooth weighted round robin: each pick adds every available endpoint's weight to
/// its credit, takes the endpoint with the most credit and charges it the total. Weights 5/1/1
/// give a a b a c a a, never a burst of five.
class SmoothWeighted final : public LoadBalancer {
 public:
    explicit SmoothWeighted(std::size_t n) : credit_(n, 0) {}

    int pick(Infos eps, const PickContext&) override {
        if (credit_.size() != eps.size()) {
            credit_.assign(eps.size(), 0);  // only when misused with another set
        }
        std::int64_t total = 0;
        int best = -1;
        for (std::size_t i = 0; i < eps.size(); ++i) {
            if (!eps[i].available) {
                continue;
            }
            credit_[i] += eps[i].weight;
            total += eps[i].weight;
            if (best < 0 || credit_[i] > credit_[static_cast<std::size_t>(best)]) {
                best = static_cast<int>(i);
            }
        }
        if (best >= 0) {
            credit_[static_cast<std::size_t>(best)] -= total;
        }
        return best;
    }

 private:
    std::vector<std::int64_t> credit_;
};

/// Power of two choices (Mitzenmacher): two random available endpoints, the one with fewer
/// active requests per unit of weight wins (the first drawn on a tie). With unequal weights the
/// candidates are drawn in proportion to weight, so an idle cluster is still spread by weight.
class LeastRequest final : public LoadBalancer {
 public:
    int pick(Infos eps, const PickContext&) override {
        std::uint32_t available = 0;
        std::uint32_t first_weight = 0;
        bool equal = true;
        for (const auto& e : eps) {
            if (!e.available) {
                continue;
            }
            if (available++ == 0) {
                first_weight = e.weight;
            } else if (e.weight != first_weight) {
                equal = false;
            }
        }
        if (available <= 1) {
            return available == 0 ? -1 : nth_available(eps, 0);
        }
        int a;
        int b;
        if (equal) {
            const std::uint32_t ka = rng_.below(available);
            const std::uint32_t kb = (ka + 1 + rng_.below(available - 1)) % available;
            a = nth_available(eps, ka);
            b = nth_available(eps, kb);
        } else {
            // Drawn without replacement: a pair of one endpoint would skip the comparison.
            a = weighted_random(eps, rng_);
            b = weighted_random(eps, rng_, a);
        }
        const EndpointInfo& ea = eps[static_cast<std::size_t>(a)];
        const EndpointInfo& eb = eps[static_cast<std::size_t>(b)];
        // active_a / weight_a <= active_b / weight_b, without division.
        return std::uint64_t{ea.active_requests} * eb.weight <=
                       std::uint64_t{eb.active_requests} * ea.weight
                   ? a
                   : b;
    }

 private:
    Rng rng_;
};

class WeightedRandom final : public LoadBalancer {
 public:
    int pick(Infos eps, const PickContext&) override { return weighted_random(eps, rng_); }

 private:
    Rng rng_;
};

template <class Balancer>
class SimpleFactory final : public LoadBalancerFactory {
 public:
    std::unique_ptr<LoadBalancer> create(Infos eps) override {
        if constexpr (std::is_constructible_v<Balancer, std::size_t>) {
            return std::make_unique<Balancer>(eps.size());
        } else {
            return std::make_unique<Balancer>();
        }
    }
};

// ---- consistent hashing ----

/// Ring hash (Karger et al.): every endpoint owns points on a 64-bit ring, in proportion to
/// its weight; a key belongs to the first point at or after its hash. Points are derived from
/// the endpoint's address, so every reactor and every process builds the same ring, and
/// removing one endpoint moves only the keys of its own points.
struct Ring {
    // 1024 points per endpoint keep shares within a few percent of the weights (the spread
    // of an endpoint's share falls as 1/sqrt(points)); the cap bounds the table (12 bytes a
    // point, one table per upstream shared by all reactors) for very large clusters.
    static constexpr std::size_t kMinPoints = 1024;
    static constexpr std::size_t kPointsPerEndpoint = 1024;
    static constexpr std::size_t kMaxPoints = std::size_t{1} << 18;

    std::vector<std::uint64_t> hashes;  // sorted; a separate array keeps the search dense
    std::vector<std::uint32_t> owners;
    /// First point of each of 2^bits equal ranges of the hash space (plus an end marker): a
    /// lookup searches only its range, about one point, instead of the whole ring.
    std::vector<std::uint32_t> index;
    unsigned shift = 64;

    explicit Ring(Infos eps) {
        if (eps.empty()) {
            return;
        }
        std::uint64_t total_weight = 0;
        for (const auto& e : eps) {
            total_weight += e.weight;
        }
        const std::size_t target =
            std::clamp(eps.size() * kPointsPerEndpoint, kMinPoints, kMaxPoints);
        std::vector<std::pair<std::uint64_t, std::uint32_t>> points;
        points.reserve(target + eps.size());
        for (std::size_t i = 0; i < eps.size(); ++i) {
            const std::uint64_t share =
                (target * std::uint64_t{eps[i].weight} + total_weight / 2) / total_weight;
            const std::uint64_t count = std::max<std::uint64_t>(share, 1);
            for (std::uint64_t k = 0; k < count; ++k) {
                points.emplace_back(hash_bytes(eps[i].address, k), static_cast<std::uint32_t>(i));
            }
        }
        std::sort(points.begin(), points.end());
        hashes.reserve(points.size());
        owners.reserve(points.size());
        for (const auto& [h, owner] : points) {
            hashes.push_back(h);
            owners.push_back(owner);
        }
        unsigned bits = 1;
        while ((std::size_t{1} << bits) < hashes.size()) {
            ++bits;
        }
        shift = 64 - bits;
        index.resize((std::size_t{1} << bits) + 1);
        std::size_t pos = 0;
        for (std::size_t b = 0; b + 1 < index.size(); ++b) {
            while (pos < hashes.size() && (hashes[pos] >> shift) < b) {
                ++pos;
            }
            index[b] = static_cast<std::uint32_t>(pos);
        }
        index.back() = static_cast<std::uint32_t>(hashes.size());
    }

    int find(Infos eps, std::uint64_t key) const noexcept {
        const std::size_t n = hashes.size();
        if (n == 0 || !any_available(eps)) {
            return -1;
        }
        const std::size_t bucket = static_cast<std::size_t>(key >> shift);
        const auto first = hashes.begin() + index[bucket];
        const auto last = hashes.begin() + index[bucket + 1];
        // Points before the range hash below it, so this is the ring's lower bound.
        std::size_t pos =
            static_cast<std::size_t>(std::lower_bound(first, last, key) - hashes.begin());
        // An unavailable owner's keys go to the next available point: each of its points has a
        // different successor, so they spread over the others rather than all landing on one.
        for (std::size_t k = 0; k < n; ++k, ++pos) {
            if (pos == n) {
                pos = 0;
            }
            const std::uint32_t owner = owners[pos];
            if (owner < eps.size() && eps[owner].available) {
                return static_cast<int>(owner);
            }
        }
        return -1;
    }
};

/// Maglev hashing (Eisenbud et al., NSDI '16 §3.4): a lookup table of prime size where every
/// endpoint fills slots in the order of its own permutation (offset, skip), taking turns, so
/// each gets an almost equal share and a set change moves few slots. Weighted: an endpoint
/// takes a turn in a round only while its slots are below weight / max weight × rounds.
struct MaglevTable {
    static constexpr std::uint32_t kSize = 65537;
    static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};

    std::vector<std::uint32_t> slots;

    explicit MaglevTable(Infos eps) {
        if (eps.empty()) {
            return;
        }
        slots.assign(kSize, kEmpty);
        const std::size_t n = eps.size();
        std::vector<std::uint32_t> position(n);
        std::vector<std::uint32_t> skip(n);
        std::vector<std::uint64_t> placed(n, 0);
        std::uint32_t max_weight = 1;
        for (std::size_t i = 0; i < n; ++i) {
            position[i] =
                static_cast<std::uint32_t>(hash_bytes(eps[i].address, 0x6d61676c6576) % kSize);
            skip[i] =
                static_cast<std::uint32_t>(hash_bytes(eps[i].address, 0x736b6970) % (kSize - 1)) +
                1;
            max_weight = std::max(max_weight, eps[i].weight);
        }
        std::uint32_t filled = 0;
        for (std::uint64_t round = 1; filled < kSize; ++round) {
            for (std::size_t i = 0; i < n && filled < kSize; ++i) {
                if (placed[i] * max_weight >= round * eps[i].weight) {
                    continue;  // ahead of its weight this round
                }
                // A prime table size makes every skip a generator: the walk visits each slot,
                // so it finds an empty one.
                while (slots[position[i]] != kEmpty) {
                    position[i] =
                        static_cast<std::uint32_t>((std::uint64_t{position[i]} + skip[i]) % kSize);
                }
                slots[position[i]] = static_cast<std::uint32_t>(i);
                position[i] =
                    static_cast<std::uint32_t>((std::uint64_t{position[i]} + skip[i]) % kSize);
                ++placed[i];
                ++filled;
            }
        }
    }

    int find(Infos eps, std::uint64_t key) const noexcept {
        if (slots.empty() || !any_available(eps)) {
            return -1;
        }
        std::uint32_t pos = static_cast<std::uint32_t>(key % kSize);
        // The table is a pseudo-random sequence of endpoints: walking on from an unavailable
        // one's slot spreads its keys over the rest in proportion to their shares.
        for (std::uint32_t k = 0; k < kSize; ++k, ++pos) {
            if (pos == kSize) {
                pos = 0;
            }
            const std::uint32_t owner = slots[pos];
            if (owner < eps.size() && eps[owner].available) {
                return static_cast<int>(owner);
            }
        }
        return -1;
    }
};

template <class Table>
class HashBalancer final : public LoadBalancer {
 public:
    explicit HashBalancer(std::shared_ptr<const Table> table) noexcept : table_(std::move(table)) {}

    int pick(Infos eps, const PickContext& ctx) override {
        if (!ctx.has_hash) {
            return weighted_random(eps, rng_);  // no key: as Random (see HashPolicy)
        }
        // Mixed again: a custom hash or a weak one (small integers) must still spread.
        return table_->find(eps, mix64(ctx.hash));
    }

 private:
    std::shared_ptr<const Table> table_;
    Rng rng_;
};

/// Builds a table once per endpoint set and hands it to every reactor's balancer.
template <class Table>
class HashFactory final : public LoadBalancerFactory {
 public:
    std::unique_ptr<LoadBalancer> create(Infos eps) override {
        std::vector<std::pair<std::string, std::uint32_t>> key;
        key.reserve(eps.size());
        for (const auto& e : eps) {
            key.emplace_back(std::string(e.address), e.weight);
        }
        std::shared_ptr<const Table> table;
        {
            std::lock_guard lock(mutex_);
            if (!table_ || key != key_) {
                table_ = std::make_shared<const Table>(eps);
                key_ = std::move(key);
            }
            table = table_;
        }
        return std::make_unique<HashBalancer<Table>>(std::move(table));
    }

 private:
    std::mutex mutex_;
    std::vector<std::pair<std::string, std::uint32_t>> key_;
    std::shared_ptr<const Table> table_;
};

bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_ows(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

/// The value of cookie `name` in one Cookie field, or empty. RFC 6265 §4.2.1: cookie-pairs
/// separated by "; ". Parsed leniently (any whitespace around pairs and '=') as servers must
/// take what user agents send; names compare case-sensitively; §4.1.1: a value may be
/// enclosed in DQUOTEs, which are not part of it.
std::string_view find_cookie(std::string_view field, std::string_view name) noexcept {
    while (!field.empty()) {
        const std::size_t semi = field.find(';');
        std::string_view pair = field.substr(0, semi);
        field = semi == std::string_view::npos ? std::string_view{} : field.substr(semi + 1);
        const std::size_t eq = pair.find('=');
        if (eq == std::string_view::npos || trim(pair.substr(0, eq)) != name) {
            continue;
        }
        std::string_view value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        return value;
    }
    return {};
}

}  // namespace

bool request_hash(const HashPolicy& policy, const Exchange& ex, std::uint64_t& hash) noexcept {
    std::string_view key;
    switch (policy.source) {
        case HashPolicy::Source::ClientIp:
            key = ex.client_address();
            break;
        case HashPolicy::Source::Header:
            key = ex.request().headers.get(policy.name);
            break;
        case HashPolicy::Source::Cookie:
            // HTTP/2 and /3 may split cookies over several fields (RFC 9113 §8.2.3); the first
            // field holding the name wins.
            for (const Header& h : ex.request().headers) {
                if (iequals(h.name, "cookie")) {
                    key = find_cookie(h.value, policy.name);
                    if (!key.empty()) {
                        break;
                    }
                }
            }
            break;
    }
    // An empty value (no client address, an empty header or cookie) is no key: hashing it
    // would send every such request to one endpoint.
    if (key.empty()) {
        return false;
    }
    hash = hash_bytes(key);
    return true;
}

std::shared_ptr<LoadBalancerFactory> builtin_balancer(Balance balance) {
    switch (balance) {
        case Balance::RoundRobin:
            return std::make_shared<SimpleFactory<RoundRobin>>();
        case Balance::WeightedRoundRobin:
            return std::make_shared<SimpleFactory<SmoothWeighted>>();
        case Balance::LeastRequest:
            return std::make_shared<SimpleFactory<LeastRequest>>();
        case Balance::Random:
            return std::make_shared<SimpleFactory<WeightedRandom>>();
        case Balance::RingHash:
            return std::make_shared<HashFactory<Ring>>();
        case Balance::Maglev:
            return std::make_shared<HashFactory<MaglevTable>>();
        case Balance::Custom:
            break;
    }
    return nullptr;
}

}  // namespace blitz::upstream

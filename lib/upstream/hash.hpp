#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

/// Hashing and random numbers for load balancing: fast, allocation-free, not cryptographic.
/// Consistent hashing depends on hash_bytes() giving the same value on every reactor and
/// every run, so it takes no random seed.
namespace blitz::upstream {

/// A 64-bit finaliser (the splitmix64 one): every input bit affects every output bit, so
/// weak or sequential keys spread evenly over a ring or a table.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/// Hash of a byte string: 8-byte little-endian words folded with multiply-rotate, then mixed.
/// Word loads are assembled byte by byte so the value does not depend on the host's byte order.
inline std::uint64_t hash_bytes(std::string_view s, std::uint64_t seed = 0) noexcept {
    constexpr std::uint64_t kMulA = 0x9e3779b97f4a7c15ULL;
    constexpr std::uint64_t kMulB = 0xc2b2ae3d27d4eb4fULL;
    std::uint64_t h = seed ^ (static_cast<std::uint64_t>(s.size()) * kMulA);
    std::size_t i = 0;
    auto fold = [&h](std::uint64_t w) {
        h ^= w * kMulB;
        h = (h << 29) | (h >> 35);
        h *= kMulA;
    };
    for (; i + 8 <= s.size(); i += 8) {
        std::uint64_t w = 0;
        for (std::size_t k = 0; k < 8; ++k) {
            w |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[i + k])) << (8 * k);
        }
        fold(w);
    }
    if (i < s.size()) {
        std::uint64_t w = 0;
        for (std::size_t k = 0; i + k < s.size(); ++k) {
            w |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[i + k])) << (8 * k);
        }
        fold(w);
    }
    return mix64(h);
}

/// splitmix64 as a generator: one add and one mix per number.
///
/// Thread: one owner (each balancer instance has its own). Lifetime: value type.
class Rng {
 public:
    /// Seeded differently for every instance in the process (a counter, the clock and the
    /// object's address), so reactors do not make the same choices in lockstep.
    Rng() noexcept {
        static std::atomic<std::uint64_t> counter{0};
        const auto ticks =
            static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
        state_ = mix64(counter.fetch_add(1, std::memory_order_relaxed) ^ ticks ^
                       reinterpret_cast<std::uintptr_t>(this));
    }
    explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        state_ += 0x9e3779b97f4a7c15ULL;
        return mix64(state_);
    }
    /// Uniform in [0, n) for n ≥ 1 (multiply-shift: no division, bias below 2^-32).
    std::uint32_t below(std::uint32_t n) noexcept {
        return static_cast<std::uint32_t>(((next() >> 32) * static_cast<std::uint64_t>(n)) >> 32);
    }
    /// Uniform in [0, n) for 64-bit n ≥ 1.
    std::uint64_t below64(std::uint64_t n) noexcept {
        return static_cast<std::uint64_t>(
            (static_cast<unsigned __int128>(next()) * static_cast<unsigned __int128>(n)) >> 64);
    }

 private:
    std::uint64_t state_;
};

}  // namespace blitz::upstream

#include "trace/ids.hpp"

#include <bit>
#include <chrono>
#include <cstring>

#include <sys/random.h>

#include "core/hex.hpp"

namespace blitz::trace {

namespace {

// splitmix64 (Steele, Lea, Flood 2014), the seeding function xoshiro's authors recommend: it
// spreads any 64-bit seed over the 256-bit state so the state is never all zero in practice.
std::uint64_t splitmix64(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void store_be64(std::uint8_t* p, std::uint64_t v) noexcept {
    for (int i = 7; i >= 0; --i) {
        p[i] = static_cast<std::uint8_t>(v);
        v >>= 8;
    }
}

}  // namespace

IdGenerator::IdGenerator() noexcept {
    std::uint64_t seed_bits[4] = {};
    std::size_t got = 0;
    while (got < sizeof seed_bits) {
        ssize_t n = getrandom(reinterpret_cast<char*>(seed_bits) + got, sizeof seed_bits - got, 0);
        if (n <= 0) {
            break;  // EINTR cannot happen for requests this small; anything else: fall back
        }
        got += static_cast<std::size_t>(n);
    }
    if (got < sizeof seed_bits) {
        auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        seed(static_cast<std::uint64_t>(now) ^ reinterpret_cast<std::uintptr_t>(this));
        return;
    }
    std::memcpy(s_, seed_bits, sizeof s_);
    if ((s_[0] | s_[1] | s_[2] | s_[3]) == 0) {
        seed(0);  // the one state xoshiro cannot leave
    }
}

IdGenerator::IdGenerator(std::uint64_t seed_value) noexcept { seed(seed_value); }

void IdGenerator::seed(std::uint64_t seed_value) noexcept {
    for (auto& s : s_) {
        s = splitmix64(seed_value);
    }
}

// xoshiro256** 1.0 (Blackman, Vigna 2018).
std::uint64_t IdGenerator::next() noexcept {
    const std::uint64_t result = std::rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = std::rotl(s_[3], 45);
    return result;
}

TraceId IdGenerator::trace_id() noexcept {
    TraceId id{};
    std::uint64_t hi = 0;
    std::uint64_t lo = 0;
    // Trace Context §3.2.2.3: all-zero is invalid; drawing again is the cheapest fix.
    while ((hi | lo) == 0) {
        hi = next();
        lo = next();
    }
    store_be64(id.b, hi);
    store_be64(id.b + 8, lo);
    return id;
}

SpanId IdGenerator::span_id() noexcept {
    SpanId id{};
    std::uint64_t v = 0;
    while (v == 0) {
        v = next();
    }
    store_be64(id.b, v);
    return id;
}

void IdGenerator::request_id(std::span<char, kUuidSize> out) noexcept {
    // RFC 9562 §5.4: version 4 in the high nibble of octet 6, variant 10xx in octet 8 (the
    // octets of `hi` then `lo`, most significant first).
    const std::uint64_t hi = (next() & ~std::uint64_t{0xF000}) | 0x4000;
    const std::uint64_t lo = (next() & ~(std::uint64_t{0xC0} << 56)) | std::uint64_t{0x80} << 56;
    // 8-4-4-4-12 digits (RFC 9562 §4).
    char hex[32];
    blitz::detail::encode_hex128(hi, lo, hex);
    char* p = out.data();
    std::memcpy(p, hex, 8);
    p[8] = '-';
    std::memcpy(p + 9, hex + 8, 4);
    p[13] = '-';
    std::memcpy(p + 14, hex + 12, 4);
    p[18] = '-';
    std::memcpy(p + 19, hex + 16, 4);
    p[23] = '-';
    std::memcpy(p + 24, hex + 20, 12);
}

}  // namespace blitz::trace

#pragma once

// Hexadecimal digits. Read: one digit of either case (percent-encoding, chunk sizes, JSON
// escapes). Written: lower-case, for ids written per request (request ids, trace and span ids):
// four bytes become eight digits in a handful of word operations instead of a table lookup per
// nibble.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace blitz::detail {

/// The value of the hex digit `c` (0-9, a-f, A-F), or -1.
inline constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    const char lower = static_cast<char>(c | 0x20);
    return (lower >= 'a' && lower <= 'f') ? lower - 'a' + 10 : -1;
}

/// The eight hex digits of `v` (most significant first) into `out`.
inline void encode_hex32(std::uint32_t v, char* out) noexcept {
    std::uint64_t x = v;
    // Nibble k (counted from the least significant) into byte k...
    x = (x | x << 16) & 0x0000FFFF0000FFFFu;
    x = (x | x << 8) & 0x00FF00FF00FF00FFu;
    x = (x | x << 4) & 0x0F0F0F0F0F0F0F0Fu;
    // ...then the most significant nibble first in memory (little-endian stores the low byte
    // first; a big-endian machine already has that order).
    if constexpr (std::endian::native == std::endian::little) {
        x = __builtin_bswap64(x);
    }
    // '0' + n, and 'a' - '0' - 10 more where n > 9 (bit 4 of n + 6; no carry crosses a byte).
    const std::uint64_t letters = ((x + 0x0606060606060606u) >> 4) & 0x0101010101010101u;
    x += 0x3030303030303030u + letters * ('a' - '0' - 10);
    std::memcpy(out, &x, sizeof x);
}

/// The sixteen hex digits of `v` (most significant first) into `out`.
inline void encode_hex64(std::uint64_t v, char* out) noexcept {
    encode_hex32(static_cast<std::uint32_t>(v >> 32), out);
    encode_hex32(static_cast<std::uint32_t>(v), out + 8);
}

/// The 32 hex digits of the 128-bit value `hi`:`lo` (most significant first) into `out`: all
/// sixteen bytes at once as a vector (GCC and clang vector extensions: SSE2 on x86-64, NEON on
/// arm64), each split into its two nibbles, interleaved and turned into digits together.
inline void encode_hex128(std::uint64_t hi, std::uint64_t lo, char* out) noexcept {
    using Bytes16 = signed char __attribute__((vector_size(16)));
    using Words2 = std::uint64_t __attribute__((vector_size(16)));
    if constexpr (std::endian::native == std::endian::little) {
        hi = __builtin_bswap64(hi);
        lo = __builtin_bswap64(lo);
    }
    const Words2 bytes = {hi, lo};
    // Nibbles 0..15 in signed bytes: the high nibble of each byte by a word shift then a mask
    // (bits shifted in from the next byte are masked away).
    const auto high = reinterpret_cast<Bytes16>((bytes >> 4) & 0x0F0F0F0F0F0F0F0Fu);
    const auto low = reinterpret_cast<Bytes16>(bytes & 0x0F0F0F0F0F0F0F0Fu);
    const Bytes16 first =
        __builtin_shufflevector(high, low, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const Bytes16 second = __builtin_shufflevector(high, low, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28,
                                                   13, 29, 14, 30, 15, 31);
    const auto digits = [](Bytes16 n) { return n + '0' + ((n > 9) & ('a' - '0' - 10)); };
    const Bytes16 a = digits(first);
    const Bytes16 b = digits(second);
    std::memcpy(out, &a, 16);
    std::memcpy(out + 16, &b, 16);
}

/// The 2n hex digits of the `n` bytes at `in` into `out`.
inline void encode_hex(const std::uint8_t* in, std::size_t n, char* out) noexcept {
    const std::uint8_t* const end = in + n;
    for (; end - in >= 4; in += 4, out += 8) {
        encode_hex32(std::uint32_t{in[0]} << 24 | std::uint32_t{in[1]} << 16 |
                         std::uint32_t{in[2]} << 8 | in[3],
                     out);
    }
    static constexpr char kDigits[] = "0123456789abcdef";
    for (; in != end; ++in, out += 2) {
        out[0] = kDigits[*in >> 4];
        out[1] = kDigits[*in & 0x0f];
    }
}

}  // namespace blitz::detail

#pragma once

// Lower-case hexadecimal for ids written per request (request ids, trace and span ids): four
// bytes become eight digits in a handful of word operations instead of a table lookup per nibble.

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace blitz::detail {

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

/// The 2n hex digits of the `n` bytes at `in` into `out`.
inline void encode_hex(const std::uint8_t* in, std::size_t n, char* out) noexcept {
    const std::uint8_t* const end = in + n;
    for (; end - in >= 4; in += 4, out += 8) {
        encode_hex32(std::uint32_t{in[0]} << 24 | std::uint32_t{in[1]} << 16 | std::uint32_t{in[2]} << 8 | in[3],
                     out);
    }
    static constexpr char kDigits[] = "0123456789abcdef";
    for (; in != end; ++in, out += 2) {
        out[0] = kDigits[*in >> 4];
        out[1] = kDigits[*in & 0x0f];
    }
}

}  // namespace blitz::detail

#pragma once

#include <cstddef>
#include <string_view>

namespace blitz::detail {

/// Length of the well-formed UTF-8 sequence at the start of `s` (1 for ASCII), or 0 when it is
/// not one: a bad lead byte, an overlong form, a surrogate, a code point above U+10FFFF, or a
/// sequence cut short (RFC 3629 §4; the Unicode standard's table 3-7). Text written for parsers
/// that reject anything else (Prometheus, JSON consumers) replaces what this refuses.
///
/// Thread: any. Lifetime: no state.
constexpr std::size_t utf8_sequence(std::string_view s) noexcept {
    if (s.empty()) {
        return 0;
    }
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto cont = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
        return i < s.size() && b(i) >= lo && b(i) <= hi;
    };
    const unsigned c = b(0);
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        return cont(1) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
        const unsigned hi = c == 0xED ? 0x9F : 0xBF;
        return cont(1, lo, hi) && cont(2) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        const unsigned lo = c == 0xF0 ? 0x90 : 0x80;
        const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
        return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
    }
    return 0;
}

}  // namespace blitz::detail

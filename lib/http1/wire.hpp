#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "http1/parser.hpp"

/// Byte-level building blocks shared by the HTTP/1.1 parsers (requests, responses) and writers
/// (response heads, upstream request heads). Everything here is inline: these run per byte or
/// per field on the hot path, and each caller needs them inlined into its own loop.
///
/// Thread: any; no state. Lifetime: nothing kept.
namespace blitz::http1::detail {

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

/// `lower` is a lower-case literal of letters, digits and '-'. OR-ing 0x20 maps only 'A'-'Z'
/// onto letters, and only control bytes onto digits or '-'; parsed names and field values hold
/// none, so this is exact for them (not for unchecked input). Every field name meets one of
/// these, so they compare 8 or 4 bytes at a time, the last word overlapping the one before.
inline bool name_is(std::string_view name, std::string_view lower) noexcept {
    const std::size_t n = lower.size();
    if (name.size() != n) {
        return false;
    }
    const char* const a = name.data();
    const char* const b = lower.data();
    const auto same8 = [a, b](std::size_t at) {
        std::uint64_t x;
        std::uint64_t y;
        std::memcpy(&x, a + at, 8);
        std::memcpy(&y, b + at, 8);
        return (x | 0x2020202020202020) == y;
    };
    const auto same4 = [a, b](std::size_t at) {
        std::uint32_t x;
        std::uint32_t y;
        std::memcpy(&x, a + at, 4);
        std::memcpy(&y, b + at, 4);
        return (x | 0x20202020) == y;
    };
    if (n >= 8) {
        for (std::size_t i = 0; i + 8 < n; i += 8) {
            if (!same8(i)) {
                return false;
            }
        }
        return same8(n - 8);
    }
    if (n >= 4) {
        return same4(0) && same4(n - 4);
    }
    for (std::size_t i = 0; i < n; ++i) {
        if ((a[i] | 0x20) != b[i]) {
            return false;
        }
    }
    return true;
}

// Scanners: each returns the first byte in [p, end) outside its class. Field values, names
// and the target are nearly all of a head's bytes, so where SSE2 exists (every x86-64) they
// test 16 bytes a step; besides fewer instructions, that avoids a mispredicted loop exit per
// field. The byte loops finish the tails and serve other targets; both follow the tables
// (unit tests check every byte value in both paths).
#if defined(__SSE2__)
inline __m128i bytes_equal(__m128i v, char c) noexcept {
    return _mm_cmpeq_epi8(v, _mm_set1_epi8(c));
}

/// lo..hi must lie within 0x01..0x7e so that signed compares work.
inline __m128i bytes_in(__m128i v, char lo, char hi) noexcept {
    return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                         _mm_cmplt_epi8(v, _mm_set1_epi8(static_cast<char>(hi + 1))));
}

/// Bytes below 0x21 taken as signed: controls, SP and everything from 0x80 up.
inline __m128i bytes_below_0x21(__m128i v) noexcept {
    return _mm_cmplt_epi8(v, _mm_set1_epi8(0x21));
}

/// Advances `p` by 16-byte blocks while bad() finds nothing; returns the first bad byte, or
/// null with `p` at the start of the tail (under 16 bytes) left for a byte loop.
template <class Bad>
[[gnu::always_inline]] inline const char* scan16(const char*& p, const char* end,
                                                 Bad bad) noexcept {
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        if (const int mask = _mm_movemask_epi8(bad(v))) {
            return p + __builtin_ctz(static_cast<unsigned>(mask));
        }
        p += 16;
    }
    return nullptr;
}
#endif

/// First byte that is not field-vchar, SP or HTAB (RFC 9110 §5.5).
[[gnu::always_inline]] inline const char* skip_field_value(const char* p,
                                                           const char* end) noexcept {
#if defined(__SSE2__)
    const auto bad = [](__m128i v) {
        // Controls are 0x00-0x1f (signed 0..31; obs-text is negative) except HTAB, and DEL.
        const __m128i control = bytes_in(v, 0x01, 0x1f);
        return _mm_or_si128(
            _mm_or_si128(_mm_andnot_si128(bytes_equal(v, '\t'), control), bytes_equal(v, 0x00)),
            bytes_equal(v, 0x7f));
    };
    if (const char* hit = scan16(p, end, bad)) {
        return hit;
    }
#endif
    while (p != end && is_field_value(*p)) {
        ++p;
    }
    return p;
}

/// First byte that is not a tchar (RFC 9110 §5.6.2).
inline const char* skip_tchar(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const auto not_tchar = [](__m128i v) {
        // Not tchar (RFC 9110 §5.6.2): DQUOTE and "(),/:;<=>?@[\]{}", DEL, and below 0x21.
        __m128i b = _mm_or_si128(bytes_below_0x21(v), bytes_equal(v, '"'));
        b = _mm_or_si128(b, bytes_in(v, '(', ')'));
        b = _mm_or_si128(b, bytes_equal(v, ','));
        b = _mm_or_si128(b, bytes_equal(v, '/'));
        b = _mm_or_si128(b, bytes_in(v, ':', '@'));
        b = _mm_or_si128(b, bytes_in(v, '[', ']'));
        b = _mm_or_si128(b, bytes_equal(v, '{'));
        b = _mm_or_si128(b, bytes_equal(v, '}'));
        return _mm_or_si128(b, bytes_equal(v, 0x7f));
    };
    while (end - p >= 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        // Tokens are nearly always letters, digits and '-' up to the ':' or SP that ends them:
        // when the first other byte is no tchar, it is the answer without the full test.
        const int other = _mm_movemask_epi8(alnum_dash_lanes(v)) ^ 0xffff;
        if (other != 0) {
            const char* const first = p + __builtin_ctz(static_cast<unsigned>(other));
            if (!is_tchar(*first)) {
                return first;
            }
            if (const int mask = _mm_movemask_epi8(not_tchar(v))) {
                return p + __builtin_ctz(static_cast<unsigned>(mask));
            }
        }
        p += 16;
    }
#endif
    while (p != end && is_tchar(*p)) {
        ++p;
    }
    return p;
}

inline std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front())) {
        s.remove_prefix(1);
    }
    while (!s.empty() && is_ows(s.back())) {
        s.remove_suffix(1);
    }
    return s;
}

/// Calls f(element) for each comma-separated element of a field value (RFC 9110 §5.6.1),
/// OWS-trimmed, empty elements included. Stops early when f returns false (and returns false).
template <class F>
bool for_each_element(std::string_view value, F&& f) noexcept {
    for (;;) {
        const std::size_t comma = value.find(',');
        if (!f(trim_ows(value.substr(0, comma)))) {
            return false;
        }
        if (comma == std::string_view::npos) {
            return true;
        }
        value.remove_prefix(comma + 1);
    }
}

/// RFC 9112 §6.3 and RFC 9110 §8.6: Content-Length = 1*DIGIT; a list of identical values is
/// accepted as that value. Returns false on anything else, including values >= 2^63 (the
/// length must fit Request::content_length).
inline bool parse_content_length(std::string_view value, std::uint64_t& out) noexcept {
    bool have = false;
    std::uint64_t first = 0;
    return for_each_element(value, [&](std::string_view e) {
        if (e.empty()) {
            return false;
        }
        std::uint64_t n = 0;
        for (char c : e) {
            if (c < '0' || c > '9') {
                return false;
            }
            const auto d = static_cast<std::uint64_t>(c - '0');
            if (n > (static_cast<std::uint64_t>(INT64_MAX) - d) / 10) {
                return false;
            }
            n = n * 10 + d;
        }
        if (have && n != first) {
            return false;
        }
        have = true;
        first = n;
        out = n;
        return true;
    });
}

/// Notes the `close` and `keep-alive` options of one Connection field (RFC 9112 §9.3).
inline void note_connection_options(std::string_view value, bool& close, bool& keep_alive) noexcept {
    for_each_element(value, [&](std::string_view e) {
        close |= e.size() == 5 && name_is(e, "close");
        keep_alive |= e.size() == 10 && name_is(e, "keep-alive");
        return true;
    });
}

/// What one more Content-Length field line says, given what earlier lines said.
enum class LengthField : std::uint8_t { Ok, Invalid, Conflicting };

/// Folds one Content-Length field line into `have`/`length` (RFC 9112 §6.3: every line must
/// state the same valid length).
inline LengthField note_content_length(std::string_view value, bool& have, std::uint64_t& length) noexcept {
    std::uint64_t n = 0;
    if (!parse_content_length(value, n)) {
        return LengthField::Invalid;
    }
    if (have && n != length) {
        return LengthField::Conflicting;
    }
    have = true;
    length = n;
    return LengthField::Ok;
}

/// How parse_field_lines() stopped.
enum class FieldLines : std::uint8_t {
    Done,        ///< the empty line ending the head was consumed
    Incomplete,  ///< more bytes are needed
    Malformed,   ///< a field line breaks RFC 9112 §5 (see `reason`)
    TooMany,     ///< more than `max_fields` field lines
    Rejected,    ///< on_field() returned a status (see `status` and `reason`)
};

struct FieldLinesResult {
    FieldLines outcome = FieldLines::Done;
    int status = 0;
    const char* reason = "";
};

/// Parses the field lines of a head from `p` through the empty line that ends it, strictly:
/// obs-fold and whitespace before a field line (RFC 9112 §5.2, §2.2), a name that is not a
/// token or whitespace before the colon (§5.1), a control in a value (NUL, bare LF, DEL: RFC
/// 9110 §5.5) and a bare CR are Malformed. Both request and response heads are held to this:
/// an intermediary that accepted what its next hop reads differently would open the door to
/// smuggling. Each field is stored in `storage[count++]` (wire order, value OWS-trimmed) and
/// passed to on_field(name, value, reason), which returns 0 or a status that stops the parse.
/// On Done `p` is just past the head.
template <class OnField>
[[gnu::always_inline]] inline FieldLinesResult parse_field_lines(const char*& p, const char* end,
                                                                 std::span<Header> storage,
                                                                 std::size_t max_fields,
                                                                 std::size_t& count,
                                                                 OnField&& on_field) noexcept {
    const auto malformed = [](const char* reason) {
        return FieldLinesResult{FieldLines::Malformed, 0, reason};
    };
    constexpr FieldLinesResult kIncomplete{FieldLines::Incomplete, 0, ""};
    // field-line = field-name ":" OWS field-value OWS, each ended by CRLF (RFC 9112 §5).
    for (;;) {
        if (p == end) {
            return kIncomplete;
        }
        if (*p == '\r') {
            if (end - p < 2) {
                return kIncomplete;
            }
            if (p[1] != '\n') {
                return malformed("bare CR");
            }
            p += 2;
            return FieldLinesResult{};
        }
        if (is_ows(*p)) {
            return malformed("obs-fold or leading whitespace in field line");
        }
        const char* const name = p;
        p = skip_tchar(p, end);
        if (p == end) {
            return kIncomplete;
        }
        if (*p != ':' || p == name) {
            return malformed("invalid field name");
        }
        const std::string_view field_name(name, static_cast<std::size_t>(p - name));
        ++p;
        while (p != end && is_ows(*p)) {
            ++p;
        }
        const char* const value = p;
        p = skip_field_value(p, end);
        if (p == end) {
            return kIncomplete;
        }
        // Anything but CR here is a control (NUL, bare LF, DEL...): RFC 9110 §5.5.
        if (*p != '\r') {
            return malformed("invalid character in field value");
        }
        if (end - p < 2) {
            return kIncomplete;
        }
        if (p[1] != '\n') {
            return malformed("bare CR");
        }
        const char* value_end = p;
        while (value_end != value && is_ows(value_end[-1])) {
            --value_end;
        }
        p += 2;
        if (count == max_fields) {
            return FieldLinesResult{FieldLines::TooMany, 0, "too many header fields"};
        }
        const std::string_view field_value(value, static_cast<std::size_t>(value_end - value));
        storage[count++] = Header{field_name, field_value};
        const char* reason = "";
        if (const int status = on_field(field_name, field_value, reason)) {
            return FieldLinesResult{FieldLines::Rejected, status, reason};
        }
    }
}

// ---- Writing ----

/// "00" "01" ... "99": decimal formatting two digits a step.
inline constexpr std::array<char, 200> kDigitPairs = [] {
    std::array<char, 200> t{};
    for (int i = 0; i < 100; ++i) {
        t[static_cast<std::size_t>(2 * i)] = static_cast<char>('0' + i / 10);
        t[static_cast<std::size_t>(2 * i + 1)] = static_cast<char>('0' + i % 10);
    }
    return t;
}();

/// 10^0 .. 10^19, the largest power of ten below 2^64.
inline constexpr std::array<std::uint64_t, 20> kPowersOf10 = [] {
    std::array<std::uint64_t, 20> t{};
    std::uint64_t p = 1;
    for (std::uint64_t& e : t) {
        e = p;
        p *= 10;
    }
    return t;
}();

[[gnu::always_inline]] inline std::size_t decimal_digits(std::uint64_t v) noexcept {
    // With b = bit_width(v), 2^(b-1) <= v < 2^b, so v has floor(b * log10(2)) or one more
    // digits (1233 / 4096 is log10(2) close enough for b <= 64). v | 1 has as many digits as v
    // (10^k - 1 is odd) and is never 0.
    const std::uint64_t w = v | 1;
    const auto guess = static_cast<std::size_t>(std::bit_width(w)) * 1233 >> 12;
    return guess + (w >= kPowersOf10[guess]);
}

/// Writes the `n` = decimal_digits(v) digits of v at p.
[[gnu::always_inline]] inline void write_decimal(char* p, std::uint64_t v, std::size_t n) noexcept {
    char* q = p + n;
    while (v >= 100) {
        q -= 2;
        std::memcpy(q, &kDigitPairs[(v % 100) * 2], 2);
        v /= 100;
    }
    if (v >= 10) {
        std::memcpy(q - 2, &kDigitPairs[v * 2], 2);
    } else {
        q[-1] = static_cast<char>('0' + v);
    }
}

/// The exact checks; the SSE2 copies below need them only when their quick test fails.
inline bool is_token(std::string_view name) noexcept {
    for (char c : name) {
        if (!is_tchar(c)) {
            return false;
        }
    }
    return true;
}

/// A CR or LF would end the field line early and let the value inject fields or a body
/// (response splitting); a NUL truncates in C-string based clients.
inline bool is_safe_value(std::string_view value) noexcept {
    for (char c : value) {
        if (c == '\r' || c == '\n' || c == '\0') {
            return false;
        }
    }
    return true;
}

#if defined(__SSE2__)
/// Copies n bytes from src to dst and returns the movemask of good() ANDed over all of them
/// (0xffff: every byte is good). It reads and writes only inside the two ranges: a string
/// shorter than 16 bytes is covered by two overlapping 8- or 4-byte loads, so a lane may hold a
/// byte twice but never a byte from outside. That makes copying and checking a 12-byte name or
/// a 29-byte date a handful of instructions instead of a loop per byte.
template <class Good>
[[gnu::always_inline]] inline int copy_scan(char* dst, const char* src, std::size_t n,
                                            Good good) noexcept {
    const auto load = [](const char* p) {
        return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    };
    const auto store = [](char* p, __m128i x) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(p), x);
    };
    __m128i v;
    if (n > 16) {
        // Whole 16-byte blocks, then the last 16 bytes (overlapping the previous block).
        __m128i all = _mm_set1_epi8(-1);
        for (std::size_t i = 0; i + 32 < n; i += 16) {
            v = load(src + i);
            all = _mm_and_si128(all, good(v));
            store(dst + i, v);
        }
        const std::size_t last_block = (n - 17) & ~std::size_t{15};
        v = load(src + last_block);
        const __m128i tail = load(src + n - 16);
        store(dst + last_block, v);
        store(dst + n - 16, tail);
        return _mm_movemask_epi8(_mm_and_si128(all, _mm_and_si128(good(v), good(tail))));
    }
    if (n >= 8) {
        std::uint64_t head;
        std::uint64_t tail;
        std::memcpy(&head, src, 8);
        std::memcpy(&tail, src + n - 8, 8);
        std::memcpy(dst, &head, 8);
        std::memcpy(dst + n - 8, &tail, 8);
        v = _mm_set_epi64x(static_cast<long long>(tail), static_cast<long long>(head));
    } else if (n >= 4) {
        std::uint32_t head;
        std::uint32_t tail;
        std::memcpy(&head, src, 4);
        std::memcpy(&tail, src + n - 4, 4);
        std::memcpy(dst, &head, 4);
        std::memcpy(dst + n - 4, &tail, 4);
        v = _mm_set_epi32(static_cast<int>(tail), static_cast<int>(head), static_cast<int>(tail),
                          static_cast<int>(head));
    } else if (n > 0) {
        // 1 to 3 bytes: the first, middle and last cover them all.
        const char a = src[0];
        const char b = src[n / 2];
        const char c = src[n - 1];
        dst[0] = a;
        dst[n / 2] = b;
        dst[n - 1] = c;
        const auto byte = [](char x) {
            return static_cast<std::uint32_t>(static_cast<unsigned char>(x));
        };
        v = _mm_set1_epi32(
            static_cast<int>(byte(a) | byte(b) << 8 | byte(c) << 16 | byte(c) << 24));
    } else {
        return 0xffff;
    }
    return _mm_movemask_epi8(good(v));
}

[[gnu::always_inline]] inline void copy_bytes(char* dst, std::string_view s) noexcept {
    copy_scan(dst, s.data(), s.size(), [](__m128i) { return _mm_set1_epi8(-1); });
}

/// Copies a field value; false when it holds CR, LF or NUL. Quick test: no byte at or below
/// 0x0d, which covers all three with one compare. Other bytes down there (HTAB) are rare in
/// values and go to the exact check.
[[gnu::always_inline]] inline bool copy_value(char* dst, std::string_view value) noexcept {
    const auto above_cr = [](__m128i v) {
        return _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x0e)), v);
    };
    return copy_scan(dst, value.data(), value.size(), above_cr) == 0xffff || is_safe_value(value);
}

/// Copies a field value; false unless every byte is field-vchar, SP or HTAB (RFC 9110 §5.5),
/// exactly what the parsers accept, so a head written with it is read back by a strict
/// recipient as written. Quick test: no control and no DEL; HTAB goes to the exact check.
[[gnu::always_inline]] inline bool copy_field_value(char* dst, std::string_view value) noexcept {
    const auto visible = [](__m128i v) {
        // max(v, 0x20) == v: no byte below 0x20 taken as unsigned (obs-text is above).
        const __m128i at_least_space = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x20)), v);
        return _mm_andnot_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)), at_least_space);
    };
    const char* const end = value.data() + value.size();
    return copy_scan(dst, value.data(), value.size(), visible) == 0xffff ||
           skip_field_value(value.data(), end) == end;
}

/// Copies a field name; false when it is not a token. Quick test: letters, digits and '-'
/// (alnum_dash_lanes); a name with any other byte goes to the exact tchar check.
[[gnu::always_inline]] inline bool copy_name(char* dst, std::string_view name) noexcept {
    return copy_scan(dst, name.data(), name.size(), alnum_dash_lanes) == 0xffff || is_token(name);
}
#else
inline void copy_bytes(char* dst, std::string_view s) noexcept {
    if (!s.empty()) {
        std::memcpy(dst, s.data(), s.size());  // s.data() may be null when empty
    }
}

inline bool copy_value(char* dst, std::string_view value) noexcept {
    copy_bytes(dst, value);
    return is_safe_value(value);
}

inline bool copy_field_value(char* dst, std::string_view value) noexcept {
    copy_bytes(dst, value);
    const char* const end = value.data() + value.size();
    return skip_field_value(value.data(), end) == end;
}

inline bool copy_name(char* dst, std::string_view name) noexcept {
    copy_bytes(dst, name);
    return is_token(name);
}
#endif

}  // namespace blitz::http1::detail

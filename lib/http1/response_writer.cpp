#include "http1/parser.hpp"

#include <array>
#include <bit>
#include <cstring>

// A response head is written once per response, so this file is on the hot path as much as
// the parser: no per-byte loops for the common case, no reason lookup for common statuses,
// and every byte a caller passes is still checked before it can reach the wire.
namespace blitz::http1 {

namespace {

// The status lines sent on most responses, whole: the common response then needs neither a
// reason lookup nor digit formatting. Other statuses are built from reason_phrase(); a unit
// test checks that both give the same line for every status.
constexpr std::string_view kCommonStatusLines[] = {
    "",  // kStatusLineIndex value 0: not precomputed
    "HTTP/1.1 200 OK\r\n",
    "HTTP/1.1 201 Created\r\n",
    "HTTP/1.1 204 No Content\r\n",
    "HTTP/1.1 206 Partial Content\r\n",
    "HTTP/1.1 301 Moved Permanently\r\n",
    "HTTP/1.1 302 Found\r\n",
    "HTTP/1.1 304 Not Modified\r\n",
    "HTTP/1.1 307 Temporary Redirect\r\n",
    "HTTP/1.1 308 Permanent Redirect\r\n",
    "HTTP/1.1 400 Bad Request\r\n",
    "HTTP/1.1 401 Unauthorized\r\n",
    "HTTP/1.1 403 Forbidden\r\n",
    "HTTP/1.1 404 Not Found\r\n",
    "HTTP/1.1 405 Method Not Allowed\r\n",
    "HTTP/1.1 408 Request Timeout\r\n",
    "HTTP/1.1 413 Content Too Large\r\n",
    "HTTP/1.1 429 Too Many Requests\r\n",
    "HTTP/1.1 500 Internal Server Error\r\n",
    "HTTP/1.1 502 Bad Gateway\r\n",
    "HTTP/1.1 503 Service Unavailable\r\n",
    "HTTP/1.1 504 Gateway Timeout\r\n",
};

constexpr int kFirstIndexedStatus = 100;

// Status - 100 -> index into kCommonStatusLines (0: build the line), for 100..599.
constexpr std::array<std::uint8_t, 500> kStatusLineIndex = [] {
    std::array<std::uint8_t, 500> index{};
    for (std::size_t i = 1; i < std::size(kCommonStatusLines); ++i) {
        const std::string_view line = kCommonStatusLines[i];
        const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        index[static_cast<std::size_t>(status - kFirstIndexedStatus)] =
            static_cast<std::uint8_t>(i);
    }
    return index;
}();

// "00" "01" ... "99": decimal formatting two digits a step.
constexpr std::array<char, 200> kDigitPairs = [] {
    std::array<char, 200> t{};
    for (int i = 0; i < 100; ++i) {
        t[static_cast<std::size_t>(2 * i)] = static_cast<char>('0' + i / 10);
        t[static_cast<std::size_t>(2 * i + 1)] = static_cast<char>('0' + i % 10);
    }
    return t;
}();

// 10^0 .. 10^19, the largest power of ten below 2^64.
constexpr std::array<std::uint64_t, 20> kPowersOf10 = [] {
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

// Writes the `n` = decimal_digits(v) digits of v at p.
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

// The exact checks; the SSE2 path below needs them only when its quick test fails.
bool is_token(std::string_view name) noexcept {
    for (char c : name) {
        if (!detail::is_tchar(c)) {
            return false;
        }
    }
    return true;
}

// A CR or LF would end the field line early and let the value inject fields or a body
// (response splitting); a NUL truncates in C-string based clients.
bool is_safe_value(std::string_view value) noexcept {
    for (char c : value) {
        if (c == '\r' || c == '\n' || c == '\0') {
            return false;
        }
    }
    return true;
}

#if defined(__SSE2__)
// Copies n bytes from src to dst and returns the movemask of good() ANDed over all of them
// (0xffff: every byte is good). It reads and writes only inside the two ranges: a string
// shorter than 16 bytes is covered by two overlapping 8- or 4-byte loads, so a lane may hold a
// byte twice but never a byte from outside. That makes copying and checking a 12-byte name or
// a 29-byte date a handful of instructions instead of a loop per byte.
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

[[gnu::always_inline]] inline void copy(char* dst, std::string_view s) noexcept {
    copy_scan(dst, s.data(), s.size(), [](__m128i) { return _mm_set1_epi8(-1); });
}

// Quick test: no byte at or below 0x0d, which covers CR, LF and NUL with one compare. Other
// bytes down there (HTAB) are rare in values and go to the exact check.
[[gnu::always_inline]] inline bool copy_value(char* dst, std::string_view value) noexcept {
    const auto above_cr = [](__m128i v) {
        return _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x0e)), v);
    };
    return copy_scan(dst, value.data(), value.size(), above_cr) == 0xffff || is_safe_value(value);
}

// Quick test: letters, digits and '-' (detail::alnum_dash_lanes); a name with any other byte
// goes to the exact tchar check (RFC 9110 §5.6.2).
[[gnu::always_inline]] inline bool copy_name(char* dst, std::string_view name) noexcept {
    return copy_scan(dst, name.data(), name.size(), detail::alnum_dash_lanes) == 0xffff ||
           is_token(name);
}
#else
void copy(char* dst, std::string_view s) noexcept {
    if (!s.empty()) {
        std::memcpy(dst, s.data(), s.size());  // s.data() may be null when empty
    }
}

bool copy_value(char* dst, std::string_view value) noexcept {
    copy(dst, value);
    return is_safe_value(value);
}

bool copy_name(char* dst, std::string_view name) noexcept {
    copy(dst, name);
    return is_token(name);
}
#endif

// The status line of a status not in kCommonStatusLines, built from reason_phrase(); 0 when it
// does not fit in `room`.
std::size_t write_built_status_line(char* p, std::size_t room, int status) noexcept {
    const std::string_view reason = reason_phrase(status);
    const std::size_t n = reason.size() + 15;
    if (room < n) {
        return 0;
    }
    std::memcpy(p, "HTTP/1.1 ", 9);
    write_decimal(p + 9, static_cast<std::uint64_t>(status), 3);
    p[12] = ' ';
    copy(p + 13, reason);
    std::memcpy(p + 13 + reason.size(), "\r\n", 2);
    return n;
}

}  // namespace

std::size_t write_response_head(std::span<char> out, int status, Headers headers,
                                std::uint64_t content_length, bool keep_alive,
                                std::string_view date) noexcept {
    if (status < 100 || status > 999) {
        return 0;
    }
    char* p = out.data();
    char* const end = p + out.size();
    const auto room = [&p, end](std::size_t n) { return static_cast<std::size_t>(end - p) >= n; };

    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
    const std::size_t common =
        status < 600 ? kStatusLineIndex[static_cast<std::size_t>(status - kFirstIndexedStatus)] : 0;
    if (common != 0) {
        const std::string_view line = kCommonStatusLines[common];
        if (!room(line.size())) {
            return 0;
        }
        copy(p, line);
        p += line.size();
    } else {
        const std::size_t n = write_built_status_line(p, static_cast<std::size_t>(end - p), status);
        if (n == 0) {
            return 0;
        }
        p += n;
    }

    for (const Header& h : headers) {
        if (h.name.empty() || !room(h.name.size() + h.value.size() + 4)) {
            return 0;
        }
        if (!copy_name(p, h.name)) {
            return 0;
        }
        p += h.name.size();
        std::memcpy(p, ": ", 2);
        if (!copy_value(p + 2, h.value)) {
            return 0;
        }
        p += 2 + h.value.size();
        std::memcpy(p, "\r\n", 2);
        p += 2;
    }
    if (!date.empty()) {
        if (!room(date.size() + 8)) {
            return 0;
        }
        std::memcpy(p, "Date: ", 6);
        if (!copy_value(p + 6, date)) {
            return 0;
        }
        p += 6 + date.size();
        std::memcpy(p, "\r\n", 2);
        p += 2;
    }
    // RFC 9110 §8.6: no Content-Length in 1xx or 204; for 304 it would only repeat the
    // selected representation's length, so it is left out.
    if (status >= 200 && status != 204 && status != 304) {
        const std::size_t digits = decimal_digits(content_length);
        if (!room(digits + 18)) {
            return 0;
        }
        std::memcpy(p, "Content-Length: ", 16);
        write_decimal(p + 16, content_length, digits);
        p += 16 + digits;
        std::memcpy(p, "\r\n", 2);
        p += 2;
    }
    if (!keep_alive) {
        constexpr std::string_view kClose = "Connection: close\r\n";
        if (!room(kClose.size())) {
            return 0;
        }
        std::memcpy(p, kClose.data(), kClose.size());
        p += kClose.size();
    }
    if (!room(2)) {
        return 0;
    }
    std::memcpy(p, "\r\n", 2);
    return static_cast<std::size_t>(p + 2 - out.data());
}

std::size_t write_continue(std::span<char> out) noexcept {
    constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    if (out.size() < kContinue.size()) {
        return 0;
    }
    std::memcpy(out.data(), kContinue.data(), kContinue.size());
    return kContinue.size();
}

}  // namespace blitz::http1

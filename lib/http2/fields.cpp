#include "http2/fields.hpp"

#include "http2/words.hpp"

#include <array>
#include <cstdint>
#include <cstring>

namespace blitz::http2 {

namespace {

// Each byte of a field name as HTTP/2 sends it: lower-cased if it is a token character
// (RFC 9110 §5.6.2, RFC 9113 §8.2.1), 0 if it may not appear in a name.
constexpr std::array<char, 256> kNameChar = [] {
    std::array<char, 256> t{};
    for (int c = 0; c < 256; ++c) {
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            t[c] = static_cast<char>(c);
        } else if (c >= 'A' && c <= 'Z') {
            t[c] = static_cast<char>(c + 32);
        }
    }
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) {
        t[static_cast<unsigned char>(c)] = c;
    }
    return t;
}();

constexpr std::uint64_t kOnes = 0x0101010101010101ull;
constexpr std::uint64_t kHigh = 0x8080808080808080ull;

// For a word whose bytes are all below 0x80: 0x80 in each byte within [lo, hi], else 0 (no
// byte carries into the next: each sum stays below 0x100).
constexpr std::uint64_t in_range(std::uint64_t x, unsigned char lo, unsigned char hi) noexcept {
    return (x + kOnes * (0x80 - lo)) & ~(x + kOnes * (0x7f - hi)) & kHigh;
}

// Whether all eight bytes are letters, digits or '-' (what nearly every field name is made
// of); `upper` gets 0x80 in each upper-case letter's byte.
bool plain_name_word(std::uint64_t x, std::uint64_t& upper) noexcept {
    if ((x & kHigh) != 0) {
        return false;
    }
    upper = in_range(x, 'A', 'Z');
    const std::uint64_t dash = ~((x ^ (kOnes * '-')) + kOnes * 0x7f) & kHigh;
    return (upper | in_range(x, 'a', 'z') | in_range(x, '0', '9') | dash) == kHigh;
}

// Names of eight bytes or more made of letters, digits and '-': checked and lowered a word at
// a time (the last word overlaps the one before). Returns false for any other name.
bool lower_plain_name(Arena& a, std::string_view name, std::string_view& out) {
    const std::size_t n = name.size();
    const char* const p = name.data();
    std::uint64_t upper_seen = 0;
    std::uint64_t upper;
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        if (!plain_name_word(load64(p + i), upper)) {
            return false;
        }
        upper_seen |= upper;
    }
    if (!plain_name_word(load64(p + n - 8), upper)) {
        return false;
    }
    if ((upper_seen | upper) == 0) {
        out = name;
        return true;
    }
    char* const lowered = static_cast<char*>(a.allocate(n, 1));
    auto lower_word = [&](std::size_t at) {
        std::uint64_t w = load64(p + at);
        w += in_range(w, 'A', 'Z') >> 2;  // 'A' + 0x20 == 'a'
        std::memcpy(lowered + at, &w, 8);
    };
    for (std::size_t i = 0; i + 8 <= n; i += 8) {
        lower_word(i);
    }
    lower_word(n - 8);
    out = {lowered, n};
    return true;
}

}  // namespace

std::string_view lower_name(Arena& a, std::string_view name) {
    std::string_view plain;
    if (name.size() >= 8 && lower_plain_name(a, name, plain)) {
        return plain;
    }
    std::size_t i = 0;
    while (i < name.size() && name[i] != '\0' && kNameChar[static_cast<unsigned char>(name[i])] == name[i]) {
        ++i;
    }
    if (i == name.size()) {
        return name;  // already lower case (HTTP/2 peers', most HTTP/1.1 clients' too): no copy
    }
    char* out = static_cast<char*>(a.allocate(name.size(), 1));
    std::memcpy(out, name.data(), i);
    for (; i < name.size(); ++i) {
        const char c = kNameChar[static_cast<unsigned char>(name[i])];
        if (c == 0) {
            return {};
        }
        out[i] = c;
    }
    return {out, name.size()};
}

bool token(std::string_view s) noexcept {
    for (const char c : s) {
        if (kNameChar[static_cast<unsigned char>(c)] == 0) {
            return false;
        }
    }
    return !s.empty();
}

bool lower_token(std::string_view s) noexcept {
    for (const char c : s) {
        if (c == '\0' || kNameChar[static_cast<unsigned char>(c)] != c) {
            return false;
        }
    }
    return !s.empty();
}

bool connection_specific(std::string_view lower_name) noexcept {
    switch (lower_name.size()) {
    case 2: return lower_name == "te";
    case 7: return lower_name == "upgrade";
    case 10: return lower_name == "connection" || lower_name == "keep-alive";
    case 16: return lower_name == "proxy-connection";
    case 17: return lower_name == "transfer-encoding";
    default: return false;
    }
}

bool valid_value(std::string_view v) noexcept {
    // Eight bytes at a time (it runs on every field both ways): a word has a zero byte when
    // (x - 0x01..) & ~x & 0x80.. is not zero; CR and LF are zero bytes of x ^ 0x0d.. and
    // x ^ 0x0a... The last word overlaps the one before instead of a byte loop; shorter values
    // fill a word with two overlapping halves, or with their first, middle and last bytes.
    auto has_zero = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
    auto bad = [&](std::uint64_t w) { return has_zero(w) | has_zero(w ^ (kOnes * '\r')) | has_zero(w ^ (kOnes * '\n')); };
    const char* const p = v.data();
    const std::size_t n = v.size();
    if (n >= 8) {
        std::uint64_t found = 0;
        for (std::size_t i = 0; i + 8 <= n; i += 8) {
            found |= bad(load64(p + i));
        }
        return (found | bad(load64(p + n - 8))) == 0;
    }
    if (n >= 4) {
        return bad(load32(p) | std::uint64_t{load32(p + n - 4)} << 32) == 0;
    }
    if (n == 0) {
        return true;
    }
    const std::uint64_t w = (kOnes * 'a' & ~std::uint64_t{0xffffff}) | static_cast<unsigned char>(p[0]) |
                            std::uint64_t{static_cast<unsigned char>(p[n / 2])} << 8 |
                            std::uint64_t{static_cast<unsigned char>(p[n - 1])} << 16;
    return bad(w) == 0;
}

}  // namespace blitz::http2

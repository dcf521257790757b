#include "http2/fields.hpp"

#include <array>
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

}  // namespace

std::string_view lower_name(Arena& a, std::string_view name) {
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
    return lower_name == "connection" || lower_name == "keep-alive" || lower_name == "proxy-connection" ||
           lower_name == "transfer-encoding" || lower_name == "upgrade" || lower_name == "te";
}

bool valid_value(std::string_view v) noexcept {
    // Eight bytes at a time (it runs on every field both ways): a word has a zero byte when
    // (x - 0x01..) & ~x & 0x80.. is not zero; CR and LF are zero bytes of x ^ 0x0d.. and x ^ 0x0a...
    constexpr std::uint64_t kOnes = 0x0101010101010101ull;
    constexpr std::uint64_t kHigh = 0x8080808080808080ull;
    auto has_zero = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
    std::size_t i = 0;
    for (; i + 8 <= v.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, v.data() + i, 8);
        if ((has_zero(w) | has_zero(w ^ (kOnes * '\r')) | has_zero(w ^ (kOnes * '\n'))) != 0) {
            return false;
        }
    }
    for (; i < v.size(); ++i) {
        const auto c = static_cast<unsigned char>(v[i]);
        if (c == '\0' || c == '\r' || c == '\n') {
            return false;
        }
    }
    return true;
}

}  // namespace blitz::http2

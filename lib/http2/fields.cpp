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

bool connection_specific(std::string_view lower_name) noexcept {
    return lower_name == "connection" || lower_name == "keep-alive" || lower_name == "proxy-connection" ||
           lower_name == "transfer-encoding" || lower_name == "upgrade" || lower_name == "te";
}

bool valid_value(std::string_view v) noexcept {
    for (unsigned char c : v) {
        if (c == '\0' || c == '\r' || c == '\n') {
            return false;
        }
    }
    return true;
}

}  // namespace blitz::http2

#pragma once

#include <algorithm>
#include <cstddef>
#include <string_view>

namespace blitz::http {

/// RFC 9110 §5.6.2 tchar: a character of a token (field names, methods, cookie names).
constexpr bool is_tchar(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

/// RFC 9110 §5.6.2 token: one or more tchar.
constexpr bool is_token(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

/// A character of a host name label: RFC 1123 §2.1 letters, digits and '-', and '_', which real
/// service names (container and SRV-style names) carry.
constexpr bool is_hostname_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/// A host name: dot-separated labels of 1..63 is_hostname_char, neither starting nor ending with
/// '-', at most 253 characters in all (RFC 1035 §2.3.4). Dotted IPv4 literals are host names by
/// this syntax; a trailing dot is not accepted (callers that take one strip it first).
constexpr bool is_hostname(std::string_view h) noexcept {
    if (h.empty() || h.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = std::min(h.find('.', start), h.size());
        const std::string_view label = h.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
            !std::all_of(label.begin(), label.end(), is_hostname_char)) {
            return false;
        }
        if (dot == h.size()) {
            return true;
        }
        start = dot + 1;
    }
}

}  // namespace blitz::http

#pragma once

#include <algorithm>
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

}  // namespace blitz::http

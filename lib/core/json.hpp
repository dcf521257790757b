#pragma once

#include <string>
#include <string_view>

#include "core/utf8.hpp"

namespace blitz::detail {

/// Appends `s` as a JSON string, quotes included (RFC 8259 §7): quote and backslash escaped,
/// control bytes as \u00XX, valid UTF-8 as is, each byte of invalid UTF-8 as \ufffd, so the
/// output always parses. For admin answers and OTLP exports (not the per-request access log,
/// which has its own bounded writer).
///
/// Thread: any. Lifetime: no state.
inline void append_json_string(std::string& out, std::string_view s) {
    constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
            ++i;
        } else if (c < 0x20) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0x0f];
            ++i;
        } else if (c < 0x80) {
            out += static_cast<char>(c);
            ++i;
        } else if (const std::size_t n = utf8_sequence(s.substr(i)); n != 0) {
            out.append(s.data() + i, n);
            i += n;
        } else {
            out += "\\ufffd";
            ++i;
        }
    }
    out += '"';
}

}  // namespace blitz::detail

#include "config/syntax.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <blitz/http.hpp>

#include "http/token.hpp"

namespace blitz::config {
namespace {

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// A port from 1 to 65535, decimal digits only (no sign, no leading zeros beyond "0").
bool is_port(std::string_view s) noexcept {
    if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) {
        return false;
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    return ec == std::errc{} && end == s.data() + s.size() && value >= 1 && value <= 65535;
}

/// inet_pton(3) needs a NUL-terminated copy; addresses are short.
bool parse_ip(int family, std::string_view s, void* out) noexcept {
    std::array<char, INET6_ADDRSTRLEN + 1> buf{};
    if (s.empty() || s.size() >= buf.size() || s.find('\0') != std::string_view::npos) {
        return false;
    }
    std::memcpy(buf.data(), s.data(), s.size());
    return ::inet_pton(family, buf.data(), out) == 1;
}

}  // namespace

std::string_view trim_right(std::string_view s) noexcept {
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

bool parse_integer(std::string_view s, std::int64_t& out) noexcept {
    if (s.empty() || (s[0] != '-' && !is_digit(s[0]))) {
        return false;
    }
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

bool is_field_value(std::string_view s) noexcept {
    // CR, LF and NUL would split or truncate the field on the wire; other controls are
    // invalid too.
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            return false;
        }
    }
    return true;
}

bool is_framing_header(std::string_view name) noexcept {
    return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
           iequals(name, "Connection");
}

bool is_authority(std::string_view s, bool port_required) noexcept {
    std::string_view host = s;
    std::string_view port;
    bool has_port = false;
    if (s.starts_with('[')) {
        const std::size_t close = s.find(']');
        if (close == std::string_view::npos) {
            return false;
        }
        host = s.substr(0, close + 1);
        const std::string_view rest = s.substr(close + 1);
        if (!rest.empty()) {
            if (rest[0] != ':') {
                return false;
            }
            has_port = true;
            port = rest.substr(1);
        }
        in6_addr a6{};
        if (!parse_ip(AF_INET6, host.substr(1, host.size() - 2), &a6)) {
            return false;
        }
    } else {
        const std::size_t colon = s.find(':');
        if (colon != std::string_view::npos) {
            host = s.substr(0, colon);
            port = s.substr(colon + 1);
            has_port = true;
        }
        // One trailing dot: an absolute DNS name (RFC 1034 §3.1) names the same host.
        if (host.size() > 1 && host.ends_with('.')) {
            host.remove_suffix(1);
        }
        // RFC 1123 §2.1: a name whose last label is numeric is an IPv4 address, and must be a
        // valid one ("256.1.1.1" is neither an address nor a name).
        const std::size_t last_dot = host.rfind('.');
        const std::string_view last =
            last_dot == std::string_view::npos ? host : host.substr(last_dot + 1);
        const bool numeric = !last.empty() && std::all_of(last.begin(), last.end(),
                                                          [](char c) { return is_digit(c); });
        if (numeric) {
            in_addr a4{};
            if (!parse_ip(AF_INET, host, &a4)) {
                return false;
            }
        } else if (!http::is_hostname(host)) {
            return false;
        }
    }
    if (has_port) {
        return is_port(port);
    }
    return !port_required;
}

bool is_wire_path(std::string_view s, bool query) noexcept {
    if (!s.starts_with('/')) {
        return false;
    }
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c >= 0x7F || c == '#' || (c == '?' && !query)) {
            return false;
        }
    }
    return true;
}

CidrCheck parse_cidr(std::string_view s, std::string& canonical) {
    std::string_view address = s;
    std::string_view prefix;
    const std::size_t slash = s.find('/');
    if (slash != std::string_view::npos) {
        address = s.substr(0, slash);
        prefix = s.substr(slash + 1);
    }
    std::array<unsigned char, 16> bytes{};
    int family = AF_INET;
    std::size_t size = 4;
    if (address.find(':') != std::string_view::npos) {
        family = AF_INET6;
        size = 16;
    }
    if (!parse_ip(family, address, bytes.data())) {
        return CidrCheck::Malformed;
    }
    unsigned bits = static_cast<unsigned>(size * 8);
    if (slash != std::string_view::npos) {
        unsigned value = 0;
        auto [end, ec] = std::from_chars(prefix.data(), prefix.data() + prefix.size(), value);
        if (prefix.empty() || (prefix.size() > 1 && prefix[0] == '0') || ec != std::errc{} ||
            end != prefix.data() + prefix.size() || value > bits) {
            return CidrCheck::Malformed;
        }
        bits = value;
    }
    bool host_bits = false;
    for (std::size_t i = 0; i < size; ++i) {
        const unsigned keep = bits >= (i + 1) * 8 ? 8 : (bits > i * 8 ? bits - i * 8 : 0);
        const auto mask = static_cast<unsigned char>(keep == 0 ? 0 : 0xFF << (8 - keep));
        if ((bytes[i] & ~mask & 0xFF) != 0) {
            host_bits = true;
            bytes[i] &= mask;
        }
    }
    if (!host_bits) {
        return CidrCheck::Ok;
    }
    std::array<char, INET6_ADDRSTRLEN> text{};
    ::inet_ntop(family, bytes.data(), text.data(), static_cast<socklen_t>(text.size()));
    canonical = std::string(text.data()) + "/" + std::to_string(bits);
    return CidrCheck::HostBits;
}

}  // namespace blitz::config

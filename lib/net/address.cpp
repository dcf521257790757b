#include "net/address.hpp"

#include <arpa/inet.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>

namespace blitz::net {

bool SocketAddress::parse(std::string_view text, SocketAddress& out) noexcept {
    out = SocketAddress{};
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return false;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return false;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return false;  // IPv6 must be bracketed
        }
    }
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || port.size() > 5 || ec != std::errc{} || end != port.data() + port.size() ||
        p > 65535) {
        return false;
    }
    char buf[INET6_ADDRSTRLEN + 1];
    // inet_pton() stops at a NUL, which a JSON "\u0000" escape can put inside the text.
    if (host.empty() || host.size() >= sizeof buf || host.find('\0') != std::string_view::npos) {
        return false;
    }
    std::memcpy(buf, host.data(), host.size());
    buf[host.size()] = '\0';
    if (text.front() == '[') {
        auto* a = reinterpret_cast<sockaddr_in6*>(&out.storage);
        if (inet_pton(AF_INET6, buf, &a->sin6_addr) != 1) {
            return false;
        }
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(static_cast<std::uint16_t>(p));
        out.length = sizeof(sockaddr_in6);
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&out.storage);
        if (inet_pton(AF_INET, buf, &a->sin_addr) != 1) {
            return false;
        }
        a->sin_family = AF_INET;
        a->sin_port = htons(static_cast<std::uint16_t>(p));
        out.length = sizeof(sockaddr_in);
    }
    return true;
}

std::uint16_t SocketAddress::port() const noexcept {
    if (family() == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
    }
    return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

void SocketAddress::set_port(std::uint16_t port) noexcept {
    if (family() == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port = htons(port);
    } else {
        reinterpret_cast<sockaddr_in*>(&storage)->sin_port = htons(port);
    }
}

namespace {

/// Each octet's decimal digits with the dot after them ("7.", "192."), and how many bytes that is.
struct OctetText {
    std::array<std::array<char, 4>, 256> text{};
    std::array<std::uint8_t, 256> len{};
};

constexpr OctetText kOctets = [] {
    OctetText t;
    for (unsigned v = 0; v < 256; ++v) {
        std::size_t n = 0;
        if (v >= 100) {
            t.text[v][n++] = static_cast<char>('0' + v / 100);
        }
        if (v >= 10) {
            t.text[v][n++] = static_cast<char>('0' + v / 10 % 10);
        }
        t.text[v][n++] = static_cast<char>('0' + v % 10);
        t.text[v][n++] = '.';
        t.len[v] = static_cast<std::uint8_t>(n);
    }
    return t;
}();

}  // namespace

std::size_t format_ip(int family, const void* addr, char* buf, std::size_t len) noexcept {
    if (family == AF_INET && len >= INET_ADDRSTRLEN) {
        // By hand: inet_ntop formats IPv4 with sprintf, a thousand instructions per call, and
        // this runs for every logged request. Four bytes per octet from a table: the last
        // octet's copy ends at byte 16 at most (INET_ADDRSTRLEN).
        const auto* b = static_cast<const unsigned char*>(addr);
        char* p = buf;
        for (int i = 0; i < 4; ++i) {
            std::memcpy(p, kOctets.text[b[i]].data(), 4);
            p += kOctets.len[b[i]];
        }
        *--p = '\0';
        return static_cast<std::size_t>(p - buf);
    }
    if (inet_ntop(family, addr, buf, static_cast<socklen_t>(len)) == nullptr) {
        return 0;
    }
    return std::strlen(buf);
}

std::size_t SocketAddress::format_ip(char* buf, std::size_t len) const noexcept {
    const void* src = family() == AF_INET6
                          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_addr)
                          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&storage)->sin_addr);
    return net::format_ip(family(), src, buf, len);
}

std::string SocketAddress::to_string() const {
    char ip[INET6_ADDRSTRLEN];
    std::size_t n = format_ip(ip, sizeof ip);
    std::string out;
    if (family() == AF_INET6) {
        out.append("[").append(ip, n).append("]");
    } else {
        out.append(ip, n);
    }
    out.append(":").append(std::to_string(port()));
    return out;
}

}  // namespace blitz::net

#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <netinet/in.h>
#include <sys/socket.h>

namespace blitz::net {

/// The text of an IPv4 (`family` AF_INET, 4 bytes at `addr`) or IPv6 (AF_INET6, 16 bytes)
/// address into `buf` (at least INET6_ADDRSTRLEN bytes for IPv6, INET_ADDRSTRLEN for IPv4),
/// NUL-terminated; returns its length, 0 on failure. IPv4 without printf (per logged request).
std::size_t format_ip(int family, const void* addr, char* buf, std::size_t len) noexcept;

/// An IPv4 or IPv6 socket address.
///
/// Thread: value type. Lifetime: value type.
struct SocketAddress {
    sockaddr_storage storage{};
    socklen_t length = 0;

    /// Parses "1.2.3.4:80" or "[::1]:80" (numeric only; no host names). Returns false when
    /// malformed or the port is out of range.
    static bool parse(std::string_view text, SocketAddress& out) noexcept;

    int family() const noexcept { return storage.ss_family; }
    std::uint16_t port() const noexcept;
    void set_port(std::uint16_t port) noexcept;
    const sockaddr* get() const noexcept { return reinterpret_cast<const sockaddr*>(&storage); }
    sockaddr* get() noexcept { return reinterpret_cast<sockaddr*>(&storage); }
    /// "1.2.3.4:80" / "[::1]:80".
    std::string to_string() const;
    /// Only the IP ("1.2.3.4", "::1"); writes into buf and returns the length written.
    std::size_t format_ip(char* buf, std::size_t len) const noexcept;
};

}  // namespace blitz::net

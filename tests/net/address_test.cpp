#include "net/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <string_view>

#include <catch2/catch_test_macros.hpp>

namespace {

using namespace std::string_view_literals;
using blitz::net::SocketAddress;

TEST_CASE("net::SocketAddress parses IPv4 and bracketed IPv6 addresses with ports", "[net]") {
    SocketAddress a;
    REQUIRE(SocketAddress::parse("192.0.2.7:8080", a));
    CHECK(a.family() == AF_INET);
    CHECK(a.port() == 8080);
    CHECK(a.length == sizeof(sockaddr_in));
    CHECK(a.to_string() == "192.0.2.7:8080");

    REQUIRE(SocketAddress::parse("[2001:db8::1]:443", a));
    CHECK(a.family() == AF_INET6);
    CHECK(a.port() == 443);
    CHECK(a.length == sizeof(sockaddr_in6));
    CHECK(a.to_string() == "[2001:db8::1]:443");

    REQUIRE(SocketAddress::parse("[::]:0", a));
    CHECK(a.port() == 0);
    REQUIRE(SocketAddress::parse("0.0.0.0:65535", a));
    CHECK(a.port() == 65535);
    a.set_port(1);
    CHECK(a.to_string() == "0.0.0.0:1");
}

TEST_CASE("net::SocketAddress rejects names, bad ports and unbracketed IPv6", "[net]") {
    SocketAddress a;
    for (std::string_view bad :
         {""sv, "192.0.2.7"sv, "192.0.2.7:"sv, "192.0.2.7:65536"sv, "192.0.2.7:-1"sv,
          "192.0.2.7:+80"sv, "192.0.2.7:80x"sv, "192.0.2.7:000080"sv, "localhost:80"sv, "::1:80"sv,
          "[::1]"sv, "[::1]80"sv, "[::1:80"sv, "[192.0.2.7]:80"sv, "[]:80"sv, ":80"sv,
          "192.0.2.7\0:80"sv, "[::1\0]:80"sv}) {
        CAPTURE(bad);
        CHECK_FALSE(SocketAddress::parse(bad, a));
    }
}

TEST_CASE("net::SocketAddress::format_ip writes only the address", "[net]") {
    SocketAddress a;
    REQUIRE(SocketAddress::parse("[::ffff:192.0.2.7]:1", a));
    char buf[64];
    const std::size_t n = a.format_ip(buf, sizeof buf);
    CHECK(std::string_view(buf, n) == "::ffff:192.0.2.7");
    CHECK(a.format_ip(buf, 4) == 0);
}

}  // namespace

TEST_CASE("net::format_ip writes every IPv4 octet as inet_ntop does", "[net]") {
    for (unsigned v = 0; v < 256; ++v) {
        const unsigned char addr[4] = {static_cast<unsigned char>(v), 10, static_cast<unsigned char>(255 - v), 0};
        char ours[INET6_ADDRSTRLEN];
        char theirs[INET6_ADDRSTRLEN];
        const std::size_t n = blitz::net::format_ip(AF_INET, addr, ours, sizeof ours);
        REQUIRE(inet_ntop(AF_INET, addr, theirs, sizeof theirs) != nullptr);
        CHECK(std::string_view(ours, n) == theirs);
        CHECK(ours[n] == '\0');
    }
    const unsigned char v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    char buf[INET6_ADDRSTRLEN];
    const std::size_t n = blitz::net::format_ip(AF_INET6, v6, buf, sizeof buf);
    CHECK(std::string_view(buf, n) == "2001:db8::1");
}

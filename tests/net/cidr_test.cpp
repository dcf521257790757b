#include "net/cidr.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "net/address.hpp"

namespace {

using namespace std::string_view_literals;
using blitz::net::CidrSet;
using blitz::net::SocketAddress;

CidrSet make(std::vector<std::string> blocks) {
    auto set = CidrSet::parse(blocks);
    REQUIRE(set.has_value());
    return *set;
}

// The same question through both entry points: as text, and as the socket address a peer has.
bool holds(const CidrSet& set, std::string_view ip) {
    const bool by_text = set.contains(ip);
    SocketAddress a;
    const std::string with_port = ip.find(':') == std::string_view::npos
                                      ? std::string(ip) + ":80"
                                      : "[" + std::string(ip) + "]:80";
    REQUIRE(SocketAddress::parse(with_port, a));
    CHECK(set.contains(a.get()) == by_text);
    return by_text;
}

TEST_CASE("net::CidrSet matches IPv4 blocks and single addresses", "[net]") {
    const CidrSet set = make({"10.0.0.0/8", "192.168.1.7", "172.16.0.0/12"});
    CHECK(set.size() == 3);
    CHECK(holds(set, "10.0.0.0"));
    CHECK(holds(set, "10.255.255.255"));
    CHECK(holds(set, "192.168.1.7"));
    CHECK(holds(set, "172.31.255.1"));
    CHECK_FALSE(holds(set, "11.0.0.0"));
    CHECK_FALSE(holds(set, "9.255.255.255"));
    CHECK_FALSE(holds(set, "192.168.1.8"));
    CHECK_FALSE(holds(set, "192.168.1.6"));
    CHECK_FALSE(holds(set, "172.32.0.0"));
    CHECK_FALSE(holds(set, "::1"));
}

TEST_CASE("net::CidrSet matches IPv6 blocks and single addresses", "[net]") {
    const CidrSet set = make({"2001:db8::/32", "::1", "fd00::/8", "2001:db8:1:2:3:4:5:0/127"});
    CHECK(holds(set, "2001:db8::1"));
    CHECK(holds(set, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
    CHECK(holds(set, "::1"));
    CHECK(holds(set, "fdff::1"));
    CHECK_FALSE(holds(set, "2001:db9::1"));
    CHECK_FALSE(holds(set, "2001:db7:ffff::1"));
    CHECK_FALSE(holds(set, "::2"));
    CHECK_FALSE(holds(set, "fe00::1"));
    CHECK_FALSE(holds(set, "127.0.0.1"));
}

TEST_CASE("net::CidrSet handles prefixes at every word boundary", "[net]") {
    // /0, /1, /63, /64, /65, /127 and /128 cover every branch of the two-word masks.
    const CidrSet zero = make({"::/0"});
    CHECK(holds(zero, "ffff::1"));
    CHECK(holds(zero, "::"));
    const CidrSet one = make({"8000::/1"});
    CHECK(holds(one, "8000::"));
    CHECK_FALSE(holds(one, "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    const CidrSet p63 = make({"2001:db8:0:2::/63"});
    CHECK(holds(p63, "2001:db8:0:3:ffff::1"));
    CHECK_FALSE(holds(p63, "2001:db8:0:4::"));
    const CidrSet p64 = make({"2001:db8:0:2::/64"});
    CHECK(holds(p64, "2001:db8:0:2:ffff:ffff:ffff:ffff"));
    CHECK_FALSE(holds(p64, "2001:db8:0:3::"));
    const CidrSet p65 = make({"2001:db8:0:2::/65"});
    CHECK(holds(p65, "2001:db8:0:2:7fff::"));
    CHECK_FALSE(holds(p65, "2001:db8:0:2:8000::"));
    const CidrSet p127 = make({"::2/127"});
    CHECK(holds(p127, "::3"));
    CHECK_FALSE(holds(p127, "::4"));
    const CidrSet p128 = make({"::2/128"});
    CHECK(holds(p128, "::2"));
    CHECK_FALSE(holds(p128, "::3"));

    const CidrSet all4 = make({"0.0.0.0/0"});
    CHECK(holds(all4, "255.255.255.255"));
    CHECK(holds(all4, "0.0.0.0"));
    CHECK_FALSE(holds(all4, "::1"));
    const CidrSet p31 = make({"192.0.2.2/31"});
    CHECK(holds(p31, "192.0.2.3"));
    CHECK_FALSE(holds(p31, "192.0.2.4"));
    CHECK_FALSE(holds(p31, "192.0.2.1"));
}

TEST_CASE("net::CidrSet ignores host bits below the prefix", "[net]") {
    const CidrSet set = make({"192.168.1.1/16", "2001:db8::1/32"});
    CHECK(holds(set, "192.168.200.9"));
    CHECK(holds(set, "2001:db8:1::"));
    CHECK_FALSE(holds(set, "192.169.0.0"));
}

TEST_CASE("net::CidrSet treats IPv4-mapped IPv6 addresses as their IPv4 form", "[net]") {
    const CidrSet v4 = make({"10.0.0.0/8"});
    CHECK(holds(v4, "::ffff:10.1.2.3"));
    CHECK(holds(v4, "::FFFF:a01:203"));
    CHECK_FALSE(holds(v4, "::ffff:11.1.2.3"));
    // Not mapped: the IPv4-compatible form (deprecated) and other prefixes.
    CHECK_FALSE(holds(v4, "::10.1.2.3"));
    CHECK_FALSE(holds(v4, "64:ff9b::10.1.2.3"));
    CHECK_FALSE(holds(v4, "::fffe:10.1.2.3"));

    // The other way round: a block written in mapped form holds the IPv4 address.
    const CidrSet mapped = make({"::ffff:192.0.2.0/120"});
    CHECK(holds(mapped, "192.0.2.77"));
    CHECK(holds(mapped, "::ffff:192.0.2.77"));
    CHECK_FALSE(holds(mapped, "192.0.3.1"));
}

TEST_CASE("net::CidrSet rejects malformed blocks with a message naming them", "[net]") {
    for (std::string_view bad : {""sv,
                                 "/8"sv,
                                 "10.0.0.0/"sv,
                                 "10.0.0.0/33"sv,
                                 "10.0.0.0/-1"sv,
                                 "10.0.0.0/+8"sv,
                                 "10.0.0.0/8 "sv,
                                 " 10.0.0.0/8"sv,
                                 "10.0.0.0 /8"sv,
                                 "10.0.0.0/ 8"sv,
                                 "10.0.0.0/0x8"sv,
                                 "10.0.0.0/1000"sv,
                                 "10.0.0.0/8/8"sv,
                                 "10.0.0"sv,
                                 "10.0.0.256"sv,
                                 "10.0.0.0.0"sv,
                                 "010.0.0.1"sv,
                                 "0x0a.0.0.1"sv,
                                 "10.0.0.1:80"sv,
                                 "::1/129"sv,
                                 "::1/"sv,
                                 "[::1]"sv,
                                 "[::1]/128"sv,
                                 "fe80::1%eth0"sv,
                                 "2001:db8:::1"sv,
                                 "2001:db8::g"sv,
                                 "localhost"sv,
                                 "10.0.0.1\0"sv,
                                 "1\0.0.0.1"sv,
                                 "*"sv,
                                 "any"sv}) {
        CAPTURE(bad);
        CidrSet set;
        const auto r = set.add(bad);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().find("invalid address block") == 0);
        CHECK(set.empty());
    }
    CidrSet set;
    const auto r = set.add("10.0.0.0/33");
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error() ==
          "invalid address block \"10.0.0.0/33\": an IPv4 prefix length is at most 32");

    const std::vector<std::string> list = {"10.0.0.0/8", "::1", "nope/3"};
    const auto parsed = CidrSet::parse(list);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().find("\"nope/3\"") != std::string::npos);
}

TEST_CASE("net::CidrSet accepts every prefix length in range and none beyond", "[net]") {
    for (unsigned p = 0; p <= 130; ++p) {
        CAPTURE(p);
        CidrSet set;
        CHECK(set.add("10.0.0.0/" + std::to_string(p)).has_value() == (p <= 32));
        CHECK(set.add("2001:db8::/" + std::to_string(p)).has_value() == (p <= 128));
    }
    CidrSet zeros;
    CHECK(zeros.add("10.0.0.0/008").has_value());
    CHECK(zeros.contains("10.255.0.1"));
}

TEST_CASE("net::CidrSet answers no for non-addresses and other families", "[net]") {
    const CidrSet set = make({"0.0.0.0/0", "::/0"});
    CHECK(set.contains("1.2.3.4"));
    for (std::string_view not_ip : {""sv, "1.2.3"sv, "1.2.3.4 "sv, "[::1]"sv, "::1%lo"sv,
                                    "1.2.3.4:80"sv, "1.2.3.4\0"sv, "x"sv}) {
        CAPTURE(not_ip);
        CHECK_FALSE(set.contains(not_ip));
    }
    CHECK_FALSE(set.contains(static_cast<const sockaddr*>(nullptr)));
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    CHECK_FALSE(set.contains(reinterpret_cast<const sockaddr*>(&un)));
    CHECK_FALSE(set.contains(std::string(100, '1')));

    const CidrSet empty;
    CHECK(empty.empty());
    CHECK_FALSE(empty.contains("127.0.0.1"));
    CHECK_FALSE(empty.contains("::1"));
}

}  // namespace

#include "config/syntax.hpp"

#include <string>

#include <catch2/catch_test_macros.hpp>

#include "net/cidr.hpp"

using blitz::config::CidrCheck;

TEST_CASE("config::is_authority accepts hosts, IPv4 and bracketed IPv6 with optional ports",
          "[config]") {
    using blitz::config::is_authority;
    for (const char* good : {"a", "a.b", "svc_1.local", "xn--bcher-kva.example", "a.b.", "1.2.3.4",
                             "[::1]", "[2001:db8::1]", "[::ffff:1.2.3.4]"}) {
        INFO(good);
        CHECK(is_authority(good, false));
        CHECK_FALSE(is_authority(good, true));
        CHECK(is_authority(std::string(good) + ":1", true));
        CHECK(is_authority(std::string(good) + ":65535", true));
    }
    for (const char* bad :
         {"",          ":80",       "a:",       "a:0",  "a:65536", "a:-1",   "a:+1",
          "a:01",      "a:1x",      "a b",      "-a",   "a-",      "a..b",   "*.a",
          "1.2.3.256", "1.2.3",     "01.2.3.4", "[::1", "::1",     "[::1]:", "[::1]x",
          "[g::1]",    "[1.2.3.4]", "a:1:2",    "a/b",  "a@b"}) {
        INFO(bad);
        CHECK_FALSE(is_authority(bad, false));
    }
    CHECK_FALSE(is_authority(std::string(64, 'a') + ".com", false));
    CHECK(is_authority(std::string(63, 'a') + ".com", false));
    CHECK_FALSE(is_authority(std::string("a\0b", 3), false));
}

TEST_CASE("config::is_wire_path takes visible ASCII paths, with a query only when asked",
          "[config]") {
    using blitz::config::is_wire_path;
    CHECK(is_wire_path("/"));
    CHECK(is_wire_path("/a/%20b~!$&'()*+,;=:@"));
    CHECK_FALSE(is_wire_path(""));
    CHECK_FALSE(is_wire_path("a/"));
    CHECK_FALSE(is_wire_path("/a b"));
    CHECK_FALSE(is_wire_path("/a\x7f"));
    CHECK_FALSE(is_wire_path("/caf\xC3\xA9"));
    CHECK_FALSE(is_wire_path("/a#b", true));
    CHECK_FALSE(is_wire_path("/a?b"));
    CHECK(is_wire_path("/a?b=1", true));
}

TEST_CASE("config::parse_cidr checks addresses and blocks and names the network of a host",
          "[config]") {
    std::string network;
    for (const char* good : {"10.0.0.0/8", "192.0.2.7", "192.0.2.7/32", "0.0.0.0/0", "::1", "::/0",
                             "2001:db8::/32", "fe80::/10", "::ffff:10.0.0.0/104"}) {
        INFO(good);
        CHECK(blitz::config::parse_cidr(good, network) == CidrCheck::Ok);
        // What the config accepts, the listener's CidrSet must accept too.
        blitz::net::CidrSet set;
        CHECK(set.add(good).has_value());
    }
    for (const char* bad :
         {"", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/-1", "10.0.0/8", "[::1]",
          "::1/129", "10.0.0.0/8/8", "host.example", "10.0.0.0 /8", "1.2.3.4:80"}) {
        INFO(bad);
        CHECK(blitz::config::parse_cidr(bad, network) == CidrCheck::Malformed);
    }
    CHECK(blitz::config::parse_cidr("10.1.2.3/8", network) == CidrCheck::HostBits);
    CHECK(network == "10.0.0.0/8");
    CHECK(blitz::config::parse_cidr("192.168.1.129/25", network) == CidrCheck::HostBits);
    CHECK(network == "192.168.1.128/25");
    CHECK(blitz::config::parse_cidr("2001:db8::1/32", network) == CidrCheck::HostBits);
    CHECK(network == "2001:db8::/32");
    CHECK(blitz::config::parse_cidr("1.2.3.4/0", network) == CidrCheck::HostBits);
    CHECK(network == "0.0.0.0/0");
}

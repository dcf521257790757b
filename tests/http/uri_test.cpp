#include "http/uri.hpp"

#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

namespace {

using blitz::http::authority_host;
using blitz::http::normalize_path;
using blitz::http::valid_authority;

// Normalises a copy; returns "<rejected>" for -1 so tables read naturally.
std::string normalized(std::string_view path) {
    std::string copy(path);
    const long n = normalize_path(copy);
    if (n < 0) {
        return "<rejected>";
    }
    REQUIRE(static_cast<std::size_t>(n) <= path.size());
    copy.resize(static_cast<std::size_t>(n));
    return copy;
}

TEST_CASE("http::normalize_path decodes unreserved escapes and removes dot-segments", "[http]") {
    struct Case {
        std::string_view in;
        std::string_view out;
    };
    constexpr Case kCases[] = {
        {"/", "/"},
        {"/a/b/c", "/a/b/c"},
        {"/a/./b/../c", "/a/c"},
        {"/%41", "/A"},
        {"/%7e%2D%5f%2e", "/~-_."},
        {"/a%2Fb", "/a%2Fb"},
        {"/a%2fb", "/a%2Fb"},
        {"/a%5cb", "/a%5Cb"},
        {"/a%20b", "/a%20b"},
        {"/caf%c3%a9", "/caf%C3%A9"},
        {"/..", "/"},
        {"/../../a", "/a"},
        {"/a/..", "/"},
        {"/a/b/..", "/a/"},
        {"/a/.", "/a/"},
        {"/.", "/"},
        {"/./", "/"},
        {"/a/b/../../../c", "/c"},
        {"/%2e%2E/a", "/a"},
        {"/a/%2e/b", "/a/b"},
        {"/a/%2e%2e/b", "/b"},
        {"/a/..%2F/b", "/a/..%2F/b"},
        {"/...", "/..."},
        {"/a/.b/..c/", "/a/.b/..c/"},
        // Empty segments are kept: "//a" and "/a" can be different resources to a backend,
        // and merging them would hide that from the router.
        {"//a//b/", "//a//b/"},
        {"/a//../b", "/a/b"},
        {"/a:b@c;d=e,f!$&'()*+", "/a:b@c;d=e,f!$&'()*+"},
        // Bytes browsers and other clients send unencoded stay literal: never decoded, never
        // separators, and their escapes stay escapes.
        {"/a|b^c", "/a|b^c"},
        {"/a[1]/{id}/`x`", "/a[1]/{id}/`x`"},
        {"/a/[b]/../c", "/a/c"},
        {"/%7c%5B%5d%5e%7B%7D%60", "/%7C%5B%5D%5E%7B%7D%60"},
    };
    for (const Case& c : kCases) {
        CAPTURE(c.in);
        CHECK(normalized(c.in) == c.out);
    }
}

TEST_CASE("http::normalize_path rejects escapes, bytes and shapes a backend could misread",
          "[http]") {
    constexpr std::string_view kRejected[] = {
        "",       "a/b",   "/a\\b", "/%zz",   "/%",    "/%4",    "/%4g",         "/%00",
        "/a%00b", "/a b",  "/a\tb", "/a\x01", "/\x7f", "/a\x80", "/caf\xc3\xa9", "/a#b",
        "/a?b",   "/a\"b", "/a<b",  "/a>b",   "/[\\]",
    };
    for (std::string_view path : kRejected) {
        CAPTURE(path);
        CHECK(normalized(path) == "<rejected>");
    }
    std::string with_nul("/a\0b", 4);
    CHECK(normalize_path(with_nul) == -1);
}

TEST_CASE("http::normalize_path is idempotent", "[http]") {
    constexpr std::string_view kPaths[] = {"/a/./b/../c", "/%41%2f%2e%2e/x", "/a/%2e%2e/..",
                                           "//.//./x/", "/[a]/../{b}|%7c"};
    for (std::string_view path : kPaths) {
        CAPTURE(path);
        const std::string once = normalized(path);
        CHECK(normalized(once) == once);
    }
}

TEST_CASE("http::valid_authority accepts reg-names, IPv4 and IP-literals with a port", "[http]") {
    constexpr std::string_view kValid[] = {
        "example.com",
        "EXAMPLE.com:8080",
        "localhost",
        "a-b_c~d.example",
        "xn--bcher-kva.example",
        "%41bc",
        "127.0.0.1",
        "127.0.0.1:80",
        "host:0",
        "host:65535",
        "[::1]",
        "[::1]:443",
        "[::]",
        "[2001:db8::1]",
        "[1:2:3:4:5:6:7:8]",
        "[1::8]",
        "[::ffff:192.0.2.1]",
        "[1:2:3:4:5:6:1.2.3.4]",
        "[v1.fe:80]",
    };
    for (std::string_view a : kValid) {
        CAPTURE(a);
        CHECK(valid_authority(a));
    }
}

TEST_CASE("http::valid_authority rejects userinfo, bad ports and malformed IP-literals", "[http]") {
    constexpr std::string_view kInvalid[] = {
        "",
        ":80",
        "host:",
        "host:65536",
        "host:99999999999",
        "host:8a",
        "host:-1",
        "user@host",
        "user:pw@host",
        "ho st",
        "host/path",
        "host?q",
        "%zz",
        "%4",
        "::1",
        "[::1",
        "[::1]x",
        "[::1]:",
        "[]",
        "[:1]",
        "[1:]",
        "[1:2:3:4:5:6:7:8:9]",
        "[1:2:3:4:5:6:7]",
        "[1::2::3]",
        "[12345::]",
        "[::1%25eth0]",
        "[::ffff:1.2.3.256]",
        "[::ffff:01.2.3.4]",
        "[::ffff:1.2.3]",
        "[1.2.3.4]",
        "[v.x]",
        "[v1.]",
        "[vz.x]",
    };
    for (std::string_view a : kInvalid) {
        CAPTURE(a);
        CHECK_FALSE(valid_authority(a));
    }
}

TEST_CASE("http::authority_host strips the port and keeps IPv6 brackets", "[http]") {
    CHECK(authority_host("example.com:80") == "example.com");
    CHECK(authority_host("example.com") == "example.com");
    CHECK(authority_host("[::1]:8080") == "[::1]");
    CHECK(authority_host("[::1]") == "[::1]");
}

}  // namespace

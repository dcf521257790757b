#include <array>
#include <random>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

#include <blitz/http.hpp>

namespace {

using blitz::Header;
using blitz::Headers;
using blitz::Method;

TEST_CASE("http::method_from_token maps every standard method and round-trips method_token",
          "[http]") {
    constexpr std::array<std::pair<std::string_view, Method>, 9> kMethods = {{
        {"GET", Method::Get},
        {"HEAD", Method::Head},
        {"POST", Method::Post},
        {"PUT", Method::Put},
        {"DELETE", Method::Delete},
        {"CONNECT", Method::Connect},
        {"OPTIONS", Method::Options},
        {"TRACE", Method::Trace},
        {"PATCH", Method::Patch},
    }};
    for (const auto& [token, method] : kMethods) {
        CAPTURE(token);
        CHECK(blitz::method_from_token(token) == method);
        CHECK(blitz::method_token(method) == token);
    }
}

TEST_CASE("http::method_from_token is case-sensitive and maps extensions to Other", "[http]") {
    CHECK(blitz::method_from_token("get") == Method::Other);
    CHECK(blitz::method_from_token("Post") == Method::Other);
    CHECK(blitz::method_from_token("PURGE") == Method::Other);
    CHECK(blitz::method_from_token("GETS") == Method::Other);
    CHECK(blitz::method_from_token("") == Method::Other);
    CHECK(blitz::method_token(Method::Other).empty());
}

TEST_CASE("http::iequals compares ASCII case-insensitively and nothing else", "[http]") {
    CHECK(blitz::iequals("Content-Length", "content-length"));
    CHECK(blitz::iequals("", ""));
    CHECK_FALSE(blitz::iequals("Host", "Hos"));
    CHECK_FALSE(blitz::iequals("Host", "Hosu"));
    // Only letters fold: '@' and '`' differ by 0x20 but are not the same character.
    CHECK_FALSE(blitz::iequals("@", "`"));
    CHECK_FALSE(blitz::iequals("[", "{"));
    // Names of eight bytes and more go a word at a time, the last word overlapping: a difference
    // in any position, first word, middle or tail, is seen.
    CHECK(blitz::iequals("X-FORWARDED-FOR", "x-forwarded-for"));
    CHECK(blitz::iequals("Access-Control-Request-Headers", "access-control-request-HEADERS"));
    CHECK(blitz::iequals("ABCDEFGH", "abcdefgh"));
    CHECK_FALSE(blitz::iequals("x-forwarded-for", "y-forwarded-for"));
    CHECK_FALSE(blitz::iequals("x-forwarded-for", "x-forwardeD-fos"));
    CHECK_FALSE(blitz::iequals("x-forwarded-for", "x-forw@rded-for"));
    CHECK_FALSE(blitz::iequals("content-length\r", "content-length-"));
    CHECK_FALSE(blitz::iequals("abcdefgh[", "ABCDEFGH{"));
    // Bytes from 0x80 compare exactly (no folding of Latin-1 or UTF-8).
    CHECK(blitz::iequals("caf\xC3\xA9-header", "CAF\xC3\xA9-HEADER"));
    CHECK_FALSE(blitz::iequals("caf\xC3\xA9-header", "caf\xC3\x89-header"));
}

TEST_CASE("http::iequals agrees with a byte-at-a-time comparison for any bytes at any position",
          "[http]") {
    // Words are compared whole when equal, rejected at once when they differ outside the case
    // bits, and lowered only otherwise: pairs that differ by case flips of any byte (letters or
    // not) and by one byte of any value must get the reference's answer.
    const auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; };
    const auto reference = [&lower](std::string_view a, std::string_view b) {
        if (a.size() != b.size()) {
            return false;
        }
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i]))) {
                return false;
            }
        }
        return true;
    };
    std::mt19937_64 rng(20261127);
    for (int iteration = 0; iteration < 200000; ++iteration) {
        std::string a(rng() % 33, '\0');
        for (char& c : a) {
            c = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 'A' + rng() % 58);
        }
        std::string b = a;
        for (char& c : b) {
            if (rng() % 3 == 0) {
                c = static_cast<char>(c ^ 0x20);
            }
        }
        if (!b.empty() && rng() % 2 == 0) {
            b[rng() % b.size()] = static_cast<char>(rng() % 256);
        }
        INFO("\"" << a << "\" vs \"" << b << "\"");
        REQUIRE(blitz::iequals(a, b) == reference(a, b));
    }
}

TEST_CASE("http::Headers::get returns the first matching field, case-insensitively", "[http]") {
    const std::array<Header, 4> fields = {{
        {"Host", "example.com"},
        {"Set-Cookie", "a=1"},
        {"set-cookie", "b=2"},
        {"X-Empty", ""},
    }};
    const Headers headers(fields);
    CHECK(headers.size() == 4);
    CHECK(headers.get("host") == "example.com");
    CHECK(headers.get("SET-COOKIE") == "a=1");
    CHECK(headers.get("x-empty").empty());
    CHECK(headers.has("x-empty"));
    CHECK(headers.get("Accept").empty());
    CHECK_FALSE(headers.has("Accept"));
    CHECK_FALSE(Headers{}.has("Host"));
}

TEST_CASE("http::reason_phrase knows the standard codes and returns empty otherwise", "[http]") {
    CHECK(blitz::reason_phrase(200) == "OK");
    CHECK(blitz::reason_phrase(100) == "Continue");
    CHECK(blitz::reason_phrase(404) == "Not Found");
    CHECK(blitz::reason_phrase(413) == "Content Too Large");
    CHECK(blitz::reason_phrase(414) == "URI Too Long");
    CHECK(blitz::reason_phrase(417) == "Expectation Failed");
    CHECK(blitz::reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(blitz::reason_phrase(501) == "Not Implemented");
    CHECK(blitz::reason_phrase(505) == "HTTP Version Not Supported");
    CHECK(blitz::reason_phrase(299).empty());
    CHECK(blitz::reason_phrase(0).empty());
    CHECK(blitz::reason_phrase(-1).empty());
}

}  // namespace

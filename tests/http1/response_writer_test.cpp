#include "http1/parser.hpp"

#include <array>
#include <cctype>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

namespace {

using blitz::Header;
using blitz::Headers;
using blitz::http1::write_continue;
using blitz::http1::write_response_head;

constexpr std::string_view kDate = "Tue, 15 Nov 1994 08:12:31 GMT";

std::string write(int status, Headers headers, std::uint64_t length, bool keep_alive,
                  std::string_view date = kDate) {
    std::array<char, 1024> out{};
    const std::size_t n = write_response_head(out, status, headers, length, keep_alive, date);
    return std::string(out.data(), n);
}

TEST_CASE("http1::write_response_head writes status line, fields, Date and Content-Length",
          "[http1]") {
    const std::array<Header, 2> fields = {{{"Content-Type", "text/plain"}, {"X-Id", "7"}}};
    CHECK(write(200, Headers(fields), 12, true) ==
          "HTTP/1.1 200 OK\r\n"
          "Content-Type: text/plain\r\n"
          "X-Id: 7\r\n"
          "Date: Tue, 15 Nov 1994 08:12:31 GMT\r\n"
          "Content-Length: 12\r\n"
          "\r\n");
}

TEST_CASE("http1::write_response_head adds Connection: close when not keeping alive", "[http1]") {
    CHECK(write(404, {}, 0, false, "") ==
          "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

TEST_CASE("http1::write_response_head omits Content-Length where the status forbids a body",
          "[http1]") {
    CHECK(write(204, {}, 0, true, "") == "HTTP/1.1 204 No Content\r\n\r\n");
    CHECK(write(304, {}, 10, true, "") == "HTTP/1.1 304 Not Modified\r\n\r\n");
    CHECK(write(101, {}, 0, true, "") == "HTTP/1.1 101 Switching Protocols\r\n\r\n");
    CHECK(write(199, {}, 0, true, "") == "HTTP/1.1 199 \r\n\r\n");
}

TEST_CASE("http1::write_response_head writes large lengths and unknown reason phrases", "[http1]") {
    CHECK(write(299, {}, 18446744073709551615ULL, true, "") ==
          "HTTP/1.1 299 \r\nContent-Length: 18446744073709551615\r\n\r\n");
}

TEST_CASE("http1::write_response_head returns 0 when the output is one byte too small", "[http1]") {
    const std::array<Header, 1> fields = {{{"Server", "blitz"}}};
    const std::string full = write(503, Headers(fields), 1234, false);
    REQUIRE(!full.empty());
    std::string out(full.size(), '\0');
    for (std::size_t size = 0; size < full.size(); ++size) {
        CAPTURE(size);
        CHECK(write_response_head(std::span<char>(out.data(), size), 503, Headers(fields), 1234,
                                  false, kDate) == 0);
    }
    CHECK(write_response_head(out, 503, Headers(fields), 1234, false, kDate) == full.size());
    CHECK(out == full);
}

TEST_CASE("http1::write_response_head refuses fields that would break the framing", "[http1]") {
    const std::array<Header, 1> cr = {{{"X-A", "a\r\nSet-Cookie: evil"}}};
    CHECK(write(200, Headers(cr), 0, true).empty());
    const std::array<Header, 1> lf = {{{"X-A", "a\nb"}}};
    CHECK(write(200, Headers(lf), 0, true).empty());
    const std::array<Header, 1> nul = {{{"X-A", std::string_view("a\0b", 3)}}};
    CHECK(write(200, Headers(nul), 0, true).empty());
    const std::array<Header, 1> space = {{{"X A", "b"}}};
    CHECK(write(200, Headers(space), 0, true).empty());
    const std::array<Header, 1> empty = {{{"", "b"}}};
    CHECK(write(200, Headers(empty), 0, true).empty());
    CHECK(write(200, {}, 0, true, "Tue\r\nX: y").empty());
}

TEST_CASE("http1::write_response_head writes the canonical status line for every status",
          "[http1]") {
    // Common statuses come from a precomputed table, the others are built: both must agree
    // with reason_phrase().
    for (int status = 100; status <= 999; ++status) {
        CAPTURE(status);
        const std::string head = write(status, {}, 0, true, "");
        const std::string expected =
            "HTTP/1.1 " + std::to_string(status) + " " + std::string(blitz::reason_phrase(status));
        CHECK(head.substr(0, head.find("\r\n")) == expected);
    }
}

TEST_CASE("http1::write_response_head writes Content-Length at every power-of-ten boundary",
          "[http1]") {
    std::uint64_t power = 1;
    for (int digits = 1; digits <= 20; ++digits) {
        for (const std::uint64_t length : {power - 1, power, power + 1}) {
            CAPTURE(length);
            const std::string text = std::to_string(length);
            CHECK(write(200, {}, length, true, "") ==
                  "HTTP/1.1 200 OK\r\nContent-Length: " + text + "\r\n\r\n");
        }
        if (digits < 20) {
            power *= 10;
        }
    }
    CHECK(write(200, {}, 0, true, "") == "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
}

// Names and values of every length up to 40 (each size class of the copy), with a byte that
// must be refused at each position: the check must see every byte, however the copy covers it.
TEST_CASE("http1::write_response_head checks every byte of names and values of any length",
          "[http1]") {
    for (std::size_t len = 1; len <= 40; ++len) {
        const std::string name(len, 'N');
        const std::string value(len, 'v');
        const std::array<Header, 1> good = {{{name, value}}};
        CAPTURE(len);
        REQUIRE(write(200, Headers(good), 0, true, value) == "HTTP/1.1 200 OK\r\n" + name + ": " +
                                                                 value + "\r\nDate: " + value +
                                                                 "\r\nContent-Length: 0\r\n\r\n");
        for (std::size_t i = 0; i < len; ++i) {
            CAPTURE(i);
            for (const char bad : {'\r', '\n', '\0'}) {
                std::string v = value;
                v[i] = bad;
                const std::array<Header, 1> bad_value = {{{name, v}}};
                CHECK(write(200, Headers(bad_value), 0, true).empty());
                CHECK(write(200, {}, 0, true, v).empty());
            }
            std::string n = name;
            n[i] = ':';
            const std::array<Header, 1> bad_name = {{{n, value}}};
            CHECK(write(200, Headers(bad_name), 0, true).empty());
        }
    }
}

// Independent of the writer: RFC 9110 §5.6.2 tchar.
bool expect_tchar(unsigned char c) {
    return std::isalnum(c) != 0 ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

TEST_CASE("http1::write_response_head classifies every byte value in names and values", "[http1]") {
    const std::string pad(20, 'a');
    for (int i = 0; i < 256; ++i) {
        const auto c = static_cast<unsigned char>(i);
        const std::string b(1, static_cast<char>(c));
        CAPTURE(i);
        for (const std::string& name : {"X" + b, "Xy" + b + "z", "X-" + b + pad}) {
            const std::array<Header, 1> fields = {{{name, "v"}}};
            CHECK(write(200, Headers(fields), 0, true).empty() != expect_tchar(c));
        }
        // Only what could end the line or truncate it is refused; HTAB and obs-text pass.
        const bool breaks = c == '\r' || c == '\n' || c == '\0';
        for (const std::string& value : {b, "ab" + b + "c", "ab" + b + pad}) {
            const std::array<Header, 1> fields = {{{"X", value}}};
            const std::string head = write(200, Headers(fields), 0, true);
            CHECK(head.empty() == breaks);
            if (!breaks) {
                CHECK(head.find("\r\nX: " + value + "\r\n") != std::string::npos);
            }
        }
    }
}

TEST_CASE("http1::write_response_head rejects statuses that are not three digits", "[http1]") {
    CHECK(write(99, {}, 0, true).empty());
    CHECK(write(1000, {}, 0, true).empty());
    CHECK(write(-200, {}, 0, true).empty());
}

TEST_CASE("http1::write_continue writes the interim 100 response", "[http1]") {
    std::array<char, 64> out{};
    const std::size_t n = write_continue(out);
    CHECK(std::string_view(out.data(), n) == "HTTP/1.1 100 Continue\r\n\r\n");
    std::array<char, 24> small{};
    CHECK(write_continue(small) == 0);
}

}  // namespace

#include "http1/parser.hpp"

#include <array>
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

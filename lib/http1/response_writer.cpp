#include "http1/parser.hpp"

#include <array>
#include <cstring>

#include "http1/wire.hpp"

// A response head is written once per response, so this file is on the hot path as much as
// the parser: no per-byte loops for the common case, no reason lookup for common statuses,
// and every byte a caller passes is still checked before it can reach the wire.
namespace blitz::http1 {

namespace {

using detail::copy_bytes;
using detail::copy_name;
using detail::copy_value;
using detail::decimal_digits;
using detail::write_decimal;

// The status lines sent on most responses, whole: the common response then needs neither a
// reason lookup nor digit formatting. Other statuses are built from reason_phrase(); a unit
// test checks that both give the same line for every status.
constexpr std::string_view kCommonStatusLines[] = {
    "",  // kStatusLineIndex value 0: not precomputed
    "HTTP/1.1 200 OK\r\n",
    "HTTP/1.1 201 Created\r\n",
    "HTTP/1.1 204 No Content\r\n",
    "HTTP/1.1 206 Partial Content\r\n",
    "HTTP/1.1 301 Moved Permanently\r\n",
    "HTTP/1.1 302 Found\r\n",
    "HTTP/1.1 304 Not Modified\r\n",
    "HTTP/1.1 307 Temporary Redirect\r\n",
    "HTTP/1.1 308 Permanent Redirect\r\n",
    "HTTP/1.1 400 Bad Request\r\n",
    "HTTP/1.1 401 Unauthorized\r\n",
    "HTTP/1.1 403 Forbidden\r\n",
    "HTTP/1.1 404 Not Found\r\n",
    "HTTP/1.1 405 Method Not Allowed\r\n",
    "HTTP/1.1 408 Request Timeout\r\n",
    "HTTP/1.1 413 Content Too Large\r\n",
    "HTTP/1.1 429 Too Many Requests\r\n",
    "HTTP/1.1 500 Internal Server Error\r\n",
    "HTTP/1.1 502 Bad Gateway\r\n",
    "HTTP/1.1 503 Service Unavailable\r\n",
    "HTTP/1.1 504 Gateway Timeout\r\n",
};

constexpr int kFirstIndexedStatus = 100;

// Status - 100 -> index into kCommonStatusLines (0: build the line), for 100..599.
constexpr std::array<std::uint8_t, 500> kStatusLineIndex = [] {
    std::array<std::uint8_t, 500> index{};
    for (std::size_t i = 1; i < std::size(kCommonStatusLines); ++i) {
        const std::string_view line = kCommonStatusLines[i];
        const int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        index[static_cast<std::size_t>(status - kFirstIndexedStatus)] =
            static_cast<std::uint8_t>(i);
    }
    return index;
}();

// The status line of a status not in kCommonStatusLines, built from reason_phrase(); 0 when it
// does not fit in `room`.
std::size_t write_built_status_line(char* p, std::size_t room, int status) noexcept {
    const std::string_view reason = reason_phrase(status);
    const std::size_t n = reason.size() + 15;
    if (room < n) {
        return 0;
    }
    std::memcpy(p, "HTTP/1.1 ", 9);
    write_decimal(p + 9, static_cast<std::uint64_t>(status), 3);
    p[12] = ' ';
    copy_bytes(p + 13, reason);
    std::memcpy(p + 13 + reason.size(), "\r\n", 2);
    return n;
}

}  // namespace

std::size_t write_response_head(std::span<char> out, int status, Headers headers,
                                std::uint64_t content_length, bool keep_alive,
                                std::string_view date) noexcept {
    if (status < 100 || status > 999) {
        return 0;
    }
    char* p = out.data();
    char* const end = p + out.size();
    const auto room = [&p, end](std::size_t n) { return static_cast<std::size_t>(end - p) >= n; };

    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
    const std::size_t common =
        status < 600 ? kStatusLineIndex[static_cast<std::size_t>(status - kFirstIndexedStatus)] : 0;
    if (common != 0) {
        const std::string_view line = kCommonStatusLines[common];
        if (!room(line.size())) {
            return 0;
        }
        copy_bytes(p, line);
        p += line.size();
    } else {
        const std::size_t n = write_built_status_line(p, static_cast<std::size_t>(end - p), status);
        if (n == 0) {
            return 0;
        }
        p += n;
    }

    for (const Header& h : headers) {
        if (h.name.empty() || !room(h.name.size() + h.value.size() + 4)) {
            return 0;
        }
        if (!copy_name(p, h.name)) {
            return 0;
        }
        p += h.name.size();
        std::memcpy(p, ": ", 2);
        if (!copy_value(p + 2, h.value)) {
            return 0;
        }
        p += 2 + h.value.size();
        std::memcpy(p, "\r\n", 2);
        p += 2;
    }
    if (!date.empty()) {
        if (!room(date.size() + 8)) {
            return 0;
        }
        std::memcpy(p, "Date: ", 6);
        if (!copy_value(p + 6, date)) {
            return 0;
        }
        p += 6 + date.size();
        std::memcpy(p, "\r\n", 2);
        p += 2;
    }
    // RFC 9110 §8.6: no Content-Length in 1xx or 204; for 304 it would only repeat the
    // selected representation's length, so it is left out.
    if (status >= 200 && status != 204 && status != 304) {
        const std::size_t digits = decimal_digits(content_length);
        if (!room(digits + 18)) {
            return 0;
        }
        std::memcpy(p, "Content-Length: ", 16);
        write_decimal(p + 16, content_length, digits);
        p += 16 + digits;
        std::memcpy(p, "\r\n", 2);
        p += 2;
    }
    if (!keep_alive) {
        constexpr std::string_view kClose = "Connection: close\r\n";
        if (!room(kClose.size())) {
            return 0;
        }
        std::memcpy(p, kClose.data(), kClose.size());
        p += kClose.size();
    }
    if (!room(2)) {
        return 0;
    }
    std::memcpy(p, "\r\n", 2);
    return static_cast<std::size_t>(p + 2 - out.data());
}

std::size_t write_continue(std::span<char> out) noexcept {
    constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    if (out.size() < kContinue.size()) {
        return 0;
    }
    std::memcpy(out.data(), kContinue.data(), kContinue.size());
    return kContinue.size();
}

}  // namespace blitz::http1

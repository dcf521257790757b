#include "http1/parser.hpp"

#include <cstring>

namespace blitz::http1 {

namespace {

// Appends to a fixed span; once something did not fit, every later append is a no-op.
class Writer {
 public:
    explicit Writer(std::span<char> out) noexcept : p_(out.data()), end_(p_ + out.size()) {}

    void put(std::string_view s) noexcept {
        if (static_cast<std::size_t>(end_ - p_) < s.size()) {
            ok_ = false;
            return;
        }
        if (s.empty()) {
            return;  // s.data() may be null, which memcpy must not see even for 0 bytes
        }
        std::memcpy(p_, s.data(), s.size());
        p_ += s.size();
    }

    void put_decimal(std::uint64_t v) noexcept {
        char digits[20];
        std::size_t n = 0;
        do {
            digits[sizeof digits - 1 - n++] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v != 0);
        put(std::string_view(digits + sizeof digits - n, n));
    }

    bool ok() const noexcept { return ok_; }
    char* position() const noexcept { return p_; }

 private:
    char* p_;
    char* end_;
    bool ok_ = true;
};

bool valid_name(std::string_view name) noexcept {
    if (name.empty()) {
        return false;
    }
    for (char c : name) {
        if (!detail::is_tchar(c)) {
            return false;
        }
    }
    return true;
}

// A CR or LF would end the field line early and let the value inject fields or a body
// (response splitting); a NUL truncates in C-string based clients.
bool valid_value(std::string_view value) noexcept {
    for (char c : value) {
        if (c == '\r' || c == '\n' || c == '\0') {
            return false;
        }
    }
    return true;
}

}  // namespace

std::size_t write_response_head(std::span<char> out, int status, Headers headers,
                                std::uint64_t content_length, bool keep_alive,
                                std::string_view date) noexcept {
    if (status < 100 || status > 999) {
        return 0;
    }
    Writer w(out);
    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
    w.put("HTTP/1.1 ");
    w.put_decimal(static_cast<std::uint64_t>(status));
    w.put(" ");
    w.put(reason_phrase(status));
    w.put("\r\n");
    for (const Header& h : headers) {
        if (!valid_name(h.name) || !valid_value(h.value)) {
            return 0;
        }
        w.put(h.name);
        w.put(": ");
        w.put(h.value);
        w.put("\r\n");
    }
    if (!date.empty()) {
        if (!valid_value(date)) {
            return 0;
        }
        w.put("Date: ");
        w.put(date);
        w.put("\r\n");
    }
    // RFC 9110 §8.6: no Content-Length in 1xx or 204; for 304 it would only repeat the
    // selected representation's length, so it is left out.
    if (status >= 200 && status != 204 && status != 304) {
        w.put("Content-Length: ");
        w.put_decimal(content_length);
        w.put("\r\n");
    }
    if (!keep_alive) {
        w.put("Connection: close\r\n");
    }
    w.put("\r\n");
    return w.ok() ? static_cast<std::size_t>(w.position() - out.data()) : 0;
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

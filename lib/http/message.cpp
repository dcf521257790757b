#include <blitz/http.hpp>

#include <cstdint>
#include <cstring>

namespace blitz {

namespace {

constexpr std::string_view kMethodTokens[kMethodCount] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "",
};

constexpr unsigned char ascii_lower(unsigned char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c | 0x20) : c;
}

/// ascii_lower() on each of the eight bytes of `w` at once: header names are compared on every
/// lookup, mostly 4 to 16 bytes long, and a byte at a time that costs more than the rest of the
/// lookup. Bytes from 0x80 are left alone, as ascii_lower() leaves them.
constexpr std::uint64_t ascii_lower8(std::uint64_t w) noexcept {
    constexpr std::uint64_t k01 = 0x0101010101010101u;
    constexpr std::uint64_t k7f = 0x7F7F7F7F7F7F7F7Fu;
    constexpr std::uint64_t k80 = 0x8080808080808080u;
    const std::uint64_t low7 = w & k7f;
    // Bit 7 of each byte: set where the low seven bits are >= 'A', and where they are > 'Z'
    // (the additions never carry into the next byte: 0x7F + 0x3F < 0x100).
    const std::uint64_t ge_a = low7 + k01 * (0x80 - 'A');
    const std::uint64_t gt_z = low7 + k01 * (0x7F - 'Z');
    const std::uint64_t upper = (ge_a & ~gt_z) & ~w & k80;
    return w | (upper >> 2);
}

static_assert([] {
    for (unsigned c = 0; c < 256; ++c) {
        const std::uint64_t w = 0x0101010101010101u * c;
        if (ascii_lower8(w) != 0x0101010101010101u * ascii_lower(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}());

/// Whether the words `x` and `y` are equal ignoring ASCII case. Equal words need no lowering,
/// and words differing in any bit but a byte's case bit (0x20) cannot be equal once lowered:
/// ascii_lower8() changes no other bit.
constexpr bool same_ignoring_case(std::uint64_t x, std::uint64_t y) noexcept {
    if (x == y) {
        return true;
    }
    if (((x ^ y) & ~0x2020202020202020u) != 0) {
        return false;
    }
    return ascii_lower8(x) == ascii_lower8(y);
}

std::uint64_t load8(const char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

}  // namespace

// RFC 9110 §9.1: method tokens are case-sensitive, so "get" is an extension method.
Method method_from_token(std::string_view token) noexcept {
    switch (token.size()) {
        case 3:
            if (token == "GET") {
                return Method::Get;
            }
            if (token == "PUT") {
                return Method::Put;
            }
            break;
        case 4:
            if (token == "POST") {
                return Method::Post;
            }
            if (token == "HEAD") {
                return Method::Head;
            }
            break;
        case 5:
            if (token == "PATCH") {
                return Method::Patch;
            }
            if (token == "TRACE") {
                return Method::Trace;
            }
            break;
        case 6:
            if (token == "DELETE") {
                return Method::Delete;
            }
            break;
        case 7:
            if (token == "OPTIONS") {
                return Method::Options;
            }
            if (token == "CONNECT") {
                return Method::Connect;
            }
            break;
        default:
            break;
    }
    return Method::Other;
}

std::string_view method_token(Method m) noexcept {
    const auto i = static_cast<std::size_t>(m);
    return i < kMethodCount ? kMethodTokens[i] : std::string_view{};
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    const std::size_t n = a.size();
    if (n >= 8) {
        // Whole words, the last one overlapping the one before it.
        for (std::size_t i = 0; i + 8 < n; i += 8) {
            if (!same_ignoring_case(load8(a.data() + i), load8(b.data() + i))) {
                return false;
            }
        }
        return same_ignoring_case(load8(a.data() + n - 8), load8(b.data() + n - 8));
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (ascii_lower(static_cast<unsigned char>(a[i])) !=
            ascii_lower(static_cast<unsigned char>(b[i]))) {
            return false;
        }
    }
    return true;
}

std::string_view Headers::get(std::string_view name) const noexcept {
    for (const Header& h : fields_) {
        if (iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

bool Headers::has(std::string_view name) const noexcept {
    for (const Header& h : fields_) {
        if (iequals(h.name, name)) {
            return true;
        }
    }
    return false;
}

// RFC 9110 §15 (and RFC 6585 for 428/429/431, RFC 7725 for 451, RFC 8297 for 103).
std::string_view reason_phrase(int status) noexcept {
    switch (status) {
        case 100:
            return "Continue";
        case 101:
            return "Switching Protocols";
        case 103:
            return "Early Hints";
        case 200:
            return "OK";
        case 201:
            return "Created";
        case 202:
            return "Accepted";
        case 203:
            return "Non-Authoritative Information";
        case 204:
            return "No Content";
        case 205:
            return "Reset Content";
        case 206:
            return "Partial Content";
        case 300:
            return "Multiple Choices";
        case 301:
            return "Moved Permanently";
        case 302:
            return "Found";
        case 303:
            return "See Other";
        case 304:
            return "Not Modified";
        case 307:
            return "Temporary Redirect";
        case 308:
            return "Permanent Redirect";
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 402:
            return "Payment Required";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 406:
            return "Not Acceptable";
        case 407:
            return "Proxy Authentication Required";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 411:
            return "Length Required";
        case 412:
            return "Precondition Failed";
        case 413:
            return "Content Too Large";
        case 414:
            return "URI Too Long";
        case 415:
            return "Unsupported Media Type";
        case 416:
            return "Range Not Satisfiable";
        case 417:
            return "Expectation Failed";
        case 421:
            return "Misdirected Request";
        case 422:
            return "Unprocessable Content";
        case 425:
            return "Too Early";
        case 426:
            return "Upgrade Required";
        case 428:
            return "Precondition Required";
        case 429:
            return "Too Many Requests";
        case 431:
            return "Request Header Fields Too Large";
        case 451:
            return "Unavailable For Legal Reasons";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return {};
    }
}

}  // namespace blitz

#include "http/uri.hpp"

#include <array>
#include <cstdint>

#include "core/hex.hpp"

namespace blitz::http {

namespace {

constexpr std::uint8_t kUnreserved = 1;  // RFC 3986 §2.3
constexpr std::uint8_t kSubDelim = 2;    // RFC 3986 §2.2
constexpr std::uint8_t kPcharExtra = 4;  // ':' and '@' (RFC 3986 §3.3 pchar)
constexpr std::uint8_t kHex = 8;
// "|[]^{}`": outside RFC 3986 but sent unencoded in paths by browsers (the first four) and
// other clients; accepted in a path as literal bytes, never decoded and never separators.
constexpr std::uint8_t kPathLiteral = 16;
constexpr std::uint8_t kRegName = 32;  // kUnreserved or kSubDelim, in one bit

constexpr std::array<std::uint8_t, 256> kUriClass = [] {
    std::array<std::uint8_t, 256> t{};
    for (int c = 'a'; c <= 'z'; ++c) {
        t[c] = kUnreserved;
        t[c - 'a' + 'A'] = kUnreserved;
    }
    for (int c = '0'; c <= '9'; ++c) {
        t[c] = kUnreserved | kHex;
    }
    for (int c = 'a'; c <= 'f'; ++c) {
        t[c] |= kHex;
        t[c - 'a' + 'A'] |= kHex;
    }
    t['-'] = t['.'] = t['_'] = t['~'] = kUnreserved;
    for (unsigned char c : std::string_view("!$&'()*+,;=")) {
        t[c] = kSubDelim;
    }
    t[':'] = t['@'] = kPcharExtra;
    for (unsigned char c : std::string_view("|^[]{}`")) {
        t[c] = kPathLiteral;
    }
    for (std::uint8_t& c : t) {
        if (c & (kUnreserved | kSubDelim)) {
            c |= kRegName;
        }
    }
    return t;
}();

constexpr bool has_class(char c, std::uint8_t mask) noexcept {
    return kUriClass[static_cast<unsigned char>(c)] & mask;
}

constexpr char kUpperHex[] = "0123456789ABCDEF";

// RFC 3986 §3.2.2 dec-octet: no leading zeros, at most 255.
bool valid_ipv4(std::string_view s) noexcept {
    int octets = 0;
    std::size_t i = 0;
    for (;;) {
        const std::size_t start = i;
        unsigned value = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 3) {
            value = value * 10 + static_cast<unsigned>(s[i] - '0');
            ++i;
        }
        const std::size_t len = i - start;
        if (len == 0 || value > 255 || (len > 1 && s[start] == '0')) {
            return false;
        }
        ++octets;
        if (i == s.size()) {
            return octets == 4;
        }
        if (s[i] != '.' || octets == 4) {
            return false;
        }
        ++i;
    }
}

// RFC 3986 §3.2.2 IPv6address: eight 16-bit groups, one "::" standing for one or more zero
// groups, and optionally an IPv4 address in place of the last two groups.
bool valid_ipv6(std::string_view s) noexcept {
    std::size_t i = 0;
    int groups = 0;
    bool compressed = false;
    if (s.substr(0, 2) == "::") {
        compressed = true;
        i = 2;
        if (i == s.size()) {
            return true;
        }
    }
    for (;;) {
        std::size_t j = i;
        while (j < s.size() && has_class(s[j], kHex)) {
            ++j;
        }
        if (j < s.size() && s[j] == '.') {
            if (!valid_ipv4(s.substr(i))) {
                return false;
            }
            groups += 2;
            break;
        }
        if (j == i || j - i > 4) {
            return false;
        }
        ++groups;
        i = j;
        if (i == s.size()) {
            break;
        }
        if (s[i] != ':') {
            return false;
        }
        ++i;
        if (i < s.size() && s[i] == ':') {
            if (compressed) {
                return false;
            }
            compressed = true;
            ++i;
            if (i == s.size()) {
                break;
            }
        } else if (i == s.size()) {
            return false;
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

// RFC 3986 §3.2.2 IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ).
bool valid_ipvfuture(std::string_view s) noexcept {
    if (s.empty() || (s[0] != 'v' && s[0] != 'V')) {
        return false;
    }
    std::size_t i = 1;
    while (i < s.size() && has_class(s[i], kHex)) {
        ++i;
    }
    if (i == 1 || i == s.size() || s[i] != '.') {
        return false;
    }
    ++i;
    if (i == s.size()) {
        return false;
    }
    for (; i < s.size(); ++i) {
        if (!has_class(s[i], kUnreserved | kSubDelim) && s[i] != ':') {
            return false;
        }
    }
    return true;
}

// The size of the "[IP-literal]" that starts `authority`, or 0 when it is not a valid one.
// Out of line so that valid_authority's common path, a reg-name, does not save and restore
// the registers these parsers need (one push instead of six).
[[gnu::noinline]] std::size_t ip_literal_size(std::string_view authority) noexcept {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
        return 0;
    }
    const std::string_view literal = authority.substr(1, close - 1);
    if (!valid_ipv6(literal) && !valid_ipvfuture(literal)) {
        return 0;
    }
    return close + 1;
}

}  // namespace

long normalize_path(std::span<char> path) noexcept {
    const std::size_t n = path.size();
    if (n == 0 || path[0] != '/') {
        return -1;
    }
    char* const p = path.data();
    // Decoding only shrinks, so the write index never passes the read index and the output can
    // share the bytes. `seg` is where the segment being written starts (just after its '/').
    std::size_t w = 1;
    std::size_t seg = 1;
    std::size_t r = 1;
    for (;;) {
        if (r == n || p[r] == '/') {
            // RFC 3986 §5.2.4 remove_dot_segments, applied after decoding (§6.2.2 order), so
            // "%2E%2E" is a dot-segment too; "%2F" never ends a segment.
            const std::size_t len = w - seg;
            const bool dot = len == 1 && p[seg] == '.';
            const bool dotdot = len == 2 && p[seg] == '.' && p[seg + 1] == '.';
            if (dotdot) {
                // Drop this segment and the one before it; at the root there is nothing to
                // drop, so ".." never climbs above "/".
                w = seg - 1;
                if (w > 0) {
                    while (p[w - 1] != '/') {
                        --w;
                    }
                } else {
                    w = 1;
                }
            } else if (dot) {
                w = seg;
            }
            if (r == n) {
                break;
            }
            // After a dot-segment the output already ends in '/'.
            if (!dot && !dotdot) {
                p[w++] = '/';
            }
            ++r;
            seg = w;
            continue;
        }
        const char c = p[r];
        if (c == '%') {
            if (n - r < 3) {
                return -1;
            }
            const int hi = blitz::detail::hex_value(p[r + 1]);
            const int lo = blitz::detail::hex_value(p[r + 2]);
            if (hi < 0 || lo < 0) {
                return -1;
            }
            const int value = hi * 16 + lo;
            if (value == 0) {
                return -1;  // a NUL reaching a backend's C string would truncate the path
            }
            if (has_class(static_cast<char>(value), kUnreserved)) {
                p[w++] = static_cast<char>(value);
            } else {
                p[w++] = '%';
                p[w++] = kUpperHex[hi];
                p[w++] = kUpperHex[lo];
            }
            r += 3;
            continue;
        }
        // RFC 3986 §3.3: a segment holds pchar, plus the kPathLiteral bytes clients send
        // unencoded. Still rejected: '\\' (some backends treat it as a separator),
        // controls, space, DEL, '"', '<', '>', '#', '?' and bytes above 0x7f.
        if (!has_class(c, kUnreserved | kSubDelim | kPcharExtra | kPathLiteral)) {
            return -1;
        }
        p[w++] = c;
        ++r;
    }
    return static_cast<long>(w);
}

bool valid_authority(std::string_view authority) noexcept {
    // Pointers rather than operator[]: this runs for every request's Host, and checked
    // operator[] (_GLIBCXX_ASSERTIONS) would double the cost of the loops.
    const auto* const s = reinterpret_cast<const unsigned char*>(authority.data());
    const std::size_t n = authority.size();
    std::size_t i = 0;
    if (n != 0 && s[0] == '[') {
        i = ip_literal_size(authority);
        if (i == 0) {
            return false;
        }
    } else {
        // reg-name (which also covers IPv4address): unreserved, pct-encoded, sub-delims. No
        // '@', so userinfo is rejected; what stops the loop must be ':' or the end.
        for (;;) {
            // Four bytes a step while all four are reg-name bytes, as whole hosts nearly
            // always are; the byte loop finds where they end.
            while (n - i >= 4 && (kUriClass[s[i]] & kUriClass[s[i + 1]] & kUriClass[s[i + 2]] &
                                  kUriClass[s[i + 3]] & kRegName)) {
                i += 4;
            }
            while (i < n && (kUriClass[s[i]] & kRegName)) {
                ++i;
            }
            if (i == n || s[i] != '%') {
                break;
            }
            if (n - i < 3 || !(kUriClass[s[i + 1]] & kHex) || !(kUriClass[s[i + 2]] & kHex)) {
                return false;
            }
            i += 3;
        }
        // RFC 9110 §4.2.1: an http(s) URI with an empty host is invalid.
        if (i == 0) {
            return false;
        }
    }
    if (i == n) {
        return true;
    }
    if (s[i] != ':') {
        return false;
    }
    // An empty port ("host:") is legal RFC 3986 but pointless; rejecting it keeps authority
    // comparison simple.
    ++i;
    if (i == n) {
        return false;
    }
    unsigned port = 0;
    for (; i < n; ++i) {
        const unsigned digit = s[i] - unsigned{'0'};
        port = port * 10 + digit;
        if (digit > 9 || port > 65535) {
            return false;
        }
    }
    return true;
}

std::string_view authority_host(std::string_view authority) noexcept {
    if (!authority.empty() && authority[0] == '[') {
        const std::size_t close = authority.find(']');
        return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
    }
    return authority.substr(0, authority.find(':'));
}

}  // namespace blitz::http

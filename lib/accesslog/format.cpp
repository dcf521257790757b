#include "accesslog/format.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "core/utf8.hpp"

namespace blitz::accesslog {

namespace {

using namespace std::string_view_literals;

/// Fields a template may name. kLiteral marks literal text in a Piece.
enum Field : std::uint8_t {
    kLiteral,
    kTimeUs,
    kDurationUs,
    kClient,
    kClientPort,
    kMethod,
    kScheme,
    kAuthority,
    kPath,
    kProtocol,
    kStatus,
    kBytesReceived,
    kBytesSent,
    kRoute,
    kUpstream,
    kUpstreamEndpoint,
    kUpstreamStatus,
    kUpstreamConnectUs,
    kUpstreamFirstByteUs,
    kAttempts,
    kRequestId,
    kTraceId,
    kSpanId,
    kTlsVersion,
    kTlsSni,
    kUserAgent,
    kReferer,
    kListener,
    kTime,
    kTimeLocal,
    kTimeIso8601,
};

struct FieldName {
    std::string_view name;
    Field field;
};

constexpr std::array<FieldName, 30> kFieldNames = {{
    {"time_us", kTimeUs},
    {"duration_us", kDurationUs},
    {"client", kClient},
    {"client_port", kClientPort},
    {"method", kMethod},
    {"scheme", kScheme},
    {"authority", kAuthority},
    {"path", kPath},
    {"protocol", kProtocol},
    {"status", kStatus},
    {"bytes_received", kBytesReceived},
    {"bytes_sent", kBytesSent},
    {"route", kRoute},
    {"upstream", kUpstream},
    {"upstream_endpoint", kUpstreamEndpoint},
    {"upstream_status", kUpstreamStatus},
    {"upstream_connect_us", kUpstreamConnectUs},
    {"upstream_first_byte_us", kUpstreamFirstByteUs},
    {"attempts", kAttempts},
    {"request_id", kRequestId},
    {"trace_id", kTraceId},
    {"span_id", kSpanId},
    {"tls_version", kTlsVersion},
    {"tls_sni", kTlsSni},
    {"user_agent", kUserAgent},
    {"referer", kReferer},
    {"listener", kListener},
    {"time", kTime},
    {"time_local", kTimeLocal},
    {"time_iso8601", kTimeIso8601},
}};

constexpr char kHex[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

std::uint64_t load8(const void* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

std::uint32_t load4(const void* p) noexcept {
    std::uint32_t w;
    std::memcpy(&w, p, sizeof w);
    return w;
}

/// memcpy for the short pieces a line is made of (keys, numbers, most values): up to 16 bytes
/// as two overlapping loads and stores instead of a call.
[[gnu::always_inline]] inline void copy_short(char* d, const char* s, std::size_t len) noexcept {
    if (len > 16) {
        std::memcpy(d, s, len);
    } else if (len >= 8) {
        const std::uint64_t head = load8(s);
        const std::uint64_t tail = load8(s + len - 8);
        std::memcpy(d, &head, 8);
        std::memcpy(d + len - 8, &tail, 8);
    } else if (len >= 4) {
        const std::uint32_t head = load4(s);
        const std::uint32_t tail = load4(s + len - 4);
        std::memcpy(d, &head, 4);
        std::memcpy(d + len - 4, &tail, 4);
    } else if (len != 0) {
        d[0] = s[0];
        d[len / 2] = s[len / 2];
        d[len - 1] = s[len - 1];
    }
}

/// A bounded output cursor: writes while there is room and counts every byte, so the caller
/// learns the full length of a line that did not fit and holds its prefix.
struct Out {
    char* p;
    char* end;
    std::size_t n = 0;

    void put(char c) noexcept {
        if (p != end) {
            *p++ = c;
        }
        ++n;
    }
    void put(const char* s, std::size_t len) noexcept {
        if (static_cast<std::size_t>(end - p) >= len) [[likely]] {
            copy_short(p, s, len);
            p += len;
        } else if (p != end) {
            const auto k = static_cast<std::size_t>(end - p);
            std::memcpy(p, s, k);
            p += k;
        }
        n += len;
    }
    void put(std::string_view s) noexcept { put(s.data(), s.size()); }
};

/// Two decimal digits per entry: "00" to "99".
constexpr std::array<char, 200> kDigitPairs = [] {
    std::array<char, 200> t{};
    for (int i = 0; i < 100; ++i) {
        t[static_cast<std::size_t>(2 * i)] = static_cast<char>('0' + i / 10);
        t[static_cast<std::size_t>(2 * i + 1)] = static_cast<char>('0' + i % 10);
    }
    return t;
}();

template <class O>
void put_uint(O& o, std::uint64_t v) noexcept {
    char buf[20];
    char* const end = buf + sizeof buf;
    char* q = end;
    while (v >= 100) {
        q -= 2;
        std::memcpy(q, kDigitPairs.data() + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        q -= 2;
        std::memcpy(q, kDigitPairs.data() + 2 * v, 2);
    } else {
        *--q = static_cast<char>('0' + v);
    }
    o.put(q, static_cast<std::size_t>(end - q));
}

/// Bytes copied unchanged in a JSON string and in a template value: printable ASCII except the
/// quote and the backslash. A table: this test runs once per byte of every logged value.
constexpr std::array<bool, 256> kPlain = [] {
    std::array<bool, 256> t{};
    for (int c = 0x20; c < 0x7F; ++c) {
        t[static_cast<std::size_t>(c)] = c != '"' && c != '\\';
    }
    return t;
}();

constexpr bool plain(unsigned char c) noexcept { return kPlain[c]; }

// Sixteen bytes as one vector (GCC and clang vector extensions: SSE2 on x86-64, NEON on arm64).
// Signed: a byte from 0x80 is negative, so one "less than 0x20" finds it with the controls.
using Bytes16 = signed char __attribute__((vector_size(16)));
using Words2 = std::uint64_t __attribute__((vector_size(16)));

/// The bytes of `v` that need escaping (see plain()), as 0xFF.
Bytes16 needs_escape(Bytes16 v) noexcept {
    return (v < 0x20) | (v == '"') | (v == '\\') | (v == 0x7F);
}

/// Whether none of the 16 bytes of `v` needs escaping.
bool plain16(Bytes16 v) noexcept {
    const auto words = reinterpret_cast<Words2>(needs_escape(v));
    return (words[0] | words[1]) == 0;
}

Bytes16 from_words(std::uint64_t lo, std::uint64_t hi) noexcept {
    const Words2 w = {lo, hi};
    return reinterpret_cast<Bytes16>(w);
}

/// Whether every byte of `s` is plain(): sixteen bytes at a time, the last block overlapping the
/// one before it; a shorter value gathered into one block (padded with plain 'a' bytes).
[[gnu::always_inline]] inline bool all_plain(std::string_view s) noexcept {
    const char* b = s.data();
    const std::size_t n = s.size();
    constexpr std::uint64_t kPad = 0x6161616161616161u;
    if (n >= 16) {
        for (std::size_t i = 0; i + 16 < n; i += 16) {
            Bytes16 v;
            std::memcpy(&v, b + i, 16);
            if (!plain16(v)) {
                return false;
            }
        }
        Bytes16 v;
        std::memcpy(&v, b + n - 16, 16);
        return plain16(v);
    }
    if (n >= 8) {
        return plain16(from_words(load8(b), load8(b + n - 8)));
    }
    if (n >= 4) {
        return plain16(from_words(load4(b) | std::uint64_t{load4(b + n - 4)} << 32, kPad));
    }
    if (n == 0) {
        return true;
    }
    const auto byte = [b](std::size_t i) { return std::uint64_t{static_cast<unsigned char>(b[i])}; };
    return plain16(
        from_words(0x6161616161000000u | byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16, kPad));
}

/// The cursor for a JSON line known to fit (see json_bound): no bounds test and no count per
/// piece, and string values copied as they are while `escape` gathers the bytes among them that
/// need escaping, so that a line checks once whether it must be written again with escapes.
struct FastOut {
    char* p;
    Bytes16 escape{};

    void put(char c) noexcept { *p++ = c; }
    void put(const char* s, std::size_t len) noexcept {
        copy_short(p, s, len);
        p += len;
    }
    void put(std::string_view s) noexcept { put(s.data(), s.size()); }

    /// Copies a string value and notes its bytes that need escaping: sixteen bytes at a time
    /// with the last block overlapping the one before it, a shorter value as two overlapping
    /// words (or bytes) gathered into one block padded with plain 'a' bytes. The value is read
    /// and written within its own bytes only.
    [[gnu::always_inline]] void put_value(std::string_view s) noexcept {
        const char* b = s.data();
        const std::size_t n = s.size();
        constexpr std::uint64_t kPad = 0x6161616161616161u;
        Bytes16 v;
        if (n >= 16) {
            for (std::size_t i = 0; i + 16 < n; i += 16) {
                std::memcpy(&v, b + i, 16);
                std::memcpy(p + i, &v, 16);
                escape |= needs_escape(v);
            }
            std::memcpy(&v, b + n - 16, 16);
            std::memcpy(p + n - 16, &v, 16);
        } else if (n >= 8) {
            const std::uint64_t head = load8(b);
            const std::uint64_t tail = load8(b + n - 8);
            std::memcpy(p, &head, 8);
            std::memcpy(p + n - 8, &tail, 8);
            v = from_words(head, tail);
        } else if (n >= 4) {
            const std::uint32_t head = load4(b);
            const std::uint32_t tail = load4(b + n - 4);
            std::memcpy(p, &head, 4);
            std::memcpy(p + n - 4, &tail, 4);
            v = from_words(head | std::uint64_t{tail} << 32, kPad);
        } else if (n != 0) {
            const auto byte = [b](std::size_t i) {
                return std::uint64_t{static_cast<unsigned char>(b[i])};
            };
            p[0] = b[0];
            p[n / 2] = b[n / 2];
            p[n - 1] = b[n - 1];
            v = from_words(0x6161616161000000u | byte(0) | byte(n / 2) << 8 | byte(n - 1) << 16,
                           kPad);
        } else {
            return;
        }
        escape |= needs_escape(v);
        p += n;
    }

    /// True when every value put so far is plain.
    bool all_plain() const noexcept {
        const auto words = reinterpret_cast<Words2>(escape);
        return (words[0] | words[1]) == 0;
    }
};

/// Decimal digits of `v`, 1 to 20.
std::size_t decimal_length(std::uint64_t v) noexcept {
    static constexpr std::array<std::uint64_t, 20> kPow10 = [] {
        std::array<std::uint64_t, 20> t{};
        std::uint64_t power = 1;
        for (auto& entry : t) {
            entry = power;
            power *= 10;  // wraps after 10^19, which is never stored
        }
        return t;
    }();
    // floor(log10(2) * bit length) is the length or one less.
    const auto approx = static_cast<std::size_t>((64 - std::countl_zero(v | 1)) * 1233 >> 12);
    return approx + (v >= kPow10[approx] ? 1 : 0);
}

/// Digits written in place, from the last pair back: no copy from a scratch buffer.
[[gnu::always_inline]] inline void put_uint(FastOut& o, std::uint64_t v) noexcept {
    if (v < 10) {
        *o.p++ = static_cast<char>('0' + v);
        return;
    }
    char* q = o.p + decimal_length(v);
    o.p = q;
    while (v >= 100) {
        q -= 2;
        std::memcpy(q, kDigitPairs.data() + 2 * (v % 100), 2);
        v /= 100;
    }
    if (v >= 10) {
        std::memcpy(q - 2, kDigitPairs.data() + 2 * v, 2);
    } else {
        q[-1] = static_cast<char>('0' + v);
    }
}

template <class O>
void put_int(O& o, std::int64_t v) noexcept {
    if (v < 0) {
        o.put('-');
        put_uint(o, 0 - static_cast<std::uint64_t>(v));
    } else {
        put_uint(o, static_cast<std::uint64_t>(v));
    }
}

/// RFC 8259 §7 string contents (without the quotes), a byte at a time: for the rare value that
/// needs escaping (see put_json_chars).
[[gnu::noinline]] void put_json_escaped(Out& o, std::string_view s) noexcept {
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t run = 0;
    std::size_t i = 0;
    while (i < n) {
        const unsigned char c = b[i];
        if (plain(c)) {
            ++i;
            continue;
        }
        o.put(s.data() + run, i - run);
        if (c >= 0x80) {
            const std::size_t len = blitz::detail::utf8_sequence(s.substr(i));
            if (len != 0) {
                o.put(s.data() + i, len);
                i += len;
            } else {
                o.put("\\ufffd", 6);
                ++i;
            }
        } else {
            switch (c) {
                case '"':
                    o.put("\\\"", 2);
                    break;
                case '\\':
                    o.put("\\\\", 2);
                    break;
                case '\n':
                    o.put("\\n", 2);
                    break;
                case '\r':
                    o.put("\\r", 2);
                    break;
                case '\t':
                    o.put("\\t", 2);
                    break;
                default: {
                    // Other controls and DEL (legal raw in JSON, but not in a terminal).
                    const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
                    o.put(esc, sizeof esc);
                }
            }
            ++i;
        }
        run = i;
    }
    o.put(s.data() + run, n - run);
}

/// RFC 8259 §7 string contents. Values are almost always plain and go out as one copy.
void put_json_chars(Out& o, std::string_view s) noexcept {
    if (all_plain(s)) [[likely]] {
        o.put(s);
    } else {
        put_json_escaped(o, s);
    }
}

/// The value as it is: format_to() writes the line again through Out when one needed escaping.
[[gnu::always_inline]] inline void put_json_chars(FastOut& o, std::string_view s) noexcept {
    o.put_value(s);
}

/// nginx `escape=default`: quote, backslash, controls and bytes from 0x7F become \xHH.
void put_template_chars(Out& o, std::string_view s) noexcept {
    if (s.empty()) {
        o.put('-');
        return;
    }
    if (all_plain(s)) [[likely]] {
        o.put(s);
        return;
    }
    std::size_t run = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (plain(c)) {
            continue;
        }
        o.put(s.data() + run, i - run);
        const char esc[4] = {'\\', 'x', kHexUpper[c >> 4], kHexUpper[c & 0xF]};
        o.put(esc, sizeof esc);
        run = i + 1;
    }
    o.put(s.data() + run, s.size() - run);
}

constexpr std::int64_t kMaxUnixSeconds = 253402300799;  // 9999-12-31T23:59:59Z

/// Splits microseconds into clamped seconds and milliseconds.
void split_time(std::int64_t time_us, std::int64_t& s, int& ms) noexcept {
    if (time_us < 0) {
        time_us = 0;
    }
    s = std::min(time_us / 1'000'000, kMaxUnixSeconds);
    ms = static_cast<int>((time_us % 1'000'000) / 1000);
}

template <class O>
void put_rfc3339_ms(O& o, TimeCache& tc, std::int64_t time_us) noexcept {
    std::int64_t s;
    int ms;
    split_time(time_us, s, ms);
    o.put(tc.at(s).date_time, 19);
    const char frac[5] = {'.', static_cast<char>('0' + ms / 100),
                          static_cast<char>('0' + ms / 10 % 10), static_cast<char>('0' + ms % 10),
                          'Z'};
    o.put(frac, sizeof frac);
}

// The key is a literal: as a template argument its length is a constant, so copying it is a
// few moves, not a memcpy call (one per field and line).
template <class O, std::size_t N>
[[gnu::always_inline]] inline void put_string_field(O& o, const char (&key)[N],
                                                    std::string_view v) noexcept {
    if (v.empty()) {
        return;
    }
    o.put(key, N - 1);
    put_json_chars(o, v);
    o.put('"');
}

template <class O>
void format_json(const Record& r, TimeCache& tc, O& o) noexcept {
    // Keys are written with the comma before them and, for strings, the value's opening quote.
    o.put("{\"time\":\""sv);
    put_rfc3339_ms(o, tc, r.time_us);
    o.put("\",\"duration_us\":"sv);
    put_int(o, r.duration_us);
    put_string_field(o, ",\"client\":\"", r.client);
    o.put(",\"client_port\":"sv);
    put_uint(o, r.client_port);
    put_string_field(o, ",\"method\":\"", r.method);
    put_string_field(o, ",\"scheme\":\"", r.scheme);
    put_string_field(o, ",\"authority\":\"", r.authority);
    put_string_field(o, ",\"path\":\"", r.path);
    put_string_field(o, ",\"protocol\":\"", r.protocol);
    o.put(",\"status\":"sv);
    put_uint(o, r.status);
    o.put(",\"bytes_received\":"sv);
    put_uint(o, r.bytes_received);
    o.put(",\"bytes_sent\":"sv);
    put_uint(o, r.bytes_sent);
    put_string_field(o, ",\"route\":\"", r.route);
    put_string_field(o, ",\"upstream\":\"", r.upstream);
    put_string_field(o, ",\"upstream_endpoint\":\"", r.upstream_endpoint);
    if (r.upstream_status != 0) {
        o.put(",\"upstream_status\":"sv);
        put_uint(o, r.upstream_status);
    }
    if (r.upstream_connect_us >= 0) {
        o.put(",\"upstream_connect_us\":"sv);
        put_int(o, r.upstream_connect_us);
    }
    if (r.upstream_first_byte_us >= 0) {
        o.put(",\"upstream_first_byte_us\":"sv);
        put_int(o, r.upstream_first_byte_us);
    }
    o.put(",\"attempts\":"sv);
    put_uint(o, r.attempts);
    put_string_field(o, ",\"request_id\":\"", r.request_id);
    put_string_field(o, ",\"trace_id\":\"", r.trace_id);
    put_string_field(o, ",\"span_id\":\"", r.span_id);
    put_string_field(o, ",\"tls_version\":\"", r.tls_version);
    put_string_field(o, ",\"tls_sni\":\"", r.tls_sni);
    put_string_field(o, ",\"user_agent\":\"", r.user_agent);
    put_string_field(o, ",\"referer\":\"", r.referer);
    put_string_field(o, ",\"listener\":\"", r.listener);
    o.put("}\n"sv);
}

/// At least the length of the JSON line for `r`: every key, punctuation and number at its
/// longest (under 900 bytes), and each value byte escaped to its longest (six bytes: \u00XX).
std::size_t json_bound(const Record& r) noexcept {
    constexpr std::size_t kFixed = 1024;
    const std::size_t text = r.client.size() + r.method.size() + r.scheme.size() + r.authority.size() +
                             r.path.size() + r.protocol.size() + r.route.size() + r.upstream.size() +
                             r.upstream_endpoint.size() + r.request_id.size() + r.trace_id.size() +
                             r.span_id.size() + r.tls_version.size() + r.tls_sni.size() +
                             r.user_agent.size() + r.referer.size() + r.listener.size();
    return kFixed + 6 * text;
}

void put_optional(Out& o, std::int64_t v, bool present) noexcept {
    if (present) {
        put_int(o, v);
    } else {
        o.put('-');
    }
}

void put_field(Out& o, TimeCache& tc, const Record& r, std::uint8_t field) noexcept {
    switch (static_cast<Field>(field)) {
        case kLiteral:
            break;
        case kTimeUs:
            put_int(o, r.time_us);
            break;
        case kDurationUs:
            put_int(o, r.duration_us);
            break;
        case kClient:
            put_template_chars(o, r.client);
            break;
        case kClientPort:
            put_uint(o, r.client_port);
            break;
        case kMethod:
            put_template_chars(o, r.method);
            break;
        case kScheme:
            put_template_chars(o, r.scheme);
            break;
        case kAuthority:
            put_template_chars(o, r.authority);
            break;
        case kPath:
            put_template_chars(o, r.path);
            break;
        case kProtocol:
            put_template_chars(o, r.protocol);
            break;
        case kStatus:
            put_uint(o, r.status);
            break;
        case kBytesReceived:
            put_uint(o, r.bytes_received);
            break;
        case kBytesSent:
            put_uint(o, r.bytes_sent);
            break;
        case kRoute:
            put_template_chars(o, r.route);
            break;
        case kUpstream:
            put_template_chars(o, r.upstream);
            break;
        case kUpstreamEndpoint:
            put_template_chars(o, r.upstream_endpoint);
            break;
        case kUpstreamStatus:
            put_optional(o, r.upstream_status, r.upstream_status != 0);
            break;
        case kUpstreamConnectUs:
            put_optional(o, r.upstream_connect_us, r.upstream_connect_us >= 0);
            break;
        case kUpstreamFirstByteUs:
            put_optional(o, r.upstream_first_byte_us, r.upstream_first_byte_us >= 0);
            break;
        case kAttempts:
            put_uint(o, r.attempts);
            break;
        case kRequestId:
            put_template_chars(o, r.request_id);
            break;
        case kTraceId:
            put_template_chars(o, r.trace_id);
            break;
        case kSpanId:
            put_template_chars(o, r.span_id);
            break;
        case kTlsVersion:
            put_template_chars(o, r.tls_version);
            break;
        case kTlsSni:
            put_template_chars(o, r.tls_sni);
            break;
        case kUserAgent:
            put_template_chars(o, r.user_agent);
            break;
        case kReferer:
            put_template_chars(o, r.referer);
            break;
        case kListener:
            put_template_chars(o, r.listener);
            break;
        case kTime:
            put_rfc3339_ms(o, tc, r.time_us);
            break;
        case kTimeLocal: {
            std::int64_t s;
            int ms;
            split_time(r.time_us, s, ms);
            o.put(tc.at(s).local, 26);
            break;
        }
        case kTimeIso8601: {
            std::int64_t s;
            int ms;
            split_time(r.time_us, s, ms);
            o.put(tc.at(s).date_time, 19);
            o.put("+00:00", 6);
            break;
        }
    }
}

constexpr bool name_char(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

void put2(char* p, int v) noexcept {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
}

void put4(char* p, int v) noexcept {
    put2(p, v / 100);
    put2(p + 2, v % 100);
}

}  // namespace

const TimeCache::Text& TimeCache::at(std::int64_t unix_s) noexcept {
    unix_s = std::clamp<std::int64_t>(unix_s, 0, kMaxUnixSeconds);
    if (unix_s == second_) {
        return text_;
    }
    second_ = unix_s;
    // Days to civil date (Howard Hinnant's algorithm): gmtime_r takes glibc's time-zone lock.
    const std::int64_t days = unix_s / 86400;
    const auto sod = static_cast<int>(unix_s % 86400);
    const std::int64_t z = days + 719468;
    const std::int64_t era = z / 146097;
    const auto doe = static_cast<int>(z - era * 146097);
    const int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int mp = (5 * doy + 2) / 153;
    const int day = doy - (153 * mp + 2) / 5 + 1;
    const int month = mp < 10 ? mp + 3 : mp - 9;
    const int year = static_cast<int>(yoe + era * 400) + (month <= 2 ? 1 : 0);
    const int hh = sod / 3600;
    const int mm = sod / 60 % 60;
    const int ss = sod % 60;

    char* d = text_.date_time;
    put4(d, year);
    d[4] = '-';
    put2(d + 5, month);
    d[7] = '-';
    put2(d + 8, day);
    d[10] = 'T';
    put2(d + 11, hh);
    d[13] = ':';
    put2(d + 14, mm);
    d[16] = ':';
    put2(d + 17, ss);

    static constexpr char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char* l = text_.local;
    put2(l, day);
    l[2] = '/';
    std::memcpy(l + 3, kMonths + (month - 1) * 3, 3);
    l[6] = '/';
    put4(l + 7, year);
    l[11] = ':';
    std::memcpy(l + 12, d + 11, 8);
    std::memcpy(l + 20, " +0000", 6);
    return text_;
}

Format Format::json() {
    Format f;
    f.json_ = true;
    return f;
}

Result<Format, FormatError> Format::compile(std::string_view tmpl) {
    Format f;
    f.literals_.reserve(tmpl.size());
    auto literal = [&f](std::string_view text) {
        if (text.empty()) {
            return;
        }
        // Adjacent literal text (around `$$`) shares one piece.
        if (!f.pieces_.empty() && f.pieces_.back().field == kLiteral &&
            f.pieces_.back().offset + f.pieces_.back().length == f.literals_.size()) {
            f.pieces_.back().length += static_cast<std::uint32_t>(text.size());
        } else {
            f.pieces_.push_back({static_cast<std::uint32_t>(f.literals_.size()),
                                 static_cast<std::uint32_t>(text.size()), kLiteral});
        }
        f.literals_.append(text);
    };
    if (tmpl.size() > UINT32_MAX / 2) {
        return fail(FormatError{0, "template too long"});
    }
    std::size_t i = 0;
    while (i < tmpl.size()) {
        const std::size_t dollar = tmpl.find('$', i);
        if (dollar == std::string_view::npos) {
            literal(tmpl.substr(i));
            break;
        }
        literal(tmpl.substr(i, dollar - i));
        std::size_t p = dollar + 1;
        if (p < tmpl.size() && tmpl[p] == '$') {
            literal("$");
            i = p + 1;
            continue;
        }
        const bool braced = p < tmpl.size() && tmpl[p] == '{';
        if (braced) {
            ++p;
        }
        const std::size_t name_start = p;
        while (p < tmpl.size() && name_char(tmpl[p])) {
            ++p;
        }
        const std::string_view name = tmpl.substr(name_start, p - name_start);
        if (name.empty()) {
            return fail(
                FormatError{dollar, braced ? "expected a field name after '${'"
                                           : "expected a field name after '$' ('$$' is a dollar)"});
        }
        if (braced) {
            if (p >= tmpl.size() || tmpl[p] != '}') {
                return fail(FormatError{dollar, "unclosed '${'"});
            }
            ++p;
        }
        const auto* known = std::find_if(kFieldNames.begin(), kFieldNames.end(),
                                         [&](const FieldName& fn) { return fn.name == name; });
        if (known == kFieldNames.end()) {
            return fail(FormatError{dollar, "unknown field name"});
        }
        f.pieces_.push_back({0, 0, known->field});
        i = p;
    }
    literal("\n");
    return f;
}

std::size_t Format::format_to(const Record& r, TimeCache& time,
                              std::span<char> out) const noexcept {
    if (json_ && out.size() >= json_bound(r)) [[likely]] {
        FastOut o{out.data()};
        format_json(r, time, o);
        if (o.all_plain()) [[likely]] {
            return static_cast<std::size_t>(o.p - out.data());
        }
    }
    Out o{out.data(), out.data() + out.size()};
    if (json_) {
        format_json(r, time, o);
        return o.n;
    }
    for (const Piece& piece : pieces_) {
        if (piece.field == kLiteral) {
            o.put(literals_.data() + piece.offset, piece.length);
        } else {
            put_field(o, time, r, piece.field);
        }
    }
    return o.n;
}

void Format::append_to(const Record& r, TimeCache& time, std::string& out) const {
    const std::size_t old = out.size();
    // Use the spare capacity first; format again only when the line did not fit in it.
    out.resize(out.capacity());
    const std::size_t n = format_to(r, time, std::span<char>(out.data() + old, out.size() - old));
    const bool fitted = old + n <= out.size();
    out.resize(old + n);
    if (!fitted) {
        format_to(r, time, std::span<char>(out.data() + old, n));
    }
}

}  // namespace blitz::accesslog

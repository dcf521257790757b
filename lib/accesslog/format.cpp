#include "accesslog/format.hpp"

#include <algorithm>
#include <array>
#include <charconv>
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
        // The common case first, as one memcpy of `len`: for the keys (constants) the compiler
        // then copies inline instead of calling memcpy.
        if (static_cast<std::size_t>(end - p) >= len) [[likely]] {
            std::memcpy(p, s, len);
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

void put_uint(Out& o, std::uint64_t v) noexcept {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    o.put(buf, static_cast<std::size_t>(r.ptr - buf));
}

void put_int(Out& o, std::int64_t v) noexcept {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    o.put(buf, static_cast<std::size_t>(r.ptr - buf));
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

/// RFC 8259 §7 string contents (without the quotes).
// Whether none of the 8 bytes of `w` needs escaping in JSON (see plain()): no control byte,
// quote, backslash, DEL or byte from 0x80 (the bit tricks of "Bit Twiddling Hacks": a byte
// below n, a byte equal to one value).
constexpr bool plain8(std::uint64_t w) noexcept {
    constexpr std::uint64_t k01 = 0x0101010101010101u;
    constexpr std::uint64_t k80 = 0x8080808080808080u;
    const auto zero_byte = [](std::uint64_t x) { return (x - k01) & ~x & k80; };
    const std::uint64_t below_space = (w - k01 * 0x20) & ~w & k80;
    return ((w & k80) | below_space | zero_byte(w ^ (k01 * '"')) | zero_byte(w ^ (k01 * '\\')) |
            zero_byte(w ^ (k01 * 0x7F))) == 0;
}

// plain8 agrees with plain() for every byte value, alone and beside plain bytes.
static_assert([] {
    for (unsigned c = 0; c < 256; ++c) {
        const std::uint64_t alone = 0x0101010101010101u * c;
        const std::uint64_t beside = 0x6161616161616100u | c;  // "a" * 7 then c
        if (plain8(alone) != plain(static_cast<unsigned char>(c)) ||
            plain8(beside) != plain(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}());

void put_json_chars(Out& o, std::string_view s) noexcept {
    const auto* b = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t run = 0;
    std::size_t i = 0;
    while (i < n) {
        if (n - i >= 8) {
            std::uint64_t w;
            std::memcpy(&w, b + i, 8);
            if (plain8(w)) {
                i += 8;  // values are mostly plain: eight bytes per test
                continue;
            }
        }
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

/// nginx `escape=default`: quote, backslash, controls and bytes from 0x7F become \xHH.
void put_template_chars(Out& o, std::string_view s) noexcept {
    if (s.empty()) {
        o.put('-');
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

void put_rfc3339_ms(Out& o, TimeCache& tc, std::int64_t time_us) noexcept {
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
template <std::size_t N>
void put_string_field(Out& o, const char (&key)[N], std::string_view v) noexcept {
    if (v.empty()) {
        return;
    }
    o.put(key, N - 1);
    put_json_chars(o, v);
    o.put('"');
}

void format_json(const Record& r, TimeCache& tc, Out& o) noexcept {
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

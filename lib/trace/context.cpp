#include "trace/context.hpp"

#include <algorithm>

#include "core/hex.hpp"

namespace blitz::trace {

namespace {

// Trace Context §3.2.2: HEXDIGLC = DIGIT / "a" / "b" / "c" / "d" / "e" / "f"; uppercase is
// not accepted.
int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

// Decodes 2*n lowercase hex digits into n bytes.
bool decode_hex(std::string_view text, std::uint8_t* out, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i) {
        int hi = hex_value(text[2 * i]);
        int lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return false;
        }
        out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    return true;
}

bool lcalpha(char c) noexcept { return c >= 'a' && c <= 'z'; }
bool digit(char c) noexcept { return c >= '0' && c <= '9'; }
// Trace Context §3.3.1.3.1: the characters after the first in a key.
bool key_char(char c) noexcept {
    return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
bool ows(char c) noexcept { return c == ' ' || c == '\t'; }

// Trace Context §3.3.1.3.1:
//   simple-key       = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//   multi-tenant-key = tenant-id "@" system-id
//   tenant-id        = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//   system-id        = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
bool valid_key(std::string_view key) noexcept {
    auto at = key.find('@');
    if (at == std::string_view::npos) {
        if (key.empty() || key.size() > 256 || !lcalpha(key[0])) {
            return false;
        }
        return std::all_of(key.begin() + 1, key.end(), key_char);
    }
    std::string_view tenant = key.substr(0, at);
    std::string_view system = key.substr(at + 1);
    if (tenant.empty() || tenant.size() > 241 || !(lcalpha(tenant[0]) || digit(tenant[0]))) {
        return false;
    }
    if (system.empty() || system.size() > 14 || !lcalpha(system[0])) {
        return false;
    }
    return std::all_of(tenant.begin() + 1, tenant.end(), key_char) &&
           std::all_of(system.begin() + 1, system.end(), key_char);
}

// Trace Context §3.3.1.3.2:
//   value    = 0*255(chr) nblk-chr
//   nblk-chr = %x21-2B / %x2D-3C / %x3E-7E     (visible ASCII except "," and "=")
//   chr      = %x20 / nblk-chr
bool valid_value(std::string_view value) noexcept {
    if (value.empty() || value.size() > 256 || value.back() == ' ') {
        return false;
    }
    return std::all_of(value.begin(), value.end(),
                       [](char c) { return c >= 0x20 && c <= 0x7e && c != ',' && c != '='; });
}

}  // namespace

bool TraceId::is_zero() const noexcept {
    return std::all_of(std::begin(b), std::end(b), [](std::uint8_t x) { return x == 0; });
}

bool SpanId::is_zero() const noexcept {
    return std::all_of(std::begin(b), std::end(b), [](std::uint8_t x) { return x == 0; });
}

std::optional<TraceParent> parse_traceparent(std::string_view value) noexcept {
    // §3.2.2.1: version = 2HEXDIGLC; §3.2.4: a shorter value cannot be parsed at any version.
    if (value.size() < kTraceParentSize) {
        return std::nullopt;
    }
    std::uint8_t version = 0;
    if (!decode_hex(value.substr(0, 2), &version, 1) || version == 0xff) {
        return std::nullopt;  // §3.2.2.2: version ff is forbidden
    }
    if (version == 0x00 && value.size() != kTraceParentSize) {
        return std::nullopt;  // §3.2.2: version 00 has exactly four fields
    }
    // §3.2.4: a higher version is parsed by the version-00 layout of its first 55 characters,
    // which must be followed by the end of the value or a dash.
    if (value.size() > kTraceParentSize && value[kTraceParentSize] != '-') {
        return std::nullopt;
    }
    if (value[2] != '-' || value[35] != '-' || value[52] != '-') {
        return std::nullopt;
    }
    TraceParent tp{};
    if (!decode_hex(value.substr(3, 32), tp.trace.b, 16) ||
        !decode_hex(value.substr(36, 16), tp.parent.b, 8) ||
        !decode_hex(value.substr(53, 2), &tp.flags, 1)) {
        return std::nullopt;
    }
    // §3.2.2.3 and §3.2.2.4: all-zero ids are invalid.
    if (tp.trace.is_zero() || tp.parent.is_zero()) {
        return std::nullopt;
    }
    return tp;
}

void format_traceparent(std::span<char, kTraceParentSize> out, const TraceId& trace,
                        const SpanId& span, std::uint8_t flags) noexcept {
    char* p = out.data();
    p[0] = '0';
    p[1] = '0';
    p[2] = '-';
    blitz::detail::encode_hex(trace.b, 16, p + 3);
    p[35] = '-';
    blitz::detail::encode_hex(span.b, 8, p + 36);
    p[52] = '-';
    blitz::detail::encode_hex(&flags, 1, p + 53);
}

bool valid_tracestate(std::string_view value) noexcept {
    if (value.size() > kMaxTraceStateBytes) {
        return false;
    }
    // Keys seen so far, to refuse duplicates (§3.3.1.3: a key appears at most once).
    std::string_view keys[kMaxTraceStateMembers];
    std::size_t members = 0;
    std::size_t pos = 0;
    while (pos <= value.size()) {
        auto comma = value.find(',', pos);
        std::size_t end = comma == std::string_view::npos ? value.size() : comma;
        std::string_view member = value.substr(pos, end - pos);
        // §3.3.1.2: OWS around list members; an empty or whitespace-only member is allowed.
        while (!member.empty() && ows(member.front())) {
            member.remove_prefix(1);
        }
        while (!member.empty() && ows(member.back())) {
            member.remove_suffix(1);
        }
        if (!member.empty()) {
            auto eq = member.find('=');
            if (eq == std::string_view::npos || members == kMaxTraceStateMembers) {
                return false;
            }
            std::string_view key = member.substr(0, eq);
            if (!valid_key(key) || !valid_value(member.substr(eq + 1))) {
                return false;
            }
            if (std::find(keys, keys + members, key) != keys + members) {
                return false;
            }
            keys[members++] = key;
        }
        if (comma == std::string_view::npos) {
            break;
        }
        pos = comma + 1;
    }
    return members > 0;
}

bool valid_request_id(std::string_view value) noexcept {
    if (value.empty() || value.size() > kMaxRequestIdBytes) {
        return false;
    }
    return std::all_of(value.begin(), value.end(),
                       [](char c) { return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\'; });
}

void format_hex(std::span<char, 32> out, const TraceId& id) noexcept {
    blitz::detail::encode_hex(id.b, 16, out.data());
}

void format_hex(std::span<char, 16> out, const SpanId& id) noexcept {
    blitz::detail::encode_hex(id.b, 8, out.data());
}

}  // namespace blitz::trace

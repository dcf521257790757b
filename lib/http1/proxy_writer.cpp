#include "http1/proxy.hpp"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "http/uri.hpp"
#include "http1/wire.hpp"

// The heads a proxy writes per request: one to the upstream, one back to the client. Like the
// response writer, every byte a caller (or a peer) supplies is checked before it reaches the
// wire; each field is classified by its length and at most a word compare or two, and copied
// and checked 16 bytes a step.
namespace blitz::http1 {

namespace {

using detail::copy_bytes;
using detail::copy_field_value;
using detail::copy_name;
using detail::for_each_element;
using detail::trim_ows;

// ASCII case-insensitive equality with `lower`, a literal of lower-case letters, digits and '-'.
// Only the case bit (0x20) of a letter may differ, which (x ^ y) & ~case_bits tests for 8 bytes
// at once. Unlike detail::name_is(), which lets a control byte pass for '-' or a digit (parsed
// names hold none), this is exact: what the writers are given was not parsed.
// Inlined: every caller passes a literal, so the length test and the words of `lower` fold
// into constants.
[[gnu::always_inline]] inline bool field_is(std::string_view name,
                                            std::string_view lower) noexcept {
    const std::size_t n = lower.size();
    if (name.size() != n) {
        return false;
    }
    const auto same = [&name, &lower](std::size_t at, std::size_t width) {
        std::uint64_t x = 0;
        std::uint64_t y = 0;
        std::memcpy(&x, name.data() + at, width);
        std::memcpy(&y, lower.data() + at, width);
        // Letters are the literal's only bytes with bit 0x40; shifted, it is their case bit.
        const std::uint64_t case_bits = (y & 0x4040404040404040) >> 1;
        return ((x ^ y) & ~case_bits) == 0;
    };
    if (n >= 8) {
        for (std::size_t i = 0; i + 8 < n; i += 8) {
            if (!same(i, 8)) {
                return false;
            }
        }
        return same(n - 8, 8);
    }
    if (n >= 4) {
        return same(0, 4) && same(n - 4, 4);
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (!same(i, 1)) {
            return false;
        }
    }
    return true;
}

// Field names the writers treat specially.
enum class Kind : std::uint8_t { Other, HopByHop, Upgrade, Host, ContentLength, Date };

Kind classify(std::string_view name) noexcept {
    switch (name.size()) {
        case 2:
            return field_is(name, "te") ? Kind::HopByHop : Kind::Other;
        case 4:
            if (field_is(name, "host")) {
                return Kind::Host;
            }
            return field_is(name, "date") ? Kind::Date : Kind::Other;
        case 5:
            // RFC 9110 §18.4: "Close" is reserved so that it never collides with the option.
            return field_is(name, "close") ? Kind::HopByHop : Kind::Other;
        case 7:
            return field_is(name, "upgrade") ? Kind::Upgrade : Kind::Other;
        case 10:
            return field_is(name, "connection") || field_is(name, "keep-alive") ? Kind::HopByHop
                                                                                : Kind::Other;
        case 14:
            if (field_is(name, "content-length")) {
                return Kind::ContentLength;
            }
            // RFC 7540 §3.2.1: HTTP2-Settings applies to one connection only (and h2c is never
            // forwarded anyway).
            return field_is(name, "http2-settings") ? Kind::HopByHop : Kind::Other;
        case 16:
            return field_is(name, "proxy-connection") ? Kind::HopByHop : Kind::Other;
        case 17:
            return field_is(name, "transfer-encoding") ? Kind::HopByHop : Kind::Other;
        default:
            return Kind::Other;
    }
}

bool is_hop_by_hop_kind(Kind k) noexcept { return k == Kind::HopByHop || k == Kind::Upgrade; }

// The options named by a message's Connection fields (RFC 9110 §7.6.1). Nearly every
// Connection field names only options that are hop-by-hop by name anyway (close, keep-alive,
// upgrade, te), so the per-field lookup runs only when some other token appears.
class ConnectionOptions {
 public:
    explicit ConnectionOptions(Headers fields) noexcept {
        const std::span<const Header> all = fields.fields();
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (all[i].name.size() != 10 || !field_is(all[i].name, "connection")) {
                continue;
            }
            const std::string_view value = all[i].value;
            if ((value.size() == 10 && field_is(value, "keep-alive")) ||
                (value.size() == 5 && field_is(value, "close"))) {
                continue;  // what nearly every Connection field says
            }
            bool other_tokens = false;
            for_each_element(value, [&other_tokens](std::string_view token) {
                other_tokens |= !token.empty() && !is_hop_by_hop_kind(classify(token));
                return true;
            });
            if (other_tokens) {
                // Connection fields before this one list only names dropped anyway.
                fields_ = all.subspan(i);
                return;
            }
        }
    }

    // Whether a Connection field lists `name`.
    bool lists(std::string_view name) const noexcept { return !fields_.empty() && listed(name); }

 private:
    bool listed(std::string_view name) const noexcept {
        for (const Header& h : fields_) {
            if (h.name.size() != 10 || !field_is(h.name, "connection")) {
                continue;
            }
            const bool found = !for_each_element(h.value, [name](std::string_view token) {
                return token.empty() || !iequals(token, name);
            });
            if (found) {
                return true;
            }
        }
        return false;
    }

    std::span<const Header> fields_;  // from the first Connection field that matters; or empty
};

// Writes "name: value\r\n"; false when it does not fit, the name is not a token or the value
// is not a valid field value (any control but HTAB: CR and LF would end the line early and
// inject fields, NUL truncates in C-string clients, and strict recipients refuse the rest).
bool put_field(char*& p, char* end, std::string_view name, std::string_view value) noexcept {
    if (name.empty() || static_cast<std::size_t>(end - p) < name.size() + value.size() + 4) {
        return false;
    }
    if (!copy_name(p, name)) {
        return false;
    }
    p += name.size();
    std::memcpy(p, ": ", 2);
    if (!copy_field_value(p + 2, value)) {
        return false;
    }
    p += 2 + value.size();
    std::memcpy(p, "\r\n", 2);
    p += 2;
    return true;
}

// Writes a fixed line such as "Connection: close\r\n".
bool put_literal(char*& p, char* end, std::string_view line) noexcept {
    if (static_cast<std::size_t>(end - p) < line.size()) {
        return false;
    }
    copy_bytes(p, line);
    p += line.size();
    return true;
}

// Writes "<prefix><decimal>\r\n".
bool put_number(char*& p, char* end, std::string_view prefix, std::uint64_t n) noexcept {
    const std::size_t digits = detail::decimal_digits(n);
    if (static_cast<std::size_t>(end - p) < prefix.size() + digits + 2) {
        return false;
    }
    copy_bytes(p, prefix);
    p += prefix.size();
    detail::write_decimal(p, n, digits);
    p += digits;
    std::memcpy(p, "\r\n", 2);
    p += 2;
    return true;
}

// Copies a request-target: visible ASCII only (RFC 9112 §3.2; no SP, controls, DEL or bytes
// >= 0x80, which would end or bend the request line).
bool copy_target(char* dst, std::string_view target) noexcept {
#if defined(__SSE2__)
    const auto visible = [](__m128i v) {
        const __m128i bad = _mm_or_si128(detail::bytes_below_0x21(v), detail::bytes_equal(v, 0x7f));
        return _mm_andnot_si128(bad, _mm_set1_epi8(-1));
    };
    return detail::copy_scan(dst, target.data(), target.size(), visible) == 0xffff;
#else
    for (char c : target) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x21 || u > 0x7e) {
            return false;
        }
    }
    copy_bytes(dst, target);
    return true;
#endif
}

// RFC 9110 §7.8: protocol = protocol-name ["/" protocol-version], both tokens.
bool valid_protocol(std::string_view p) noexcept {
    const std::size_t slash = p.find('/');
    const std::string_view name = p.substr(0, slash);
    return !name.empty() && detail::is_token(name) &&
           (slash == std::string_view::npos ||
            (slash + 1 < p.size() && detail::is_token(p.substr(slash + 1))));
}

// RFC 9113 §3.1 retired the h2c upgrade; Blitz never forwards it (a client could otherwise
// talk HTTP/2 to an upstream past every HTTP/1.1 check of this proxy).
bool is_h2c(std::string_view protocol) noexcept {
    return iequals(protocol.substr(0, protocol.find('/')), "h2c");
}

bool names_h2c(std::string_view upgrade) noexcept {
    return !for_each_element(upgrade, [](std::string_view e) { return !is_h2c(e); });
}

// The protocols of an Upgrade value that may be forwarded: valid, and not h2c.
template <class F>
void for_each_forwarded_protocol(std::string_view upgrade, F&& f) noexcept {
    for_each_element(upgrade, [&f](std::string_view e) {
        if (valid_protocol(e) && !is_h2c(e)) {
            f(e);
        }
        return true;
    });
}

}  // namespace

bool is_hop_by_hop(std::string_view name, Headers fields) noexcept {
    return is_hop_by_hop_kind(classify(name)) || ConnectionOptions(fields).lists(name);
}

std::string_view requested_upgrade(Headers fields, Version version) noexcept {
    if (version != Version::Http11) {
        return {};
    }
    for (const Header& h : fields) {
        if (h.name.size() == 10 && field_is(h.name, "connection")) {
            const bool listed = !for_each_element(h.value, [](std::string_view token) {
                return !(token.size() == 7 && field_is(token, "upgrade"));
            });
            if (listed) {
                return fields.get("upgrade");
            }
        }
    }
    return {};
}

bool trailer_forbidden(std::string_view name) noexcept {
    static constexpr std::string_view kForbidden[] = {
        "connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade",
        "content-length", "trailer", "host", "authorization", "proxy-authorization",
        "www-authenticate", "proxy-authenticate", "cookie", "set-cookie", "expect", "max-forwards",
        "range", "cache-control", "pragma", "if-match", "if-none-match", "if-modified-since",
        "if-unmodified-since", "if-range", "age", "date", "expires", "location", "retry-after",
        "vary", "content-type", "content-encoding", "content-range"};
    if (!name.empty() && name[0] == ':') {
        return true;
    }
    for (const std::string_view f : kForbidden) {
        if (f.size() == name.size() && field_is(name, f)) {
            return true;
        }
    }
    return false;
}

bool accepts_trailers(Headers fields) noexcept {
    for (const Header& h : fields) {
        if (h.name.size() == 2 && field_is(h.name, "te")) {
            // t-codings = "trailers" / ( transfer-coding [ weight ] ), RFC 9110 §10.1.4
            const bool found = !for_each_element(h.value, [](std::string_view e) {
                const std::string_view coding = trim_ows(e.substr(0, e.find(';')));
                return !(coding.size() == 8 && field_is(coding, "trailers"));
            });
            if (found) {
                return true;
            }
        }
    }
    return false;
}

std::size_t write_request_head(std::span<char> out, const UpstreamRequest& r) noexcept {
    char* p = out.data();
    char* const end = p + out.size();

    // request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3)
    constexpr std::string_view kVersion = " HTTP/1.1\r\n";
    if (r.method.empty() || r.target.empty() ||
        static_cast<std::size_t>(end - p) <
            r.method.size() + 1 + r.target.size() + kVersion.size()) {
        return 0;
    }
    if (!copy_name(p, r.method)) {
        return 0;
    }
    p += r.method.size();
    *p++ = ' ';
    if (!copy_target(p, r.target)) {
        return 0;
    }
    p += r.target.size();
    copy_bytes(p, kVersion);
    p += kVersion.size();

    // RFC 9112 §3.2: Host first; an empty value when the target has no authority.
    if (!r.host.empty() && !http::valid_authority(r.host)) {
        return 0;
    }
    if (!put_field(p, end, "Host", r.host)) {
        return 0;
    }

    const ConnectionOptions options(r.headers);
    for (const Header& h : r.headers) {
        const Kind kind = classify(h.name);
        if (is_hop_by_hop_kind(kind) || kind == Kind::Host || kind == Kind::ContentLength ||
            options.lists(h.name)) {
            continue;
        }
        bool dropped = false;
        for (std::string_view name : r.drop) {
            dropped |= h.name.size() == name.size() && iequals(h.name, name);
        }
        if (!dropped && !put_field(p, end, h.name, h.value)) {
            return 0;
        }
    }
    for (const Header& h : r.extra) {
        const Kind kind = classify(h.name);
        if (is_hop_by_hop_kind(kind) || kind == Kind::Host || kind == Kind::ContentLength) {
            return 0;
        }
        if (!put_field(p, end, h.name, h.value)) {
            return 0;
        }
    }

    // RFC 9112 §6.1-§6.2: the framing is always this writer's, never a forwarded field's.
    if (r.body == BodyKind::Length) {
        if (!put_number(p, end, "Content-Length: ", r.content_length)) {
            return 0;
        }
    } else if (r.body == BodyKind::Chunked) {
        if (!put_literal(p, end, "Transfer-Encoding: chunked\r\n")) {
            return 0;
        }
    }

    // RFC 9110 §7.8 and §10.1.4: Upgrade and TE are sent with their Connection options.
    std::size_t upgrade_bytes = 0;  // of the forwarded Upgrade value
    for_each_forwarded_protocol(r.upgrade, [&upgrade_bytes](std::string_view protocol) {
        upgrade_bytes += (upgrade_bytes == 0 ? 0 : 2) + protocol.size();
    });
    const bool upgrade = upgrade_bytes != 0;
    if (upgrade || r.te_trailers) {
        const std::string_view line = !upgrade        ? "Connection: te\r\n"
                                      : r.te_trailers ? "Connection: upgrade, te\r\n"
                                                      : "Connection: upgrade\r\n";
        if (!put_literal(p, end, line)) {
            return 0;
        }
    }
    if (upgrade) {
        if (static_cast<std::size_t>(end - p) < upgrade_bytes + 11) {
            return 0;
        }
        std::memcpy(p, "Upgrade: ", 9);
        p += 9;
        const char* const value = p;
        for_each_forwarded_protocol(r.upgrade, [&p, value](std::string_view protocol) {
            if (p != value) {
                std::memcpy(p, ", ", 2);
                p += 2;
            }
            copy_bytes(p, protocol);
            p += protocol.size();
        });
        std::memcpy(p, "\r\n", 2);
        p += 2;
    }
    if (r.te_trailers && !put_literal(p, end, "TE: trailers\r\n")) {
        return 0;
    }
    if (!put_literal(p, end, "\r\n")) {
        return 0;
    }
    return static_cast<std::size_t>(p - out.data());
}

std::size_t write_proxied_response_head(std::span<char> out, int status, std::string_view reason,
                                        Headers fields, Framing framing, std::uint64_t length,
                                        bool keep_alive, Version client_version,
                                        std::string_view via, std::string_view date) noexcept {
    if (status < 100 || status > 999) {
        return 0;
    }
    const bool informational = status < 200;
    // RFC 9110 §15.2: no 1xx to an HTTP/1.0 client; RFC 9112 §6.1: no chunked either.
    if (client_version == Version::Http10 && (informational || framing == Framing::Chunked)) {
        return 0;
    }
    char* p = out.data();
    char* const end = p + out.size();

    // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112 §4), with
    // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ).
    if (reason.empty() || detail::skip_field_value(reason.data(), reason.data() + reason.size()) !=
                              reason.data() + reason.size()) {
        reason = reason_phrase(status);
    }
    if (static_cast<std::size_t>(end - p) < reason.size() + 15) {
        return 0;
    }
    std::memcpy(p, "HTTP/1.1 ", 9);
    detail::write_decimal(p + 9, static_cast<std::uint64_t>(status), 3);
    p[12] = ' ';
    copy_bytes(p + 13, reason);
    p += 13 + reason.size();
    std::memcpy(p, "\r\n", 2);
    p += 2;

    // RFC 9110 §8.6: a HEAD or 304 response may state the length a GET would have; a 1xx or
    // 204 must not have a Content-Length at all. Otherwise the framing below replaces it.
    const bool keep_length = framing == Framing::None && !informational && status != 204;
    const ConnectionOptions options(fields);
    bool have_date = false;
    bool have_upgrade = false;
    std::string_view upgrade;
    for (const Header& h : fields) {
        const Kind kind = classify(h.name);
        if (kind == Kind::Upgrade && !have_upgrade) {
            have_upgrade = true;
            upgrade = h.value;
        }
        if (is_hop_by_hop_kind(kind) || (kind == Kind::ContentLength && !keep_length) ||
            options.lists(h.name)) {
            continue;
        }
        have_date |= kind == Kind::Date;
        if (!put_field(p, end, h.name, h.value)) {
            return 0;
        }
    }
    if (!have_date && !date.empty() && !put_field(p, end, "Date", date)) {
        return 0;
    }
    if (!via.empty() && !put_field(p, end, "Via", via)) {
        return 0;
    }

    if (status == 101) {
        // RFC 9110 §15.2.2: the Upgrade field names the protocol switched to.
        if (!have_upgrade || names_h2c(upgrade) ||
            !put_literal(p, end, "Connection: upgrade\r\n") ||
            !put_field(p, end, "Upgrade", upgrade)) {
            return 0;
        }
    } else if (!informational) {
        bool ok = true;
        switch (framing) {
            case Framing::None:
                break;
            case Framing::Length:
                ok = put_number(p, end, "Content-Length: ", length);
                break;
            case Framing::Chunked:
                ok = put_literal(p, end, "Transfer-Encoding: chunked\r\n");
                break;
            case Framing::UntilClose:
                // RFC 9112 §6.3 item 8: only the close ends such a body.
                keep_alive = false;
                break;
        }
        if (!ok) {
            return 0;
        }
        if (!keep_alive) {
            ok = put_literal(p, end, "Connection: close\r\n");
        } else if (client_version == Version::Http10) {
            // RFC 9112 §9.3: HTTP/1.0 persists only when both sides say keep-alive.
            ok = put_literal(p, end, "Connection: keep-alive\r\n");
        }
        if (!ok) {
            return 0;
        }
    }
    if (!put_literal(p, end, "\r\n")) {
        return 0;
    }
    return static_cast<std::size_t>(p - out.data());
}

}  // namespace blitz::http1

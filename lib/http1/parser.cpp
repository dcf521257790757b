#include "http1/parser.hpp"

#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/hex.hpp"
#include "http/uri.hpp"
#include "http1/wire.hpp"

namespace blitz::http1 {

namespace {

using detail::for_each_element;
using detail::is_tchar;
using detail::LengthField;
using detail::name_is;
using detail::note_connection_options;
using detail::note_content_length;
using detail::skip_tchar;
#if defined(__SSE2__)
using detail::bytes_below_0x21;
using detail::bytes_equal;
using detail::bytes_in;
using detail::scan16;
#endif

constexpr unsigned kMaxLeadingEmptyLines = 8;

// Request-target bytes (RFC 9112 §3.2, RFC 3986 §3.3-§3.4, widened to what browsers send; see
// "Request-target characters" in parser.hpp). kTargetPlain: bytes valid anywhere in the target
// that need no attention during the scan. The others are noted for the checks made once the
// whole target is known; a byte of no class is 400 at once.
constexpr std::uint8_t kTargetPlain = 1;
constexpr std::uint8_t kTargetPercent = 2;
constexpr std::uint8_t kTargetDot = 4;
constexpr std::uint8_t kTargetQuestion = 8;
constexpr std::uint8_t kTargetQueryOnly = 16;  // '"', '<', '>', '\\': valid only in the query

constexpr std::array<std::uint8_t, 256> kTargetClass = [] {
    std::array<std::uint8_t, 256> t{};
    for (unsigned char c : std::string_view("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                            "0123456789-_~!$&'()*+,;=:@/|^[]{}`")) {
        t[c] = kTargetPlain;
    }
    t['%'] = kTargetPercent;
    t['.'] = kTargetDot;
    t['?'] = kTargetQuestion;
    t['"'] = t['<'] = t['>'] = t['\\'] = kTargetQueryOnly;
    return t;
}();

ParseResult error(int status, const char* reason) noexcept {
    return ParseResult{ParseStatus::Error, 0, status, reason};
}

// The target scanner; like the field scanners in wire.hpp it tests 16 bytes a step where SSE2
// exists, and a unit test checks every byte value in both paths.
const char* skip_target_plain(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const auto bad = [](__m128i v) {
        // Not kTargetPlain: below 0x21, "\"#", '%', '.', '<', ">?", '\\' and DEL.
        __m128i b = _mm_or_si128(bytes_below_0x21(v), bytes_in(v, '"', '#'));
        b = _mm_or_si128(b, bytes_equal(v, '%'));
        b = _mm_or_si128(b, bytes_equal(v, '.'));
        b = _mm_or_si128(b, bytes_equal(v, '<'));
        b = _mm_or_si128(b, bytes_in(v, '>', '?'));
        b = _mm_or_si128(b, bytes_equal(v, '\\'));
        return _mm_or_si128(b, bytes_equal(v, 0x7f));
    };
    if (const char* hit = scan16(p, end, bad)) {
        return hit;
    }
#endif
    while (p != end && kTargetClass[static_cast<unsigned char>(*p)] == kTargetPlain) {
        ++p;
    }
    return p;
}

struct Framing {
    unsigned host_count = 0;
    std::string_view host;
    bool have_length = false;
    std::uint64_t length = 0;
    bool have_te = false;
    bool te_chunked_last = false;  // the last coding seen so far is chunked
    bool te_other = false;         // a coding other than chunked was named
    bool conn_close = false;
    bool conn_keep_alive = false;
    bool expect_continue = false;
};

// Host (RFC 9112 §3.2), Content-Length, Transfer-Encoding (§6), Connection (§9.3), Expect
// (RFC 9110 §10.1.1). Returns 0 or the error status, with `reason` set.
int note_field(std::string_view name, std::string_view value, Version version, Framing& f,
               const char*& reason) noexcept {
    switch (name.size()) {
        case 4:
            if (name_is(name, "host")) {
                if (++f.host_count > 1) {
                    reason = "more than one Host field";
                    return 400;
                }
                if (!http::valid_authority(value)) {
                    reason = "invalid Host";
                    return 400;
                }
                f.host = value;
            }
            return 0;
        case 6:
            if (name_is(name, "expect")) {
                const bool ok = for_each_element(value, [&](std::string_view e) {
                    return e.size() == 12 && name_is(e, "100-continue");
                });
                if (!ok) {
                    reason = "unsupported expectation";
                    return 417;
                }
                f.expect_continue = true;
            }
            return 0;
        case 10:
            if (name_is(name, "connection")) {
                note_connection_options(value, f.conn_close, f.conn_keep_alive);
            }
            return 0;
        case 14:
            if (name_is(name, "content-length")) {
                switch (note_content_length(value, f.have_length, f.length)) {
                    case LengthField::Ok:
                        break;
                    case LengthField::Invalid:
                        reason = "invalid Content-Length";
                        return 400;
                    case LengthField::Conflicting:
                        reason = "conflicting Content-Length";
                        return 400;
                }
            }
            return 0;
        case 17:
            if (name_is(name, "transfer-encoding")) {
                // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
                if (version == Version::Http10) {
                    reason = "Transfer-Encoding in HTTP/1.0";
                    return 400;
                }
                f.have_te = true;
                int status = 0;
                for_each_element(value, [&](std::string_view e) {
                    if (e.empty()) {
                        reason = "empty transfer coding";
                        status = 400;
                        return false;
                    }
                    // RFC 9112 §6.1: chunked is applied once and last; whatever follows it
                    // makes the body length undeterminable (§6.3).
                    const bool chunked = e.size() == 7 && name_is(e, "chunked");
                    if (f.te_chunked_last) {
                        reason = chunked ? "chunked applied twice"
                                         : "chunked is not the final transfer coding";
                        status = 400;
                        return false;
                    }
                    if (chunked) {
                        f.te_chunked_last = true;
                    } else {
                        for (char c : e.substr(0, e.find(';'))) {
                            if (!is_tchar(c)) {
                                reason = "invalid transfer coding";
                                status = 400;
                                return false;
                            }
                        }
                        f.te_other = true;
                    }
                    return true;
                });
                return status;
            }
            return 0;
        default:
            return 0;
    }
}

std::uint32_t authority_port(std::string_view authority, std::uint32_t default_port) noexcept {
    const std::string_view host = http::authority_host(authority);
    if (host.size() == authority.size()) {
        return default_port;
    }
    std::uint32_t port = 0;
    for (char c : authority.substr(host.size() + 1)) {
        port = port * 10 + static_cast<std::uint32_t>(c - '0');
    }
    return port;
}

// Both authorities are valid. Hosts compare case-insensitively (RFC 3986 §6.2.2.1) and a
// missing port is the scheme's default (§6.2.3).
bool same_authority(std::string_view a, std::string_view b, std::uint32_t default_port) noexcept {
    return iequals(http::authority_host(a), http::authority_host(b)) &&
           authority_port(a, default_port) == authority_port(b, default_port);
}

bool valid_escapes(std::string_view s) noexcept {
    for (std::size_t i = s.find('%'); i != std::string_view::npos; i = s.find('%', i + 1)) {
        if (s.size() - i < 3 || blitz::detail::hex_value(s[i + 1]) < 0 ||
            blitz::detail::hex_value(s[i + 2]) < 0) {
            return false;
        }
    }
    return true;
}

// Splits the target into its form (RFC 9112 §3.2) and normalises the path. Called only for a
// complete, otherwise valid head, since normalisation rewrites the buffer.
ParseResult finish_target(char* target, std::size_t target_len, std::uint8_t seen, const Framing& f,
                          RequestHead& out) noexcept {
    const std::string_view t(target, target_len);
    std::size_t path_begin = 0;
    const bool connect = out.method == Method::Connect;
    out.scheme = "http";
    if (t[0] == '/') {
        // origin-form
        if (connect) {
            return error(400, "CONNECT needs an authority-form target");
        }
        out.authority = f.host;
    } else if (t == "*") {
        // asterisk-form, RFC 9112 §3.2.4: OPTIONS only.
        if (out.method != Method::Options) {
            return error(400, "asterisk-form target on a method other than OPTIONS");
        }
        out.authority = f.host;
        out.path = t;
        out.raw_target = t;
        return ParseResult{ParseStatus::Done};
    } else if (connect) {
        // authority-form, RFC 9112 §3.2.3: host and port, nothing else.
        if (!http::valid_authority(t) || http::authority_host(t).size() == t.size()) {
            return error(400, "invalid CONNECT target");
        }
        out.authority = t;
        out.raw_target = t;
        return ParseResult{ParseStatus::Done};
    } else {
        // absolute-form, RFC 9112 §3.2.2; only the schemes a gateway serves.
        std::size_t scheme_len = 0;
        if (t.size() > 7 && iequals(t.substr(0, 7), "http://")) {
            scheme_len = 7;
        } else if (t.size() > 8 && iequals(t.substr(0, 8), "https://")) {
            scheme_len = 8;
            out.scheme = "https";
        } else {
            return error(400, "invalid request-target");
        }
        const std::size_t auth_end = t.find_first_of("/?", scheme_len);
        const std::string_view authority = t.substr(
            scheme_len, auth_end == std::string_view::npos ? auth_end : auth_end - scheme_len);
        if (!http::valid_authority(authority)) {
            return error(400, "invalid authority in request-target");
        }
        // RFC 9112 §3.2.2 tells a server to ignore Host here; Blitz insists that they agree so
        // that no component (cache, log, upstream) can pick the other one.
        if (f.host_count > 0 && !same_authority(authority, f.host, scheme_len == 8 ? 443 : 80)) {
            return error(400, "Host does not match the request-target authority");
        }
        out.authority = authority;
        path_begin = auth_end == std::string_view::npos ? t.size() : auth_end;
    }

    std::size_t path_end = t.find('?', path_begin);
    if (path_end == std::string_view::npos) {
        path_end = t.size();
    }
    std::string_view path = t.substr(path_begin, path_end - path_begin);
    std::string_view query = path_end < t.size() ? t.substr(path_end + 1) : std::string_view{};
    if ((seen & kTargetPercent) && !valid_escapes(query)) {
        return error(400, "invalid percent-encoding in query");
    }
    std::size_t target_end = t.size();
    if (path.empty()) {
        // RFC 9112 §3.2.4: an absolute-form OPTIONS without a path asks about the server.
        path = out.method == Method::Options ? "*" : "/";
    } else if (seen & (kTargetPercent | kTargetDot | kTargetQueryOnly)) {
        // normalize_path also rejects the query-only bytes in the path.
        const long n = http::normalize_path({target + path_begin, path.size()});
        if (n < 0) {
            return error(400, "invalid path");
        }
        const auto len = static_cast<std::size_t>(n);
        if (len != path.size()) {
            // Move "?query" up behind the shorter path so raw_target stays one valid target.
            char* const new_end = target + path_begin + len;
            if (path_end < t.size()) {
                std::memmove(new_end, target + path_end, t.size() - path_end);
                query = std::string_view(new_end + 1, query.size());
            }
            target_end -= path.size() - len;
        }
        path = std::string_view(target + path_begin, len);
    }
    out.path = path;
    out.query = query;
    out.raw_target = std::string_view(target, target_end);
    return ParseResult{ParseStatus::Done};
}

}  // namespace

ParseResult parse_request_head(std::span<char> buf, std::span<Header> header_storage,
                               const Limits& limits, RequestHead& out) noexcept {
    char* const begin = buf.data();
    // Never look past the head limit: a head that is not complete within it is 431 as soon as
    // more bytes than the limit are buffered.
    const bool over_limit = buf.size() > limits.max_head_bytes;
    const char* const end = begin + (over_limit ? limits.max_head_bytes : buf.size());
    const auto incomplete = [over_limit] {
        return over_limit ? error(431, "request head too large") : ParseResult{};
    };
    const char* p = begin;

    // RFC 9112 §2.2: ignore at least one empty line before the request line.
    for (unsigned empty_lines = 0; p != end && *p == '\r'; p += 2) {
        if (end - p < 2) {
            return incomplete();
        }
        if (p[1] != '\n') {
            return error(400, "bare CR");
        }
        if (++empty_lines > kMaxLeadingEmptyLines) {
            return error(400, "too many empty lines before the request line");
        }
    }

    // request-line = method SP request-target SP HTTP-version CRLF (RFC 9112 §3)
    const char* const method = p;
    p = skip_tchar(p, end);
    if (p == end) {
        return incomplete();
    }
    if (*p != ' ' || p == method) {
        return error(400, "invalid method");
    }
    out = RequestHead{};
    out.method_name = std::string_view(method, static_cast<std::size_t>(p - method));
    out.method = method_from_token(out.method_name);
    ++p;

    char* const target = begin + (p - begin);  // the one part rewritten (on Done)
    const bool target_capped = static_cast<std::size_t>(end - p) > limits.max_path_bytes;
    const char* const scan_end = target_capped ? p + limits.max_path_bytes + 1 : end;
    std::uint8_t seen = 0;
    for (;;) {
        p = skip_target_plain(p, scan_end);
        if (p == scan_end || *p == ' ') {
            break;
        }
        const std::uint8_t cls = kTargetClass[static_cast<unsigned char>(*p)];
        if (cls == 0) {
            return error(400, "invalid character in request-target");
        }
        seen |= cls;
        ++p;
    }
    if (p == scan_end) {
        return target_capped ? error(414, "request-target too long") : incomplete();
    }
    const auto target_len = static_cast<std::size_t>(p - target);
    if (target_len == 0) {
        return error(400, "empty request-target");
    }
    ++p;

    // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (RFC 9112 §2.3).
    const auto have = static_cast<std::size_t>(end - p);
    if (have < 10) {
        // Version digits and CRLF are not all there yet; check what is.
        for (std::size_t i = 0; i < have; ++i) {
            const char c = p[i];
            const bool ok = i < 5    ? c == "HTTP/"[i]
                            : i == 6 ? c == '.'
                            : i == 8 ? c == '\r'
                                     : (c >= '0' && c <= '9');
            if (!ok) {
                return error(400,
                             i >= 8 ? "request line not ended by CRLF" : "invalid HTTP version");
            }
        }
        return incomplete();
    }
    if (std::memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' || p[6] != '.' || p[7] < '0' ||
        p[7] > '9') {
        return error(400, "invalid HTTP version");
    }
    if (p[8] != '\r' || p[9] != '\n') {
        return error(400, "request line not ended by CRLF");
    }
    // RFC 9110 §2.5: a higher minor version is handled as the highest one we implement; a
    // different major version is not HTTP/1.x at all.
    if (p[5] != '1') {
        return error(505, "unsupported HTTP version");
    }
    out.version = p[7] == '0' ? Version::Http10 : Version::Http11;
    p += 10;

    // RFC 9112 §5.2: obs-fold is rejected in requests (and so is whitespace before the first
    // field line, §2.2); the other field-line rules are in detail::parse_field_lines.
    const std::size_t max_fields =
        header_storage.size() < limits.max_headers ? header_storage.size() : limits.max_headers;
    std::size_t count = 0;
    Framing framing;
    const detail::FieldLinesResult fields = detail::parse_field_lines(
        p, end, header_storage, max_fields, count,
        [&](std::string_view name, std::string_view value, const char*& reason) {
            return note_field(name, value, out.version, framing, reason);
        });
    switch (fields.outcome) {
        case detail::FieldLines::Done:
            break;
        case detail::FieldLines::Incomplete:
            return incomplete();
        case detail::FieldLines::Malformed:
            return error(400, fields.reason);
        case detail::FieldLines::TooMany:
            return error(431, fields.reason);
        case detail::FieldLines::Rejected:
            return error(fields.status, fields.reason);
    }

    // RFC 9112 §3.2: an HTTP/1.1 request without Host is 400.
    if (out.version == Version::Http11 && framing.host_count == 0) {
        return error(400, "missing Host");
    }
    if (framing.have_te) {
        // RFC 9112 §6.3: Content-Length beside Transfer-Encoding may be a smuggling attempt.
        if (framing.have_length) {
            return error(400, "both Content-Length and Transfer-Encoding");
        }
        if (!framing.te_chunked_last) {
            return error(400, "chunked is not the final transfer coding");
        }
        // RFC 9112 §6.1: a transfer coding we do not decode is 501.
        if (framing.te_other) {
            return error(501, "unsupported transfer coding");
        }
        out.body = BodyKind::Chunked;
    } else if (framing.have_length) {
        out.body = BodyKind::Length;
        out.content_length = framing.length;
    }
    // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    out.keep_alive =
        !framing.conn_close && (out.version == Version::Http11 || framing.conn_keep_alive);
    out.expect_continue =
        framing.expect_continue && out.version == Version::Http11 && out.body != BodyKind::None;
    out.headers = header_storage.first(count);

    ParseResult result = finish_target(target, target_len, seen, framing, out);
    if (result.status == ParseStatus::Done) {
        result.consumed = static_cast<std::size_t>(p - begin);
    }
    return result;
}

}  // namespace blitz::http1

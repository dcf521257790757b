#include "http1/proxy.hpp"

#include <cstring>

#include "http1/wire.hpp"

namespace blitz::http1 {

namespace {

using detail::for_each_element;
using detail::is_tchar;
using detail::name_is;

// RFC 9112 §6.3: a proxy answers an invalid upstream response with 502.
constexpr int kBadGateway = 502;

ParseResult error(const char* reason) noexcept {
    return ParseResult{ParseStatus::Error, 0, kBadGateway, reason};
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// What the framing-relevant fields said.
struct ResponseFields {
    bool have_length = false;
    std::uint64_t length = 0;
    bool have_te = false;
    unsigned chunked_count = 0;  // times `chunked` was named
    bool te_other = false;       // a coding other than chunked was named
    bool conn_close = false;
    bool conn_keep_alive = false;
    bool have_upgrade = false;
};

// Content-Length, Transfer-Encoding (RFC 9112 §6), Connection (§9.3), Upgrade (RFC 9110 §7.8).
// Returns 0 or kBadGateway with `reason` set.
int note_field(std::string_view name, std::string_view value, ResponseFields& f,
               const char*& reason) noexcept {
    switch (name.size()) {
        case 7:
            f.have_upgrade |= name_is(name, "upgrade");
            return 0;
        case 10:
            if (name_is(name, "connection")) {
                detail::note_connection_options(value, f.conn_close, f.conn_keep_alive);
            }
            return 0;
        case 14:
            if (name_is(name, "content-length")) {
                switch (detail::note_content_length(value, f.have_length, f.length)) {
                    case detail::LengthField::Ok:
                        break;
                    case detail::LengthField::Invalid:
                        reason = "invalid Content-Length";
                        return kBadGateway;
                    case detail::LengthField::Conflicting:
                        reason = "conflicting Content-Length";
                        return kBadGateway;
                }
            }
            return 0;
        case 17:
            if (name_is(name, "transfer-encoding")) {
                f.have_te = true;
                const bool ok = for_each_element(value, [&](std::string_view e) {
                    if (e.size() == 7 && name_is(e, "chunked")) {
                        ++f.chunked_count;
                    } else {
                        f.te_other = true;
                    }
                    return !e.empty();
                });
                if (!ok) {
                    reason = "empty transfer coding";
                    return kBadGateway;
                }
            }
            return 0;
        default:
            return 0;
    }
}

}  // namespace

ParseResult parse_response_head(std::span<const char> buf, std::span<Header> header_storage,
                                const ResponseLimits& limits, Method request_method,
                                ResponseHead& out) noexcept {
    const char* const begin = buf.data();
    // Never look past the head limit: a head not complete within it is an error as soon as
    // more bytes than the limit are buffered.
    const bool over_limit = buf.size() > limits.max_head_bytes;
    const char* const end = begin + (over_limit ? limits.max_head_bytes : buf.size());
    const auto incomplete = [over_limit] {
        return over_limit ? error("response head too large") : ParseResult{};
    };
    const char* p = begin;

    // status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF (RFC 9112 §4), with
    // HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (§2.3). The first 12 bytes have a
    // fixed shape; check what is there so that garbage fails at once, not at the size limit.
    constexpr std::size_t kFixed = 12;  // "HTTP/1.1 200"
    const auto have = static_cast<std::size_t>(end - p);
    const bool common = have >= kFixed && std::memcmp(p, "HTTP/1.", 7) == 0 && is_digit(p[7]) &&
                        p[8] == ' ' && is_digit(p[9]) && is_digit(p[10]) && is_digit(p[11]);
    if (!common) {
        // Find the byte that is wrong, or learn that more are needed.
        for (std::size_t i = 0; i < kFixed && i < have; ++i) {
            const char c = p[i];
            const bool ok = i < 5    ? c == "HTTP/"[i]
                            : i == 6 ? c == '.'
                            : i == 8 ? c == ' '
                                     : is_digit(c);
            if (!ok) {
                return error(i < 8 ? "invalid HTTP version" : "invalid status line");
            }
        }
        if (have < kFixed) {
            return incomplete();
        }
    }
    // RFC 9110 §2.5: a higher minor version is handled as the highest one we implement; a
    // different major version is not HTTP/1.x at all.
    if (p[5] != '1') {
        return error("unsupported HTTP version");
    }
    const int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    // RFC 9110 §15: values outside 100..599 are invalid.
    if (status < 100 || status > 599) {
        return error("invalid status code");
    }
    out = ResponseHead{};
    out.version = p[7] == '0' ? Version::Http10 : Version::Http11;
    out.status = status;
    p += kFixed;
    if (p == end) {
        return incomplete();
    }
    if (*p == ' ') {
        // reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
        const char* const reason = ++p;
        p = detail::skip_field_value(p, end);
        if (p == end) {
            return incomplete();
        }
        out.reason = std::string_view(reason, static_cast<std::size_t>(p - reason));
    }
    if (*p != '\r') {
        return error(p == begin + kFixed ? "invalid status line"
                                         : "invalid character in reason phrase");
    }
    if (end - p < 2) {
        return incomplete();
    }
    if (p[1] != '\n') {
        return error("bare CR");
    }
    p += 2;

    // RFC 9112 §5.2: a proxy may answer obs-fold in a response with 502 rather than unfold
    // it; Blitz does, and holds response fields to every other request field rule too, so
    // that no downstream recipient can read a forwarded head differently.
    const std::size_t max_fields =
        header_storage.size() < limits.max_headers ? header_storage.size() : limits.max_headers;
    std::size_t count = 0;
    ResponseFields fields;
    const detail::FieldLinesResult lines = detail::parse_field_lines(
        p, end, header_storage, max_fields, count,
        [&fields](std::string_view name, std::string_view value, const char*& reason) {
            return note_field(name, value, fields, reason);
        });
    switch (lines.outcome) {
        case detail::FieldLines::Done:
            break;
        case detail::FieldLines::Incomplete:
            return incomplete();
        case detail::FieldLines::Malformed:
        case detail::FieldLines::TooMany:
        case detail::FieldLines::Rejected:
            return error(lines.reason);
    }
    out.headers = header_storage.first(count);
    out.has_content_length = fields.have_length;
    out.content_length = fields.length;

    if (status == 101 && !fields.have_upgrade) {
        return error("101 without Upgrade");
    }
    // RFC 9112 §9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with "keep-alive".
    out.keep_alive =
        !fields.conn_close && (out.version == Version::Http11 || fields.conn_keep_alive);
    // RFC 9112 §6.3, in its order (but a 204 to CONNECT is a tunnel too: RFC 9110 §9.3.6 makes
    // every 2xx one). Transfer-Encoding is checked only where it frames the body: the first two
    // cases ignore it (and a tunnel ignores Content-Length too).
    if (request_method == Method::Connect && status >= 200 && status < 300) {
        out.body = Framing::None;
        out.upgrade = true;
    } else if (request_method == Method::Head || status < 200 || status == 204 || status == 304) {
        out.body = Framing::None;
        out.upgrade = status == 101;
    } else if (fields.have_te) {
        // §6.1: Transfer-Encoding in HTTP/1.0 means faulty framing.
        if (out.version == Version::Http10) {
            return error("Transfer-Encoding in HTTP/1.0");
        }
        // §6.1: chunked is applied at most once, and last; Blitz decodes no other coding.
        if (fields.chunked_count > 1) {
            return error("chunked applied twice");
        }
        if (fields.te_other) {
            return error("unsupported transfer coding");
        }
        out.body = Framing::Chunked;
    } else if (fields.have_length) {
        out.body = Framing::Length;
    } else {
        out.body = Framing::UntilClose;
    }
    // §6.3 item 3: Transfer-Encoding beside Content-Length may be response splitting; the
    // chunked framing wins and the connection is not trusted with another request.
    if (out.upgrade || out.body == Framing::UntilClose || (fields.have_te && fields.have_length)) {
        out.keep_alive = false;
    }
    return ParseResult{ParseStatus::Done, static_cast<std::size_t>(p - begin)};
}

}  // namespace blitz::http1

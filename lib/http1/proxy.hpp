#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <blitz/http.hpp>

#include "http1/parser.hpp"

/// HTTP/1.1 for the upstream side of a proxy, sans-I/O like the rest of the codec: parsing the
/// response head an upstream sends, writing the request head sent to it, and writing the
/// response head forwarded to the client. No allocation; views in, views out.
namespace blitz::http1 {

/// Bounds on one upstream response head; exceeding one is an error (502), never a partial
/// parse. Upstream heads are allowed to be larger than request heads (Set-Cookie, CSP, Link).
///
/// Thread: value type. Lifetime: read during each parse_response_head() call.
struct ResponseLimits {
    std::uint32_t max_head_bytes = 64 * 1024;  ///< status line + fields + final CRLF
    std::uint32_t max_headers = 100;           ///< field lines
};

/// How a message body is delimited (RFC 9112 §6.3), on either side of the proxy.
///
/// None: no body at all (HEAD responses, 1xx, 204, 304, a tunnel). Length: exactly
/// `content_length` bytes. Chunked: the chunked coding (decode with BodyDecoder). UntilClose:
/// everything up to the end of the connection, which therefore cannot be reused.
enum class Framing : std::uint8_t { None, Length, Chunked, UntilClose };

/// A parsed upstream response head. Views point into the buffer given to parse_response_head().
///
/// Thread: value type. Lifetime: the views die with that buffer.
struct ResponseHead {
    Version version = Version::Http11;
    int status = 0;             ///< 100..599
    std::string_view reason;    ///< as sent (may be empty); a client should not rely on it
    std::span<Header> headers;  ///< into the caller's storage, wire order, values OWS-trimmed
    Framing body = Framing::None;
    /// The Content-Length value when `has_content_length`, also when the body is None (a HEAD
    /// or 304 response states the length the GET body would have).
    std::uint64_t content_length = 0;
    bool has_content_length = false;
    /// Whether the connection may carry another request after this response: per version and
    /// Connection tokens (RFC 9112 §9.3), and never after an UntilClose body, a response with
    /// both Transfer-Encoding and Content-Length (RFC 9112 §6.3: a smuggling sign) or a tunnel.
    bool keep_alive = true;
    /// The connection carries another protocol after this head: 101 Switching Protocols (which
    /// has an Upgrade field), or a 2xx answer to CONNECT (RFC 9112 §6.3 item 2).
    bool upgrade = false;

    /// A 1xx other than 101 (100 Continue, 103 Early Hints): a complete head that a final
    /// response follows on the same connection (RFC 9110 §15.2); parse again after `consumed`.
    bool interim() const noexcept { return status < 200 && status != 101; }
};

/// Parses one upstream response head at the start of `buf` (RFC 9112 §4-§6). `request_method`
/// is the method of the request it answers (a HEAD response has no body whatever it says).
///
/// Returns Incomplete while the head is not all there and still within limits; the caller calls
/// again from the start of the head when more bytes arrived. Never writes to `buf`. `out` is
/// meaningful only on Done; `consumed` then counts the head's bytes. Every error is
/// error_status 502 (RFC 9112 §6.3: a proxy answers an invalid upstream response with 502 and
/// closes the upstream connection) with a reason for logs.
///
/// Status line: `HTTP/1.x SP 3DIGIT SP reason CRLF`, case-sensitive, status 100..599 (RFC 9110
/// §15); a major version other than 1 is an error. A status line that ends right after the
/// code ("HTTP/1.1 200\r\n") is accepted: it is unambiguous and servers send it (nginx accepts
/// it too). Field lines are held to the request parser's rules (obs-fold,
/// whitespace before a colon, bare CR or LF, NUL and other controls are errors; RFC 9112 §5.2
/// allows a proxy to reject obs-fold in a response with 502).
///
/// Body framing (RFC 9112 §6.3), in this order:
/// - 2xx to CONNECT: None and `upgrade` (a tunnel; RFC 9110 §9.3.6);
/// - a response to HEAD, 1xx, 204 and 304: None, whatever the fields say;
/// - Transfer-Encoding: must name `chunked` once and nothing else (in one or more fields):
///   Chunked. With a Content-Length as well, the Content-Length is ignored and the connection
///   is not reused. Any other coding is an error: Blitz decodes none, and forwarding still-coded
///   bytes after dropping the hop-by-hop Transfer-Encoding would corrupt the body (nginx
///   answers 502 too). Transfer-Encoding in an HTTP/1.0 response is an error (§6.1: faulty
///   framing). The first two cases ignore Transfer-Encoding;
/// - Content-Length (a list of identical values, < 2^63): Length;
/// - otherwise UntilClose.
/// An invalid or conflicting Content-Length is an error wherever it appears. A 101 without an
/// Upgrade field is an error (RFC 9110 §15.2.2).
///
/// At most min(header_storage.size(), limits.max_headers) field lines are accepted.
///
/// Thread: any; no state. Lifetime: views into `buf`, see ResponseHead.
ParseResult parse_response_head(std::span<const char> buf, std::span<Header> header_storage,
                                const ResponseLimits& limits, Method request_method,
                                ResponseHead& out) noexcept;

/// Whether a field is hop-by-hop, so a proxy must not forward it (RFC 9110 §7.6.1): any field
/// named by a token of a Connection field in `fields` (case-insensitive; comma lists and
/// several Connection fields), and always Connection, Keep-Alive, Proxy-Connection, TE,
/// Transfer-Encoding and Upgrade (which §7.6.1 tells intermediaries to remove whether or not
/// they are listed), HTTP2-Settings (connection-specific, RFC 9113 §3.1 / RFC 7540 §3.2.1) and
/// Close (reserved so that it cannot collide with the close option, RFC 9110 §18.4).
/// Trailer, Proxy-Authorization and Proxy-Authenticate are end-to-end in RFC 9110 and are not
/// hop-by-hop here.
///
/// Thread: any. Lifetime: nothing kept.
bool is_hop_by_hop(std::string_view name, Headers fields) noexcept;

/// The protocols a client asks to switch to (its Upgrade field's value), when the request is
/// HTTP/1.1 and a Connection field lists "upgrade" (RFC 9110 §7.8: an Upgrade that is not a
/// connection option, or any Upgrade in HTTP/1.0, is ignored); "" otherwise.
///
/// Thread: any. Lifetime: a view into `fields`.
std::string_view requested_upgrade(Headers fields, Version version) noexcept;

/// Whether a TE field lists "trailers" (RFC 9110 §10.1.4): the client accepts trailer fields,
/// which gRPC needs the upstream to know.
///
/// Thread: any. Lifetime: nothing kept.
bool accepts_trailers(Headers fields) noexcept;

/// Whether a trailer field must not be passed to another hop (RFC 9110 §6.5.1: fields that
/// are evaluated before the content cannot arrive after it): connection-specific fields
/// (Connection, Keep-Alive, Proxy-Connection, TE, Transfer-Encoding, Upgrade), framing
/// (Content-Length, Trailer), routing (Host), authentication (Authorization,
/// Proxy-Authorization, WWW-Authenticate, Proxy-Authenticate, Cookie, Set-Cookie), request
/// modifiers (Expect, Max-Forwards, Range, Cache-Control, Pragma, the If-* conditionals),
/// response controls (Age, Date, Expires, Location, Retry-After, Vary), content format
/// (Content-Type, Content-Encoding, Content-Range) and pseudo-headers (a name starting with
/// ':'). Case-insensitive.
///
/// Thread: any. Lifetime: nothing kept.
bool trailer_forbidden(std::string_view name) noexcept;

/// What write_request_head() sends upstream.
///
/// Thread: value type. Lifetime: views, read during the call.
struct UpstreamRequest {
    std::string_view method;  ///< the method token as the client sent it
    std::string_view target;  ///< origin-form path and query, already rewritten
    std::string_view host;    ///< the Host value (the client's authority or a rewrite); may be ""
    /// The client's fields (after request filters). Hop-by-hop fields, Host, Content-Length and
    /// the names in `drop` are left out.
    Headers headers;
    /// More names (case-insensitive) to leave out of `headers`: the X-Forwarded-* fields when
    /// the client is not a trusted proxy, or fields that `extra` replaces.
    std::span<const std::string_view> drop;
    /// Fields written after the client's (X-Forwarded-For/-Proto/-Host, Via). Must not name
    /// Host, Content-Length or a hop-by-hop field: those come from the other members.
    Headers extra;
    BodyKind body = BodyKind::None;  ///< Length writes Content-Length, Chunked Transfer-Encoding
    std::uint64_t content_length = 0;
    /// Protocols to ask the upstream to switch to (see requested_upgrade()); `h2c` is never
    /// forwarded (its HTTP2-Settings field is hop-by-hop and always dropped too).
    std::string_view upgrade;
    /// Send "TE: trailers" (see accepts_trailers()).
    bool te_trailers = false;
};

/// Writes the request head for an upstream into `out`: `METHOD target HTTP/1.1`, `Host` first,
/// then the client's fields that may be forwarded (see UpstreamRequest::headers) in their
/// order, then `extra`, then the framing field, then `Connection` naming the options used,
/// `Upgrade` (valid protocols other than h2c; invalid elements are dropped) and `TE: trailers`.
///
/// Returns the bytes written, or 0 when `out` is too small or something would break the
/// message: a method or field name that is not a token, a target with bytes outside 0x21-0x7e
/// (or empty), a Host that is not a valid authority, a value with a control other than HTAB
/// (RFC 9110 §5.5: CR or LF would inject fields, NUL truncates in C clients, strict recipients
/// refuse the others), or an `extra` field named Host, Content-Length or hop-by-hop.
///
/// Thread: any. Lifetime: nothing kept.
std::size_t write_request_head(std::span<char> out, const UpstreamRequest& request) noexcept;

/// Writes the head of a proxied response for the client into `out`: `HTTP/1.1 status reason`
/// (`reason` when it is a valid reason-phrase and not empty, else reason_phrase(status)), the
/// upstream's `fields` except hop-by-hop ones (in order), `Date: date` when `fields` has no Date
/// and `date` is not empty (RFC 9110 §6.6.1: a proxy adds the Date it received the response
/// at), `Via: via` when `via` is not empty (e.g. "1.1 blitz"; RFC 9110 §7.6.3), then framing
/// and connection fields:
/// - Length: `Content-Length: length`; Chunked: `Transfer-Encoding: chunked` (HTTP/1.1 clients
///   only); UntilClose: neither, and `Connection: close`; any Content-Length in `fields` is
///   dropped.
/// - None (responses to HEAD, 304, 204, 1xx): the upstream's Content-Length is kept as is on a
///   final status other than 204 (RFC 9110 §8.6 lets a HEAD or 304 response state the length a
///   GET would have) and dropped on 204 and 1xx (a server must not send it there).
/// - `Connection: close` when !keep_alive; `Connection: keep-alive` to a kept-alive HTTP/1.0
///   client (RFC 9112 §9.3).
/// - 101: `Connection: upgrade` and the Upgrade field of `fields` instead (keep_alive and
///   framing are ignored); other 1xx get no framing or connection fields.
///
/// Returns the bytes written, or 0 when `out` is too small, the status is not in 100..999, a
/// name is not a token or a value holds a control other than HTAB (including `via` and `date`),
/// a 101 has no Upgrade field or names h2c, or the combination is impossible for the client
/// (1xx or Chunked to HTTP/1.0).
///
/// Thread: any. Lifetime: nothing kept.
std::size_t write_proxied_response_head(std::span<char> out, int status, std::string_view reason,
                                        Headers fields, Framing framing, std::uint64_t length,
                                        bool keep_alive, Version client_version,
                                        std::string_view via, std::string_view date) noexcept;

}  // namespace blitz::http1

#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <blitz/http.hpp>

/// HTTP/1.1 request parsing (RFC 9112), sans-I/O: bytes in, views out. No allocation.
namespace blitz::http1 {

/// Bounds on one request head; exceeding one is an error, never a partial parse.
///
/// Thread: value type. Lifetime: read during each parse_request_head() call.
struct Limits {
    std::uint32_t max_head_bytes = 16 * 1024;  ///< request line + fields + final CRLF (431)
    std::uint32_t max_headers = 100;           ///< field lines (431)
    std::uint32_t max_path_bytes = 8 * 1024;   ///< the whole request-target, query included (414)
};

/// How the request body is framed (RFC 9112 §6.3): none, Content-Length, or chunked.
enum class BodyKind : std::uint8_t { None, Length, Chunked };

/// A parsed request head. Views point into the buffer given to parse_request_head(), except
/// `scheme` (a static "http" or "https") and a path the target left empty ("/" or, for
/// OPTIONS, "*", also static).
///
/// Thread: value type. Lifetime: the views die with the receive buffer; whatever must outlive
/// it is copied into the exchange's arena.
struct RequestHead {
    Method method = Method::Get;
    std::string_view method_name;
    Version version = Version::Http11;
    /// The request-target. When normalisation changed nothing (the common case) these are the
    /// bytes as sent. Otherwise the normalised path was written over the sent path and the
    /// query moved up behind it, so `raw_target` is the sent target with its path normalised
    /// (what a proxy should forward: upstreams see the path the router matched), and it is
    /// shorter than the bytes the client sent.
    std::string_view raw_target;
    std::string_view scheme;     ///< "http" unless absolute-form said "https"
    std::string_view authority;  ///< absolute-form authority, else the Host value ("" if none)
    /// Normalised (see http::normalize_path), without query; "*" for asterisk-form, "" for
    /// CONNECT's authority-form.
    std::string_view path;
    std::string_view query;     ///< after '?', without it; empty if none
    std::span<Header> headers;  ///< into the caller's storage, wire order, values OWS-trimmed
    BodyKind body = BodyKind::None;
    std::uint64_t content_length = 0;  ///< valid when body == Length (0 is a Length body too)
    bool keep_alive = true;            ///< per version and Connection tokens
    /// `Expect: 100-continue` on an HTTP/1.1 request that has a body (RFC 9110 §10.1.1: a
    /// server ignores it on HTTP/1.0 and it means nothing without content).
    bool expect_continue = false;
};

/// Done: a whole head was parsed. Incomplete: more bytes are needed. Error: answer
/// ParseResult::error_status and close.
enum class ParseStatus : std::uint8_t { Done, Incomplete, Error };

/// The outcome of one parse_request_head() call.
///
/// Thread: value type. Lifetime: `reason` is a static string.
struct ParseResult {
    ParseStatus status = ParseStatus::Incomplete;
    std::size_t consumed = 0;  ///< bytes of the head including the final CRLF (Done)
    int error_status = 0;      ///< 400, 414, 417, 431, 501, 505 (Error); connection must close
    const char* reason = "";   ///< short static text for logs and the error body
};

/// Parses one request head at the start of `buf` (RFC 9112 §2-§7, strict: bare LF, bare CR,
/// obs-fold, whitespace before a colon, invalid tokens or targets are 400).
///
/// Returns Incomplete while the head is not all there and still within limits; the caller
/// calls again from the start of the head when more bytes arrived (an Incomplete call never
/// writes to `buf`). Up to 8 empty lines before the request line are skipped (RFC 9112 §2.2)
/// and counted in `consumed`. `out` is meaningful only on Done.
///
/// Request-target characters (RFC 9112 §3.2, RFC 3986 §3.3-§3.4, widened to what clients send
/// unencoded, as nginx and Envoy accept): the path holds pchar and `/` plus `|` `[` `]` `^`
/// (browsers leave them unencoded, WHATWG URL) and `{` `}` backtick, as literal bytes (never
/// decoded, never separators; see http::normalize_path); the query holds any visible ASCII byte
/// (0x21-0x7E) but `#` (browsers send `{ } | ^ [ ] \` and backtick there raw). 400: controls,
/// space, DEL and bytes >= 0x80 anywhere (clients percent-encode them), `#` anywhere, `"` `<`
/// `>` and `\` in the path (a raw backslash because some backends treat it as a separator), and
/// a malformed escape in path or query. An absolute-form authority follows
/// http::valid_authority (brackets only around an IP-literal).
///
/// On Done the path has been normalised in place (percent-decoding of unreserved characters,
/// dot-segment removal; see RequestHead::raw_target for what this does to the sent bytes),
/// so a head is parsed to Done once: parsing the same bytes again is not supported.
///
/// Framing (RFC 9112 §6): Transfer-Encoding must end in `chunked` and name it once (else
/// 400), may name no other coding (501: Blitz decodes none), and is 400 with Content-Length
/// or on HTTP/1.0. Content-Length is a comma list of identical decimal values (RFC 9110 §8.6
/// lets a recipient accept repeated identical values; any difference, sign, blank inside,
/// empty element or value >= 2^63 is 400).
///
/// At most min(header_storage.size(), limits.max_headers) field lines are accepted (431).
///
/// Thread: any; no state. Lifetime: views into `buf`, see RequestHead.
ParseResult parse_request_head(std::span<char> buf, std::span<Header> header_storage,
                               const Limits& limits, RequestHead& out) noexcept;

/// Decodes a request body framed by Content-Length or chunked coding, without copying: data
/// comes out as views into the input.
///
/// Chunk extensions are skipped (the size line is bounded to kMaxChunkLineBytes, bare CR or
/// LF and other controls in it are 400). Trailer fields are validated as field lines and handed
/// out raw in Step::trailer (split them with parse_trailer_fields()); the trailer section is
/// bounded to kMaxTrailerBytes (431).
///
/// Thread: owned by one connection. Lifetime: reset for each request.
class BodyDecoder {
 public:
    static constexpr std::uint32_t kMaxChunkLineBytes = 4096;
    static constexpr std::uint32_t kMaxTrailerBytes = 8192;

    /// What one decode() call found.
    struct Step {
        std::size_t consumed = 0;    ///< input bytes used (framing and data)
        std::span<const char> data;  ///< body bytes found (a view into the input)
        bool done = false;           ///< the body (and any trailers) ended
        int error_status = 0;        ///< 400 on malformed framing, 431 on oversized trailers; close
        const char* reason = "";
        /// Trailer-section bytes validated in this call (field lines and the final CRLF), a view
        /// into the input. A section split over inputs comes in several Steps: callers that
        /// pass trailers on concatenate them (at most kMaxTrailerBytes in all).
        std::span<const char> trailer;
    };
    /// Starts a body of exactly `n` bytes (done at once when n == 0).
    void reset_length(std::uint64_t n) noexcept;
    /// Starts a chunked body (RFC 9112 §7.1).
    void reset_chunked() noexcept;
    /// Consumes a prefix of `in`, returning at most one data span. Call again with the rest
    /// while consumed > 0 and not done. consumed == 0 without done or error happens only for
    /// empty input. After an error every call returns the same error.
    Step decode(std::span<const char> in) noexcept;
    /// Whether the body (and its trailer section) has been fully decoded.
    bool done() const noexcept;

 private:
    enum class State : std::uint8_t {
        Length,
        ChunkSize,
        ChunkSizeBws,
        ChunkExt,
        ChunkSizeLf,
        ChunkData,
        ChunkDataCr,
        ChunkDataLf,
        Trailer,
        TrailerName,
        TrailerValue,
        TrailerLf,
        Done,
        Error
    };
    Step fail(int status, const char* reason, std::size_t consumed) noexcept;

    State state_ = State::Done;
    std::uint64_t remaining_ = 0;   ///< body bytes left (Length) or in the current chunk
    std::uint32_t line_bytes_ = 0;  ///< bytes in the current size line (digits come first)
    std::uint32_t trailer_bytes_ = 0;
    bool line_empty_ = true;  ///< the trailer line being ended by CRLF had no field
    std::uint16_t error_status_ = 0;
    const char* error_reason_ = "";
};

/// Splits a trailer section BodyDecoder validated (the concatenated Step::trailer bytes) into
/// fields: names as sent, values without surrounding whitespace (RFC 9110 §5.5). Returns the
/// number of fields written to `out`, or nullopt when the section has more than out.size().
///
/// Thread: any. Lifetime: the fields view `section`.
std::optional<std::size_t> parse_trailer_fields(std::string_view section,
                                                std::span<Header> out) noexcept;

/// Writes a response head ("HTTP/1.1 200 OK\r\n" + headers + framing + "\r\n") into `out`.
/// Adds Date (the given value; none when empty), Content-Length (unless the status forbids it:
/// 1xx, 204, 304), and "Connection: close" when !keep_alive. For a HEAD response pass the
/// length the GET body would have. Returns the bytes written, or 0 when `out` is too small,
/// the status is not in 100..999, or a field would break the framing (a name that is not a
/// token, a value with CR, LF or NUL). `headers` must not contain Content-Length,
/// Transfer-Encoding or Connection.
///
/// Thread: any. Lifetime: nothing kept.
std::size_t write_response_head(std::span<char> out, int status, Headers headers,
                                std::uint64_t content_length, bool keep_alive,
                                std::string_view date) noexcept;

/// Writes the interim "HTTP/1.1 100 Continue\r\n\r\n" (RFC 9110 §15.2.1) into `out`. Returns
/// the bytes written, or 0 when `out` is too small.
///
/// Thread: any. Lifetime: nothing kept.
std::size_t write_continue(std::span<char> out) noexcept;

/// Byte classes shared by the parser, the body decoder and the writer.
namespace detail {

inline constexpr std::uint8_t kTchar = 1;       ///< RFC 9110 §5.6.2 tchar
inline constexpr std::uint8_t kFieldValue = 2;  ///< field-vchar, SP, HTAB (RFC 9110 §5.5)
inline constexpr std::uint8_t kHexDigit = 4;

inline constexpr std::array<std::uint8_t, 256> kCharClass = [] {
    std::array<std::uint8_t, 256> t{};
    for (int c = 0x21; c <= 0xff; ++c) {
        t[c] = c == 0x7f ? 0 : kFieldValue;  // VCHAR and obs-text; DEL is a control
    }
    t[' '] = t['\t'] = kFieldValue;
    for (unsigned char c : std::string_view("!#$%&'*+-.^_`|~")) {
        t[c] |= kTchar;
    }
    for (int c = '0'; c <= '9'; ++c) {
        t[c] |= kTchar | kHexDigit;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        t[c] |= kTchar;
        t[c - 'a' + 'A'] |= kTchar;
    }
    for (int c = 'a'; c <= 'f'; ++c) {
        t[c] |= kHexDigit;
        t[c - 'a' + 'A'] |= kHexDigit;
    }
    return t;
}();

inline constexpr bool is_tchar(char c) noexcept {
    return kCharClass[static_cast<unsigned char>(c)] & kTchar;
}
inline constexpr bool is_field_value(char c) noexcept {
    return kCharClass[static_cast<unsigned char>(c)] & kFieldValue;
}

#if defined(__SSE2__)
/// 0xff in each lane of `v` that holds a letter, digit or '-'. Methods and field names are
/// nearly always made of these alone, so the parser and the writer test this first (a dozen
/// instructions for 16 bytes) and run the exact tchar check only on other bytes.
inline __m128i alnum_dash_lanes(__m128i v) noexcept {
    // x in lo..lo+len-1 (within 0x00..0x7f): adding 0x80 - lo moves that range to the bottom
    // of the signed bytes, so one add and one compare test it.
    const auto in_range = [](__m128i x, char lo, int len) {
        const __m128i shifted = _mm_add_epi8(x, _mm_set1_epi8(static_cast<char>(0x80 - lo)));
        return _mm_cmplt_epi8(shifted, _mm_set1_epi8(static_cast<char>(-128 + len)));
    };
    // OR-ing 0x20 maps exactly 'A'-'Z' and 'a'-'z' onto 'a'-'z'.
    const __m128i letter = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 26);
    return _mm_or_si128(_mm_or_si128(letter, in_range(v, '0', 10)),
                        _mm_cmpeq_epi8(v, _mm_set1_epi8('-')));
}
#endif

}  // namespace detail

}  // namespace blitz::http1

#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

/// W3C Trace Context (https://www.w3.org/TR/trace-context/) identifiers and header codecs, and
/// the X-Request-Id value check. Bytes in, bytes out: nothing here does I/O or allocates.
namespace blitz::trace {

/// A 16-byte trace id (Trace Context §3.2.2.3). All-zero is invalid.
///
/// Thread: value type. Lifetime: value type.
struct TraceId {
    std::uint8_t b[16];

    /// True when every byte is zero (the invalid id).
    bool is_zero() const noexcept;
    friend bool operator==(const TraceId&, const TraceId&) = default;
};

/// An 8-byte span id, called parent-id in traceparent (Trace Context §3.2.2.4). All-zero is
/// invalid.
///
/// Thread: value type. Lifetime: value type.
struct SpanId {
    std::uint8_t b[8];

    /// True when every byte is zero (the invalid id).
    bool is_zero() const noexcept;
    friend bool operator==(const SpanId&, const SpanId&) = default;
};

/// The fields of a traceparent header. `flags` keeps all eight bits as received; only bit 0
/// (kSampledFlag) has a meaning in version 00.
///
/// Thread: value type. Lifetime: value type.
struct TraceParent {
    TraceId trace;
    SpanId parent;
    std::uint8_t flags;
};

/// trace-flags bit 0, "sampled" (Trace Context §3.2.2.5.1).
inline constexpr std::uint8_t kSampledFlag = 0x01;
/// Length of a version-00 traceparent value: "00-" 32 hex "-" 16 hex "-" 2 hex.
inline constexpr std::size_t kTraceParentSize = 55;
/// Longest tracestate value accepted for forwarding (Trace Context §3.3.1.5 asks vendors to
/// propagate at least 512 characters; longer values are not forwarded at all).
inline constexpr std::size_t kMaxTraceStateBytes = 512;
/// Most list members a tracestate value may hold (Trace Context §3.3.1.1).
inline constexpr std::size_t kMaxTraceStateMembers = 32;
/// Longest X-Request-Id value propagated.
inline constexpr std::size_t kMaxRequestIdBytes = 128;

/// Parses a traceparent header value by the processing model of Trace Context §3.2 and §4.3:
/// version 00 must be exactly 55 characters; version ff is invalid; a higher version is parsed
/// by its first 55 characters when the 56th is '-' or absent. Hex digits must be lowercase;
/// all-zero trace or parent ids are invalid. Returns nullopt when invalid (the caller then
/// starts a new trace and ignores tracestate).
///
/// Thread: any. Lifetime: the view is read during the call only.
std::optional<TraceParent> parse_traceparent(std::string_view value) noexcept;

/// Writes the version-00 traceparent "00-<trace>-<span>-<flags>" (exactly kTraceParentSize
/// bytes, no terminator). For an outgoing request `span` is the client span's id and `flags`
/// the sampling decision (kSampledFlag or 0).
///
/// Thread: any. Lifetime: writes into `out` only.
void format_traceparent(std::span<char, kTraceParentSize> out, const TraceId& trace,
                        const SpanId& span, std::uint8_t flags) noexcept;

/// True when `value` is a tracestate list the engine may forward unchanged: at most
/// kMaxTraceStateBytes, 1..kMaxTraceStateMembers non-empty members each matching the key and
/// value grammar of Trace Context §3.3.1.3, no key twice. Empty members and optional
/// whitespace around commas are allowed (§3.3.1.2); a list with no member at all is valid per
/// the spec but returns false, since there is nothing to forward. Several tracestate header
/// fields must be joined with "," first (§3.3.1.1).
///
/// Thread: any. Lifetime: the view is read during the call only.
bool valid_tracestate(std::string_view value) noexcept;

/// True when an incoming X-Request-Id value may be propagated: 1..kMaxRequestIdBytes visible
/// ASCII characters (0x21-0x7e) other than '"' and '\\', so it is safe to log and to echo in
/// a header or a JSON/quoted log field without escaping.
///
/// Thread: any. Lifetime: the view is read during the call only.
bool valid_request_id(std::string_view value) noexcept;

/// Writes the 32 lowercase hex digits of `id` (no terminator).
///
/// Thread: any. Lifetime: writes into `out` only.
void format_hex(std::span<char, 32> out, const TraceId& id) noexcept;

/// Writes the 16 lowercase hex digits of `id` (no terminator).
///
/// Thread: any. Lifetime: writes into `out` only.
void format_hex(std::span<char, 16> out, const SpanId& id) noexcept;

}  // namespace blitz::trace

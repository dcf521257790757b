#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "trace/context.hpp"

namespace blitz::trace {

/// OTLP Span.SpanKind values (opentelemetry/proto/trace/v1/trace.proto).
enum class SpanKind : std::uint8_t { Internal = 1, Server = 2, Client = 3 };

/// OTLP Status.StatusCode values.
enum class StatusCode : std::uint8_t { Unset = 0, Ok = 1, Error = 2 };

/// OpenTelemetry HTTP semantic-convention attribute keys (semconv v1.23+, stable HTTP).
namespace attr {
inline constexpr std::string_view kHttpRequestMethod = "http.request.method";
inline constexpr std::string_view kHttpResponseStatusCode = "http.response.status_code";
inline constexpr std::string_view kHttpRoute = "http.route";
inline constexpr std::string_view kUrlPath = "url.path";
inline constexpr std::string_view kUrlQuery = "url.query";
inline constexpr std::string_view kUrlScheme = "url.scheme";
inline constexpr std::string_view kUrlFull = "url.full";
inline constexpr std::string_view kServerAddress = "server.address";
inline constexpr std::string_view kServerPort = "server.port";
inline constexpr std::string_view kClientAddress = "client.address";
inline constexpr std::string_view kClientPort = "client.port";
inline constexpr std::string_view kNetworkPeerAddress = "network.peer.address";
inline constexpr std::string_view kNetworkPeerPort = "network.peer.port";
inline constexpr std::string_view kNetworkProtocolVersion = "network.protocol.version";
inline constexpr std::string_view kUserAgentOriginal = "user_agent.original";
inline constexpr std::string_view kErrorType = "error.type";
inline constexpr std::string_view kHttpRequestResendCount = "http.request.resend_count";
}  // namespace attr

/// One span attribute: a string or a 64-bit integer value.
///
/// Thread: value type. Lifetime: `key` and `str` point into the owning Batch's text arena.
struct Attribute {
    std::string_view key;
    std::string_view str;
    std::int64_t num = 0;
    bool is_int = false;
};

/// One finished span. Strings (name, attribute keys and values) point into the text arena of
/// the Batch that holds the span, so the span outlives the request that produced it.
///
/// Thread: written by the reactor that fills its Batch, then read by the exporter thread
/// after the batch is handed over. Lifetime: owned by its Batch.
struct Span {
    /// Attributes a span can hold; later ones are not recorded.
    static constexpr std::size_t kMaxAttributes = 14;

    TraceId trace{};
    SpanId id{};
    std::optional<SpanId> parent;
    std::string_view name;
    SpanKind kind = SpanKind::Server;
    StatusCode status = StatusCode::Unset;
    std::uint64_t start_unix_ns = 0;
    std::uint64_t end_unix_ns = 0;
    std::uint8_t attribute_count = 0;
    Attribute attributes[kMaxAttributes];

    /// The recorded attributes.
    std::span<const Attribute> attrs() const noexcept { return {attributes, attribute_count}; }
};

/// The span status for an HTTP status code by OpenTelemetry's HTTP semantic conventions
/// (§Status): Error for 5xx on a server span and for 4xx and 5xx on a client span; Error
/// when there was no valid response (status outside 100..599, e.g. 0 after a connect
/// failure); Unset otherwise.
///
/// Thread: any. Lifetime: pure function.
StatusCode http_span_status(SpanKind kind, int status) noexcept;

/// A batch of finished spans with the text they refer to: a span array sized once and one
/// text arena allocated once, so adding spans never allocates. The unit handed from a reactor
/// to the Exporter; moving it keeps every string_view in its spans valid.
///
/// Thread: filled by one thread, then moved to another; never shared. Lifetime: owned by the
/// Batcher, then by the Exporter's queue, destroyed after export.
class Batch {
public:
    /// Longest attribute value or span name copied; longer ones are cut (at a UTF-8 boundary
    /// where possible).
    static constexpr std::size_t kMaxValueBytes = 1024;
    /// Text bytes one span may use at most; a batch with less left is full().
    static constexpr std::size_t kMaxSpanTextBytes = 4096;

    /// An empty batch with no storage (capacity 0; always full).
    Batch() noexcept = default;
    /// A batch for `max_spans` spans and `text_bytes` bytes of names, keys and values (0:
    /// 512 bytes per span plus one worst-case span, kMaxSpanTextBytes).
    explicit Batch(std::size_t max_spans, std::size_t text_bytes = 0);
    /// Takes `other`'s spans and storage; `other` is left empty with no storage.
    Batch(Batch&& other) noexcept;
    Batch& operator=(Batch&& other) noexcept;

    /// Appends a span with the given identity and times (status Unset, no attributes) and
    /// copies `name`. Returns nullptr when full().
    Span* add(SpanKind kind, std::string_view name, const TraceId& trace, const SpanId& id,
              std::optional<SpanId> parent, std::uint64_t start_unix_ns,
              std::uint64_t end_unix_ns) noexcept;
    /// Adds a string attribute to `span` (the last span added), copying key and value; an
    /// attribute beyond Span::kMaxAttributes or the span's text budget is not recorded.
    void set(Span& span, std::string_view key, std::string_view value) noexcept;
    /// Adds an integer attribute to `span`, copying the key.
    void set(Span& span, std::string_view key, std::int64_t value) noexcept;

    /// True when another span may not fit: the span array is full or less than
    /// kMaxSpanTextBytes of text space is left.
    bool full() const noexcept;
    bool empty() const noexcept { return spans_.empty(); }
    std::size_t size() const noexcept { return spans_.size(); }
    std::span<const Span> spans() const noexcept { return spans_; }
    /// Forgets every span, keeping the storage for reuse.
    void clear() noexcept;

private:
    std::string_view copy(std::string_view text, std::size_t limit) noexcept;

    std::vector<Span> spans_;
    std::size_t max_spans_ = 0;
    std::unique_ptr<char[]> text_;
    std::size_t text_size_ = 0;
    std::size_t text_used_ = 0;
    std::size_t span_text_start_ = 0;  // text_used_ when the last span was added
};

}  // namespace blitz::trace

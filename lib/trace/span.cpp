#include "trace/span.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

namespace blitz::trace {

namespace {

// Cuts `text` to at most `limit` bytes without splitting a UTF-8 sequence, by backing off
// over continuation bytes (10xxxxxx). Bytes that are not UTF-8 at all are left for the
// encoder to replace.
std::size_t cut_utf8(std::string_view text, std::size_t limit) noexcept {
    if (text.size() <= limit) {
        return text.size();
    }
    std::size_t n = limit;
    for (int back = 0; back < 3 && n > 0 && (static_cast<unsigned char>(text[n]) & 0xc0) == 0x80;
         ++back) {
        --n;
    }
    return n;
}

}  // namespace

StatusCode http_span_status(SpanKind kind, int status) noexcept {
    if (status < 100 || status > 599) {
        return StatusCode::Error;
    }
    // HTTP semconv §Status: a server leaves 4xx Unset (the client's fault, not the server's);
    // a client marks both 4xx and 5xx as errors.
    int error_from = kind == SpanKind::Client ? 400 : 500;
    return status >= error_from ? StatusCode::Error : StatusCode::Unset;
}

Batch::Batch(std::size_t max_spans, std::size_t text_bytes)
    : max_spans_(max_spans),
      text_size_(text_bytes != 0 ? text_bytes : max_spans * 512 + kMaxSpanTextBytes) {
    spans_.reserve(max_spans);
    text_ = std::make_unique<char[]>(text_size_);
}

Batch::Batch(Batch&& other) noexcept
    : spans_(std::move(other.spans_)),
      max_spans_(std::exchange(other.max_spans_, 0)),
      text_(std::move(other.text_)),
      text_size_(std::exchange(other.text_size_, 0)),
      text_used_(std::exchange(other.text_used_, 0)),
      span_text_start_(std::exchange(other.span_text_start_, 0)) {
    other.spans_.clear();
}

Batch& Batch::operator=(Batch&& other) noexcept {
    if (this != &other) {
        spans_ = std::move(other.spans_);
        other.spans_.clear();
        max_spans_ = std::exchange(other.max_spans_, 0);
        text_ = std::move(other.text_);
        text_size_ = std::exchange(other.text_size_, 0);
        text_used_ = std::exchange(other.text_used_, 0);
        span_text_start_ = std::exchange(other.span_text_start_, 0);
    }
    return *this;
}

bool Batch::full() const noexcept {
    return spans_.size() >= max_spans_ || text_size_ - text_used_ < kMaxSpanTextBytes;
}

void Batch::clear() noexcept {
    spans_.clear();
    text_used_ = 0;
    span_text_start_ = 0;
}

std::string_view Batch::copy(std::string_view text, std::size_t limit) noexcept {
    // The span's text budget, so that a batch that was not full() always has room for the
    // span just added (text_size_ - span_text_start_ >= kMaxSpanTextBytes).
    std::size_t budget = span_text_start_ + kMaxSpanTextBytes - text_used_;
    std::size_t n = cut_utf8(text, std::min(limit, budget));
    char* dst = text_.get() + text_used_;
    if (n != 0) {
        std::memcpy(dst, text.data(), n);
    }
    text_used_ += n;
    return {dst, n};
}

Span* Batch::add(SpanKind kind, std::string_view name, const TraceId& trace, const SpanId& id,
                 std::optional<SpanId> parent, std::uint64_t start_unix_ns,
                 std::uint64_t end_unix_ns) noexcept {
    if (full()) {
        return nullptr;
    }
    span_text_start_ = text_used_;
    Span& s = spans_.emplace_back();
    s.trace = trace;
    s.id = id;
    s.parent = parent;
    s.kind = kind;
    s.start_unix_ns = start_unix_ns;
    s.end_unix_ns = end_unix_ns;
    s.name = copy(name, kMaxValueBytes);
    return &s;
}

void Batch::set(Span& span, std::string_view key, std::string_view value) noexcept {
    if (span.attribute_count == Span::kMaxAttributes) {
        return;
    }
    std::size_t left = span_text_start_ + kMaxSpanTextBytes - text_used_;
    if (key.size() >= left) {
        return;  // the key does not fit with at least one value byte: drop, never mangle a key
    }
    Attribute& a = span.attributes[span.attribute_count++];
    a.key = copy(key, key.size());
    a.str = copy(value, kMaxValueBytes);
    a.is_int = false;
}

void Batch::set(Span& span, std::string_view key, std::int64_t value) noexcept {
    if (span.attribute_count == Span::kMaxAttributes) {
        return;
    }
    std::size_t left = span_text_start_ + kMaxSpanTextBytes - text_used_;
    if (key.size() > left) {
        return;
    }
    Attribute& a = span.attributes[span.attribute_count++];
    a.key = copy(key, key.size());
    a.num = value;
    a.is_int = true;
}

}  // namespace blitz::trace

#include "http1/parser.hpp"

#include "core/hex.hpp"

namespace blitz::http1 {

namespace {

constexpr std::uint32_t kMaxChunkSizeDigits = 16;  // 16 hex digits fill a uint64

}  // namespace

void BodyDecoder::reset_length(std::uint64_t n) noexcept {
    state_ = n == 0 ? State::Done : State::Length;
    remaining_ = n;
    error_status_ = 0;
    error_reason_ = "";
}

void BodyDecoder::reset_chunked() noexcept {
    state_ = State::ChunkSize;
    remaining_ = 0;
    line_bytes_ = 0;
    trailer_bytes_ = 0;
    line_empty_ = true;
    error_status_ = 0;
    error_reason_ = "";
}

bool BodyDecoder::done() const noexcept { return state_ == State::Done; }

BodyDecoder::Step BodyDecoder::fail(int status, const char* reason, std::size_t consumed) noexcept {
    state_ = State::Error;
    error_status_ = static_cast<std::uint16_t>(status);
    error_reason_ = reason;
    Step s;
    s.consumed = consumed;
    s.error_status = status;
    s.reason = reason;
    return s;
}

// RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section CRLF, with
// chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF.
BodyDecoder::Step BodyDecoder::decode(std::span<const char> in) noexcept {
    const char* const begin = in.data();
    const char* const end = begin + in.size();
    const char* p = begin;
    const auto used = [&] { return static_cast<std::size_t>(p - begin); };
    const char* trailer = nullptr;  // where this call's trailer-section bytes start
    Step s;
    if (state_ == State::Error) {
        s.error_status = error_status_;
        s.reason = error_reason_;
        return s;
    }
    while (p != end) {
        const char c = *p;
        switch (state_) {
            case State::Length:
            case State::ChunkData: {
                const auto avail = static_cast<std::uint64_t>(end - p);
                const std::uint64_t n = remaining_ < avail ? remaining_ : avail;
                s.data = std::span<const char>(p, static_cast<std::size_t>(n));
                p += n;
                remaining_ -= n;
                if (remaining_ == 0) {
                    if (state_ == State::Length) {
                        state_ = State::Done;
                        s.done = true;
                    } else {
                        state_ = State::ChunkDataCr;
                    }
                }
                s.consumed = used();
                return s;
            }
            case State::ChunkSize: {
                const int digit = blitz::detail::hex_value(c);
                if (digit >= 0) {
                    if (line_bytes_ == kMaxChunkSizeDigits) {
                        return fail(400, "chunk size too long", used());
                    }
                    remaining_ = remaining_ << 4 | static_cast<std::uint64_t>(digit);
                    ++line_bytes_;
                    break;
                }
                if (line_bytes_ == 0) {
                    return fail(400, "invalid chunk size", used());
                }
                if (c == '\r') {
                    state_ = State::ChunkSizeLf;
                } else if (c == ';') {
                    state_ = State::ChunkExt;
                } else if (c == ' ' || c == '\t') {
                    state_ = State::ChunkSizeBws;  // BWS may precede ';' (RFC 9112 §7.1.1)
                } else {
                    return fail(400, "invalid chunk size", used());
                }
                ++line_bytes_;
                break;
            }
            case State::ChunkSizeBws:
            case State::ChunkExt: {
                // Extensions are skipped, but the line stays bounded and free of controls, so
                // no bare CR or LF can end it differently for another parser.
                if (++line_bytes_ > kMaxChunkLineBytes) {
                    return fail(400, "chunk extension too long", used());
                }
                if (c == '\r') {
                    if (state_ == State::ChunkSizeBws) {
                        return fail(400, "whitespace after chunk size", used());
                    }
                    state_ = State::ChunkSizeLf;
                } else if (state_ == State::ChunkSizeBws) {
                    if (c == ';') {
                        state_ = State::ChunkExt;
                    } else if (c != ' ' && c != '\t') {
                        return fail(400, "invalid chunk extension", used());
                    }
                } else if (!detail::is_field_value(c)) {
                    return fail(400, "invalid chunk extension", used());
                }
                break;
            }
            case State::ChunkSizeLf:
                if (c != '\n') {
                    return fail(400, "chunk size line not ended by CRLF", used());
                }
                line_bytes_ = 0;
                state_ = remaining_ == 0 ? State::Trailer : State::ChunkData;
                break;
            case State::ChunkDataCr:
                if (c != '\r') {
                    return fail(400, "chunk data not followed by CRLF", used());
                }
                state_ = State::ChunkDataLf;
                break;
            case State::ChunkDataLf:
                if (c != '\n') {
                    return fail(400, "chunk data not followed by CRLF", used());
                }
                state_ = State::ChunkSize;
                break;
            case State::Trailer:
            case State::TrailerName:
            case State::TrailerValue:
            case State::TrailerLf:
                if (++trailer_bytes_ > kMaxTrailerBytes) {
                    return fail(431, "trailer section too large", used());
                }
                if (trailer == nullptr) {
                    trailer = p;
                }
                if (state_ == State::Trailer) {
                    // RFC 9112 §7.1.2: trailer fields are field lines, so obs-fold and bad
                    // names are rejected as in the head (§5.1, §5.2).
                    if (c == '\r') {
                        line_empty_ = true;
                        state_ = State::TrailerLf;
                    } else if (detail::is_tchar(c)) {
                        state_ = State::TrailerName;
                    } else {
                        return fail(400, "invalid trailer field", used());
                    }
                } else if (state_ == State::TrailerName) {
                    if (c == ':') {
                        state_ = State::TrailerValue;
                    } else if (!detail::is_tchar(c)) {
                        return fail(400, "invalid trailer field name", used());
                    }
                } else if (state_ == State::TrailerValue) {
                    if (c == '\r') {
                        line_empty_ = false;
                        state_ = State::TrailerLf;
                    } else if (!detail::is_field_value(c)) {
                        return fail(400, "invalid trailer field value", used());
                    }
                } else {
                    if (c != '\n') {
                        return fail(400, "trailer line not ended by CRLF", used());
                    }
                    if (line_empty_) {
                        ++p;
                        state_ = State::Done;
                        s.done = true;
                        s.consumed = used();
                        s.trailer = {trailer, p};
                        return s;
                    }
                    state_ = State::Trailer;
                }
                break;
            case State::Done:
            case State::Error:
                s.done = state_ == State::Done;
                s.consumed = used();
                return s;
        }
        ++p;
    }
    s.done = state_ == State::Done;
    s.consumed = used();
    if (trailer != nullptr) {
        s.trailer = {trailer, p};
    }
    return s;
}

std::optional<std::size_t> parse_trailer_fields(std::string_view section,
                                                std::span<Header> out) noexcept {
    const auto ows = [](char c) { return c == ' ' || c == '\t'; };
    std::size_t n = 0;
    while (!section.empty()) {
        const std::size_t eol = section.find("\r\n");
        const std::string_view line = section.substr(0, eol);
        section.remove_prefix(eol == std::string_view::npos ? section.size() : eol + 2);
        const std::size_t colon = line.find(':');
        if (line.empty() || colon == std::string_view::npos) {
            continue;  // the final empty line (the decoder let nothing else through)
        }
        if (n == out.size()) {
            return std::nullopt;
        }
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && ows(value.front())) {
            value.remove_prefix(1);
        }
        while (!value.empty() && ows(value.back())) {
            value.remove_suffix(1);
        }
        out[n++] = Header{line.substr(0, colon), value};
    }
    return n;
}

}  // namespace blitz::http1

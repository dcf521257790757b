#include "http2/session.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "http/uri.hpp"
#include "http2/fields.hpp"
#include "http2/scratch.hpp"

namespace blitz::http2 {

namespace {

constexpr std::string_view kCookie = "cookie";
constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
// The largest stream id (RFC 9113 §5.1.1): the last stream id of a shutdown notice.
constexpr std::int32_t kMaxStreamId = 0x7FFFFFFF;
constexpr std::int64_t kMaxWindow = 0x7FFFFFFF;
constexpr std::uint32_t kDefaultWindow = 65535;

// RFC 9113 §6: frame types and flags.
enum : std::uint8_t {
    kData = 0x0,
    kHeaders = 0x1,
    kPriority = 0x2,
    kRstStream = 0x3,
    kSettings = 0x4,
    kPushPromise = 0x5,
    kPing = 0x6,
    kGoaway = 0x7,
    kWindowUpdate = 0x8,
    kContinuation = 0x9,
};
enum : std::uint8_t {
    kEndStream = 0x1,
    kAck = 0x1,
    kEndHeaders = 0x4,
    kPadded = 0x8,
    kPriorityFlag = 0x20,
};
enum : std::uint16_t {
    kHeaderTableSize = 0x1,
    kEnablePush = 0x2,
    kMaxConcurrentStreams = 0x3,
    kInitialWindowSize = 0x4,
    kMaxFrameSize = 0x5,
    kMaxHeaderListSize = 0x6,
};

std::uint32_t get32(const std::uint8_t* p) noexcept {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

void put32(std::uint8_t* p, std::uint32_t v) noexcept {
    p[0] = static_cast<std::uint8_t>(v >> 24);
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
}

void put_head(std::uint8_t* h, std::uint32_t len, std::uint8_t type, std::uint8_t flags, std::int32_t id) noexcept {
    h[0] = static_cast<std::uint8_t>(len >> 16);
    h[1] = static_cast<std::uint8_t>(len >> 8);
    h[2] = static_cast<std::uint8_t>(len);
    h[3] = type;
    h[4] = flags;
    put32(h + 5, static_cast<std::uint32_t>(id) & 0x7FFFFFFF);
}

// A query as the HTTP/1.1 codec accepts it: visible ASCII except '#', escapes well-formed.
bool valid_query(std::string_view q) noexcept {
    for (std::size_t i = 0; i < q.size(); ++i) {
        const auto c = static_cast<unsigned char>(q[i]);
        if (c <= 0x20 || c >= 0x7f || c == '#') {
            return false;
        }
        if (c == '%') {
            if (i + 2 >= q.size() || !std::isxdigit(static_cast<unsigned char>(q[i + 1])) ||
                !std::isxdigit(static_cast<unsigned char>(q[i + 2]))) {
                return false;
            }
        }
    }
    return true;
}

// RFC 3986 §3.1.
bool valid_scheme(std::string_view s) noexcept {
    if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) {
        return false;
    }
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (!std::isalnum(c) && c != '+' && c != '-' && c != '.') {
            return false;
        }
    }
    return true;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tolower(static_cast<unsigned char>(a[i])) != b[i]) {
            return false;
        }
    }
    return true;
}

// A header block while it is encoded.
[[gnu::tls_model("initial-exec")]] thread_local Scratch block_scratch;

// A client names the same authority in every request: the last one found valid on this thread
// is remembered, and an equal one needs only a compare.
struct LastAuthority {
    static constexpr std::size_t kMax = 64;
    char bytes[kMax];
    std::uint8_t len = 0;  // 0: none yet
};
[[gnu::tls_model("initial-exec")]] thread_local LastAuthority last_authority;

bool valid_authority(std::string_view a) noexcept {
    LastAuthority& last = last_authority;
    if (a.size() == last.len && std::memcmp(a.data(), last.bytes, a.size()) == 0) {
        return true;
    }
    if (!http::valid_authority(a)) {
        return false;
    }
    if (a.size() <= LastAuthority::kMax) {
        std::memcpy(last.bytes, a.data(), a.size());
        last.len = static_cast<std::uint8_t>(a.size());
    }
    return true;
}

}  // namespace

// Receives one decoded header block: a request head (with its RFC 9113 §8.3.1 pseudo-header
// rules) or trailers, into the stream; or nothing (stream nullptr: a refused or closed stream
// whose block is decoded only to keep the HPACK table in step).
struct ServerSession::HeadSink final : hpack::FieldSink {
    ServerSession& me;
    Stream* st;
    bool trailers;
    bool malformed = false;
    bool regular_seen = false;
    bool has_method = false;
    bool has_scheme = false;
    bool has_path = false;
    bool has_authority = false;

    HeadSink(ServerSession& m, Stream* s, bool t) noexcept : me(m), st(s), trailers(t) {}

    bool field(std::string_view n, std::string_view v, hpack::Origin origin) override {
        if (st == nullptr) {
            return false;
        }
        if (!n.empty() && n[0] == ':') {
            return pseudo(n, v, origin);
        }
        regular_seen = true;
        // A vetted field (one this connection indexed and accepted before) passed the checks
        // that look at its bytes alone: the name, the value and RFC 9113 §8.2.2's
        // connection-specific fields (`te` may only say "trailers"). Static names are
        // lower-case tokens, static values hold no CR, LF or NUL.
        if (!origin.vetted) {
            if ((!origin.name_static && !lower_token(n)) || (!origin.value_static && !valid_value(v))) {
                return bad();
            }
            if (n == "te" ? !iequals(v, "trailers") : connection_specific(n)) {
                return bad();
            }
        }
        if (n == "content-length") {
            if (trailers) {
                return bad();  // framing belongs to the head (RFC 9110 §6.5.1)
            }
            std::int64_t len = 0;
            const auto r = std::from_chars(v.data(), v.data() + v.size(), len);
            if (v.empty() || r.ec != std::errc{} || r.ptr != v.data() + v.size() || len < 0 ||
                (st->expected_length >= 0 && st->expected_length != len)) {
                return bad();
            }
            st->expected_length = len;
        }
        (void)me.add_field(*st, n, v, !origin.name_static, !origin.value_static);
        return true;
    }

    bool pseudo(std::string_view n, std::string_view v, hpack::Origin origin) {
        if (trailers || regular_seen) {
            return bad();
        }
        Arena& a = *st->arena;
        // The static table's values of these fields (GET, POST, http, https, /, /index.html,
        // an empty authority) all pass their checks.
        const bool known = origin.vetted || origin.value_static;
        bool* seen = nullptr;
        if (n == ":method") {
            seen = &has_method;
            if (!known && !token(v)) {
                return bad();
            }
            st->method = origin.value_static ? v : a.copy(v);
        } else if (n == ":scheme") {
            seen = &has_scheme;
            if (!known && !valid_scheme(v)) {
                return bad();
            }
            st->scheme = origin.value_static ? v : a.copy(v);
        } else if (n == ":authority") {
            seen = &has_authority;
            if (!known && !valid_value(v)) {
                return bad();
            }
            st->authority = a.copy(v);
        } else if (n == ":path") {
            seen = &has_path;
            if (!known && (v.empty() || !valid_value(v))) {
                return bad();
            }
            st->path = a.copy(v);  // always a copy: it is normalised in place
        } else {
            return bad();  // :status, :protocol and unknown pseudo-fields
        }
        if (*seen) {
            return bad();
        }
        *seen = true;
        st->head_bytes += static_cast<std::uint32_t>(n.size() + v.size() + 32);
        return true;
    }

    bool bad() noexcept {
        malformed = true;
        return false;
    }

    /// RFC 9113 §8.3.1: every request names its method, and but for CONNECT its scheme and path.
    bool complete() const noexcept {
        if (malformed) {
            return false;
        }
        if (trailers) {
            return true;
        }
        if (!has_method) {
            return false;
        }
        if (st->method == "CONNECT") {
            return has_authority && !has_scheme && !has_path;
        }
        return has_scheme && has_path;
    }
};

ServerSession::ServerSession(Handler& handler, const Limits& limits) noexcept
    : handler_(handler),
      decoder_(limits.h2.header_table_size),
      rules_{limits.max_drain_bytes,
             limits.h2.max_concurrent_streams,
             limits.h2.initial_stream_window,
             limits.h2.connection_window,
             limits.h2.max_frame_size,
             limits.h2.reset_rate,
             limits.h2.reset_burst,
             limits.h2.control_frame_rate,
             limits.h2.control_frame_burst,
             limits.max_head_bytes,
             limits.max_path_bytes,
             limits.h2.header_table_size,
             static_cast<std::uint16_t>(std::min<std::uint32_t>(limits.max_headers, 0xFFFF)),
             static_cast<std::uint16_t>(std::min<std::uint32_t>(limits.h2.max_continuation_frames, 0xFFFF))},
      resets_{static_cast<float>(limits.h2.reset_burst), 0},
      controls_{static_cast<float>(limits.h2.control_frame_burst), 0} {}

ServerSession::~ServerSession() {
    std::free(partial_);
    std::free(block_);
}

bool ServerSession::start() {
    const Rules& h2 = rules_;
    const std::pair<std::uint16_t, std::uint32_t> iv[] = {
        {kMaxConcurrentStreams, h2.max_concurrent_streams},
        {kInitialWindowSize, h2.initial_stream_window},
        {kMaxFrameSize, h2.max_frame_size},
        {kHeaderTableSize, h2.header_table_size},
        {kMaxHeaderListSize, rules_.max_head_bytes},
        {kEnablePush, 0},
    };
    std::uint8_t payload[std::size(iv) * 6];
    std::uint8_t* p = payload;
    for (const auto& [id, value] : iv) {
        p[0] = static_cast<std::uint8_t>(id >> 8);
        p[1] = static_cast<std::uint8_t>(id);
        put32(p + 2, value);
        p += 6;
    }
    write_frame(kSettings, 0, 0, payload, sizeof payload);
    if (h2.connection_window > kDefaultWindow) {
        write_window_update(0, h2.connection_window - kDefaultWindow);
        recv_window_ = static_cast<std::int32_t>(std::min<std::int64_t>(h2.connection_window, kMaxWindow));
    }
    return true;
}

// ---- budgets

bool ServerSession::spend(Bucket& b, std::uint32_t rate, std::uint32_t burst, Flood kind) noexcept {
    const std::uint32_t elapsed = now_ms_ - b.refill_ms;
    if (elapsed > 0) {
        b.tokens = std::min(static_cast<float>(burst), b.tokens + static_cast<float>(elapsed) * rate / 1000.0f);
        b.refill_ms = now_ms_;
    }
    if (b.tokens >= 1.0f) {
        b.tokens -= 1.0f;
        return true;
    }
    if (flood_ == Flood::None) {
        flood_ = kind;
        (void)fail(kEnhanceYourCalm);
    }
    return false;
}

bool ServerSession::fail(std::uint32_t error) noexcept {
    if (in_ != In::Dead) {
        in_ = In::Dead;
        goaway_sent_ = true;
        goaway_last_id_ = last_id_;
        write_goaway(last_id_, error);
    }
    return false;
}

bool ServerSession::stream_error(Stream& s, std::uint32_t error) {
    reset(s, error);
    return in_ != In::Dead;
}

// ---- input

bool ServerSession::receive(const char* data, std::size_t len, std::uint64_t now_ms) {
    now_ms_ = static_cast<std::uint32_t>(now_ms);
    if (in_ == In::Preface && have_ == 0) {
        resets_.refill_ms = now_ms_;  // the buckets start full at the connection's start
        controls_.refill_ms = now_ms_;
    }
    const auto* p = reinterpret_cast<const std::uint8_t*>(data);
    const std::uint8_t* const end = p + len;
    while (p < end && in_ != In::Dead) {
        const auto avail = static_cast<std::size_t>(end - p);
        switch (in_) {
            case In::Preface: {
                const std::size_t n = std::min<std::size_t>(avail, kPreface.size() - have_);
                if (std::memcmp(p, kPreface.data() + have_, n) != 0) {
                    return fail(kProtocolError);  // RFC 9113 §3.4
                }
                have_ += static_cast<std::uint32_t>(n);
                p += n;
                if (have_ == kPreface.size()) {
                    have_ = 0;
                    in_ = In::FrameHead;
                }
                break;
            }
            case In::FrameHead: {
                if (head_have_ == 0 && avail >= 9) {
                    if (!frame_head(p)) {
                        break;
                    }
                    p += 9;
                } else {
                    const std::size_t n = std::min<std::size_t>(avail, 9u - head_have_);
                    std::memcpy(head_ + head_have_, p, n);
                    head_have_ = static_cast<std::uint8_t>(head_have_ + n);
                    p += n;
                    if (head_have_ < 9) {
                        break;
                    }
                    head_have_ = 0;
                    if (!frame_head(head_)) {
                        break;
                    }
                }
                if (in_ == In::Payload && frame_len_ == 0) {
                    in_ = In::FrameHead;
                    (void)frame(p, 0);
                }
                break;
            }
            case In::Payload: {
                if (have_ == 0 && avail >= frame_len_) {
                    const std::uint8_t* payload = p;
                    p += frame_len_;
                    in_ = In::FrameHead;
                    (void)frame(payload, frame_len_);
                    break;
                }
                if (partial_ == nullptr) {
                    partial_ = static_cast<std::uint8_t*>(std::malloc(frame_len_));
                    if (partial_ == nullptr) {
                        return fail(kInternalError);
                    }
                }
                const std::size_t n = std::min<std::size_t>(avail, frame_len_ - have_);
                std::memcpy(partial_ + have_, p, n);
                have_ += static_cast<std::uint32_t>(n);
                p += n;
                if (have_ == frame_len_) {
                    have_ = 0;
                    in_ = In::FrameHead;
                    (void)frame(partial_, frame_len_);
                    std::free(partial_);
                    partial_ = nullptr;
                }
                break;
            }
            case In::Data: {
                // The pad length byte first, then payload, then padding: the payload is handed
                // on as it arrives, a view into the caller's buffer.
                std::size_t n = std::min<std::size_t>(avail, frame_len_ - have_);
                if ((frame_flags_ & kPadded) != 0 && have_ == 0) {
                    pad_ = *p;
                    if (pad_ >= frame_len_) {
                        return fail(kProtocolError);  // RFC 9113 §6.1
                    }
                    ++have_;
                    ++p;
                    break;
                }
                const std::uint32_t payload_end = frame_len_ - pad_;
                if (have_ < payload_end) {
                    const std::size_t take = std::min<std::size_t>(n, payload_end - have_);
                    data_bytes(reinterpret_cast<const char*>(p), take);
                    n = take;
                }
                have_ += static_cast<std::uint32_t>(n);
                p += n;
                if (have_ == frame_len_ && in_ == In::Data) {
                    in_ = In::FrameHead;
                    have_ = 0;
                    (void)data_end();
                }
                break;
            }
            case In::Dead:
                break;
        }
    }
    return in_ != In::Dead;
}

bool ServerSession::frame_head(const std::uint8_t* h) {
    frame_len_ = (std::uint32_t{h[0]} << 16) | (std::uint32_t{h[1]} << 8) | h[2];
    frame_type_ = h[3];
    frame_flags_ = h[4];
    frame_id_ = static_cast<std::int32_t>(get32(h + 5) & 0x7FFFFFFF);
    have_ = 0;
    pad_ = 0;
    const std::uint32_t max = std::max<std::uint32_t>(rules_.max_frame_size, 16384);
    if (frame_len_ > max) {
        return fail(kFrameSizeError);  // RFC 9113 §4.2
    }
    if (block_id_ != 0 && (frame_type_ != kContinuation || frame_id_ != block_id_)) {
        return fail(kProtocolError);  // §6.10: nothing may come between a header block's frames
    }
    if (!peer_settings_ && (frame_type_ != kSettings || (frame_flags_ & kAck) != 0)) {
        return fail(kProtocolError);  // §3.4: the client's preface ends with SETTINGS
    }
    // Frames that make us do nothing are budgeted (CVE-2019-9512/9515/9518).
    bool idle = false;
    switch (frame_type_) {
        case kPing:
        case kSettings:
        case kPriority:
            idle = true;
            break;
        case kData:
        case kHeaders:
        case kContinuation:
            idle = frame_len_ == 0 && (frame_flags_ & kEndStream) == 0;
            break;
        case kRstStream:
        case kGoaway:
        case kWindowUpdate:
        case kPushPromise:
            break;
        default:
            idle = true;  // extension frames are ignored: they cost us parsing only
    }
    if (idle && !spend(controls_, rules_.control_frame_rate,
                       rules_.control_frame_burst, Flood::ControlFrames)) {
        return false;
    }
    if (frame_type_ == kData) {
        if ((frame_flags_ & kPadded) != 0 && frame_len_ == 0) {
            return fail(kFrameSizeError);  // no room for the pad length (§4.2)
        }
        in_ = In::Data;
        if (!data_begin()) {
            return false;
        }
        if (frame_len_ == 0) {
            in_ = In::FrameHead;
            return data_end();
        }
        return true;
    }
    in_ = In::Payload;
    return true;
}

bool ServerSession::frame(const std::uint8_t* p, std::uint32_t len) {
    switch (frame_type_) {
        case kHeaders:
            return headers(p, len);
        case kContinuation:
            return continuation(p, len);
        case kPriority:
            if (frame_id_ == 0) {
                return fail(kProtocolError);
            }
            if (len != 5) {
                return fail(kFrameSizeError);
            }
            return true;  // priority signals are ignored (docs/http2.md)
        case kRstStream:
            return rst_stream(p, len);
        case kSettings:
            return settings(p, len);
        case kPushPromise:
            return fail(kProtocolError);  // §8.4: clients cannot push
        case kPing:
            if (frame_id_ != 0) {
                return fail(kProtocolError);
            }
            if (len != 8) {
                return fail(kFrameSizeError);
            }
            if ((frame_flags_ & kAck) == 0) {
                write_frame(kPing, kAck, 0, p, 8);
            }
            return true;
        case kGoaway:
            if (frame_id_ != 0) {
                return fail(kProtocolError);
            }
            if (len < 8) {
                return fail(kFrameSizeError);
            }
            goaway_received_ = true;  // we never open streams: only those in flight remain
            return true;
        case kWindowUpdate:
            return window_update(p, len);
        default:
            return true;
    }
}

bool ServerSession::data_begin() {
    data_stream_ = nullptr;
    handed_ = 0;
    if (frame_id_ == 0 || frame_id_ > last_id_) {
        return fail(kProtocolError);  // §6.1: DATA on the connection or an idle stream
    }
    if (std::int64_t{frame_len_} > recv_window_) {
        return fail(kFlowControlError);  // §6.9.1
    }
    recv_window_ -= frame_len_;
    Stream* s = find(frame_id_);
    if (s == nullptr) {
        return true;  // a stream closed meanwhile: the bytes go back at the frame's end
    }
    if (s->request_done) {
        return fail(kStreamClosed);  // §5.1: half-closed (remote)
    }
    if (frame_len_ > s->recv_window) {
        return stream_error(*s, kFlowControlError);
    }
    s->recv_window -= frame_len_;
    data_stream_ = s;
    return true;
}

void ServerSession::data_bytes(const char* p, std::size_t n) {
    Stream* s = data_stream_;
    if (s == nullptr || n == 0) {
        return;
    }
    s->received += n;
    if (s->expected_length >= 0 && s->received > static_cast<std::uint64_t>(s->expected_length)) {
        (void)stream_error(*s, kProtocolError);  // §8.1.1: more than content-length
        return;
    }
    if (flood_ != Flood::None || s->error_status != 0) {
        return;  // nobody reads these bytes: the windows get them back at the frame's end
    }
    if (s->response_done) {
        // Answered before its body ended: the rest is read and dropped, as HTTP/1.1 drains
        // it, up to max_drain_bytes; then RFC 9113 §8.1's RST_STREAM NO_ERROR stops the
        // upload. (Not at once: clients such as curl 7.88 drop an answer followed by it.)
        s->drained += n;
        if (s->drained > rules_.max_drain_bytes && !s->upload_stopped) {
            s->upload_stopped = true;
            reset(*s, kNoError);
        }
    }
    handed_ += static_cast<std::uint32_t>(n);
    handler_.h2_data(*s, p, n);
}

bool ServerSession::data_end() {
    Stream* s = data_stream_;
    data_stream_ = nullptr;
    give_back(s, frame_len_ - handed_);
    if (s == nullptr || s->closing || (frame_flags_ & kEndStream) == 0) {
        return in_ != In::Dead;
    }
    if (s->expected_length >= 0 && s->received != static_cast<std::uint64_t>(s->expected_length)) {
        return stream_error(*s, kProtocolError);  // §8.1.1: less than content-length
    }
    s->request_done = true;
    handler_.h2_request_end(*s, {});
    if (s->response_done && !s->closing && !s->body_pending) {
        close_now(*s, kNoError);
    }
    return in_ != In::Dead;
}

void ServerSession::give_back(Stream* s, std::size_t n) noexcept {
    if (n == 0) {
        return;
    }
    if (s != nullptr && !s->closing) {
        consume(*s, n);
    } else {
        consume_connection(n);
    }
}

bool ServerSession::headers(const std::uint8_t* p, std::uint32_t len) {
    if (frame_id_ == 0 || (frame_id_ & 1) == 0) {
        return fail(kProtocolError);  // §5.1.1: clients open odd-numbered streams
    }
    std::uint32_t pad = 0;
    if ((frame_flags_ & kPadded) != 0) {
        if (len < 1) {
            return fail(kFrameSizeError);
        }
        pad = *p++;
        --len;
    }
    block_self_dependent_ = false;
    if ((frame_flags_ & kPriorityFlag) != 0) {
        if (len < 5) {
            return fail(kFrameSizeError);
        }
        block_self_dependent_ = static_cast<std::int32_t>(get32(p) & 0x7FFFFFFF) == frame_id_;
        p += 5;
        len -= 5;
    }
    if (pad > len) {
        return fail(kProtocolError);  // §6.2
    }
    len -= pad;
    block_end_stream_ = (frame_flags_ & kEndStream) != 0;
    if ((frame_flags_ & kEndHeaders) != 0) {
        return header_block(p, len);
    }
    // The block continues in CONTINUATION frames: gathered until END_HEADERS. At most
    // (1 + max_continuation_frames) frames of max_frame_size bytes.
    block_cap_ = std::max<std::uint32_t>(len, 1024);
    block_ = static_cast<std::uint8_t*>(std::malloc(block_cap_));
    if (block_ == nullptr) {
        return fail(kInternalError);
    }
    if (len > 0) {
        std::memcpy(block_, p, len);
    }
    block_len_ = len;
    block_id_ = frame_id_;
    continuations_ = 0;
    return true;
}

bool ServerSession::continuation(const std::uint8_t* p, std::uint32_t len) {
    if (block_id_ == 0) {
        return fail(kProtocolError);  // §6.10: no header block to continue
    }
    if (++continuations_ > rules_.max_continuation_frames) {
        flood_ = Flood::Continuation;  // CVE-2024-27316
        return fail(kEnhanceYourCalm);
    }
    if (block_len_ + len > block_cap_) {
        const std::uint32_t cap = std::max(block_len_ + len, block_cap_ * 2);
        auto* grown = static_cast<std::uint8_t*>(std::realloc(block_, cap));
        if (grown == nullptr) {
            return fail(kInternalError);
        }
        block_ = grown;
        block_cap_ = cap;
    }
    if (len > 0) {
        std::memcpy(block_ + block_len_, p, len);
    }
    block_len_ += len;
    if ((frame_flags_ & kEndHeaders) == 0) {
        return true;
    }
    frame_id_ = block_id_;
    block_id_ = 0;
    const bool ok = header_block(block_, block_len_);
    std::free(block_);
    block_ = nullptr;
    block_len_ = 0;
    block_cap_ = 0;
    return ok;
}

bool ServerSession::header_block(const std::uint8_t* block, std::size_t len) {
    const std::int32_t id = frame_id_;
    const bool end_stream = block_end_stream_;
    if (id > last_id_) {
        // A new stream.
        last_id_ = id;
        Stream* st = nullptr;
        if (!goaway_sent_ || id <= goaway_last_id_) {
            if (open_count_ < rules_.max_concurrent_streams) {
                st = handler_.h2_open(id);
            } else {
                handler_.h2_refused();
            }
        }
        if (st != nullptr) {
            st->id = id;
            st->send_window = peer_initial_window_;
            st->recv_window = local_window();
            st->blocks_in = static_cast<std::uint32_t>(len);
            open(*st);
        }
        HeadSink sink(*this, st, false);
        if (decoder_.decode(block, len, sink) != hpack::Status::Ok) {
            return fail(kCompressionError);
        }
        if (st == nullptr) {
            // Beyond the concurrency limit, after our GOAWAY, or while we close: not
            // processed, so the client may retry it (§5.1.2, §8.7).
            write_rst(id, kRefusedStream);
            return in_ != In::Dead;
        }
        if (!sink.complete() || block_self_dependent_ ||
            (end_stream && st->expected_length > 0)) {
            return stream_error(*st, kProtocolError);  // §8.1.1: malformed
        }
        finish_head(*st, end_stream);
        return in_ != In::Dead;
    }
    Stream* s = find(id);
    const bool trailers = s != nullptr && !s->request_done && end_stream;
    HeadSink sink(*this, nullptr, true);
    if (trailers) {
        // Trailers get arrays of their own: the request head keeps viewing the first.
        s->in_trailers = true;
        s->fields = nullptr;
        s->count = 0;
        s->capacity = 0;
        s->head_bytes = 0;
        s->blocks_in += static_cast<std::uint32_t>(len);
        sink.st = s;
    }
    if (decoder_.decode(block, len, sink) != hpack::Status::Ok) {
        return fail(kCompressionError);
    }
    if (s == nullptr) {
        return true;  // a closed stream (or one we reset): decoded only to keep HPACK in step
    }
    if (s->request_done) {
        return fail(kStreamClosed);  // §5.1: half-closed (remote)
    }
    if (!trailers || !sink.complete() || block_self_dependent_) {
        return stream_error(*s, kProtocolError);  // §8.1: trailers end the stream
    }
    if (s->expected_length >= 0 && s->received != static_cast<std::uint64_t>(s->expected_length)) {
        return stream_error(*s, kProtocolError);
    }
    s->request_done = true;
    handler_.h2_request_end(*s, {s->fields, s->count});
    if (s->response_done && !s->closing && !s->body_pending) {
        close_now(*s, kNoError);
    }
    return in_ != In::Dead;
}

bool ServerSession::settings(const std::uint8_t* p, std::uint32_t len) {
    if (frame_id_ != 0) {
        return fail(kProtocolError);
    }
    if ((frame_flags_ & kAck) != 0) {
        if (len != 0) {
            return fail(kFrameSizeError);
        }
        if (!settings_acked_) {
            settings_acked_ = true;
            // Streams opened before the client knew our window got the default one; a smaller
            // one applies from now on (§6.9.2).
            const std::int64_t delta = local_window() - kDefaultWindow;
            if (delta < 0) {
                for (Stream* s = open_; s != nullptr; s = s->open_next) {
                    s->recv_window += delta;
                }
            }
        }
        return true;
    }
    if (len % 6 != 0) {
        return fail(kFrameSizeError);
    }
    for (std::uint32_t at = 0; at < len; at += 6) {
        const auto id = static_cast<std::uint16_t>((p[at] << 8) | p[at + 1]);
        const std::uint32_t value = get32(p + at + 2);
        switch (id) {
            case kEnablePush:
                if (value > 1) {
                    return fail(kProtocolError);
                }
                break;
            case kInitialWindowSize: {
                if (value > kMaxWindow) {
                    return fail(kFlowControlError);
                }
                const std::int64_t delta = static_cast<std::int64_t>(value) - peer_initial_window_;
                peer_initial_window_ = value;
                for (Stream* s = open_; s != nullptr; s = s->open_next) {
                    s->send_window += delta;
                    if (s->send_window > kMaxWindow) {
                        return fail(kFlowControlError);
                    }
                    if (delta > 0 && s->body_pending) {
                        make_ready(*s);
                    }
                }
                break;
            }
            case kMaxFrameSize:
                if (value < 16384 || value > 16777215) {
                    return fail(kProtocolError);
                }
                peer_max_frame_ = value;
                break;
            case kHeaderTableSize:
                encoder_.peer_table_size(value);
                break;
            default:
                break;  // we never push
        }
    }
    peer_settings_ = true;
    write_frame(kSettings, kAck, 0, nullptr, 0);
    return true;
}

bool ServerSession::window_update(const std::uint8_t* p, std::uint32_t len) {
    if (len != 4) {
        return fail(kFrameSizeError);
    }
    const std::uint32_t inc = get32(p) & 0x7FFFFFFF;
    if (frame_id_ == 0) {
        if (inc == 0) {
            return fail(kProtocolError);
        }
        if (std::int64_t{send_window_} + inc > kMaxWindow) {
            return fail(kFlowControlError);
        }
        send_window_ += inc;
        return true;
    }
    if (frame_id_ > last_id_) {
        return fail(kProtocolError);  // §5.1: an idle stream
    }
    Stream* s = find(frame_id_);
    if (s == nullptr) {
        return true;
    }
    if (inc == 0) {
        return stream_error(*s, kProtocolError);
    }
    if (s->send_window + inc > kMaxWindow) {
        return stream_error(*s, kFlowControlError);
    }
    s->send_window += inc;
    if (s->body_pending) {
        make_ready(*s);
    }
    return true;
}

bool ServerSession::rst_stream(const std::uint8_t* p, std::uint32_t len) {
    if (len != 4) {
        return fail(kFrameSizeError);
    }
    if (frame_id_ == 0 || frame_id_ > last_id_) {
        return fail(kProtocolError);
    }
    Stream* s = find(frame_id_);
    // A client that resets streams before their answers are done makes us do work for
    // nothing (Rapid Reset, CVE-2023-44487). A stream already closed cost nothing more (or was
    // counted when we reset it).
    if (s != nullptr && !s->response_done &&
        !spend(resets_, rules_.reset_rate, rules_.reset_burst, Flood::Resets)) {
        return false;
    }
    if (s != nullptr) {
        close_now(*s, get32(p));
    }
    return in_ != In::Dead;
}

std::string_view flood_name(Flood flood) noexcept {
    switch (flood) {
        case Flood::Resets:
            return "resets";
        case Flood::ControlFrames:
            return "control_frames";
        case Flood::Continuation:
            return "continuation";
        case Flood::None:
            break;
    }
    return "none";
}

// ---- output

void ServerSession::write_frame(std::uint8_t type, std::uint8_t flags, std::int32_t id, const void* payload,
                                std::uint32_t len) {
    std::uint8_t buf[9 + 64];
    put_head(buf, len, type, flags, id);
    if (len > 0) {
        std::memcpy(buf + 9, payload, len);
    }
    handler_.h2_write(buf, 9 + len);
}

void ServerSession::write_goaway(std::int32_t last, std::uint32_t error) {
    std::uint8_t p[8];
    put32(p, static_cast<std::uint32_t>(last));
    put32(p + 4, error);
    write_frame(kGoaway, 0, 0, p, sizeof p);
}

void ServerSession::write_window_update(std::int32_t id, std::uint32_t increment) {
    std::uint8_t p[4];
    put32(p, increment);
    write_frame(kWindowUpdate, 0, id, p, sizeof p);
}

void ServerSession::write_rst(std::int32_t id, std::uint32_t error) {
    std::uint8_t p[4];
    put32(p, error);
    write_frame(kRstStream, 0, id, p, sizeof p);
    if (error != kNoError) {
        // Resets the client provoked (a malformed request, a flow-control breach, a stream
        // beyond the limit) count in the same budget: MadeYouReset (CVE-2025-8671).
        (void)spend(resets_, rules_.reset_rate, rules_.reset_burst, Flood::Resets);
    }
}

void ServerSession::write_headers(std::int32_t id, const std::uint8_t* block, std::size_t len, bool end_stream) {
    // `block` sits 9 bytes into its buffer: the first frame's head goes in front of it.
    auto* first = const_cast<std::uint8_t*>(block) - 9;
    std::size_t n = std::min<std::size_t>(len, peer_max_frame_);
    std::uint8_t flags = end_stream ? kEndStream : 0;
    if (n == len) {
        flags |= kEndHeaders;
    }
    put_head(first, static_cast<std::uint32_t>(n), kHeaders, flags, id);
    handler_.h2_write(first, 9 + n);
    for (std::size_t at = n; at < len; at += n) {
        n = std::min<std::size_t>(len - at, peer_max_frame_);
        std::uint8_t head[9];
        put_head(head, static_cast<std::uint32_t>(n), kContinuation, at + n == len ? kEndHeaders : 0, id);
        handler_.h2_write(head, 9);
        handler_.h2_write(block + at, n);
    }
}

bool ServerSession::write_fields(Stream& s, int status, Headers fields, bool end_stream, bool trailers,
                                 ServerFields own) {
    // The encoder's table follows every block it encodes, so a head with a field HTTP/2 cannot
    // carry is refused before anything is encoded (trailers drop such fields instead). The
    // static name indices found on the way are kept for the first fields.
    constexpr std::size_t kKnown = 16;
    std::uint8_t known[kKnown];
    if (!trailers) {
        for (std::size_t i = 0; i < fields.size(); ++i) {
            const Header& h = fields.fields()[i];
            const std::uint8_t index = hpack::regular_static_name(h.name);
            if (!valid_value(h.value) || (index == 0 && !token(h.name))) {
                return false;
            }
            if (i < kKnown) {
                known[i] = index;
            }
        }
    }
    char length[24];
    std::string_view content_length;
    if (own.content_length >= 0) {
        const auto r = std::to_chars(length, length + sizeof length, own.content_length);
        content_length = {length, static_cast<std::size_t>(r.ptr - length)};
    }
    std::size_t bound = 9 + hpack::Encoder::kMaxBlockPrefix + 5 + hpack::max_field_bytes("date", own.date) +
                        hpack::max_field_bytes("content-length", content_length);
    for (const Header& h : fields) {
        bound += hpack::max_field_bytes(h.name, h.value);
    }
    auto* const buf = reinterpret_cast<std::uint8_t*>(block_scratch.reserve(bound));
    std::uint8_t* out = buf + 9;
    out += encoder_.begin_block(out);
    if (status != 0) {
        out += hpack::encode_status(out, status);
    }
    for (std::size_t i = 0; i < fields.size(); ++i) {
        const Header& h = fields.fields()[i];
        if (trailers && !valid_value(h.value)) {
            continue;
        }
        // A static name in any case (most response fields) is a valid name: named by index.
        const std::uint8_t index = !trailers && i < kKnown ? known[i] : hpack::regular_static_name(h.name);
        if (index != 0) {
            if (index == hpack::kTransferEncodingIndex || (index == hpack::kDateIndex && !own.date.empty()) ||
                (index == hpack::kContentLengthIndex && !content_length.empty())) {
                continue;
            }
            out += encoder_.encode(out, index, hpack::static_name(index), h.value);
            continue;
        }
        const std::string_view name = lower_name(*s.arena, h.name);
        if (name.empty() || connection_specific(name)) {
            continue;
        }
        out += encoder_.encode(out, 0, name, h.value);
    }
    if (!own.date.empty()) {
        out += encoder_.encode(out, hpack::kDateIndex, "date", own.date);
    }
    if (!content_length.empty()) {
        out += encoder_.encode(out, hpack::kContentLengthIndex, "content-length", content_length);
    }
    const auto len = static_cast<std::size_t>(out - buf - 9);
    s.blocks_out += static_cast<std::uint32_t>(len);
    write_headers(s.id, buf + 9, len, end_stream);
    return true;
}

bool ServerSession::respond(Stream& s, int status, Headers fields, bool has_body, ServerFields own) {
    if (status < 100 || status > 999 || s.closing || in_ == In::Dead) {
        return false;
    }
    if (!write_fields(s, status, fields, !has_body, false, own)) {
        return false;
    }
    if (has_body) {
        s.body_pending = true;
        make_ready(s);
    } else {
        s.response_done = true;
        response_end(s);
    }
    return true;
}

bool ServerSession::respond_whole(Stream& s, int status, Headers fields, std::string_view body, ServerFields own,
                                  bool& sent) {
    sent = false;
    const auto n = static_cast<std::int64_t>(body.size());
    if (n > peer_max_frame_ || n > send_window_ || n > s.send_window || s.response_trailers.size() > 0) {
        return respond(s, status, fields, true, own);
    }
    if (status < 100 || status > 999 || s.closing || in_ == In::Dead ||
        !write_fields(s, status, fields, false, false, own)) {
        return false;
    }
    std::uint8_t head[9];
    put_head(head, static_cast<std::uint32_t>(n), kData, kEndStream, s.id);
    handler_.h2_write(head, 9);
    handler_.h2_write(reinterpret_cast<const std::uint8_t*>(body.data()), body.size());
    send_window_ -= n;
    s.send_window -= n;
    s.response_done = true;
    sent = true;
    response_end(s);
    return true;
}

bool ServerSession::informational(Stream& s, int status) {
    if (status < 100 || status > 199 || s.closing || in_ == In::Dead) {
        return false;
    }
    return write_fields(s, status, {}, false, false);
}

bool ServerSession::trailers(Stream& s, Headers fields) {
    if (s.closing || in_ == In::Dead) {
        return false;
    }
    s.response_done = true;
    s.body_pending = false;
    unready(s);
    (void)write_fields(s, 0, fields, true, true);
    response_end(s);
    return true;
}

bool ServerSession::send_data(Stream& s) {
    const std::int64_t window = std::min<std::int64_t>(send_window_, s.send_window);
    if (window <= 0) {
        return false;  // a WINDOW_UPDATE makes it ready again
    }
    bool last = false;
    const std::size_t n =
        handler_.h2_body_ready(s, static_cast<std::size_t>(std::min<std::int64_t>(window, peer_max_frame_)), last);
    if (n == 0 && !last) {
        return false;  // resume_body() makes it ready again
    }
    const bool with_trailers = last && s.response_trailers.size() > 0;
    if (n > 0 || !with_trailers) {
        std::uint8_t head[9];
        put_head(head, static_cast<std::uint32_t>(n), kData, last && !with_trailers ? kEndStream : 0, s.id);
        send_window_ -= static_cast<std::int64_t>(n);
        s.send_window -= static_cast<std::int64_t>(n);
        handler_.h2_write_data(s, head, n);
    }
    if (!last) {
        return true;
    }
    s.body_pending = false;
    s.response_done = true;
    if (with_trailers) {
        (void)write_fields(s, 0, s.response_trailers, true, true);
    }
    response_end(s);
    return false;
}

bool ServerSession::send() {
    run_closes();
    while (ready_head_ != nullptr && send_window_ > 0 && in_ != In::Dead) {
        Stream& s = *ready_head_;
        unready(s);
        if (send_data(s) && !s.closing && s.body_pending) {
            make_ready(s);  // round robin: one frame per stream in turn
        }
    }
    run_closes();
    return true;
}

bool ServerSession::done() const noexcept {
    if (closing_ != nullptr) {
        return false;
    }
    return in_ == In::Dead || ((goaway_sent_ || goaway_received_) && open_count_ == 0);
}

bool ServerSession::want_write() const noexcept {
    return closing_ != nullptr || (in_ != In::Dead && ready_head_ != nullptr && send_window_ > 0);
}

// ---- requests

bool ServerSession::add_field(Stream& s, std::string_view name, std::string_view value, bool copy_name,
                              bool copy_value) {
    s.head_bytes += static_cast<std::uint32_t>(name.size() + value.size() + 32);
    if (s.error_status != 0) {
        return false;
    }
    if (s.head_bytes > rules_.max_head_bytes || s.count >= rules_.max_headers) {
        // RFC 9113 §10.5.1 / RFC 6585 §5: answered 431; the rest of the list is not kept (an
        // HPACK bomb costs decoding time only, never memory).
        s.error_status = 431;
        return false;
    }
    append_field(s, Header{copy_name ? s.arena->copy(name) : name,
                           copy_value ? s.arena->copy(value) : value});
    if (name == kCookie) {
        ++s.cookies;
    }
    return true;
}

void ServerSession::finish_head(Stream& s, bool end_stream) {
    RequestHead head;
    head.end_stream = end_stream;
    if (end_stream) {
        s.request_done = true;
    }
    int status = s.error_status;
    const char* reason = status != 0 ? "request header fields too large" : "";
    head.method_name = s.method;
    head.method = method_from_token(s.method);
    head.scheme = s.scheme;
    std::string_view host;
    for (std::uint16_t i = 0; i < s.count; ++i) {
        const Header& h = s.fields[i];
        if (h.name == "host") {
            host = h.value;
        } else if (h.name == "content-length") {
            std::uint64_t n = 0;
            const auto r = std::from_chars(h.value.data(), h.value.data() + h.value.size(), n);
            if (r.ec == std::errc{} && r.ptr == h.value.data() + h.value.size()) {
                head.content_length = static_cast<std::int64_t>(n);
            }
        }
    }
    // RFC 9113 §8.3.1: :authority is the target's authority; a Host field that names another
    // one makes the request malformed (two hosts are how routing confusion starts).
    head.authority = s.authority.empty() ? host : s.authority;
    if (status == 0 && !s.authority.empty() && !host.empty() && host != s.authority) {
        status = 400;
        reason = "host does not match :authority";
    }
    if (status == 0 && !head.authority.empty() && !valid_authority(head.authority)) {
        status = 400;
        reason = "invalid authority";
    }
    if (status == 0 && head.method == Method::Connect) {
        status = 501;
        reason = "CONNECT is not supported";
    }
    if (status == 0) {
        std::string_view target = s.path;
        if (target.size() > rules_.max_path_bytes) {
            status = 414;
            reason = "request target too long";
        } else if (target == "*" && head.method == Method::Options) {
            head.path = target;
            head.raw_target = target;
        } else if (target.empty() || target[0] != '/') {
            status = 400;
            reason = "invalid :path";
        } else {
            // The path is normalised in place (it is the stream's own copy), as HTTP/1.1 does.
            char* t = const_cast<char*>(target.data());
            const std::size_t q = target.find('?');
            const std::size_t path_len = q == std::string_view::npos ? target.size() : q;
            const long n = http::normalize_path({t, path_len});
            std::string_view query = q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
            if (n < 0) {
                status = 400;
                reason = "invalid path";
            } else if (!valid_query(query)) {
                status = 400;
                reason = "invalid query";
            } else {
                const auto plen = static_cast<std::size_t>(n);
                if (plen != path_len && !query.empty()) {
                    std::memmove(t + plen + 1, query.data(), query.size());
                    t[plen] = '?';
                    query = {t + plen + 1, query.size()};
                }
                head.path = {t, plen};
                head.query = query;
                head.raw_target = {t, query.empty() ? plen : plen + 1 + query.size()};
            }
        }
    }
    if (s.cookies > 1) {
        // RFC 9113 §8.2.3: split cookie fields are joined with "; " for HTTP/1.1 and for
        // everyone who reads the Cookie header.
        std::size_t len = 0;
        for (std::uint16_t i = 0; i < s.count; ++i) {
            if (s.fields[i].name == kCookie) {
                len += s.fields[i].value.size() + 2;
            }
        }
        char* joined = static_cast<char*>(s.arena->allocate(len, 1));
        std::size_t at = 0;
        std::uint16_t out = 0;
        std::uint16_t first = 0xffff;
        for (std::uint16_t i = 0; i < s.count; ++i) {
            const Header h = s.fields[i];
            if (h.name == kCookie) {
                if (at > 0) {
                    std::memcpy(joined + at, "; ", 2);
                    at += 2;
                }
                if (!h.value.empty()) {
                    std::memcpy(joined + at, h.value.data(), h.value.size());
                }
                at += h.value.size();
                if (first != 0xffff) {
                    continue;
                }
                first = out;
            }
            s.fields[out++] = h;
        }
        s.fields[first].value = {joined, at};
        s.count = out;
        s.cookies = 1;
    }
    head.headers = {s.fields, s.count};
    handler_.h2_request(s, head, status, reason);
}


// ---- the server's calls

void ServerSession::resume_body(Stream& s) {
    if (!s.closing && s.body_pending) {
        make_ready(s);
    }
}

void ServerSession::reset(Stream& s, std::uint32_t error) noexcept {
    if (s.closing) {
        return;
    }
    if (in_ != In::Dead) {
        write_rst(s.id, error);
    }
    close_later(s, error);
}

std::int64_t ServerSession::local_window() const noexcept {
    const std::int64_t w = rules_.initial_stream_window;
    return settings_acked_ ? w : std::max<std::int64_t>(w, kDefaultWindow);
}

void ServerSession::consume(Stream& s, std::size_t n) noexcept {
    if (n == 0) {
        return;
    }
    consume_connection(n);
    if (s.closing || s.request_done || in_ == In::Dead) {
        return;  // the client sends nothing more on it
    }
    // Windows reopen as the server hands request bytes on, not as they are parsed: that is
    // what bounds a stream's buffered body (back-pressure through flow control). Updates go
    // out once half a window is free, not per frame.
    s.unacked += static_cast<std::uint32_t>(n);
    if (s.unacked >= rules_.initial_stream_window / 2) {
        write_window_update(s.id, s.unacked);
        s.recv_window += s.unacked;
        s.unacked = 0;
    }
}

void ServerSession::consume_connection(std::size_t n) noexcept {
    if (n == 0 || in_ == In::Dead) {
        return;
    }
    recv_unacked_ += static_cast<std::uint32_t>(n);
    const std::uint32_t window = std::max(rules_.connection_window, kDefaultWindow);
    if (recv_unacked_ >= window / 2) {
        write_window_update(0, recv_unacked_);
        recv_window_ += recv_unacked_;
        recv_unacked_ = 0;
    }
}

void ServerSession::goaway() noexcept {
    if (goaway_sent_ || in_ == In::Dead) {
        return;
    }
    goaway_sent_ = true;
    goaway_last_id_ = last_id_;
    write_goaway(last_id_, kNoError);
}

void ServerSession::shutdown_notice() noexcept {
    if (!goaway_sent_ && in_ != In::Dead) {
        write_goaway(kMaxStreamId, kNoError);
    }
}

void ServerSession::terminate(std::uint32_t error) noexcept { (void)fail(error); }

std::int32_t ServerSession::send_window(const Stream& s) const noexcept {
    return static_cast<std::int32_t>(std::clamp<std::int64_t>(std::min<std::int64_t>(s.send_window, send_window_), 0, kMaxWindow));
}

void ServerSession::abandon() noexcept {
    for (Stream* s = open_; s != nullptr; s = s->open_next) {
        s->closing = true;
    }
    open_ = nullptr;
    ready_head_ = nullptr;
    ready_tail_ = nullptr;
    closing_ = nullptr;
    open_count_ = 0;
    data_stream_ = nullptr;
    in_ = In::Dead;
}

// ---- streams

Stream* ServerSession::find(std::int32_t id) const noexcept {
    // Few streams are open at once (max_concurrent_streams), and the newest are the busiest.
    for (Stream* s = open_; s != nullptr; s = s->open_next) {
        if (s->id == id) {
            return s;
        }
    }
    return nullptr;
}

void ServerSession::open(Stream& s) {
    s.open_prev = nullptr;
    s.open_next = open_;
    if (open_ != nullptr) {
        open_->open_prev = &s;
    }
    open_ = &s;
    ++open_count_;
}

void ServerSession::unlink(Stream& s) noexcept {
    if (s.open_prev != nullptr) {
        s.open_prev->open_next = s.open_next;
    } else {
        open_ = s.open_next;
    }
    if (s.open_next != nullptr) {
        s.open_next->open_prev = s.open_prev;
    }
    s.open_next = nullptr;
    s.open_prev = nullptr;
    --open_count_;
    unready(s);
    if (data_stream_ == &s) {
        data_stream_ = nullptr;
    }
}

void ServerSession::make_ready(Stream& s) noexcept {
    if (s.in_ready) {
        return;
    }
    s.in_ready = true;
    s.ready_next = nullptr;
    s.ready_prev = ready_tail_;
    if (ready_tail_ != nullptr) {
        ready_tail_->ready_next = &s;
    } else {
        ready_head_ = &s;
    }
    ready_tail_ = &s;
}

void ServerSession::unready(Stream& s) noexcept {
    if (!s.in_ready) {
        return;
    }
    s.in_ready = false;
    if (s.ready_prev != nullptr) {
        s.ready_prev->ready_next = s.ready_next;
    } else {
        ready_head_ = s.ready_next;
    }
    if (s.ready_next != nullptr) {
        s.ready_next->ready_prev = s.ready_prev;
    } else {
        ready_tail_ = s.ready_prev;
    }
    s.ready_next = nullptr;
    s.ready_prev = nullptr;
}

void ServerSession::close_later(Stream& s, std::uint32_t error) noexcept {
    if (s.closing) {
        return;
    }
    s.closing = true;
    unlink(s);
    s.close_error = error;
    s.closing_next = closing_;
    closing_ = &s;
}

void ServerSession::close_now(Stream& s, std::uint32_t error) {
    if (s.closing) {
        return;
    }
    s.closing = true;
    unlink(s);
    handler_.h2_closed(s, error);
}

void ServerSession::response_end(Stream& s) {
    if (s.request_done) {
        close_later(s, kNoError);
    }
}

void ServerSession::run_closes() {
    while (closing_ != nullptr) {
        Stream& s = *closing_;
        closing_ = s.closing_next;
        s.closing_next = nullptr;
        handler_.h2_closed(s, s.close_error);
    }
}

}  // namespace blitz::http2

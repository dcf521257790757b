#include "http2/session.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

#include "http/uri.hpp"
#include "http2/fields.hpp"
#include "http2/memory.hpp"

namespace blitz::http2 {

namespace {

constexpr std::string_view kCookie = "cookie";
// The largest stream id (RFC 9113 §5.1.1): the last stream id of a shutdown notice.
constexpr std::int32_t kMaxStreamId = 0x7FFFFFFF;

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

}  // namespace

// The C callback table: each one finds the ServerSession in user_data.
struct ServerSession::Callbacks {
    static ServerSession& self(void* user) noexcept { return *static_cast<ServerSession*>(user); }

    static Stream* stream(nghttp2_session* s, std::int32_t id) noexcept {
        return static_cast<Stream*>(nghttp2_session_get_stream_user_data(s, id));
    }

    static ssize_t send(nghttp2_session*, const std::uint8_t* data, std::size_t len, int, void* user) {
        self(user).handler_.h2_write(data, len);
        return static_cast<ssize_t>(len);
    }

    static int send_data(nghttp2_session* s, nghttp2_frame* frame, const std::uint8_t* head, std::size_t len,
                         nghttp2_data_source*, void* user) {
        Stream* st = stream(s, frame->hd.stream_id);
        if (st == nullptr) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        self(user).handler_.h2_write_data(*st, head, len);
        return 0;
    }

    static ssize_t read_body(nghttp2_session* s, std::int32_t id, std::uint8_t*, std::size_t max,
                             std::uint32_t* flags, nghttp2_data_source*, void* user) {
        Stream* st = stream(s, id);
        if (st == nullptr) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        bool last = false;
        const std::size_t n = self(user).handler_.h2_body_ready(*st, max, last);
        if (n == 0 && !last) {
            return NGHTTP2_ERR_DEFERRED;
        }
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
        if (last) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            st->response_done = true;
            // nghttp2 lets the trailers be submitted from here; their HEADERS frame carries
            // END_STREAM instead of this DATA frame.
            if (st->response_trailers.size() > 0) {
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                if (!self(user).trailers(*st, st->response_trailers)) {
                    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
                }
            }
        }
        return static_cast<ssize_t>(n);
    }

    static int begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
        ServerSession& me = self(user);
        bool idle = false;
        switch (hd->type) {
            case NGHTTP2_PING:
            case NGHTTP2_SETTINGS:
            case NGHTTP2_PRIORITY:
                idle = true;
                break;
            case NGHTTP2_DATA:
            case NGHTTP2_HEADERS:
            case NGHTTP2_CONTINUATION:
                // An empty frame that does not even end the stream does nothing (CVE-2019-9518).
                idle = hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_STREAM) == 0;
                break;
            case NGHTTP2_RST_STREAM:
            case NGHTTP2_GOAWAY:
            case NGHTTP2_WINDOW_UPDATE:
            case NGHTTP2_PUSH_PROMISE:
                break;
            default:
                idle = true;  // extension frames are ignored: they cost us parsing only
        }
        if (idle) {
            me.spend(me.control_tokens_, me.control_refill_ms_, me.limits_.h2.control_frame_rate,
                     me.limits_.h2.control_frame_burst, Flood::ControlFrames);
        }
        return 0;
    }

    // Extension frames: registered so that on_begin_frame sees (and budgets) them; their
    // payload is dropped unread.
    static int extension_chunk(nghttp2_session*, const nghttp2_frame_hd*, const std::uint8_t*, std::size_t, void*) {
        return 0;
    }

    static int unpack_extension(nghttp2_session*, void**, const nghttp2_frame_hd*, void*) {
        return NGHTTP2_ERR_CANCEL;
    }

    static int begin_headers(nghttp2_session* s, const nghttp2_frame* frame, void* user) {
        ServerSession& me = self(user);
        if (frame->hd.type != NGHTTP2_HEADERS) {
            return 0;
        }
        if (frame->headers.cat == NGHTTP2_HCAT_HEADERS) {
            if (Stream* st = stream(s, frame->hd.stream_id)) {
                // Trailers get arrays of their own: the request head keeps viewing the first.
                st->in_trailers = true;
                st->fields = nullptr;
                st->count = 0;
                st->capacity = 0;
                st->head_bytes = 0;
            }
            return 0;
        }
        if (frame->headers.cat != NGHTTP2_HCAT_REQUEST || me.flood_ != Flood::None) {
            return 0;
        }
        if (me.goaway_sent_ && frame->hd.stream_id > me.goaway_last_id_) {
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
            return 0;
        }
        Stream* st = me.handler_.h2_open(frame->hd.stream_id);
        if (st == nullptr) {
            nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_REFUSED_STREAM);
            return 0;
        }
        st->id = frame->hd.stream_id;
        nghttp2_session_set_stream_user_data(s, frame->hd.stream_id, st);
        return 0;
    }

    // Names and values from HPACK's static table live as long as the library: only the others
    // are copied into the stream's arena.
    static int header(nghttp2_session* s, const nghttp2_frame* frame, nghttp2_rcbuf* name, nghttp2_rcbuf* value,
                      std::uint8_t, void* user) {
        ServerSession& me = self(user);
        Stream* st = stream(s, frame->hd.stream_id);
        if (st == nullptr || me.flood_ != Flood::None) {
            return 0;
        }
        const nghttp2_vec nb = nghttp2_rcbuf_get_buf(name);
        const nghttp2_vec vb = nghttp2_rcbuf_get_buf(value);
        const std::string_view n = view(nb.base, nb.len);
        const std::string_view v = view(vb.base, vb.len);
        const bool value_static = nghttp2_rcbuf_is_static(value) != 0;
        if (!st->in_trailers && !n.empty() && n[0] == ':') {
            Arena& a = *st->arena;
            if (n == ":method") {
                st->method = value_static ? v : a.copy(v);
            } else if (n == ":scheme") {
                st->scheme = value_static ? v : a.copy(v);
            } else if (n == ":authority") {
                st->authority = a.copy(v);
            } else if (n == ":path") {
                st->path = a.copy(v);  // always a copy: it is normalised in place
            }
            st->head_bytes += static_cast<std::uint32_t>(n.size() + v.size() + 32);
            return 0;
        }
        (void)me.add_field(*st, n, v, nghttp2_rcbuf_is_static(name) == 0, !value_static);
        return 0;
    }

    static int frame_recv(nghttp2_session* s, const nghttp2_frame* frame, void* user) {
        ServerSession& me = self(user);
        if (me.flood_ != Flood::None) {
            return 0;
        }
        Stream* st = stream(s, frame->hd.stream_id);
        switch (frame->hd.type) {
            case NGHTTP2_HEADERS:
                if (st == nullptr) {
                    return 0;
                }
                if (!st->in_trailers) {
                    me.finish_head(*st, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
                } else if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && !st->request_done) {
                    st->request_done = true;
                    me.handler_.h2_request_end(*st, {st->fields, st->count});
                }
                return 0;
            case NGHTTP2_DATA:
                if (st != nullptr && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && !st->request_done) {
                    st->request_done = true;
                    me.handler_.h2_request_end(*st, {});
                }
                return 0;
            case NGHTTP2_RST_STREAM:
                // A client that resets streams before their answers are done makes us do work for
                // nothing (Rapid Reset, CVE-2023-44487).
                if (st == nullptr || !st->response_done) {
                    me.spend(me.reset_tokens_, me.reset_refill_ms_, me.limits_.h2.reset_rate,
                             me.limits_.h2.reset_burst, Flood::Resets);
                }
                return 0;
            default:
                return 0;
        }
    }

    static int frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        ServerSession& me = self(user);
        if (frame->hd.type == NGHTTP2_RST_STREAM && frame->rst_stream.error_code != NGHTTP2_NO_ERROR) {
            // Resets the client provoked (a malformed request, a flow-control breach, a stream
            // beyond the limit) count in the same budget: MadeYouReset (CVE-2025-8671).
            me.spend(me.reset_tokens_, me.reset_refill_ms_, me.limits_.h2.reset_rate, me.limits_.h2.reset_burst,
                     Flood::Resets);
        } else if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.last_stream_id != kMaxStreamId) {
            me.goaway_sent_ = true;  // the shutdown notice (2^31-1) still admits new streams
        }
        return 0;
    }

    static int data_chunk(nghttp2_session* s, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
                          void* user) {
        ServerSession& me = self(user);
        Stream* st = stream(s, id);
        if (st == nullptr || me.flood_ != Flood::None || st->error_status != 0) {
            // Nobody reads these bytes: give the window back at once.
            nghttp2_session_consume(s, id, len);
            return 0;
        }
        if (st->response_done) {
            // Answered before its body ended: the rest is read and dropped, as HTTP/1.1 drains
            // it, up to max_drain_bytes; then RFC 9113 §8.1's RST_STREAM NO_ERROR stops the
            // upload. (Not at once: clients such as curl 7.88 drop an answer followed by it.)
            st->drained += len;
            if (st->drained > me.limits_.max_drain_bytes && !st->upload_stopped) {
                st->upload_stopped = true;
                nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
            }
        }
        me.handler_.h2_data(*st, reinterpret_cast<const char*>(data), len);
        return 0;
    }

    static int stream_close(nghttp2_session* s, std::int32_t id, std::uint32_t error, void* user) {
        Stream* st = stream(s, id);
        if (st == nullptr) {
            return 0;
        }
        nghttp2_session_set_stream_user_data(s, id, nullptr);
        self(user).handler_.h2_closed(*st, error);
        return 0;
    }
};

ServerSession::ServerSession(Handler& handler, const Limits& limits) noexcept : handler_(handler), limits_(limits) {
    reset_tokens_ = limits_.h2.reset_burst;
    control_tokens_ = limits_.h2.control_frame_burst;
}

ServerSession::~ServerSession() {
    if (session_ != nullptr) {
        nghttp2_session_del(session_);
    }
}

bool ServerSession::start() {
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        return false;
    }
    nghttp2_session_callbacks_set_send_callback(cb, &Callbacks::send);
    nghttp2_session_callbacks_set_send_data_callback(cb, &Callbacks::send_data);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &Callbacks::begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Callbacks::begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, &Callbacks::header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Callbacks::frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, &Callbacks::frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Callbacks::data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Callbacks::stream_close);
    nghttp2_session_callbacks_set_on_extension_chunk_recv_callback(cb, &Callbacks::extension_chunk);
    nghttp2_session_callbacks_set_unpack_extension_callback(cb, &Callbacks::unpack_extension);

    nghttp2_option* opt = nullptr;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return false;
    }
    const Http2Options& h2 = limits_.h2;
    // Windows reopen as the server hands request bytes on, not as nghttp2 parses them: that is
    // what bounds a stream's buffered body (back-pressure through flow control).
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_continuations(opt, h2.max_continuation_frames);
    // nghttp2's own RST_STREAM limiter is off: ours counts what it cannot (our resets) and spares
    // what it would count (a cancel after the answer was complete).
    nghttp2_option_set_stream_reset_rate_limit(opt, ~std::uint64_t{0}, ~std::uint64_t{0});
    // PING and SETTINGS ACKs queued for a client that does not read (CVE-2019-9512/9515).
    nghttp2_option_set_max_outbound_ack(opt, 64);
    // Frame types RFC 9113 does not define (0x0a ALTSVC and 0x0c ORIGIN are client-bound).
    for (unsigned type = 0x0a; type <= 0xff; ++type) {
        nghttp2_option_set_user_recv_extension_type(opt, static_cast<std::uint8_t>(type));
    }
    const int rv = nghttp2_session_server_new3(&session_, cb, this, opt, session_memory());
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        session_ = nullptr;
        return false;
    }
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, h2.initial_stream_window},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, h2.max_frame_size},
        {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, h2.header_table_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_head_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, std::size(iv)) != 0) {
        return false;
    }
    if (h2.connection_window > 65535 &&
        nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                              static_cast<std::int32_t>(h2.connection_window)) != 0) {
        return false;
    }
    return true;
}

bool ServerSession::spend(double& tokens, std::uint64_t& refill_ms, std::uint32_t rate, std::uint32_t burst,
                          Flood kind) noexcept {
    if (now_ms_ > refill_ms) {
        tokens = std::min<double>(burst, tokens + static_cast<double>(now_ms_ - refill_ms) * rate / 1000.0);
        refill_ms = now_ms_;
    }
    if (tokens >= 1.0) {
        tokens -= 1.0;
        return true;
    }
    if (flood_ == Flood::None) {
        flood_ = kind;
        nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    return false;
}

bool ServerSession::receive(const char* data, std::size_t len, std::uint64_t now_ms) {
    now_ms_ = now_ms;
    if (reset_refill_ms_ == 0) {
        reset_refill_ms_ = now_ms;
        control_refill_ms_ = now_ms;
    }
    if (flood_ != Flood::None) {
        return false;
    }
    const ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), len);
    if (rv < 0) {
        // A bad preface or a fatal protocol error: say so (RFC 9113 §3.4, §5.4.1) and close.
        if (rv == NGHTTP2_ERR_FLOODED) {
            flood_ = Flood::OutboundQueue;
        } else if (rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS) {
            flood_ = Flood::Continuation;
        }
        nghttp2_session_terminate_session(session_, flood_ != Flood::None ? NGHTTP2_ENHANCE_YOUR_CALM
                                                                          : NGHTTP2_PROTOCOL_ERROR);
        return false;
    }
    return flood_ == Flood::None;
}

std::string_view flood_name(Flood flood) noexcept {
    switch (flood) {
        case Flood::Resets:
            return "resets";
        case Flood::ControlFrames:
            return "control_frames";
        case Flood::OutboundQueue:
            return "outbound_queue";
        case Flood::Continuation:
            return "continuation";
        case Flood::None:
            break;
    }
    return "none";
}

bool ServerSession::send() { return nghttp2_session_send(session_) == 0; }

bool ServerSession::done() const noexcept {
    return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
}

bool ServerSession::want_write() const noexcept { return nghttp2_session_want_write(session_) != 0; }

bool ServerSession::add_field(Stream& s, std::string_view name, std::string_view value, bool copy_name,
                              bool copy_value) {
    s.head_bytes += static_cast<std::uint32_t>(name.size() + value.size() + 32);
    if (s.error_status != 0) {
        return false;
    }
    if (s.head_bytes > limits_.max_head_bytes || s.count >= limits_.max_headers) {
        // RFC 9113 §10.5.1 / RFC 6585 §5: answered 431; the rest of the list is not kept (an
        // HPACK bomb costs decoding time only, never memory).
        s.error_status = 431;
        return false;
    }
    if (s.count == s.capacity) {
        const std::uint16_t cap = s.capacity == 0 ? 16 : static_cast<std::uint16_t>(s.capacity * 2);
        auto* grown = static_cast<Header*>(s.arena->allocate(sizeof(Header) * cap, alignof(Header)));
        if (s.count > 0) {
            std::memcpy(static_cast<void*>(grown), s.fields, sizeof(Header) * s.count);
        }
        s.fields = grown;
        s.capacity = cap;
    }
    s.fields[s.count++] = Header{copy_name ? s.arena->copy(name) : name, copy_value ? s.arena->copy(value) : value};
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
    if (status == 0 && !head.authority.empty() && !http::valid_authority(head.authority)) {
        status = 400;
        reason = "invalid authority";
    }
    if (status == 0 && head.method == Method::Connect) {
        status = 501;
        reason = "CONNECT is not supported";
    }
    if (status == 0) {
        std::string_view target = s.path;
        if (target.size() > limits_.max_path_bytes) {
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

bool ServerSession::respond(Stream& s, int status, Headers fields, bool has_body) {
    if (status < 100 || status > 999) {
        return false;
    }
    std::size_t n = 1;
    for (const Header& h : fields) {
        (void)h;
        ++n;
    }
    Arena& a = *s.arena;
    auto* nv = static_cast<nghttp2_nv*>(a.allocate(sizeof(nghttp2_nv) * n, alignof(nghttp2_nv)));
    char* code = static_cast<char*>(a.allocate(3, 1));
    code[0] = static_cast<char>('0' + status / 100);
    code[1] = static_cast<char>('0' + status / 10 % 10);
    code[2] = static_cast<char>('0' + status % 10);
    static constexpr char kStatus[] = ":status";
    nv[0] = nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(kStatus)),
                       reinterpret_cast<std::uint8_t*>(code), 7, 3, NGHTTP2_NV_FLAG_NONE};
    std::size_t k = 1;
    for (const Header& h : fields) {
        const std::string_view name = lower_name(a, h.name);
        if (name.empty() || !valid_value(h.value)) {
            return false;
        }
        if (connection_specific(name)) {
            continue;
        }
        nv[k++] = field_nv(name, h.value);
    }
    if (!has_body) {
        s.response_done = true;
    }
    nghttp2_data_provider body{};
    body.read_callback = &Callbacks::read_body;
    return nghttp2_submit_response(session_, s.id, nv, k, has_body ? &body : nullptr) == 0;
}

bool ServerSession::informational(Stream& s, int status) {
    if (status < 100 || status > 199) {
        return false;
    }
    char code[3] = {static_cast<char>('0' + status / 100), static_cast<char>('0' + status / 10 % 10),
                    static_cast<char>('0' + status % 10)};
    static constexpr char kStatus[] = ":status";
    const nghttp2_nv nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(kStatus)),
                        reinterpret_cast<std::uint8_t*>(code), 7, 3, NGHTTP2_NV_FLAG_NONE};
    // nghttp2 copies the field on submit; a non-final head is sent as HEADERS without END_STREAM.
    return nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, s.id, nullptr, &nv, 1, nullptr) >= 0;
}

bool ServerSession::trailers(Stream& s, Headers fields) {
    std::size_t n = 0;
    for (const Header& h : fields) {
        (void)h;
        ++n;
    }
    auto* nv = static_cast<nghttp2_nv*>(s.arena->allocate(sizeof(nghttp2_nv) * (n + 1), alignof(nghttp2_nv)));
    std::size_t k = 0;
    for (const Header& h : fields) {
        const std::string_view name = lower_name(*s.arena, h.name);
        if (name.empty() || !valid_value(h.value) || connection_specific(name)) {
            continue;
        }
        nv[k++] = field_nv(name, h.value);
    }
    s.response_done = true;
    return nghttp2_submit_trailer(session_, s.id, nv, k) == 0;
}

void ServerSession::resume_body(Stream& s) { (void)nghttp2_session_resume_data(session_, s.id); }

void ServerSession::reset(Stream& s, std::uint32_t error) noexcept {
    (void)nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, error);
}

void ServerSession::consume(Stream& s, std::size_t n) noexcept {
    if (n > 0) {
        (void)nghttp2_session_consume(session_, s.id, n);
    }
}

void ServerSession::consume_connection(std::size_t n) noexcept {
    if (n > 0) {
        (void)nghttp2_session_consume_connection(session_, n);
    }
}

void ServerSession::goaway() noexcept {
    if (goaway_sent_) {
        return;
    }
    goaway_sent_ = true;
    goaway_last_id_ = nghttp2_session_get_last_proc_stream_id(session_);
    (void)nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, goaway_last_id_, NGHTTP2_NO_ERROR, nullptr, 0);
}

void ServerSession::shutdown_notice() noexcept {
    if (!goaway_sent_) {
        (void)nghttp2_submit_shutdown_notice(session_);
    }
}

void ServerSession::terminate(std::uint32_t error) noexcept {
    (void)nghttp2_session_terminate_session(session_, error);
}

std::int32_t ServerSession::send_window(const Stream& s) const noexcept {
    return std::min(nghttp2_session_get_stream_remote_window_size(session_, s.id),
                    nghttp2_session_get_remote_window_size(session_));
}

}  // namespace blitz::http2

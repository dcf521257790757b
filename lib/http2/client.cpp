#include "http2/client.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstring>

#include "http2/fields.hpp"
#include "http2/memory.hpp"

namespace blitz::http2 {

// The C callback table: each one finds the ClientSession in user_data.
struct ClientSession::Callbacks {
    static ClientSession& self(void* user) noexcept { return *static_cast<ClientSession*>(user); }

    static ClientStream* stream(nghttp2_session* s, std::int32_t id) noexcept {
        return static_cast<ClientStream*>(nghttp2_session_get_stream_user_data(s, id));
    }

    static ssize_t send(nghttp2_session*, const std::uint8_t* data, std::size_t len, int, void* user) {
        self(user).handler_.h2c_write(data, len);
        return static_cast<ssize_t>(len);
    }

    static int send_data(nghttp2_session* s, nghttp2_frame* frame, const std::uint8_t* head, std::size_t len,
                         nghttp2_data_source*, void* user) {
        ClientStream* st = stream(s, frame->hd.stream_id);
        if (st == nullptr) {
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        self(user).handler_.h2c_write_data(*st, head, len);
        return 0;
    }

    static ssize_t read_body(nghttp2_session* s, std::int32_t id, std::uint8_t*, std::size_t max,
                             std::uint32_t* flags, nghttp2_data_source*, void* user) {
        ClientStream* st = stream(s, id);
        if (st == nullptr) {
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        bool last = false;
        const std::size_t n = self(user).handler_.h2c_body_ready(*st, max, last);
        if (n == 0 && !last) {
            return NGHTTP2_ERR_DEFERRED;
        }
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
        if (last) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            // nghttp2 lets the trailers be submitted from here; their HEADERS frame carries
            // END_STREAM instead of this DATA frame.
            if (st->request_trailers.size() > 0 && self(user).submit_trailers(*st)) {
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            }
        }
        return static_cast<ssize_t>(n);
    }

    static int begin_headers(nghttp2_session* s, const nghttp2_frame* frame, void*) {
        ClientStream* st = stream(s, frame->hd.stream_id);
        if (st == nullptr || frame->hd.type != NGHTTP2_HEADERS) {
            return 0;
        }
        // A HEADERS frame after a 1xx head is the next head; after a final one, the trailers
        // (RFC 9113 §8.1). Each gets a field array of its own: the earlier one stays viewed.
        st->in_trailers = st->status >= 200;
        if (!st->in_trailers) {
            st->status = 0;
        }
        st->fields = nullptr;
        st->count = 0;
        st->capacity = 0;
        st->head_bytes = 0;
        return 0;
    }

    static int header(nghttp2_session* s, const nghttp2_frame* frame, nghttp2_rcbuf* name, nghttp2_rcbuf* value,
                      std::uint8_t, void* user) {
        ClientStream* st = stream(s, frame->hd.stream_id);
        if (st == nullptr) {
            return 0;
        }
        const nghttp2_vec nb = nghttp2_rcbuf_get_buf(name);
        const nghttp2_vec vb = nghttp2_rcbuf_get_buf(value);
        const std::string_view n = view(nb.base, nb.len);
        const std::string_view v = view(vb.base, vb.len);
        if (n == ":status") {
            // nghttp2 has checked it is three digits (its HTTP messaging rules), not that it is
            // a status code: those are 100 to 599 (RFC 9110 §15), as for HTTP/1.1 upstreams.
            const int status = (v[0] - '0') * 100 + (v[1] - '0') * 10 + (v[2] - '0');
            if (status < 100 || status > 599) {
                // The stream is reset (INTERNAL_ERROR, as for too large a head): nghttp2 lets
                // this callback fail a stream but not choose the code.
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            st->status = status;
            return 0;
        }
        if (!self(user).add_field(*st, n, v)) {
            // The stream is reset (INTERNAL_ERROR): too large a head is a bad response.
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return 0;
    }

    static int frame_recv(nghttp2_session* s, const nghttp2_frame* frame, void* user) {
        if (frame->hd.type == NGHTTP2_GOAWAY) {
            self(user).goaway_received_ = true;
        }
        ClientStream* st = stream(s, frame->hd.stream_id);
        if (st == nullptr) {
            return 0;
        }
        const bool end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
        if (end) {
            // The response is complete: the stream is the handler's no more (its owner may
            // start the next request on the same ClientStream from the callback below).
            release(s, frame->hd.stream_id);
        }
        ClientHandler& h = self(user).handler_;
        if (frame->hd.type == NGHTTP2_HEADERS) {
            if (st->in_trailers) {
                h.h2c_end(*st);
            } else {
                h.h2c_head(*st, end);
            }
        } else if (frame->hd.type == NGHTTP2_DATA && end) {
            h.h2c_end(*st);
        }
        return 0;
    }

    // Forgets a stream whose response ended. An upload still going is stopped: the answer
    // needs no more of it (RFC 9113 §8.1 lets a server do the same).
    static void release(nghttp2_session* s, std::int32_t id) noexcept {
        give_back(s, *stream(s, id));
        nghttp2_session_set_stream_user_data(s, id, nullptr);
        if (nghttp2_session_get_stream_local_close(s, id) == 0) {
            (void)nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
        }
    }

    static int data_chunk(nghttp2_session* s, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
                          void* user) {
        ClientStream* st = stream(s, id);
        if (st == nullptr) {
            // A stream we cancelled: nobody reads these bytes, the window is given back.
            nghttp2_session_consume(s, id, len);
            return 0;
        }
        st->unconsumed += static_cast<std::uint32_t>(len);
        self(user).handler_.h2c_data(*st, reinterpret_cast<const char*>(data), len);
        return 0;
    }

    // A stream that ended returns what it still held of the connection window: the bytes are
    // ours now, and other streams must not wait for a slow client of this one.
    static void give_back(nghttp2_session* s, ClientStream& st) noexcept {
        if (st.unconsumed > 0) {
            (void)nghttp2_session_consume_connection(s, st.unconsumed);
            st.unconsumed = 0;
        }
    }

    static int stream_close(nghttp2_session* s, std::int32_t id, std::uint32_t error, void* user) {
        ClientSession& me = self(user);
        --me.open_;
        ClientStream* st = stream(s, id);
        if (st == nullptr) {
            return 0;
        }
        give_back(s, *st);
        nghttp2_session_set_stream_user_data(s, id, nullptr);
        me.handler_.h2c_closed(*st, error);
        return 0;
    }
};

ClientSession::ClientSession(ClientHandler& handler, const ClientLimits& limits) noexcept
    : handler_(handler), limits_(limits) {}

ClientSession::~ClientSession() { nghttp2_session_del(session_); }

bool ClientSession::start() {
    nghttp2_session_callbacks* cb = nullptr;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        return false;
    }
    nghttp2_session_callbacks_set_send_callback(cb, &Callbacks::send);
    nghttp2_session_callbacks_set_send_data_callback(cb, &Callbacks::send_data);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Callbacks::begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cb, &Callbacks::header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Callbacks::frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Callbacks::data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Callbacks::stream_close);
    nghttp2_option* opt = nullptr;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return false;
    }
    // Stream windows reopen as response bytes are handed to the client, so a slow client holds
    // the upstream back instead of making us buffer (RFC 9113 §5.2).
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 64);
    const int rv = nghttp2_session_client_new3(&session_, cb, this, opt, session_memory());
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        session_ = nullptr;
        return false;
    }
    const nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits_.stream_window},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits_.max_head_bytes},
    };
    if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, iv, std::size(iv)) != 0) {
        return false;
    }
    return limits_.connection_window <= 65535 ||
           nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                                 static_cast<std::int32_t>(limits_.connection_window)) == 0;
}

bool ClientSession::receive(const char* data, std::size_t len) {
    if (failed_) {
        return false;
    }
    const ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(data), len);
    if (rv < 0) {
        failed_ = true;
        nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
        return false;
    }
    // nghttp2 answers most protocol errors (no SETTINGS first, RFC 9113 §3.4; a bad frame,
    // §5.4.1) by queuing GOAWAY and ignoring what follows, and mem_recv still succeeds. Such a
    // session allows no request although the server sent no GOAWAY and stream ids are left.
    if (nghttp2_session_check_request_allowed(session_) == 0 && !goaway_received_ &&
        nghttp2_session_get_next_stream_id(session_) <= static_cast<std::uint32_t>(INT32_MAX)) {
        failed_ = true;
        return false;
    }
    return true;
}

bool ClientSession::send() {
    if (nghttp2_session_send(session_) != 0) {
        failed_ = true;
        return false;
    }
    return true;
}

bool ClientSession::want_write() const noexcept { return nghttp2_session_want_write(session_) != 0; }

bool ClientSession::done() const noexcept {
    return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
}

bool ClientSession::closing() const noexcept {
    return failed_ || nghttp2_session_check_request_allowed(session_) == 0;
}

bool ClientSession::can_open() const noexcept {
    const std::uint32_t limit =
        std::min(nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
                 limits_.max_streams);
    return !closing() && open_ < limit;
}

bool ClientSession::add_field(ClientStream& s, std::string_view name, std::string_view value) {
    s.head_bytes += static_cast<std::uint32_t>(name.size() + value.size() + 32);
    if (s.head_bytes > limits_.max_head_bytes || s.count >= limits_.max_headers) {
        s.too_large = true;
        return false;
    }
    append_field(s, Header{s.arena->copy(name), s.arena->copy(value)});
    return true;
}

std::int32_t ClientSession::submit(ClientStream& s, std::string_view method, std::string_view scheme,
                                   std::string_view authority, std::string_view path, Headers fields,
                                   bool has_body) {
    Arena& a = *s.arena;
    std::size_t n = 4;
    for (const Header& h : fields) {
        (void)h;
        ++n;
    }
    auto* nv = static_cast<nghttp2_nv*>(a.allocate(sizeof(nghttp2_nv) * n, alignof(nghttp2_nv)));
    std::size_t k = 0;
    nv[k++] = field_nv(":method", method);
    nv[k++] = field_nv(":scheme", scheme);
    if (!authority.empty()) {
        nv[k++] = field_nv(":authority", authority);
    }
    nv[k++] = field_nv(":path", path);
    for (const Header& h : fields) {
        const std::string_view name = lower_name(a, h.name);
        if (name.empty() || !valid_value(h.value)) {
            return 0;
        }
        if (name == "host") {
            continue;  // carried by :authority (RFC 9113 §8.3.1)
        }
        if (connection_specific(name) && !(name == "te" && iequals(h.value, "trailers"))) {
            continue;
        }
        nv[k++] = field_nv(name, h.value);
    }
    s.status = 0;
    s.fields = nullptr;
    s.count = 0;
    s.capacity = 0;
    s.head_bytes = 0;
    s.unconsumed = 0;
    s.in_trailers = false;
    s.too_large = false;
    nghttp2_data_provider body{};
    body.read_callback = &Callbacks::read_body;
    const std::int32_t id = nghttp2_submit_request(session_, nullptr, nv, k, has_body ? &body : nullptr, &s);
    if (id < 0) {
        return 0;
    }
    s.id = id;
    ++open_;
    return id;
}

bool ClientSession::submit_trailers(ClientStream& s) {
    const std::size_t n = s.request_trailers.size();
    auto* nv = static_cast<nghttp2_nv*>(s.arena->allocate(sizeof(nghttp2_nv) * n, alignof(nghttp2_nv)));
    std::size_t k = 0;
    for (const Header& h : s.request_trailers) {
        const std::string_view name = lower_name(*s.arena, h.name);
        if (name.empty() || !valid_value(h.value) || connection_specific(name)) {
            continue;
        }
        nv[k++] = field_nv(name, h.value);
    }
    return k > 0 && nghttp2_submit_trailer(session_, s.id, nv, k) == 0;
}

void ClientSession::resume_body(ClientStream& s) { (void)nghttp2_session_resume_data(session_, s.id); }

void ClientSession::consume(ClientStream& s) noexcept {
    if (s.unconsumed > 0 && nghttp2_session_get_stream_user_data(session_, s.id) == &s) {
        (void)nghttp2_session_consume(session_, s.id, s.unconsumed);
        s.unconsumed = 0;
    }
}

void ClientSession::cancel(ClientStream& s) noexcept {
    if (s.id <= 0) {
        return;
    }
    if (nghttp2_session_get_stream_user_data(session_, s.id) == &s) {
        Callbacks::give_back(session_, s);
        nghttp2_session_set_stream_user_data(session_, s.id, nullptr);
        (void)nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
    } else if (nghttp2_session_get_stream_local_close(session_, s.id) == -1 &&
               nghttp2_session_set_stream_user_data(session_, s.id, nullptr) == 0) {
        // The request is still queued: nghttp2 opens its stream (and only then shows its user
        // data) when send() writes the HEADERS. Setting the user data finds the queued request;
        // the reset cancels it, and send() closes the stream without a frame.
        (void)nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, NGHTTP2_CANCEL);
    }
    s.id = 0;
}

void ClientSession::goaway() noexcept {
    (void)nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                                NGHTTP2_NO_ERROR, nullptr, 0);
}

}  // namespace blitz::http2

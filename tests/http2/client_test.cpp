// http2::ClientSession driven against an in-process nghttp2 *server* session: the client's
// frames (h2c_write / h2c_write_data) go into the server's mem_recv, the server's into
// receive(), so every case runs against an independent HTTP/2 implementation without sockets.

#include "http2/client.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include <blitz/arena.hpp>
#include <blitz/http.hpp>

using blitz::Arena;
using blitz::Header;
using blitz::Headers;
namespace http2 = blitz::http2;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

Fields copy_fields(const http2::ClientStream& s) {
    Fields out;
    for (std::uint16_t i = 0; i < s.count; ++i) {
        out.emplace_back(std::string(s.fields[i].name), std::string(s.fields[i].value));
    }
    return out;
}

/// The client side's view of one request, kept after the codec let go of it.
struct TestStream : http2::ClientStream {
    Arena mem;
    std::vector<int> statuses;
    std::vector<Fields> heads;
    std::vector<bool> head_end;
    std::string body;
    int data_calls = 0;
    bool ended = false;
    Fields trailers;
    bool closed = false;
    std::uint32_t close_error = 0;
    // request body served through h2c_body_ready / h2c_write_data
    std::string req_body;
    std::size_t req_ready = 0;  // bytes of req_body ready to go
    bool req_done = false;      // req_ready reaching the end is the last of it
    std::size_t req_sent = 0;

    TestStream() { arena = &mem; }
};

class TestHandler final : public http2::ClientHandler {
public:
    std::string out;  // frames for the server
    std::vector<std::string> events;
    std::function<void(TestStream&)> on_end;

    void h2c_head(http2::ClientStream& cs, bool end_stream) override {
        auto& s = static_cast<TestStream&>(cs);
        s.statuses.push_back(s.status);
        s.heads.push_back(copy_fields(s));
        s.head_end.push_back(end_stream);
        events.push_back("head " + std::to_string(s.id));
    }
    void h2c_data(http2::ClientStream& cs, const char* data, std::size_t len) override {
        auto& s = static_cast<TestStream&>(cs);
        s.body.append(data, len);
        ++s.data_calls;
        events.push_back("data " + std::to_string(s.id));
    }
    void h2c_end(http2::ClientStream& cs) override {
        auto& s = static_cast<TestStream&>(cs);
        s.ended = true;
        if (s.in_trailers) {
            s.trailers = copy_fields(s);
        }
        events.push_back("end " + std::to_string(s.id));
        if (on_end) {
            on_end(s);
        }
    }
    void h2c_closed(http2::ClientStream& cs, std::uint32_t error) override {
        auto& s = static_cast<TestStream&>(cs);
        s.closed = true;
        s.close_error = error;
        events.push_back("closed " + std::to_string(s.id));
    }
    void h2c_write(const std::uint8_t* data, std::size_t len) override {
        out.append(reinterpret_cast<const char*>(data), len);
    }
    std::size_t h2c_body_ready(http2::ClientStream& cs, std::size_t max, bool& last) override {
        auto& s = static_cast<TestStream&>(cs);
        const std::size_t n = std::min(max, s.req_ready - s.req_sent);
        last = s.req_done && s.req_sent + n == s.req_ready;
        return n;
    }
    void h2c_write_data(http2::ClientStream& cs, const std::uint8_t* frame_head, std::size_t len) override {
        auto& s = static_cast<TestStream&>(cs);
        out.append(reinterpret_cast<const char*>(frame_head), 9);
        out.append(s.req_body, s.req_sent, len);
        s.req_sent += len;
    }
};

/// What the server peer saw of one stream, and what it answers.
struct PeerStream {
    Fields request;
    std::string body;
    bool end_stream = false;  // the request's END_STREAM arrived
    bool closed = false;
    std::uint32_t close_error = 0;
    std::int64_t rst_received = -1;  // the client's RST_STREAM code
    // response body served by the data provider
    std::string out;
    std::size_t out_sent = 0;
    Fields trailers;  // sent after `out` when not empty
};

/// A raw nghttp2 server session with callbacks of its own.
class Peer {
public:
    std::map<std::int32_t, PeerStream> streams;
    std::string out;  // frames for the client

    explicit Peer(std::vector<nghttp2_settings_entry> settings = {}) {
        nghttp2_session_callbacks* cb = nullptr;
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_send_callback(cb, &Peer::on_send);
        nghttp2_session_callbacks_set_on_header_callback(cb, &Peer::on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Peer::on_data);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Peer::on_frame);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Peer::on_close);
        nghttp2_session_server_new(&session_, cb, this);
        nghttp2_session_callbacks_del(cb);
        nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
    }
    ~Peer() { nghttp2_session_del(session_); }
    Peer(const Peer&) = delete;
    Peer& operator=(const Peer&) = delete;

    nghttp2_session* session() { return session_; }

    /// Queues a response: a head, then `body` (none: END_STREAM on the head), then trailers.
    void respond(std::int32_t id, const Fields& head, std::string body = {}, Fields trailers = {},
                 bool with_body = true) {
        PeerStream& ps = streams[id];
        ps.out = std::move(body);
        ps.trailers = std::move(trailers);
        std::vector<nghttp2_nv> nv = to_nv(head);
        nghttp2_data_provider prd{};
        prd.read_callback = &Peer::read_body;
        const bool body_follows = with_body && (!ps.out.empty() || !ps.trailers.empty());
        REQUIRE(nghttp2_submit_response(session_, id, nv.data(), nv.size(), body_follows ? &prd : nullptr) == 0);
    }
    /// A head without END_STREAM and without a body yet (1xx).
    void informational(std::int32_t id, const Fields& head) {
        std::vector<nghttp2_nv> nv = to_nv(head);
        REQUIRE(nghttp2_submit_headers(session_, NGHTTP2_FLAG_NONE, id, nullptr, nv.data(), nv.size(), nullptr) ==
                0);
    }

    void feed(const std::string& in) {
        if (in.empty()) {
            return;
        }
        const ssize_t rv =
            nghttp2_session_mem_recv(session_, reinterpret_cast<const std::uint8_t*>(in.data()), in.size());
        INFO("server mem_recv: " << nghttp2_strerror(static_cast<int>(rv)));
        REQUIRE(rv == static_cast<ssize_t>(in.size()));
    }
    void flush() { REQUIRE(nghttp2_session_send(session_) == 0); }

private:
    static std::vector<nghttp2_nv> to_nv(const Fields& f) {
        std::vector<nghttp2_nv> nv;
        for (const auto& [n, v] : f) {
            nv.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                                    NGHTTP2_NV_FLAG_NONE});
        }
        return nv;
    }
    static Peer& self(void* u) { return *static_cast<Peer*>(u); }
    static ssize_t on_send(nghttp2_session*, const std::uint8_t* data, std::size_t len, int, void* u) {
        self(u).out.append(reinterpret_cast<const char*>(data), len);
        return static_cast<ssize_t>(len);
    }
    static int on_header(nghttp2_session*, const nghttp2_frame* f, const std::uint8_t* n, std::size_t nl,
                         const std::uint8_t* v, std::size_t vl, std::uint8_t, void* u) {
        self(u).streams[f->hd.stream_id].request.emplace_back(std::string(reinterpret_cast<const char*>(n), nl),
                                                              std::string(reinterpret_cast<const char*>(v), vl));
        return 0;
    }
    static int on_data(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* d, std::size_t len,
                       void* u) {
        self(u).streams[id].body.append(reinterpret_cast<const char*>(d), len);
        return 0;
    }
    static int on_frame(nghttp2_session*, const nghttp2_frame* f, void* u) {
        if (f->hd.stream_id == 0) {
            return 0;
        }
        PeerStream& ps = self(u).streams[f->hd.stream_id];
        if ((f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA) &&
            (f->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
            ps.end_stream = true;
        }
        if (f->hd.type == NGHTTP2_RST_STREAM) {
            ps.rst_received = f->rst_stream.error_code;
        }
        return 0;
    }
    static int on_close(nghttp2_session*, std::int32_t id, std::uint32_t error, void* u) {
        PeerStream& ps = self(u).streams[id];
        ps.closed = true;
        ps.close_error = error;
        return 0;
    }
    static ssize_t read_body(nghttp2_session* s, std::int32_t id, std::uint8_t* buf, std::size_t max,
                             std::uint32_t* flags, nghttp2_data_source*, void* u) {
        PeerStream& ps = self(u).streams[id];
        const std::size_t n = std::min(max, ps.out.size() - ps.out_sent);
        std::memcpy(buf, ps.out.data() + ps.out_sent, n);
        ps.out_sent += n;
        if (ps.out_sent == ps.out.size()) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            if (!ps.trailers.empty()) {
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
                std::vector<nghttp2_nv> nv = to_nv(ps.trailers);
                if (nghttp2_submit_trailer(s, id, nv.data(), nv.size()) != 0) {
                    return NGHTTP2_ERR_CALLBACK_FAILURE;
                }
            }
        }
        return static_cast<ssize_t>(n);
    }

    nghttp2_session* session_ = nullptr;
};

/// A ClientSession, its handler and the server peer, with the bytes shuttled between them.
struct Pair {
    TestHandler h;
    http2::ClientSession client;
    Peer server;

    explicit Pair(const http2::ClientLimits& limits = {}, std::vector<nghttp2_settings_entry> settings = {})
        : client(h, limits), server(std::move(settings)) {
        REQUIRE(client.start());
        pump();
    }

    /// Moves bytes both ways until neither side has anything to say. The server's frames reach
    /// the client first, so frames it queued cross a client action taken since (a cancel, say).
    void pump() {
        for (int round = 0; round < 100; ++round) {
            server.flush();
            std::string to_client;
            to_client.swap(server.out);
            if (!to_client.empty()) {
                REQUIRE(client.receive(to_client.data(), to_client.size()));
            }
            REQUIRE(client.send());
            std::string to_server;
            to_server.swap(h.out);
            server.feed(to_server);
            if (to_client.empty() && to_server.empty()) {
                return;
            }
        }
        FAIL("the peers never went quiet");
    }

    std::int32_t get(TestStream& s, std::string_view path, const std::vector<Header>& fields = {},
                     bool has_body = false, std::string_view method = "GET") {
        return client.submit(s, method, "https", "a.example", path, Headers(fields), has_body);
    }
};

const Fields kOk = {{":status", "200"}};

bool has_field(const Fields& f, std::string_view name) {
    return std::any_of(f.begin(), f.end(), [&](const auto& p) { return p.first == name; });
}

std::string field(const Fields& f, std::string_view name) {
    for (const auto& [n, v] : f) {
        if (n == name) {
            return v;
        }
    }
    return "<absent>";
}

}  // namespace

TEST_CASE("http2::ClientSession sends a GET with lower-cased fields and no connection-specific ones", "[http2]") {
    Pair p;
    TestStream s;
    const std::vector<Header> fields = {
        {"Host", "other.example"}, {"X-Custom", "v1"},         {"Connection", "keep-alive"},
        {"Keep-Alive", "5"},       {"Transfer-Encoding", "chunked"}, {"Upgrade", "h2c"},
        {"Proxy-Connection", "x"}, {"TE", "trailers"},          {"Accept", "*/*"},
    };
    const std::int32_t id = p.get(s, "/a?b=1", fields);
    REQUIRE(id == 1);
    CHECK(s.id == 1);
    CHECK(p.client.open_streams() == 1);
    p.pump();
    const PeerStream& ps = p.server.streams[1];
    CHECK(ps.end_stream);
    const Fields want = {{":method", "GET"}, {":scheme", "https"}, {":authority", "a.example"}, {":path", "/a?b=1"},
                         {"x-custom", "v1"}, {"te", "trailers"},   {"accept", "*/*"}};
    CHECK(ps.request == want);

    TestStream s2;
    REQUIRE(p.get(s2, "/", {{"TE", "gzip"}, {"x-b", "2"}}) == 3);
    p.pump();
    CHECK_FALSE(has_field(p.server.streams[3].request, "te"));
    CHECK(field(p.server.streams[3].request, "x-b") == "2");
}

TEST_CASE("http2::ClientSession::submit refuses a field HTTP/2 cannot carry", "[http2]") {
    Pair p;
    TestStream s;
    CHECK(p.get(s, "/", {{"x-a", "one\r\ntwo"}}) == 0);
    CHECK(p.get(s, "/", {{"x-a", std::string_view("a\0b", 3)}}) == 0);
    CHECK(p.get(s, "/", {{"bad name", "v"}}) == 0);
    CHECK(p.get(s, "/", {{std::string_view("x\0a", 3), "v"}}) == 0);  // lower case but for the NUL
    CHECK(p.get(s, "/", {{"X-Upper", "v"}}) == 1);                    // lower-cased, sent
    CHECK(p.client.open_streams() == 1);
    p.pump();
    REQUIRE(p.server.streams.size() == 1);
    CHECK(field(p.server.streams.begin()->second.request, "x-upper") == "v");
    TestStream t;
    CHECK(p.get(t, "/", {{"x-a", "fine"}}) == 3);
}

TEST_CASE("http2::ClientSession delivers a response head, its body and its end, and no close after", "[http2]") {
    Pair p;
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    p.server.respond(1, {{":status", "200"}, {"content-type", "text/plain"}, {"x-n", "1"}}, "hello, world");
    p.pump();
    REQUIRE(s.statuses == std::vector<int>{200});
    CHECK(s.heads[0] == Fields{{"content-type", "text/plain"}, {"x-n", "1"}});
    CHECK(s.head_end == std::vector<bool>{false});
    CHECK(s.body == "hello, world");
    CHECK(s.ended);
    CHECK_FALSE(s.in_trailers);
    CHECK_FALSE(s.closed);
    CHECK(p.h.events == std::vector<std::string>{"head 1", "data 1", "end 1"});
    CHECK(p.client.open_streams() == 0);
}

TEST_CASE("http2::ClientSession lets h2c_end submit the next request on the same stream", "[http2]") {
    Pair p;
    TestStream s;
    int resubmitted = 0;
    p.h.on_end = [&](TestStream& st) {
        if (resubmitted++ == 0) {
            st.body.clear();
            st.ended = false;
            CHECK(p.get(st, "/second") == 3);
        }
    };
    REQUIRE(p.get(s, "/first") == 1);
    p.pump();
    p.server.respond(1, kOk, "one");
    p.pump();
    REQUIRE(resubmitted == 1);
    CHECK(s.id == 3);
    CHECK(field(p.server.streams[3].request, ":path") == "/second");
    p.server.respond(3, kOk, "two");
    p.pump();
    CHECK(s.ended);
    CHECK(s.body == "two");
    CHECK_FALSE(s.closed);
    CHECK(p.h.events == std::vector<std::string>{"head 1", "data 1", "end 1", "head 3", "data 3", "end 3"});
}

TEST_CASE("http2::ClientSession reports a head with END_STREAM as the whole response", "[http2]") {
    Pair p;
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    p.server.respond(1, {{":status", "204"}, {"x-a", "b"}});
    p.pump();
    CHECK(s.statuses == std::vector<int>{204});
    CHECK(s.head_end == std::vector<bool>{true});
    CHECK(s.heads[0] == Fields{{"x-a", "b"}});
    CHECK(p.h.events == std::vector<std::string>{"head 1"});
    CHECK(p.client.open_streams() == 0);
}

TEST_CASE("http2::ClientSession delivers 100 Continue and the final head separately", "[http2]") {
    Pair p;
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    p.server.informational(1, {{":status", "100"}, {"x-info", "i"}});
    p.server.respond(1, {{":status", "200"}, {"x-final", "f"}}, "body");
    p.pump();
    REQUIRE(s.statuses == std::vector<int>{100, 200});
    CHECK(s.heads[0] == Fields{{"x-info", "i"}});
    CHECK(s.heads[1] == Fields{{"x-final", "f"}});
    CHECK(s.head_end == std::vector<bool>{false, false});
    CHECK(s.body == "body");
    CHECK(p.h.events == std::vector<std::string>{"head 1", "head 1", "data 1", "end 1"});
}

TEST_CASE("http2::ClientSession ends a response with its trailers", "[http2]") {
    Pair p;
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    p.server.respond(1, {{":status", "200"}, {"x-head", "h"}}, "data", {{"grpc-status", "0"}, {"x-t", "t"}});
    p.pump();
    CHECK(s.heads.at(0) == Fields{{"x-head", "h"}});
    CHECK(s.body == "data");
    CHECK(s.ended);
    CHECK(s.in_trailers);
    CHECK(s.trailers == Fields{{"grpc-status", "0"}, {"x-t", "t"}});
    CHECK_FALSE(s.closed);
    CHECK(p.h.events == std::vector<std::string>{"head 1", "data 1", "end 1"});
}

TEST_CASE("http2::ClientSession sends a request body as it becomes ready", "[http2]") {
    Pair p;
    TestStream s;
    s.req_body = std::string(40000, 'x') + "tail";
    s.req_ready = 0;
    REQUIRE(p.get(s, "/upload", {{"content-length", std::to_string(s.req_body.size())}}, true, "POST") == 1);
    p.pump();
    // Nothing ready: the HEADERS went without END_STREAM and no DATA follows.
    CHECK(p.server.streams[1].request.size() == 5);
    CHECK(p.server.streams[1].body.empty());
    CHECK_FALSE(p.server.streams[1].end_stream);
    CHECK(s.req_sent == 0);

    s.req_ready = 30000;
    p.client.resume_body(s);
    p.pump();
    CHECK(p.server.streams[1].body == s.req_body.substr(0, 30000));
    CHECK_FALSE(p.server.streams[1].end_stream);

    s.req_ready = s.req_body.size();
    s.req_done = true;
    p.client.resume_body(s);
    p.pump();
    CHECK(p.server.streams[1].body == s.req_body);
    CHECK(p.server.streams[1].end_stream);

    p.server.respond(1, kOk, "ok");
    p.pump();
    CHECK(s.ended);
    CHECK(s.body == "ok");
}

TEST_CASE("http2::ClientSession holds the server to the stream window until consume()", "[http2]") {
    http2::ClientLimits limits;
    limits.stream_window = 1000;
    Pair p(limits);
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    p.server.respond(1, kOk, std::string(2500, 'b'));
    p.pump();
    CHECK(s.body.size() == 1000);
    CHECK(s.unconsumed == 1000);
    CHECK_FALSE(s.ended);
    p.pump();
    CHECK(s.body.size() == 1000);

    p.client.consume(s);
    CHECK(s.unconsumed == 0);
    p.pump();
    CHECK(s.body.size() == 2000);
    p.client.consume(s);
    p.pump();
    CHECK(s.body == std::string(2500, 'b'));
    CHECK(s.ended);
}

TEST_CASE("http2::ClientSession gives a cancelled stream's unconsumed bytes back to the connection", "[http2]") {
    // Connection and stream windows of 65535: stream 1 takes the whole connection window.
    http2::ClientLimits limits;
    limits.stream_window = 65535;
    limits.connection_window = 65535;
    Pair p(limits);
    TestStream s1;
    REQUIRE(p.get(s1, "/big") == 1);
    p.pump();
    p.server.respond(1, kOk, std::string(100000, 'a'));
    p.pump();
    REQUIRE(s1.body.size() == 65535);
    CHECK(s1.unconsumed == 65535);
    p.client.cancel(s1);
    p.pump();
    CHECK(p.server.streams[1].rst_received == NGHTTP2_CANCEL);

    TestStream s2;
    REQUIRE(p.get(s2, "/small") == 3);
    p.pump();
    p.server.respond(3, kOk, std::string(30000, 'c'));
    p.pump();
    CHECK(s2.body.size() == 30000);
    CHECK(s2.ended);
}

TEST_CASE("http2::ClientSession gives an ended stream's unconsumed bytes back to the connection", "[http2]") {
    http2::ClientLimits limits;
    limits.stream_window = 65535;
    limits.connection_window = 65535;
    Pair p(limits);
    TestStream s1;
    REQUIRE(p.get(s1, "/big") == 1);
    p.pump();
    p.server.respond(1, kOk, std::string(65535, 'a'));
    p.pump();
    REQUIRE(s1.ended);
    CHECK(s1.body.size() == 65535);

    TestStream s2;
    REQUIRE(p.get(s2, "/small") == 3);
    p.pump();
    p.server.respond(3, kOk, std::string(30000, 'c'));
    p.pump();
    CHECK(s2.body.size() == 30000);
    CHECK(s2.ended);
}

TEST_CASE("http2::ClientSession::cancel resets the stream and silences its callbacks", "[http2]") {
    Pair p;
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    // The response is on its way when the client gives up: it crosses the RST_STREAM.
    p.server.respond(1, kOk, "late body");
    p.client.cancel(s);
    CHECK(s.id == 0);
    p.pump();
    CHECK(p.server.streams[1].rst_received == NGHTTP2_CANCEL);
    CHECK(p.h.events.empty());
    CHECK(p.client.open_streams() == 0);
    CHECK(p.client.can_open());
}

TEST_CASE("http2::ClientSession closes a stream the server refused with REFUSED_STREAM", "[http2]") {
    Pair p;
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    REQUIRE(nghttp2_submit_rst_stream(p.server.session(), NGHTTP2_FLAG_NONE, 1, NGHTTP2_REFUSED_STREAM) == 0);
    p.pump();
    CHECK(s.closed);
    CHECK(s.close_error == NGHTTP2_REFUSED_STREAM);
    CHECK(p.h.events == std::vector<std::string>{"closed 1"});
    CHECK(p.client.open_streams() == 0);
}

TEST_CASE("http2::ClientSession refuses streams above a GOAWAY's last stream id", "[http2]") {
    Pair p;
    TestStream s1, s3;
    REQUIRE(p.get(s1, "/one") == 1);
    REQUIRE(p.get(s3, "/three") == 3);
    p.pump();
    CHECK(p.client.can_open());
    CHECK_FALSE(p.client.closing());
    REQUIRE(nghttp2_submit_goaway(p.server.session(), NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, nullptr, 0) == 0);
    p.pump();
    CHECK(s3.closed);
    CHECK(s3.close_error == NGHTTP2_REFUSED_STREAM);
    CHECK_FALSE(s1.closed);
    CHECK(p.client.closing());
    CHECK_FALSE(p.client.can_open());
    // Stream 1 still finishes.
    p.server.respond(1, kOk, "done");
    p.pump();
    CHECK(s1.ended);
    CHECK(s1.body == "done");
    CHECK_FALSE(s1.closed);
}

TEST_CASE("http2::ClientSession refuses a request submitted but unsent when GOAWAY arrives", "[http2]") {
    Pair p;
    TestStream s1;
    REQUIRE(p.get(s1, "/one") == 1);
    p.pump();
    REQUIRE(nghttp2_submit_goaway(p.server.session(), NGHTTP2_FLAG_NONE, 1, NGHTTP2_NO_ERROR, nullptr, 0) == 0);
    p.server.flush();
    // Stream 3 is queued before the GOAWAY is read and never goes out: it must still close.
    TestStream s3;
    REQUIRE(p.get(s3, "/three") == 3);
    std::string to_client;
    to_client.swap(p.server.out);
    REQUIRE(p.client.receive(to_client.data(), to_client.size()));
    p.pump();
    CHECK(s3.closed);
    CHECK(s3.close_error == NGHTTP2_REFUSED_STREAM);
    CHECK(p.client.open_streams() == 1);
}

TEST_CASE("http2::ClientSession honours the server's SETTINGS_MAX_CONCURRENT_STREAMS", "[http2]") {
    Pair p({}, {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 2}});
    TestStream s1, s3;
    CHECK(p.client.can_open());
    REQUIRE(p.get(s1, "/one") == 1);
    CHECK(p.client.can_open());
    REQUIRE(p.get(s3, "/three") == 3);
    CHECK_FALSE(p.client.can_open());
    p.pump();
    CHECK_FALSE(p.client.can_open());
    p.server.respond(1, kOk, "x");
    p.pump();
    CHECK(s1.ended);
    CHECK(p.client.open_streams() == 1);
    CHECK(p.client.can_open());
}

TEST_CASE("http2::ClientSession honours ClientLimits::max_streams", "[http2]") {
    http2::ClientLimits limits;
    limits.max_streams = 1;
    Pair p(limits);
    TestStream s1;
    CHECK(p.client.can_open());
    REQUIRE(p.get(s1, "/one") == 1);
    CHECK_FALSE(p.client.can_open());
}

TEST_CASE("http2::ClientSession ends a response whose body breaks its content-length", "[http2]") {
    Pair p;
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    p.server.respond(1, {{":status", "200"}, {"content-length", "10"}}, "short");
    p.pump();
    CHECK(s.statuses == std::vector<int>{200});
    CHECK_FALSE(s.ended);
    CHECK(s.closed);
    CHECK(s.close_error == NGHTTP2_PROTOCOL_ERROR);
    CHECK(p.client.open_streams() == 0);
}

TEST_CASE("http2::ClientSession resets a response head with too many fields", "[http2]") {
    http2::ClientLimits limits;
    limits.max_headers = 4;
    Pair p(limits);
    TestStream ok, big;
    REQUIRE(p.get(ok, "/ok") == 1);
    REQUIRE(p.get(big, "/big") == 3);
    p.pump();
    p.server.respond(1, {{":status", "200"}, {"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}, "fine");
    p.server.respond(3, {{":status", "200"}, {"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}}, "nope");
    p.pump();
    CHECK(ok.ended);
    CHECK_FALSE(ok.too_large);
    CHECK(big.too_large);
    CHECK(big.statuses.empty());
    CHECK(big.body.empty());
    CHECK(big.closed);
    CHECK(big.close_error != 0);
    CHECK(p.server.streams[3].rst_received > 0);
}

TEST_CASE("http2::ClientSession resets a response head over max_head_bytes", "[http2]") {
    http2::ClientLimits limits;
    limits.max_head_bytes = 200;
    Pair p(limits);
    TestStream ok, big;
    REQUIRE(p.get(ok, "/ok") == 1);
    REQUIRE(p.get(big, "/big") == 3);
    p.pump();
    p.server.respond(1, {{":status", "200"}, {"x", std::string(100, 'v')}}, "fine");
    p.server.respond(3, {{":status", "200"}, {"x", std::string(100, 'v')}, {"y", std::string(100, 'w')}}, "nope");
    p.pump();
    CHECK(ok.ended);
    CHECK_FALSE(ok.too_large);
    CHECK(big.too_large);
    CHECK(big.statuses.empty());
    CHECK(big.closed);
    CHECK(big.close_error != 0);
}

TEST_CASE("http2::ClientSession::receive fails on garbage from the server", "[http2]") {
    Pair p;
    TestStream s;
    REQUIRE(p.get(s, "/") == 1);
    p.pump();
    const std::string garbage = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    CHECK_FALSE(p.client.receive(garbage.data(), garbage.size()));
    CHECK(p.client.closing());
    CHECK_FALSE(p.client.can_open());
}

TEST_CASE("http2::ClientSession::receive fails when the server's first frame is not SETTINGS", "[http2]") {
    TestHandler h;
    http2::ClientSession client(h, {});
    REQUIRE(client.start());
    // A PING before any SETTINGS breaks the connection preface (RFC 9113 §3.4).
    const std::string ping("\x00\x00\x08\x06\x00\x00\x00\x00\x00" "12345678", 17);
    CHECK_FALSE(client.receive(ping.data(), ping.size()));
}

TEST_CASE("http2::ClientSession resets a response whose :status is not a status code", "[http2]") {
    Pair p;
    TestStream zero, high, fine;
    REQUIRE(p.get(zero, "/zero") == 1);
    REQUIRE(p.get(high, "/high") == 3);
    REQUIRE(p.get(fine, "/fine") == 5);
    p.pump();
    p.server.respond(1, {{":status", "000"}}, "x");
    p.server.respond(3, {{":status", "600"}}, "x");
    p.server.respond(5, {{":status", "599"}}, "x");
    p.pump();
    CHECK(zero.statuses.empty());
    CHECK(zero.closed);
    CHECK(zero.close_error == NGHTTP2_INTERNAL_ERROR);
    CHECK(p.server.streams[1].rst_received == NGHTTP2_INTERNAL_ERROR);
    CHECK(high.statuses.empty());
    CHECK(high.closed);
    CHECK(high.close_error == NGHTTP2_INTERNAL_ERROR);
    CHECK(fine.statuses == std::vector<int>{599});
    CHECK(fine.ended);
}

TEST_CASE("http2::ClientSession::cancel before the request went out sends nothing for it", "[http2]") {
    Pair p;
    TestStream s, other;
    REQUIRE(p.get(s, "/never") == 1);
    REQUIRE(p.get(other, "/kept") == 3);
    p.client.cancel(s);
    CHECK(s.id == 0);
    p.pump();
    p.server.respond(3, kOk, "kept");
    if (p.server.streams.count(1) != 0) {
        p.server.respond(1, kOk, "unwanted");
    }
    p.pump();
    CHECK(p.server.streams[1].request.empty());
    CHECK(s.statuses.empty());
    CHECK_FALSE(s.closed);
    CHECK(other.ended);
    CHECK(p.h.events == std::vector<std::string>{"head 3", "data 3", "end 3"});
    CHECK(p.client.open_streams() == 0);
    CHECK(p.client.can_open());
}

TEST_CASE("http2::ClientSession stops an upload whose response has ended", "[http2]") {
    Pair p;
    TestStream s;
    s.req_body = std::string(5000, 'u');
    s.req_ready = 1000;
    REQUIRE(p.get(s, "/upload", {}, true, "POST") == 1);
    p.pump();
    CHECK(p.server.streams[1].body.size() == 1000);
    p.server.respond(1, {{":status", "413"}});
    p.pump();
    CHECK(s.statuses == std::vector<int>{413});
    CHECK(s.head_end == std::vector<bool>{true});
    // RFC 9113 §8.1: the rest of the request is not needed; RST_STREAM(NO_ERROR) says so.
    CHECK(p.server.streams[1].rst_received == NGHTTP2_NO_ERROR);
    s.req_ready = s.req_body.size();
    s.req_done = true;
    p.client.resume_body(s);
    p.pump();
    CHECK(s.req_sent == 1000);
    CHECK(p.server.streams[1].body.size() == 1000);
    CHECK(p.h.events == std::vector<std::string>{"head 1"});
    CHECK(p.client.open_streams() == 0);
}

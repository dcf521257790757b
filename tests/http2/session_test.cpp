// http2::ServerSession driven by an in-process nghttp2 client session: the client's bytes go
// into receive(), the server's frames (h2_write / h2_write_data) into the client's mem_recv,
// so every case runs against an independent HTTP/2 implementation without sockets.

#include "http2/session.hpp"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
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
using blitz::Method;
namespace http2 = blitz::http2;

namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

/// The server side's view of one stream, kept after h2_closed() for the checks.
struct TestStream : http2::Stream {
    Arena mem;
    // h2_request
    bool requested = false;
    int status = 0;
    std::string reason;
    Method head_method = Method::Other;
    std::string method_name, scheme, head_authority, head_path, query, raw_target;
    Fields fields;
    std::int64_t content_length = -2;
    bool end_stream = false;
    // h2_data / h2_request_end / h2_closed
    std::string body;
    bool ended = false;
    Fields trailer_fields;
    bool closed = false;
    std::uint32_t close_error = 0;
    // response body the handler serves through h2_body_ready / h2_write_data
    std::string out_body;
    std::size_t out_sent = 0;
    bool out_last = false;
};

/// A Handler that records everything and answers nothing unless told to.
class TestHandler final : public http2::Handler {
public:
    std::map<std::int32_t, std::unique_ptr<TestStream>> streams;
    std::string out;  // frames for the client
    bool refuse = false;
    int opened = 0;
    int refused = 0;  // h2_refused(): streams beyond max_concurrent_streams
    /// When set, h2_request() calls goaway() on it once this many requests came.
    http2::ServerSession* goaway_after = nullptr;
    int goaway_at = 0;
    int requests = 0;
    int data_calls = 0;

    http2::Stream* h2_open(std::int32_t id) override {
        if (refuse) {
            return nullptr;
        }
        auto s = std::make_unique<TestStream>();
        s->arena = &s->mem;
        auto* raw = s.get();
        streams[id] = std::move(s);
        ++opened;
        return raw;
    }

    void h2_refused() override { ++refused; }
    void h2_request(http2::Stream& st, http2::RequestHead& head, int status, const char* reason) override {
        auto& s = static_cast<TestStream&>(st);
        s.requested = true;
        s.status = status;
        s.reason = reason;
        s.head_method = head.method;
        s.method_name = head.method_name;
        s.scheme = head.scheme;
        s.head_authority = head.authority;
        s.head_path = head.path;
        s.query = head.query;
        s.raw_target = head.raw_target;
        for (const Header& h : head.headers) {
            s.fields.emplace_back(h.name, h.value);
        }
        s.content_length = head.content_length;
        s.end_stream = head.end_stream;
        if (goaway_after != nullptr && ++requests == goaway_at) {
            goaway_after->goaway();
        }
    }
    void h2_data(http2::Stream& st, const char* data, std::size_t len) override {
        static_cast<TestStream&>(st).body.append(data, len);
        ++data_calls;
    }
    void h2_request_end(http2::Stream& st, std::span<const Header> trailers) override {
        auto& s = static_cast<TestStream&>(st);
        s.ended = true;
        for (const Header& h : trailers) {
            s.trailer_fields.emplace_back(h.name, h.value);
        }
    }
    void h2_closed(http2::Stream& st, std::uint32_t error) override {
        auto& s = static_cast<TestStream&>(st);
        s.closed = true;
        s.close_error = error;
    }
    void h2_write(const std::uint8_t* data, std::size_t len) override {
        out.append(reinterpret_cast<const char*>(data), len);
    }
    std::size_t h2_body_ready(http2::Stream& st, std::size_t max, bool& last) override {
        auto& s = static_cast<TestStream&>(st);
        const std::size_t left = s.out_body.size() - s.out_sent;
        const std::size_t n = std::min(left, max);
        last = s.out_last && n == left;
        return n;
    }
    void h2_write_data(http2::Stream& st, const std::uint8_t* frame_head, std::size_t len) override {
        auto& s = static_cast<TestStream&>(st);
        out.append(reinterpret_cast<const char*>(frame_head), 9);
        out.append(s.out_body, s.out_sent, len);
        s.out_sent += len;
    }

    TestStream& at(std::int32_t id) {
        auto it = streams.find(id);
        REQUIRE(it != streams.end());
        return *it->second;
    }
};

/// What the nghttp2 client saw of one stream.
struct ClientStream {
    int status = 0;
    std::vector<int> interim;  // 1xx statuses, in order
    bool in_final_head = false;  // the final response's HEADERS frame is being received
    Fields headers;
    Fields trailers;
    std::string body;
    bool end_stream = false;
    bool reset = false;
    std::uint32_t reset_error = 0;
    bool closed = false;
    std::uint32_t close_error = 0;

    std::string header(std::string_view name) const {
        for (const auto& [n, v] : headers) {
            if (n == name) {
                return v;
            }
        }
        return "<absent>";
    }
};

/// An nghttp2 client session wired to a ServerSession through memory.
class Pair {
public:
    explicit Pair(const http2::Limits& limits = {}) : server(handler, limits) {
        nghttp2_session_callbacks* cb = nullptr;
        REQUIRE(nghttp2_session_callbacks_new(&cb) == 0);
        nghttp2_session_callbacks_set_on_header_callback(cb, &on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &on_data);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &on_frame);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, &on_close);
        REQUIRE(nghttp2_session_client_new(&client_, cb, this) == 0);
        nghttp2_session_callbacks_del(cb);
        REQUIRE(nghttp2_submit_settings(client_, NGHTTP2_FLAG_NONE, nullptr, 0) == 0);
        REQUIRE(server.start());
    }
    ~Pair() { nghttp2_session_del(client_); }
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;

    TestHandler handler;
    http2::ServerSession server;
    std::map<std::int32_t, ClientStream> responses;
    bool goaway = false;
    std::uint32_t goaway_error = 0;
    std::int32_t goaway_last = -1;
    int ping_acks = 0;
    std::uint64_t now_ms = 1000;
    bool server_ok = true;  // every receive() so far returned true

    nghttp2_session* client() { return client_; }

    /// A frame the server sent, as seen on the wire (for streams the client session did not
    /// open itself: raw frames).
    struct Sent {
        std::uint8_t type;
        std::uint8_t flags;
        std::int32_t id;
        std::string payload;
    };
    std::vector<Sent> sent;

    /// The error code of the first RST_STREAM the server sent on `id`; -1 when none.
    std::int64_t rst_error(std::int32_t id) const {
        for (const Sent& f : sent) {
            if (f.type == NGHTTP2_RST_STREAM && f.id == id && f.payload.size() == 4) {
                const auto* b = reinterpret_cast<const unsigned char*>(f.payload.data());
                return std::int64_t{b[0]} << 24 | b[1] << 16 | b[2] << 8 | b[3];
            }
        }
        return -1;
    }

    /// What the client would send now (its queued frames, serialised).
    std::string client_bytes() {
        std::string b;
        const std::uint8_t* p = nullptr;
        ssize_t n = 0;
        while ((n = nghttp2_session_mem_send(client_, &p)) > 0) {
            b.append(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
        }
        REQUIRE(n == 0);
        return b;
    }

    /// Hands `bytes` to the server in one receive() and its answer to the client.
    void feed(const std::string& bytes) {
        if (!bytes.empty()) {
            server_ok = server.receive(bytes.data(), bytes.size(), now_ms) && server_ok;
        }
        (void)deliver();
    }

    /// The server's due frames to the client; false when there were none.
    bool deliver() {
        (void)server.send();
        if (handler.out.empty()) {
            return false;
        }
        std::string o;
        o.swap(handler.out);
        record(o);
        const ssize_t rv = nghttp2_session_mem_recv(client_, reinterpret_cast<const std::uint8_t*>(o.data()), o.size());
        INFO("client mem_recv: " << nghttp2_strerror(static_cast<int>(rv)));
        REQUIRE(rv == static_cast<ssize_t>(o.size()));
        return true;
    }

    /// Runs both sides until neither has anything to say.
    void pump() {
        for (int i = 0; i < 1000; ++i) {
            const std::string c = client_bytes();
            if (!c.empty()) {
                server_ok = server.receive(c.data(), c.size(), now_ms) && server_ok;
            }
            const bool from_server = deliver();
            if (c.empty() && !from_server) {
                return;
            }
        }
        FAIL("the sessions kept talking");
    }

    /// Submits a request (pseudo-fields first, as given) and returns its stream id.
    std::int32_t request(const Fields& fields, const std::string* body = nullptr) {
        std::vector<nghttp2_nv> nv;
        for (const auto& [n, v] : fields) {
            nv.push_back(nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(n.data())),
                                    reinterpret_cast<std::uint8_t*>(const_cast<char*>(v.data())), n.size(), v.size(),
                                    NGHTTP2_NV_FLAG_NONE});
        }
        nghttp2_data_provider prd{};
        if (body != nullptr) {
            upload_ = *body;
            upload_sent_ = 0;
            prd.read_callback = &read_upload;
        }
        const std::int32_t id =
            nghttp2_submit_request(client_, nullptr, nv.data(), nv.size(), body != nullptr ? &prd : nullptr, this);
        REQUIRE(id > 0);
        return id;
    }

    /// A GET of `path` with :authority example.com plus `extra` fields.
    std::int32_t get(const std::string& path, const Fields& extra = {}) {
        Fields f{{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"}, {":path", path}};
        f.insert(f.end(), extra.begin(), extra.end());
        return request(f);
    }

private:
    static Pair& self(void* user) { return *static_cast<Pair*>(user); }

    static int on_header(nghttp2_session*, const nghttp2_frame* frame, const std::uint8_t* name, std::size_t namelen,
                         const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void* user) {
        ClientStream& cs = self(user).responses[frame->hd.stream_id];
        std::string n(reinterpret_cast<const char*>(name), namelen);
        std::string v(reinterpret_cast<const char*>(value), valuelen);
        if (n == ":status" && v.size() == 3 && v[0] == '1') {
            cs.interim.push_back(std::stoi(v));
        } else if (frame->headers.cat == NGHTTP2_HCAT_HEADERS && cs.status != 0 && !cs.in_final_head) {
            cs.trailers.emplace_back(std::move(n), std::move(v));
        } else if (n == ":status") {
            cs.status = std::stoi(v);
            cs.in_final_head = true;
        } else {
            cs.headers.emplace_back(std::move(n), std::move(v));
        }
        return 0;
    }
    static int on_data(nghttp2_session*, std::uint8_t, std::int32_t id, const std::uint8_t* data, std::size_t len,
                       void* user) {
        self(user).responses[id].body.append(reinterpret_cast<const char*>(data), len);
        return 0;
    }
    static int on_frame(nghttp2_session*, const nghttp2_frame* frame, void* user) {
        Pair& p = self(user);
        switch (frame->hd.type) {
            case NGHTTP2_GOAWAY:
                p.goaway = true;
                p.goaway_error = frame->goaway.error_code;
                p.goaway_last = frame->goaway.last_stream_id;
                break;
            case NGHTTP2_RST_STREAM:
                p.responses[frame->hd.stream_id].reset = true;
                p.responses[frame->hd.stream_id].reset_error = frame->rst_stream.error_code;
                break;
            case NGHTTP2_PING:
                if ((frame->hd.flags & NGHTTP2_FLAG_ACK) != 0) {
                    ++p.ping_acks;
                }
                break;
            case NGHTTP2_HEADERS:
            case NGHTTP2_DATA:
                if (frame->hd.type == NGHTTP2_HEADERS) {
                    p.responses[frame->hd.stream_id].in_final_head = false;
                }
                if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
                    p.responses[frame->hd.stream_id].end_stream = true;
                }
                break;
            default:
                break;
        }
        return 0;
    }
    static int on_close(nghttp2_session*, std::int32_t id, std::uint32_t error, void* user) {
        ClientStream& cs = self(user).responses[id];
        cs.closed = true;
        cs.close_error = error;
        return 0;
    }
    static ssize_t read_upload(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t len, std::uint32_t* flags,
                               nghttp2_data_source*, void* user) {
        Pair& p = self(user);
        const std::size_t n = std::min(len, p.upload_.size() - p.upload_sent_);
        std::memcpy(buf, p.upload_.data() + p.upload_sent_, n);
        p.upload_sent_ += n;
        if (p.upload_sent_ == p.upload_.size()) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        }
        return static_cast<ssize_t>(n);
    }

    void record(const std::string& bytes) {
        wire_ += bytes;
        std::size_t at = 0;
        while (wire_.size() - at >= 9) {
            const auto* h = reinterpret_cast<const unsigned char*>(wire_.data() + at);
            const std::size_t len = std::size_t{h[0]} << 16 | std::size_t{h[1]} << 8 | h[2];
            if (wire_.size() - at < 9 + len) {
                break;
            }
            const std::int32_t id = static_cast<std::int32_t>((h[5] & 0x7fu) << 24 | h[6] << 16 | h[7] << 8 | h[8]);
            sent.push_back(Sent{h[3], h[4], id, wire_.substr(at + 9, len)});
            at += 9 + len;
        }
        wire_.erase(0, at);
    }

    nghttp2_session* client_ = nullptr;
    std::string wire_;
    std::string upload_;
    std::size_t upload_sent_ = 0;
};

/// A raw frame: 9-byte head (RFC 9113 §4.1) and payload.
std::string frame(std::uint8_t type, std::uint8_t flags, std::int32_t id, const std::string& payload) {
    std::string f;
    const auto len = static_cast<std::uint32_t>(payload.size());
    f += static_cast<char>(len >> 16);
    f += static_cast<char>(len >> 8);
    f += static_cast<char>(len);
    f += static_cast<char>(type);
    f += static_cast<char>(flags);
    f += static_cast<char>((id >> 24) & 0x7f);
    f += static_cast<char>(id >> 16);
    f += static_cast<char>(id >> 8);
    f += static_cast<char>(id);
    f += payload;
    return f;
}

std::string ping(std::uint8_t seed) { return frame(NGHTTP2_PING, 0, 0, std::string(8, static_cast<char>(seed))); }

/// An HPACK integer with an `prefix`-bit prefix (RFC 7541 §5.1); `first` holds the high bits.
std::string hpack_int(std::size_t v, int prefix, std::uint8_t first) {
    std::string out;
    const std::size_t max = (std::size_t{1} << prefix) - 1;
    if (v < max) {
        out += static_cast<char>(first | v);
        return out;
    }
    out += static_cast<char>(first | max);
    v -= max;
    while (v >= 128) {
        out += static_cast<char>(0x80 | (v & 0x7f));
        v >>= 7;
    }
    out += static_cast<char>(v);
    return out;
}

/// A header block of literal fields without indexing (RFC 7541 §6.2.2), no Huffman coding:
/// it leaves the server's dynamic table alone, so raw frames mix with the client session's.
std::string block(const Fields& fields) {
    std::string b;
    for (const auto& [n, v] : fields) {
        b += '\0';
        b += hpack_int(n.size(), 7, 0);
        b += n;
        b += hpack_int(v.size(), 7, 0);
        b += v;
    }
    return b;
}

/// A field as a Fields lookup (first match), "<absent>" when missing.
std::string field(const Fields& fields, std::string_view name) {
    for (const auto& [n, v] : fields) {
        if (n == name) {
            return v;
        }
    }
    return "<absent>";
}

std::size_t count(const Fields& fields, std::string_view name) {
    std::size_t n = 0;
    for (const auto& f : fields) {
        n += f.first == name ? 1 : 0;
    }
    return n;
}

/// Answers stream `id` with a body served through h2_body_ready / h2_write_data.
void answer(Pair& p, std::int32_t id, std::string body, int status = 200) {
    TestStream& s = p.handler.at(id);
    s.out_body = std::move(body);
    s.out_last = true;
    const std::array<Header, 1> fields{Header{"content-type", "text/plain"}};
    REQUIRE(p.server.respond(s, status, Headers(fields), !s.out_body.empty()));
}

}  // namespace

// ---- the request head ----------------------------------------------------------------------

TEST_CASE("http2::ServerSession hands a GET's head to the handler", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/hello?x=1", {{"accept", "*/*"}, {"user-agent", "t"}});
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(s.requested);
    CHECK(s.status == 0);
    CHECK(s.head_method == Method::Get);
    CHECK(s.method_name == "GET");
    CHECK(s.scheme == "https");
    CHECK(s.head_authority == "example.com");
    CHECK(s.head_path == "/hello");
    CHECK(s.query == "x=1");
    CHECK(s.raw_target == "/hello?x=1");
    CHECK(s.end_stream);
    CHECK(s.content_length == -1);
    CHECK(s.ended == false);  // the head carried END_STREAM: no separate end event is needed
    REQUIRE(s.fields.size() == 2);
    CHECK(s.fields[0] == std::pair<std::string, std::string>{"accept", "*/*"});
    CHECK(s.fields[1] == std::pair<std::string, std::string>{"user-agent", "t"});
    CHECK(s.id == id);
}

TEST_CASE("http2::ServerSession normalises the path and keeps the query", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t a = p.get("/a/./b/../%7Euser/c?q=%20x&y=%2F");
    const std::int32_t b = p.get("/x/../../y");
    p.pump();
    TestStream& s = p.handler.at(a);
    CHECK(s.status == 0);
    CHECK(s.head_path == "/a/~user/c");
    CHECK(s.query == "q=%20x&y=%2F");
    CHECK(s.raw_target == "/a/~user/c?q=%20x&y=%2F");
    TestStream& t = p.handler.at(b);
    CHECK(t.status == 0);
    CHECK(t.head_path == "/y");
    CHECK(t.raw_target == "/y");
    CHECK(t.query.empty());
}

TEST_CASE("http2::ServerSession takes the authority from Host when :authority is absent", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.request({{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "h.test:8080"}});
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(s.status == 0);
    CHECK(s.head_authority == "h.test:8080");
}

TEST_CASE("http2::ServerSession accepts a Host equal to :authority", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/", {{"host", "example.com"}});
    p.pump();
    CHECK(p.handler.at(id).status == 0);
    CHECK(p.handler.at(id).head_authority == "example.com");
}

TEST_CASE("http2::ServerSession answers 400 when Host names another authority", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/", {{"host", "other.test"}});
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(s.requested);
    CHECK(s.status == 400);
    CHECK(s.reason == "host does not match :authority");
}

TEST_CASE("http2::ServerSession answers 400 for an invalid :authority", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.request({{":method", "GET"}, {":scheme", "http"}, {":authority", "user@h.test"}, {":path", "/"}});
    p.pump();
    CHECK(p.handler.at(id).status == 400);
}

TEST_CASE("http2::ServerSession answers 400 for paths the HTTP/1.1 codec rejects", "[http2]") {
    Pair p;
    p.pump();
    // Each passes nghttp2's own :path check but not blitz's path rules.
    const std::vector<std::string> paths = {"/a\\b", "/%zz", "/a%00b", "/a\"b", "/q?a#b", "/q?a%2"};
    std::vector<std::int32_t> ids;
    for (const auto& path : paths) {
        ids.push_back(p.get(path));
    }
    p.pump();
    for (std::size_t i = 0; i < paths.size(); ++i) {
        INFO(paths[i]);
        TestStream& s = p.handler.at(ids[i]);
        CHECK(s.requested);
        CHECK(s.status == 400);
    }
}

TEST_CASE("http2::ServerSession answers 400 for a :path that is not origin-form", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("index.html");
    p.pump();
    // nghttp2 1.52 resets it itself (RFC 9113 §8.3.1); blitz's own check answers 400 otherwise.
    TestStream& s = p.handler.at(id);
    if (s.requested) {
        CHECK(s.status == 400);
    } else {
        CHECK(p.responses[id].reset_error == NGHTTP2_PROTOCOL_ERROR);
    }
}

TEST_CASE("http2::ServerSession passes OPTIONS * through", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.request({{":method", "OPTIONS"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "*"}});
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(s.status == 0);
    CHECK(s.head_method == Method::Options);
    CHECK(s.head_path == "*");
}

TEST_CASE("http2::ServerSession joins cookie fields with \"; \" (RFC 9113 §8.2.3)", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/", {{"cookie", "a=1"}, {"x-mid", "m"}, {"cookie", "b=2"}, {"cookie", "c=3"}});
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(s.status == 0);
    CHECK(count(s.fields, "cookie") == 1);
    CHECK(field(s.fields, "cookie") == "a=1; b=2; c=3");
    CHECK(field(s.fields, "x-mid") == "m");
    CHECK(s.fields.size() == 2);
}

TEST_CASE("http2::ServerSession joins cookie fields when one of them is empty", "[http2]") {
    // An empty value is an empty view in the arena (no bytes): joining must not read from it
    // (UBSan: memcpy from a null pointer).
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/", {{"cookie", "a=1"}, {"cookie", ""}, {"cookie", "b=2"}});
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(count(s.fields, "cookie") == 1);
    const std::string joined = field(s.fields, "cookie");
    CHECK(joined.find("a=1") == 0);
    CHECK(joined.size() >= 8);
    CHECK(joined.substr(joined.size() - 3) == "b=2");
}

TEST_CASE("http2::ServerSession keeps a single cookie field as it is", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/", {{"cookie", "only=1"}});
    p.pump();
    CHECK(field(p.handler.at(id).fields, "cookie") == "only=1");
}

TEST_CASE("http2::ServerSession reports content-length and the body", "[http2]") {
    Pair p;
    p.pump();
    const std::string body = "0123456789";
    const std::int32_t id = p.request({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"},
                                       {":path", "/up"}, {"content-length", "10"}},
                                      &body);
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(s.status == 0);
    CHECK(s.head_method == Method::Post);
    CHECK(s.content_length == 10);
    CHECK_FALSE(s.end_stream);
    CHECK(s.body == body);
    CHECK(s.ended);
    CHECK(s.trailer_fields.empty());
}

TEST_CASE("http2::ServerSession answers 501 to CONNECT", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.request({{":method", "CONNECT"}, {":authority", "a.test:443"}});
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(s.requested);
    CHECK(s.status == 501);
}

TEST_CASE("http2::ServerSession answers 431 beyond max_headers", "[http2]") {
    http2::Limits limits;
    limits.max_headers = 10;
    Pair p(limits);
    p.pump();
    Fields ten, eleven;
    for (int i = 0; i < 11; ++i) {
        (i < 10 ? ten : eleven).emplace_back("x-h" + std::to_string(i), "v");
    }
    eleven.insert(eleven.begin(), ten.begin(), ten.end());
    const std::int32_t ok = p.get("/", ten);
    const std::int32_t big = p.get("/", eleven);
    p.pump();
    CHECK(p.handler.at(ok).status == 0);
    CHECK(p.handler.at(ok).fields.size() == 10);
    CHECK(p.handler.at(big).status == 431);
}

TEST_CASE("http2::ServerSession answers 431 beyond max_head_bytes", "[http2]") {
    http2::Limits limits;
    limits.max_head_bytes = 1024;
    Pair p(limits);
    // The client has not read the server's SETTINGS (MAX_HEADER_LIST_SIZE): it sends anyway.
    const std::int32_t ok = p.get("/", {{"x-a", std::string(500, 'a')}});
    const std::int32_t big = p.get("/", {{"x-a", std::string(500, 'a')}, {"x-b", std::string(500, 'b')}});
    p.pump();
    CHECK(p.handler.at(ok).status == 0);
    TestStream& s = p.handler.at(big);
    CHECK(s.status == 431);
}

TEST_CASE("http2::ServerSession answers 414 beyond max_path_bytes", "[http2]") {
    http2::Limits limits;
    limits.max_path_bytes = 100;
    Pair p(limits);
    p.pump();
    const std::int32_t ok = p.get("/" + std::string(99, 'p'));
    const std::int32_t big = p.get("/" + std::string(100, 'p'));
    p.pump();
    CHECK(p.handler.at(ok).status == 0);
    CHECK(p.handler.at(big).status == 414);
}

TEST_CASE("http2::ServerSession refuses a stream the handler does not open", "[http2]") {
    Pair p;
    p.pump();
    p.handler.refuse = true;
    const std::int32_t id = p.get("/");
    p.pump();
    CHECK(p.handler.streams.empty());
    CHECK(p.responses[id].reset);
    CHECK(p.responses[id].reset_error == NGHTTP2_REFUSED_STREAM);
    CHECK(p.handler.refused == 0);  // not the concurrency limit
}

TEST_CASE("http2::ServerSession resets requests with fields RFC 9113 §8.2 forbids", "[http2]") {
    // nghttp2's client lower-cases names, so the upper-case one goes out as a raw frame.
    const Fields base{{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"}};
    const std::vector<std::pair<std::string, std::string>> bad = {
        {"X-Upper", "1"}, {"connection", "close"}, {"te", "gzip"}, {"transfer-encoding", "chunked"},
        {"x-v", std::string("a\r\nb")}, {"keep-alive", "5"}};
    for (const auto& f : bad) {
        INFO(f.first);
        Pair p;
        p.pump();
        Fields fields = base;
        fields.push_back(f);
        p.feed(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, block(fields)));
        auto it = p.handler.streams.find(1);
        CHECK((it == p.handler.streams.end() || !it->second->requested));
        CHECK(p.rst_error(1) == NGHTTP2_PROTOCOL_ERROR);
        CHECK(p.server_ok);
    }
}

TEST_CASE("http2::ServerSession accepts te: trailers", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/", {{"te", "trailers"}});
    p.pump();
    CHECK(p.handler.at(id).requested);
    CHECK(p.handler.at(id).status == 0);
}

TEST_CASE("http2::ServerSession refuses streams beyond max_concurrent_streams", "[http2]") {
    http2::Limits limits;
    limits.h2.max_concurrent_streams = 2;
    Pair p(limits);
    p.pump();  // the client acknowledges the limit
    const Fields post{{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"}};
    // Raw frames: nghttp2's client would hold the third stream back itself.
    std::string raw;
    for (std::int32_t id : {1, 3, 5}) {
        raw += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id, block(post));
    }
    p.feed(raw);
    CHECK(p.handler.at(1).requested);
    CHECK(p.handler.at(3).requested);
    auto it = p.handler.streams.find(5);
    CHECK((it == p.handler.streams.end() || !it->second->requested));
    // RFC 9113 §5.1.2: a stream error; REFUSED_STREAM tells the client it may retry.
    CHECK(p.rst_error(5) == NGHTTP2_REFUSED_STREAM);
    CHECK(p.handler.refused == 1);
    CHECK(p.rst_error(1) == -1);
    CHECK(p.rst_error(3) == -1);
}

TEST_CASE("http2::ServerSession takes a head split over CONTINUATION frames within the limit", "[http2]") {
    http2::Limits limits;
    limits.h2.max_continuation_frames = 4;
    Pair p(limits);
    p.pump();
    const std::string b = block({{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/c"},
                                 {"x-long", std::string(40, 'l')}});
    // HEADERS + 4 CONTINUATION frames.
    const std::size_t piece = b.size() / 5 + 1;
    std::string raw = frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1, b.substr(0, piece));
    for (std::size_t at = piece; at < b.size(); at += piece) {
        const bool last = at + piece >= b.size();
        raw += frame(NGHTTP2_CONTINUATION, last ? NGHTTP2_FLAG_END_HEADERS : 0, 1, b.substr(at, piece));
    }
    p.feed(raw);
    CHECK(p.server_ok);
    TestStream& s = p.handler.at(1);
    CHECK(s.head_path == "/c");
    CHECK(field(s.fields, "x-long") == std::string(40, 'l'));
}

TEST_CASE("http2::ServerSession ends a CONTINUATION flood (CVE-2024-27316)", "[http2]") {
    http2::Limits limits;
    limits.h2.max_continuation_frames = 4;
    Pair p(limits);
    p.pump();
    std::string raw = frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM, 1,
                            block({{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"}}));
    // Never END_HEADERS: fields that each repeat a header, forever.
    for (int i = 0; i < 50; ++i) {
        raw += frame(NGHTTP2_CONTINUATION, 0, 1, block({{"x-c", "v"}}));
    }
    p.feed(raw);
    CHECK_FALSE(p.server_ok);
    CHECK(p.goaway);
    CHECK(p.goaway_error != NGHTTP2_NO_ERROR);
    auto it = p.handler.streams.find(1);
    CHECK((it == p.handler.streams.end() || !it->second->requested));
}

TEST_CASE("http2::ServerSession keeps no fields beyond the limits of an HPACK bomb", "[http2]") {
    http2::Limits limits;
    limits.max_head_bytes = 4096;
    Pair p(limits);
    p.pump();
    // One 4000-byte field indexed once, then referenced 1,000 times (1 byte each on the wire):
    // 4 MB decoded from 5 KB (RFC 7541 §7.3).
    std::string b = block({{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"}});
    b += '\x40';  // literal with incremental indexing, new name
    b += hpack_int(5, 7, 0) + "x-big";
    b += hpack_int(4000, 7, 0) + std::string(4000, 'B');
    for (int i = 0; i < 1000; ++i) {
        b += '\xbe';  // indexed field 62: the first dynamic entry
    }
    std::string raw = frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, b);
    p.feed(raw);
    TestStream& s = p.handler.at(1);
    CHECK(s.requested);
    CHECK(s.status == 431);
    CHECK(s.fields.size() <= 1);
    CHECK(s.mem.used() < 16 * 1024);  // the decoded 4 MB were never copied
}

// ---- request bodies and flow control ----------------------------------------------------------

TEST_CASE("http2::ServerSession reopens the stream window only when the body is consumed", "[http2]") {
    http2::Limits limits;
    limits.h2.initial_stream_window = 16 * 1024;
    Pair p(limits);
    p.pump();  // the client learns the 16 KiB window
    const std::string body(50'000, 'z');
    const std::int32_t id = p.request({{":method", "PUT"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/u"}},
                                      &body);
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK(s.body.size() == 16 * 1024);
    CHECK_FALSE(s.ended);

    // Nothing moves while the handler holds the bytes.
    p.pump();
    CHECK(s.body.size() == 16 * 1024);

    std::size_t given = 0;
    for (int i = 0; i < 10 && !s.ended; ++i) {
        p.server.consume(s, s.body.size() - given);
        given = s.body.size();
        p.pump();
    }
    CHECK(s.ended);
    CHECK(s.body == body);
}

TEST_CASE("http2::ServerSession bounds the connection window across streams", "[http2]") {
    http2::Limits limits;
    limits.h2.initial_stream_window = 60'000;
    limits.h2.connection_window = 65'535;  // the RFC default: no WINDOW_UPDATE at start
    Pair p(limits);
    p.pump();
    const std::string body(60'000, 'y');
    const std::int32_t a = p.request({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/a"}},
                                     &body);
    p.pump();
    const std::int32_t b = p.request({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/b"}},
                                     &body);
    p.pump();
    TestStream& sa = p.handler.at(a);
    TestStream& sb = p.handler.at(b);
    CHECK(sa.body.size() == 60'000);
    CHECK(sb.body.size() == 65'535 - 60'000);  // the connection window is spent
    // Stream a's bytes handed on: the connection window reopens for b.
    p.server.consume(sa, sa.body.size());
    p.pump();
    CHECK(sb.body.size() == 60'000);
    CHECK(sb.ended);
}

TEST_CASE("http2::ServerSession gives a closed stream's window back with consume_connection", "[http2]") {
    http2::Limits limits;
    limits.h2.initial_stream_window = 65'535;
    limits.h2.connection_window = 65'535;
    Pair p(limits);
    p.pump();
    const std::string body(65'535, 'w');
    const std::int32_t a = p.request({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/a"}},
                                     &body);
    p.pump();
    TestStream& sa = p.handler.at(a);
    CHECK(sa.body.size() == 65'535);
    p.server.reset(sa, NGHTTP2_CANCEL);
    p.pump();
    CHECK(sa.closed);
    const std::string small(1000, 's');
    const std::int32_t b = p.request({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/b"}},
                                     &small);
    p.pump();
    TestStream& sb = p.handler.at(b);
    CHECK(sb.body.empty());  // no connection window left
    p.server.consume_connection(sa.body.size());
    p.pump();
    CHECK(sb.body == small);
}

TEST_CASE("http2::ServerSession delivers request trailers at the end", "[http2]") {
    Pair p;
    p.pump();
    std::string raw = frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
                            block({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"},
                                   {":path", "/t"}, {"x-before", "1"}}));
    raw += frame(NGHTTP2_DATA, 0, 1, "abc");
    raw += frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
                 block({{"x-checksum", "c0ffee"}, {"x-more", "2"}}));
    p.feed(raw);
    TestStream& s = p.handler.at(1);
    CHECK(s.status == 0);
    CHECK(field(s.fields, "x-before") == "1");
    CHECK(s.body == "abc");
    CHECK(s.ended);
    REQUIRE(s.trailer_fields.size() == 2);
    CHECK(s.trailer_fields[0] == std::pair<std::string, std::string>{"x-checksum", "c0ffee"});
    CHECK(s.trailer_fields[1] == std::pair<std::string, std::string>{"x-more", "2"});
}

// ---- responses -------------------------------------------------------------------------------

TEST_CASE("http2::ServerSession::respond lower-cases names and drops connection-specific fields",
          "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/");
    p.pump();
    TestStream& s = p.handler.at(id);
    const std::array<Header, 7> fields{Header{"X-Mixed-Case", "v1"},   Header{"Connection", "close"},
                                       Header{"Keep-Alive", "timeout=5"}, Header{"Transfer-Encoding", "chunked"},
                                       Header{"Upgrade", "h2c"},       Header{"TE", "trailers"},
                                       Header{"Proxy-Connection", "x"}};
    REQUIRE(p.server.respond(s, 204, Headers(fields), false));
    p.pump();
    const ClientStream& r = p.responses[id];
    CHECK(r.status == 204);
    CHECK(r.end_stream);
    REQUIRE(r.headers.size() == 1);
    CHECK(r.headers[0] == std::pair<std::string, std::string>{"x-mixed-case", "v1"});
    CHECK(s.response_done);
    CHECK(s.closed);
    CHECK(s.close_error == 0);
}

TEST_CASE("http2::ServerSession::respond writes the server's date and content-length in place of the handler's",
          "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/");
    p.pump();
    TestStream& s = p.handler.at(id);
    const std::array<Header, 4> fields{Header{"Date", "yesterday"}, Header{"x-a", "1"},
                                       Header{"Content-Length", "99"}, Header{"content-length", "98"}};
    REQUIRE(p.server.respond(s, 404, Headers(fields), false,
                             http2::ServerFields{"Fri, 27 Nov 2026 09:00:00 GMT", 1234567}));
    p.pump();
    const ClientStream& r = p.responses[id];
    CHECK(r.status == 404);
    CHECK(r.headers == std::vector<std::pair<std::string, std::string>>{
                           {"x-a", "1"}, {"date", "Fri, 27 Nov 2026 09:00:00 GMT"}, {"content-length", "1234567"}});

    // Without server fields, the handler's go out as they are.
    const std::int32_t id2 = p.get("/");
    p.pump();
    REQUIRE(p.server.respond(p.handler.at(id2), 200, Headers(std::span(fields).first(3)), false));
    p.pump();
    CHECK(p.responses[id2].headers == std::vector<std::pair<std::string, std::string>>{
                                          {"date", "yesterday"}, {"x-a", "1"}, {"content-length", "99"}});
}

TEST_CASE("http2::ServerSession::respond refuses fields HTTP/2 cannot carry", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/");
    p.pump();
    TestStream& s = p.handler.at(id);
    for (const std::string& bad : {std::string("a\r\nx-injected: 1"), std::string("a\nb"), std::string("a\rb"),
                                   std::string("a\0b", 3)}) {
        const std::array<Header, 1> f{Header{"x-v", bad}};
        CHECK_FALSE(p.server.respond(s, 200, Headers(f), false));
    }
    for (const std::string& name : {std::string("bad name"), std::string("bad:name"), std::string(""),
                                    std::string("b\r\nx")}) {
        const std::array<Header, 1> f{Header{name, "v"}};
        CHECK_FALSE(p.server.respond(s, 200, Headers(f), false));
    }
    CHECK_FALSE(p.server.respond(s, 99, Headers(), false));
    CHECK_FALSE(p.server.respond(s, 1000, Headers(), false));
    p.pump();
    CHECK(p.responses[id].status == 0);  // nothing went out
    // A valid answer still works afterwards.
    REQUIRE(p.server.respond(s, 200, Headers(), false));
    p.pump();
    CHECK(p.responses[id].status == 200);
}

TEST_CASE("http2::ServerSession sends a body through h2_body_ready and h2_write_data", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/big");
    p.pump();
    std::string body;
    for (int i = 0; i < 100'000; ++i) {
        body += static_cast<char>('a' + i % 26);
    }
    answer(p, id, body);
    p.pump();
    const ClientStream& r = p.responses[id];
    CHECK(r.status == 200);
    CHECK(r.header("content-type") == "text/plain");
    // The client's default stream window (64 KiB - 1) is reopened by its WINDOW_UPDATEs.
    CHECK(r.body == body);
    CHECK(r.end_stream);
    CHECK(p.handler.at(id).response_done);
    CHECK(p.handler.at(id).closed);
}

TEST_CASE("http2::ServerSession waits for a deferred body and resumes it", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/stream");
    p.pump();
    TestStream& s = p.handler.at(id);
    REQUIRE(p.server.respond(s, 200, Headers(), true));
    p.pump();
    CHECK(p.responses[id].status == 200);
    CHECK(p.responses[id].body.empty());
    CHECK_FALSE(p.responses[id].end_stream);

    s.out_body += "part one;";
    p.server.resume_body(s);
    p.pump();
    CHECK(p.responses[id].body == "part one;");
    CHECK_FALSE(p.responses[id].end_stream);

    s.out_body += "part two";
    s.out_last = true;
    p.server.resume_body(s);
    p.pump();
    CHECK(p.responses[id].body == "part one;part two");
    CHECK(p.responses[id].end_stream);
    CHECK(s.closed);
}

TEST_CASE("http2::ServerSession indexes repeated response fields, within the client's header table size",
          "[http2]") {
    for (const std::uint32_t table : {4096u, 100u, 0u}) {
        INFO("client SETTINGS_HEADER_TABLE_SIZE " << table);
        Pair p;
        const nghttp2_settings_entry iv{NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, table};
        REQUIRE(nghttp2_submit_settings(p.client(), NGHTTP2_FLAG_NONE, &iv, 1) == 0);
        p.pump();
        const std::array<Header, 3> fields{Header{"Content-Type", "text/plain"}, Header{"x-trace", "abc"},
                                           Header{"Set-Cookie", "id=1"}};
        std::vector<std::size_t> sizes;
        for (int i = 0; i < 4; ++i) {
            const std::int32_t id = p.get("/");
            p.pump();
            const std::size_t before = p.handler.out.size();
            REQUIRE(p.server.respond(p.handler.at(id), 200, Headers(fields), false,
                                     http2::ServerFields{"Fri, 27 Nov 2026 09:00:00 GMT", 0}));
            sizes.push_back(p.handler.out.size() - before);
            p.pump();
            // nghttp2's inflater follows the table (and wants the size update a smaller table
            // needs): a desynchronised block would be a COMPRESSION_ERROR.
            CHECK(p.responses[id].headers == std::vector<std::pair<std::string, std::string>>{
                                                 {"content-type", "text/plain"}, {"x-trace", "abc"},
                                                 {"set-cookie", "id=1"}, {"date", "Fri, 27 Nov 2026 09:00:00 GMT"},
                                                 {"content-length", "0"}});
            CHECK(p.responses[id].close_error == 0);
        }
        CHECK_FALSE(p.goaway);
        if (table == 0) {
            CHECK(sizes[1] == sizes[2]);  // nothing indexed
        } else {
            CHECK(sizes[2] < sizes[0]);
        }
    }
}

TEST_CASE("http2::ServerSession::respond_whole sends a body that fits at once, else through h2_body_ready",
          "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t small = p.get("/");
    const std::int32_t large = p.get("/");
    p.pump();
    bool sent = false;
    REQUIRE(p.server.respond_whole(p.handler.at(small), 200, Headers(), "hello", {}, sent));
    CHECK(sent);
    CHECK(p.handler.at(small).response_done);
    p.pump();
    CHECK(p.responses[small].body == "hello");
    CHECK(p.responses[small].end_stream);
    CHECK(p.handler.at(small).out_sent == 0);  // never asked through h2_body_ready
    CHECK(p.handler.at(small).closed);

    // Beyond one frame (16 KiB): the head goes, the body waits for h2_body_ready.
    const std::string body(20'000, 'b');
    TestStream& s = p.handler.at(large);
    REQUIRE(p.server.respond_whole(s, 200, Headers(), body, {}, sent));
    CHECK_FALSE(sent);
    CHECK_FALSE(s.response_done);
    s.out_body = body;
    s.out_last = true;
    p.server.resume_body(s);
    p.pump();
    CHECK(p.responses[large].body == body);
    CHECK(p.responses[large].end_stream);
    CHECK(s.out_sent == body.size());
}

TEST_CASE("http2::ServerSession sends response trailers after the body", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/grpc");
    p.pump();
    TestStream& s = p.handler.at(id);
    REQUIRE(p.server.respond(s, 200, Headers(), true));
    s.out_body = "payload";
    p.server.resume_body(s);
    p.pump();
    CHECK(p.responses[id].body == "payload");
    // Fields HTTP/2 cannot carry are dropped from trailers (the body is already out).
    const std::array<Header, 4> t{Header{"Grpc-Status", "0"}, Header{"bad name", "x"}, Header{"Connection", "close"},
                                  Header{"x-v", "a\r\nb"}};
    REQUIRE(p.server.trailers(s, Headers(t)));
    p.pump();
    const ClientStream& r = p.responses[id];
    REQUIRE(r.trailers.size() == 1);
    CHECK(r.trailers[0] == std::pair<std::string, std::string>{"grpc-status", "0"});
    CHECK(r.end_stream);
    CHECK(r.close_error == 0);
}

TEST_CASE("http2::ServerSession ends a body with the stream's response trailers, not END_STREAM on DATA",
          "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/grpc");
    p.pump();
    TestStream& s = p.handler.at(id);
    REQUIRE(p.server.respond(s, 200, Headers(), true));
    const std::array<Header, 2> t{Header{"X-Checksum", "c0ffee"}, Header{"grpc-status", "0"}};
    s.response_trailers = Headers(t);
    s.out_body = "payload";
    s.out_last = true;
    p.server.resume_body(s);
    p.pump();
    const ClientStream& r = p.responses[id];
    CHECK(r.body == "payload");
    REQUIRE(r.trailers.size() == 2);
    CHECK(r.trailers[0] == std::pair<std::string, std::string>{"x-checksum", "c0ffee"});
    CHECK(r.trailers[1] == std::pair<std::string, std::string>{"grpc-status", "0"});
    CHECK(r.end_stream);
    CHECK(r.close_error == 0);
}

TEST_CASE("http2::ServerSession sends response trailers after an empty body", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/");
    p.pump();
    TestStream& s = p.handler.at(id);
    REQUIRE(p.server.respond(s, 200, Headers(), true));
    const std::array<Header, 1> t{Header{"x-done", "yes"}};
    s.response_trailers = Headers(t);
    s.out_last = true;
    p.server.resume_body(s);
    p.pump();
    const ClientStream& r = p.responses[id];
    CHECK(r.body.empty());
    REQUIRE(r.trailers.size() == 1);
    CHECK(r.trailers[0].first == "x-done");
    CHECK(r.end_stream);
}

TEST_CASE("http2::ServerSession sends 100 Continue before the final response", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/", {{"expect", "100-continue"}});
    p.pump();
    TestStream& s = p.handler.at(id);
    CHECK_FALSE(p.server.informational(s, 200));
    REQUIRE(p.server.informational(s, 100));
    p.pump();
    CHECK(p.responses[id].interim == std::vector<int>{100});
    CHECK(p.responses[id].status == 0);
    CHECK_FALSE(p.responses[id].end_stream);
    answer(p, id, "done");
    p.pump();
    const ClientStream& r = p.responses[id];
    CHECK(r.status == 200);
    CHECK(r.body == "done");
    CHECK(r.trailers.empty());
    CHECK(r.end_stream);
}

TEST_CASE("http2::ServerSession stops an unread upload with RST_STREAM NO_ERROR after max_drain_bytes",
          "[http2]") {
    http2::Limits limits;
    limits.h2.initial_stream_window = 16 * 1024;
    limits.max_drain_bytes = 8 * 1024;
    Pair p(limits);
    p.pump();
    const std::string body(100'000, 'u');
    const std::int32_t id = p.request({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/u"}},
                                      &body);
    p.pump();
    TestStream& s = p.handler.at(id);
    REQUIRE(p.server.respond(s, 413, Headers(), false));
    p.pump();
    // The server drops what still comes (its window reopened), then stops the upload.
    std::size_t taken = 0;
    for (int i = 0; i < 4 && !s.closed; ++i) {
        p.server.consume(s, s.body.size() - taken);
        taken = s.body.size();
        p.pump();
    }
    CHECK(s.body.size() < body.size());
    const ClientStream& r = p.responses[id];
    CHECK(r.status == 413);
    CHECK(r.end_stream);
    CHECK(r.reset);
    CHECK(r.reset_error == NGHTTP2_NO_ERROR);
    CHECK(s.closed);
    CHECK(p.server.flood() == http2::Flood::None);
}

// ---- floods ----------------------------------------------------------------------------------

namespace {

/// `n` streams each opened with HEADERS and reset by the client at once, as one burst of bytes.
std::string rapid_resets(Pair& p, int n) {
    std::string bytes;
    for (int i = 0; i < n; ++i) {
        const std::int32_t id = p.get("/r");
        bytes += p.client_bytes();
        REQUIRE(nghttp2_submit_rst_stream(p.client(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL) == 0);
        bytes += p.client_bytes();
    }
    return bytes;
}

http2::Limits reset_limits() {
    http2::Limits limits;
    limits.h2.reset_burst = 10;
    limits.h2.reset_rate = 1;
    return limits;
}

}  // namespace

TEST_CASE("http2::ServerSession ends a Rapid Reset flood with GOAWAY ENHANCE_YOUR_CALM", "[http2]") {
    Pair p(reset_limits());
    p.pump();
    p.feed(rapid_resets(p, 11));
    CHECK_FALSE(p.server_ok);
    CHECK(p.server.flood() == http2::Flood::Resets);
    CHECK(p.goaway);
    CHECK(p.goaway_error == NGHTTP2_ENHANCE_YOUR_CALM);
    CHECK(p.server.going_away());
    // Nothing more is read from this connection.
    const std::int32_t id = p.get("/after");
    p.pump();
    CHECK(p.handler.streams.find(id) == p.handler.streams.end());
}

TEST_CASE("http2::ServerSession tolerates resets within the burst", "[http2]") {
    Pair p(reset_limits());
    p.pump();
    p.feed(rapid_resets(p, 10));
    CHECK(p.server_ok);
    CHECK(p.server.flood() == http2::Flood::None);
    CHECK_FALSE(p.goaway);
    // The bucket refills at reset_rate: after 5 s, 5 more resets are fine, a 6th is not.
    p.now_ms += 5000;
    p.feed(rapid_resets(p, 5));
    CHECK(p.server_ok);
    CHECK_FALSE(p.goaway);
    p.feed(rapid_resets(p, 1));
    CHECK(p.server.flood() == http2::Flood::Resets);
    CHECK(p.goaway_error == NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_CASE("http2::ServerSession does not count resets of answered streams", "[http2]") {
    Pair p(reset_limits());
    p.pump();
    // 30 uploads still open; each is answered, and the client cancels its upload before the
    // answers reach it: complete exchanges, not Rapid Reset, whatever the burst (nghttp2's own
    // reset limiter must not end the connection over them either).
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 30; ++i) {
        ids.push_back(p.request({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/p"}}));
    }
    p.pump();
    for (std::int32_t id : ids) {
        REQUIRE(p.server.respond(p.handler.at(id), 200, Headers(), false));
    }
    std::string resets;
    for (std::int32_t id : ids) {
        REQUIRE(nghttp2_submit_rst_stream(p.client(), NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL) == 0);
    }
    resets = p.client_bytes();
    REQUIRE_FALSE(resets.empty());
    p.feed(resets);
    p.pump();
    INFO("GOAWAY " << p.goaway_error << " last " << p.goaway_last);
    CHECK(p.server_ok);
    CHECK(p.server.flood() == http2::Flood::None);
    CHECK_FALSE(p.goaway);
    for (std::int32_t id : ids) {
        CHECK(p.handler.at(id).closed);
    }
}

TEST_CASE("http2::ServerSession counts one token per malformed request it resets (MadeYouReset)",
          "[http2]") {
    Pair p(reset_limits());
    p.pump();
    // Each request breaks a field rule: nghttp2 resets it with PROTOCOL_ERROR. Nine of them
    // stay within the burst of ten.
    for (int i = 0; i < 9; ++i) {
        (void)p.get("/", {{"connection", "close"}});
    }
    p.pump();
    CHECK(p.server.flood() == http2::Flood::None);
    CHECK_FALSE(p.goaway);
    // A few more go beyond it.
    for (int i = 0; i < 3; ++i) {
        (void)p.get("/", {{"connection", "close"}});
    }
    p.pump();
    CHECK(p.server.flood() == http2::Flood::Resets);
    CHECK(p.goaway_error == NGHTTP2_ENHANCE_YOUR_CALM);
}

namespace {

http2::Limits control_limits() {
    http2::Limits limits;
    limits.h2.control_frame_burst = 20;
    limits.h2.control_frame_rate = 10;
    return limits;
}

}  // namespace

TEST_CASE("http2::ServerSession ends a PING flood with GOAWAY ENHANCE_YOUR_CALM", "[http2]") {
    Pair p(control_limits());
    p.pump();  // the client's SETTINGS and SETTINGS ACK spend 2 of the 20
    std::string flood;
    for (int i = 0; i < 19; ++i) {
        flood += ping(static_cast<std::uint8_t>(i));
    }
    p.feed(flood);
    CHECK_FALSE(p.server_ok);
    CHECK(p.server.flood() == http2::Flood::ControlFrames);
    CHECK(p.goaway);
    CHECK(p.goaway_error == NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_CASE("http2::ServerSession answers PINGs below the control-frame burst", "[http2]") {
    Pair p(control_limits());
    p.pump();
    std::string pings;
    for (int i = 0; i < 18; ++i) {
        pings += ping(static_cast<std::uint8_t>(i));
    }
    p.feed(pings);
    CHECK(p.server_ok);
    CHECK(p.server.flood() == http2::Flood::None);
    CHECK_FALSE(p.goaway);
    CHECK(p.ping_acks == 18);
    // The bucket refills at 10 per second.
    p.now_ms += 1000;
    pings.clear();
    for (int i = 0; i < 10; ++i) {
        pings += ping(static_cast<std::uint8_t>(i));
    }
    p.feed(pings);
    CHECK(p.server_ok);
    CHECK(p.ping_acks == 28);
    p.feed(ping(99));
    CHECK(p.server.flood() == http2::Flood::ControlFrames);
}

TEST_CASE("http2::ServerSession counts empty DATA frames as control frames (CVE-2019-9518)", "[http2]") {
    Pair p(control_limits());
    p.pump();  // 2 of 20: the client's SETTINGS and SETTINGS ACK
    p.feed(frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
                 block({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"}})));
    REQUIRE(p.handler.streams.size() == 1);
    std::string flood;
    for (int i = 0; i < 18; ++i) {
        flood += frame(NGHTTP2_DATA, 0, 1, "");
    }
    p.feed(flood);
    CHECK(p.server_ok);
    CHECK_FALSE(p.goaway);
    p.feed(frame(NGHTTP2_DATA, 0, 1, ""));
    CHECK(p.server.flood() == http2::Flood::ControlFrames);
    CHECK(p.goaway_error == NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_CASE("http2::ServerSession counts frames of unknown types as control frames", "[http2]") {
    // Http2Options: "unknown types" are in the control-frame budget. RFC 9113 §5.5 has them
    // ignored, which costs a parse each: 1,000 of them must end the connection at a burst of 20.
    Pair p(control_limits());
    p.pump();
    std::string flood;
    for (int i = 0; i < 1000; ++i) {
        flood += frame(static_cast<std::uint8_t>(0xfa), 0, 0, "ext");
    }
    p.feed(flood);
    CHECK(p.server.flood() == http2::Flood::ControlFrames);
    CHECK(p.goaway_error == NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_CASE("http2::ServerSession counts PRIORITY frames as control frames", "[http2]") {
    Pair p(control_limits());
    p.pump();
    std::string flood;
    for (int i = 0; i < 19; ++i) {
        // PRIORITY for idle streams: weight 16, no dependency (RFC 9113 §6.3).
        flood += frame(NGHTTP2_PRIORITY, 0, 2 * i + 101, std::string("\0\0\0\0\x0f", 5));
    }
    p.feed(flood);
    CHECK(p.server.flood() == http2::Flood::ControlFrames);
    CHECK(p.goaway_error == NGHTTP2_ENHANCE_YOUR_CALM);
}

TEST_CASE("http2::ServerSession does not count DATA with bytes as control frames", "[http2]") {
    Pair p(control_limits());
    p.pump();
    std::string raw = frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
                            block({{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"}}));
    for (int i = 0; i < 100; ++i) {
        raw += frame(NGHTTP2_DATA, 0, 1, "d");
    }
    raw += frame(NGHTTP2_DATA, NGHTTP2_FLAG_END_STREAM, 1, "");
    p.feed(raw);
    CHECK(p.server_ok);
    CHECK_FALSE(p.goaway);
    CHECK(p.handler.at(1).body == std::string(100, 'd'));
    CHECK(p.handler.at(1).ended);
}

TEST_CASE("http2::ServerSession ends the connection on a bad preface", "[http2]") {
    http2::Limits limits;
    TestHandler h;
    http2::ServerSession s(h, limits);
    REQUIRE(s.start());
    const std::string junk = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    CHECK_FALSE(s.receive(junk.data(), junk.size(), 1000));
    (void)s.send();
    CHECK(h.out.find(std::string("\x07", 1)) != std::string::npos);  // a GOAWAY frame type
    CHECK(h.streams.empty());
}

// ---- GOAWAY ----------------------------------------------------------------------------------

TEST_CASE("http2::ServerSession::goaway carries the last stream id and lets open streams finish",
          "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t a = p.get("/a");
    const std::int32_t b = p.get("/b");
    p.pump();
    p.server.goaway();
    p.pump();
    CHECK(p.goaway);
    CHECK(p.goaway_error == NGHTTP2_NO_ERROR);
    CHECK(p.goaway_last == b);
    CHECK(p.server.going_away());
    // Both streams are still answered.
    answer(p, a, "A");
    answer(p, b, "B");
    p.pump();
    CHECK(p.responses[a].body == "A");
    CHECK(p.responses[b].body == "B");
    CHECK(p.responses[b].end_stream);
    // A second goaway() sends nothing new.
    p.goaway = false;
    p.server.goaway();
    p.pump();
    CHECK_FALSE(p.goaway);
}

TEST_CASE("http2::ServerSession ignores streams opened after its GOAWAY", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t a = p.get("/a");
    p.pump();
    p.server.goaway();
    // The client has not seen the GOAWAY yet and opens another stream.
    const std::int32_t b = p.get("/b");
    const std::string late = p.client_bytes();
    p.feed(late);
    CHECK(p.goaway_last == a);
    // RFC 9113 §6.8: the client takes a stream above last-stream-id as unprocessed and may
    // retry it elsewhere, so the server must not process it (no request reaches the handler).
    auto it = p.handler.streams.find(b);
    CHECK((it == p.handler.streams.end() || !it->second->requested));
    answer(p, a, "A");
    p.pump();
    CHECK(p.responses[a].body == "A");
    CHECK(p.responses[b].status == 0);
}

TEST_CASE("http2::ServerSession ignores streams after a GOAWAY submitted while receiving", "[http2]") {
    // What the server does at max_requests_per_connection: goaway() from h2_request() while
    // the rest of the client's burst is still being parsed.
    Pair p;
    p.pump();
    p.handler.goaway_after = &p.server;
    p.handler.goaway_at = 2;
    std::vector<std::int32_t> ids;
    for (int i = 0; i < 6; ++i) {
        ids.push_back(p.get("/n"));
    }
    p.pump();
    CHECK(p.goaway);
    CHECK(p.goaway_last == ids[1]);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        INFO("stream " << ids[i]);
        auto it = p.handler.streams.find(ids[i]);
        const bool requested = it != p.handler.streams.end() && it->second->requested;
        CHECK(requested == (i < 2));
    }
}

TEST_CASE("http2::ServerSession::terminate sends GOAWAY with the error", "[http2]") {
    Pair p;
    p.pump();
    p.server.terminate(NGHTTP2_INTERNAL_ERROR);
    p.pump();
    CHECK(p.goaway);
    CHECK(p.goaway_error == NGHTTP2_INTERNAL_ERROR);
    CHECK(p.server.done());
}

// ---- the frame layer ---------------------------------------------------------------------------

namespace {

/// Frames in `wire` (whole frames only).
std::vector<Pair::Sent> frames_in(const std::string& wire) {
    std::vector<Pair::Sent> out;
    std::size_t at = 0;
    while (wire.size() - at >= 9) {
        const auto* h = reinterpret_cast<const unsigned char*>(wire.data() + at);
        const std::size_t len = std::size_t{h[0]} << 16 | std::size_t{h[1]} << 8 | h[2];
        REQUIRE(wire.size() - at >= 9 + len);
        const auto id = static_cast<std::int32_t>((h[5] & 0x7fu) << 24 | h[6] << 16 | h[7] << 8 | h[8]);
        out.push_back(Pair::Sent{h[3], h[4], id, wire.substr(at + 9, len)});
        at += 9 + len;
    }
    return out;
}

std::uint32_t u32_at(const std::string& s, std::size_t at) {
    const auto* b = reinterpret_cast<const unsigned char*>(s.data() + at);
    return std::uint32_t{b[0]} << 24 | std::uint32_t{b[1]} << 16 | std::uint32_t{b[2]} << 8 | b[3];
}

std::string u32_bytes(std::uint32_t v) {
    return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

/// Raw client frames straight into the server (past the client session, which would refuse
/// the server's answers on streams it did not open); returns the server's frames.
std::vector<Pair::Sent> raw_exchange(Pair& p, const std::string& bytes) {
    p.server_ok = p.server.receive(bytes.data(), bytes.size(), p.now_ms) && p.server_ok;
    (void)p.server.send();
    std::string out;
    out.swap(p.handler.out);
    return frames_in(out);
}

const Fields kPost{{":method", "POST"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/u"}};

}  // namespace

TEST_CASE("http2::ServerSession takes a request fed one byte at a time", "[http2]") {
    Pair p;
    p.pump();
    std::string body(40000, '\0');
    for (std::size_t i = 0; i < body.size(); ++i) {
        body[i] = static_cast<char>('a' + i % 26);
    }
    const std::int32_t id = p.request(kPost, &body);
    const std::string bytes = p.client_bytes();
    REQUIRE(bytes.size() > body.size());
    for (const char c : bytes) {
        p.server_ok = p.server.receive(&c, 1, p.now_ms) && p.server_ok;
    }
    CHECK(p.server_ok);
    TestStream& s = p.handler.at(id);
    CHECK(s.requested);
    CHECK(s.status == 0);
    CHECK(s.body == body);
    CHECK(s.ended);
    answer(p, id, "ok");
    p.pump();
    CHECK(p.responses[id].status == 200);
    CHECK(p.responses[id].body == "ok");
}

TEST_CASE("http2::ServerSession drops padding and gives its window back", "[http2]") {
    http2::Limits limits;
    limits.h2.initial_stream_window = 1024;
    Pair p(limits);
    p.pump();  // the client acknowledged our SETTINGS: new streams get 1024 bytes
    std::string raw = frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_PADDED, 1,
                            std::string(1, '\3') + block(kPost) + std::string(3, '\0'));
    for (int i = 0; i < 3; ++i) {
        // One payload byte behind 200 bytes of padding: 202 bytes of window each.
        raw += frame(NGHTTP2_DATA, NGHTTP2_FLAG_PADDED, 1, std::string(1, '\xc8') + "a" + std::string(200, '\0'));
    }
    const auto frames = raw_exchange(p, raw);
    CHECK(p.server_ok);
    TestStream& s = p.handler.at(1);
    CHECK(s.requested);
    CHECK(s.body == "aaa");
    // Nobody reads padding: its 3 x 201 bytes reopen the stream window by themselves, past half
    // of it, while the 3 payload bytes wait for consume().
    bool updated = false;
    for (const auto& f : frames) {
        if (f.type == NGHTTP2_WINDOW_UPDATE && f.id == 1) {
            CHECK(u32_at(f.payload, 0) == 603);
            updated = true;
        }
    }
    CHECK(updated);
}

TEST_CASE("http2::ServerSession gives back the connection window of a reset stream's DATA", "[http2]") {
    http2::Limits limits;
    limits.h2.connection_window = 65535;
    Pair p(limits);
    p.pump();
    (void)raw_exchange(p, frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block(kPost)));
    p.server.reset(p.handler.at(1), NGHTTP2_CANCEL);
    (void)raw_exchange(p, "");
    CHECK(p.handler.at(1).closed);
    // DATA the client sent before it saw the reset: 128 KiB, twice the connection window. Each
    // byte must come back to the window, or the connection ends in FLOW_CONTROL_ERROR.
    std::string raw;
    for (int i = 0; i < 8; ++i) {
        raw += frame(NGHTTP2_DATA, 0, 1, std::string(16384, 'd'));
    }
    const auto frames = raw_exchange(p, raw);
    CHECK(p.server_ok);
    std::uint64_t returned = 0;
    for (const auto& f : frames) {
        CHECK(f.type != NGHTTP2_GOAWAY);
        if (f.type == NGHTTP2_WINDOW_UPDATE && f.id == 0) {
            returned += u32_at(f.payload, 0);
        }
    }
    CHECK(returned >= 65536);
    CHECK(p.handler.at(1).body.empty());
}

TEST_CASE("http2::ServerSession ends the connection when a frame interrupts a header block", "[http2]") {
    Pair p;
    p.pump();
    const std::string b = block(kPost);
    const auto frames = raw_exchange(p, frame(NGHTTP2_HEADERS, 0, 1, b.substr(0, 10)) + ping(1) +
                                            frame(NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS, 1, b.substr(10)));
    CHECK_FALSE(p.server_ok);
    REQUIRE_FALSE(frames.empty());
    CHECK(frames.back().type == NGHTTP2_GOAWAY);
    CHECK(u32_at(frames.back().payload, 4) == NGHTTP2_PROTOCOL_ERROR);
    CHECK(p.handler.streams.empty());
}

TEST_CASE("http2::ServerSession resets a stream that depends on itself", "[http2]") {
    Pair p;
    p.pump();
    // PRIORITY flag: exclusive bit + dependency (the stream itself) + weight, then the block.
    const std::string priority = u32_bytes(1) + std::string(1, '\x10');
    const auto frames = raw_exchange(p, frame(NGHTTP2_HEADERS,
                                              NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_PRIORITY,
                                              1, priority + block(kPost)) +
                                            frame(NGHTTP2_HEADERS,
                                                  NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM |
                                                      NGHTTP2_FLAG_PRIORITY,
                                                  3, u32_bytes(1) + std::string(1, '\x10') + block(kPost)));
    CHECK(p.server_ok);
    std::int64_t reset1 = -1;
    for (const auto& f : frames) {
        if (f.type == NGHTTP2_RST_STREAM && f.id == 1) {
            reset1 = u32_at(f.payload, 0);
        }
        CHECK_FALSE((f.type == NGHTTP2_RST_STREAM && f.id == 3));
    }
    CHECK(reset1 == NGHTTP2_PROTOCOL_ERROR);
    CHECK_FALSE(p.handler.at(1).requested);
    CHECK(p.handler.at(3).requested);  // depending on another stream is fine (and ignored)
}

TEST_CASE("http2::ServerSession resets a stream whose window a WINDOW_UPDATE overflows", "[http2]") {
    Pair p;
    p.pump();
    const auto frames = raw_exchange(p, frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block(kPost)) +
                                            frame(NGHTTP2_WINDOW_UPDATE, 0, 1, u32_bytes(0x7fffffff)));
    CHECK(p.server_ok);
    std::int64_t reset = -1;
    for (const auto& f : frames) {
        CHECK(f.type != NGHTTP2_GOAWAY);
        if (f.type == NGHTTP2_RST_STREAM && f.id == 1) {
            reset = u32_at(f.payload, 0);
        }
    }
    CHECK(reset == NGHTTP2_FLOW_CONTROL_ERROR);
    CHECK(p.handler.at(1).closed);
    CHECK(p.handler.at(1).close_error == NGHTTP2_FLOW_CONTROL_ERROR);
}

TEST_CASE("http2::ServerSession splits a response head larger than the client's frame size", "[http2]") {
    Pair p;
    p.pump();
    const std::int32_t id = p.get("/big");
    p.pump();
    const std::string big(40000, 'v');
    const std::array<Header, 2> fields{Header{"x-big", big}, Header{"x-after", "1"}};
    REQUIRE(p.server.respond(p.handler.at(id), 200, Headers(fields), false));
    p.pump();
    CHECK(p.responses[id].status == 200);
    CHECK(p.responses[id].header("x-big") == big);
    CHECK(p.responses[id].header("x-after") == "1");
    CHECK(p.responses[id].end_stream);
    int continuations = 0;
    for (const auto& f : p.sent) {
        CHECK(f.payload.size() <= 16384);
        continuations += f.type == NGHTTP2_CONTINUATION ? 1 : 0;
    }
    CHECK(continuations >= 2);
}

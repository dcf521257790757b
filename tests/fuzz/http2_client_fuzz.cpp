// libFuzzer target for the HTTP/2 client codec (lib/http2/client.cpp): a ClientSession opens four
// streams (two GETs, a POST whose body is ready at once, a POST whose body comes after the first
// piece of input), then the input's bytes arrive as the server's frames after an empty SETTINGS
// frame the harness sends first (the server's connection preface, RFC 9113 §3.4). Small limits,
// so the head limits and the stream window are reached by short inputs.
//
// The first byte of an input picks the mode:
//   bit 0      feed the input in pieces (else in one receive())
//   bit 1      consume() each body chunk at once (else every other piece)
//   bit 2      after every other piece, cancel a stream that has its final head or was reused
//              (one reused from a callback during this piece has not gone out yet)
//   bit 3      submit a new request on a stream from inside its h2c_end() / h2c_head(end)
//   bits 4..7  piece size - 1 (1..16 bytes)
// Checked: no callback names a stream after h2c_end(), h2c_closed(), a head with END_STREAM or
// cancel(); h2c_data() only between a final head and the end; `unconsumed` is exactly the body
// bytes handed over since the last consume(); request-body DATA never goes beyond what
// h2c_body_ready() offered; open_streams() never exceeds the requests submitted.

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include <blitz/arena.hpp>
#include <blitz/http.hpp>

#include "http2/client.hpp"

namespace {

using namespace blitz;

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

enum class State { Idle, Open, Final, Done };

struct FuzzStream : http2::ClientStream {
    Arena mem;
    State state = State::Idle;
    bool reused = false;  // opened from a callback of its previous request
    std::uint32_t received = 0;  // body bytes handed over since the last consume()
    // request body
    std::string req_body;
    std::size_t req_ready = 0;
    bool req_done = false;
    std::size_t req_sent = 0;
    std::size_t offered = 0;  // what the last h2c_body_ready() offered
};

constexpr unsigned kMaxSubmits = 24;

class FuzzHandler final : public http2::ClientHandler {
public:
    http2::ClientSession* session = nullptr;
    std::array<FuzzStream, 4> streams;
    bool resubmit = false;
    unsigned submits = 0;
    std::size_t output = 0;

    FuzzStream& own(http2::ClientStream& cs) {
        for (FuzzStream& s : streams) {
            if (&s == &cs) {
                return s;
            }
        }
        __builtin_trap();
    }

    void open(FuzzStream& s, unsigned which) {
        if (submits >= kMaxSubmits || !session->can_open()) {
            return;
        }
        s.mem.reset();
        s.arena = &s.mem;
        s.received = 0;
        s.req_sent = 0;
        s.offered = 0;
        s.reused = submits >= streams.size();
        const bool post = which % 4 >= 2;
        s.req_body = post ? std::string(300 + which, 'p') : std::string();
        s.req_ready = which % 4 == 2 ? s.req_body.size() : 0;
        s.req_done = which % 4 == 2;
        const Header fields[] = {{"Accept", "*/*"}, {"TE", "trailers"}, {"Connection", "close"}};
        const std::int32_t id = session->submit(s, post ? "POST" : "GET", "https", "up.example", "/f",
                                                Headers(fields), post);
        ++submits;
        if (id > 0) {
            check(s.id == id);
            s.state = State::Open;
        } else {
            s.state = State::Idle;
        }
    }

    void finish(FuzzStream& s) {
        s.state = State::Done;
        if (resubmit) {
            open(s, submits);
        }
    }

    void h2c_head(http2::ClientStream& cs, bool end_stream) override {
        FuzzStream& s = own(cs);
        check(s.state == State::Open);
        check(s.status >= 100 && s.status <= 999);
        check(s.count <= s.capacity && (s.count == 0 || s.fields != nullptr));
        check(!s.too_large && !s.in_trailers);
        if (s.status >= 200) {
            s.state = State::Final;
        } else {
            check(!end_stream);
        }
        if (end_stream) {
            finish(s);
        }
    }
    void h2c_data(http2::ClientStream& cs, const char* data, std::size_t len) override {
        FuzzStream& s = own(cs);
        check(s.state == State::Final);
        check(data != nullptr || len == 0);
        s.received += static_cast<std::uint32_t>(len);
        check(s.unconsumed == s.received);
    }
    void h2c_end(http2::ClientStream& cs) override {
        FuzzStream& s = own(cs);
        check(s.state == State::Final);
        check(s.unconsumed == 0);  // given back to the connection before the handler hears
        if (s.in_trailers) {
            check(s.count <= s.capacity);
        }
        finish(s);
    }
    void h2c_closed(http2::ClientStream& cs, std::uint32_t) override {
        FuzzStream& s = own(cs);
        check(s.state == State::Open || s.state == State::Final);
        check(s.unconsumed == 0);
        finish(s);
    }
    void h2c_write(const std::uint8_t*, std::size_t len) override { output += len; }
    std::size_t h2c_body_ready(http2::ClientStream& cs, std::size_t max, bool& last) override {
        FuzzStream& s = own(cs);
        check(s.state == State::Open || s.state == State::Final);
        check(!s.req_body.empty());
        const std::size_t n = std::min(max, s.req_ready - s.req_sent);
        last = s.req_done && s.req_sent + n == s.req_ready;
        s.offered = n;
        return n;
    }
    void h2c_write_data(http2::ClientStream& cs, const std::uint8_t* frame_head, std::size_t len) override {
        FuzzStream& s = own(cs);
        check(s.state == State::Open || s.state == State::Final);
        check(len <= s.offered);
        const std::size_t framed = (std::size_t{frame_head[0]} << 16) | (std::size_t{frame_head[1]} << 8) | frame_head[2];
        check(framed >= len);
        check(frame_head[3] == 0);  // DATA
        s.offered -= len;
        s.req_sent += len;
        output += 9 + len;
    }
};

// An empty SETTINGS frame: the server's connection preface.
constexpr std::uint8_t kPreface[] = {0, 0, 0, 4, 0, 0, 0, 0, 0};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::uint8_t mode = data[0];
    ++data;
    --size;
    const bool pieces = (mode & 1) != 0;
    const bool consume_now = (mode & 2) != 0;
    const bool cancel_some = (mode & 4) != 0;
    const std::size_t piece = pieces ? (mode >> 4) + 1u : (size == 0 ? 1 : size);

    http2::ClientLimits limits;
    limits.max_head_bytes = 1024;
    limits.max_headers = 16;
    limits.stream_window = 4096;
    limits.connection_window = 65535;
    limits.max_streams = 8;
    FuzzHandler h;
    http2::ClientSession session(h, limits);
    h.session = &session;
    h.resubmit = (mode & 8) != 0;
    check(session.start());
    for (unsigned i = 0; i < h.streams.size(); ++i) {
        h.open(h.streams[i], i);
    }
    check(session.send());
    bool alive = session.receive(reinterpret_cast<const char*>(kPreface), sizeof kPreface);
    unsigned round = 0;
    for (std::size_t at = 0; alive && at < size; at += piece, ++round) {
        const std::size_t n = std::min(piece, size - at);
        alive = session.receive(reinterpret_cast<const char*>(data + at), n);
        check(session.open_streams() <= h.submits);
        for (FuzzStream& s : h.streams) {
            if (s.state == State::Open || s.state == State::Final) {
                check(s.unconsumed == s.received);
                if (consume_now || round % 2 == 1) {
                    session.consume(s);
                    check(s.unconsumed == 0);
                    s.received = 0;
                }
                if (round == 0 && s.req_ready < s.req_body.size()) {
                    s.req_ready = s.req_body.size();
                    s.req_done = true;
                    session.resume_body(s);
                }
            }
        }
        if (cancel_some && round % 2 == 1) {
            for (FuzzStream& s : h.streams) {
                if (s.state == State::Final || (s.state == State::Open && s.reused)) {
                    session.cancel(s);
                    check(s.id == 0);
                    s.state = State::Done;
                    break;
                }
            }
        }
        if (!session.send()) {
            break;
        }
        if (session.closing()) {
            check(!session.can_open());
        }
    }
    if (!alive) {
        check(session.closing());
        (void)session.send();
    }
    return 0;
}

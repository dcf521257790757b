// libFuzzer target for the HTTP/2 server codec (lib/http2): arbitrary bytes after the client
// connection preface go into a ServerSession whose Handler answers every request (at its head
// or at its end, with a body served through h2_body_ready / h2_write_data), hands request bodies
// on at once (consume()) and sometimes resets streams itself. Small limits, so the flood budgets,
// head limits and CONTINUATION cap are reached by short inputs.
//
// The first byte of an input picks the mode:
//   bit 0      feed the input in pieces (else in one receive())
//   bit 1      answer at the request's end (else at its head)
//   bit 2      reset every third stream instead of answering it
//   bits 3..7  piece size - 1 (1..32 bytes)
// Checked: the codec never touches a stream after h2_closed(), never asks for more body bytes
// than are pending or writes a DATA frame longer than its head says, hands each request head
// over once, and opens no stream after it said the connection is over.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include <blitz/arena.hpp>
#include <blitz/http.hpp>

#include "http2/session.hpp"

namespace {

constexpr std::uint32_t kMaxStreams = 8;  // max_concurrent_streams

using namespace blitz;

struct FuzzStream : http2::Stream {
    Arena mem;
    bool requested = false;
    bool answered = false;
    bool closed = false;
    std::string body;
    std::size_t sent = 0;
};

void check(bool ok) {
    if (!ok) {
        __builtin_trap();
    }
}

class FuzzHandler final : public http2::Handler {
public:
    http2::ServerSession* session = nullptr;
    std::map<std::int32_t, std::unique_ptr<FuzzStream>> streams;
    std::size_t output = 0;
    bool answer_at_end = false;
    bool reset_some = false;
    unsigned opened = 0;

    http2::Stream* h2_open(std::int32_t id) override {
        check(streams.find(id) == streams.end());  // stream ids are never reused
        auto s = std::make_unique<FuzzStream>();
        s->arena = &s->mem;
        FuzzStream* raw = s.get();
        streams[id] = std::move(s);
        ++opened;
        return raw;
    }

    void h2_refused() override {
        // Only a stream beyond the limit is refused: as many are still open.
        const auto open = std::count_if(streams.begin(), streams.end(), [](const auto& e) { return !e.second->closed; });
        check(open >= static_cast<std::ptrdiff_t>(kMaxStreams));
    }

    void h2_request(http2::Stream& st, http2::RequestHead& head, int status, const char*) override {
        auto& s = live(st);
        check(!s.requested);
        s.requested = true;
        // The head's views must be readable (ASan checks the bytes).
        std::size_t sum = head.method_name.size() + head.path.size() + head.query.size() + head.authority.size();
        for (const Header& h : head.headers) {
            sum += h.name.size() + h.value.size();
            check(!h.name.empty());
        }
        check(status == 0 || (status >= 400 && status <= 599));
        check(status != 0 || head.path.empty() || head.path[0] == '/' || head.path == "*");
        s.body.assign(sum % 3000, 'b');
        if (status != 0 || !answer_at_end || head.end_stream) {
            answer(s, status != 0 ? status : 200);
        }
    }

    void h2_data(http2::Stream& st, const char* data, std::size_t len) override {
        auto& s = live(st);
        check(s.requested);
        volatile char sink = 0;
        if (len > 0) {
            sink = static_cast<char>(data[0] ^ data[len - 1]);
        }
        (void)sink;
        session->consume(s, len);
    }

    void h2_request_end(http2::Stream& st, std::span<const Header> trailers) override {
        auto& s = live(st);
        check(s.requested);
        for (const Header& h : trailers) {
            check(!h.name.empty());
        }
        if (!s.answered) {
            answer(s, 200);
        }
    }

    void h2_closed(http2::Stream& st, std::uint32_t) override {
        auto& s = live(st);
        s.closed = true;
    }

    void h2_write(const std::uint8_t* data, std::size_t len) override {
        check(len > 0 && data != nullptr);
        output += len;
    }

    std::size_t h2_body_ready(http2::Stream& st, std::size_t max, bool& last) override {
        auto& s = live(st);
        check(s.answered);
        const std::size_t left = s.body.size() - s.sent;
        const std::size_t n = left < max ? left : max;
        last = n == left;
        return n;
    }

    void h2_write_data(http2::Stream& st, const std::uint8_t* frame_head, std::size_t len) override {
        auto& s = live(st);
        check(len <= s.body.size() - s.sent);
        // RFC 9113 §4.1: the head's length covers the payload (padding included).
        const std::size_t framed = std::size_t{frame_head[0]} << 16 | std::size_t{frame_head[1]} << 8 | frame_head[2];
        check(frame_head[3] == 0 && framed >= len);
        s.sent += len;
        output += 9 + len;
    }

private:
    FuzzStream& live(http2::Stream& st) {
        auto& s = static_cast<FuzzStream&>(st);
        check(!s.closed);
        auto it = streams.find(s.id);
        check(it != streams.end() && it->second.get() == &s);
        return s;
    }

    void answer(FuzzStream& s, int status) {
        s.answered = true;
        if (reset_some && s.id % 3 == 0) {
            session->reset(s, 8);  // CANCEL
            return;
        }
        static const Header kFields[] = {{"Content-Type", "text/plain"}, {"Connection", "close"}, {"x-a", "1"}};
        (void)session->respond(s, status, Headers(kFields), !s.body.empty());
    }
};

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) {
        return 0;
    }
    const std::uint8_t mode = data[0];
    const bool split = (mode & 1) != 0;
    const std::size_t piece = static_cast<std::size_t>(mode >> 3) + 1;

    http2::Limits limits;
    limits.max_head_bytes = 2048;
    limits.max_headers = 16;
    limits.max_path_bytes = 256;
    limits.h2.max_concurrent_streams = kMaxStreams;
    limits.h2.initial_stream_window = 1024;
    limits.h2.connection_window = 65535;
    limits.h2.max_continuation_frames = 4;
    limits.h2.reset_burst = 6;
    limits.h2.reset_rate = 2;
    limits.h2.control_frame_burst = 12;
    limits.h2.control_frame_rate = 4;

    FuzzHandler handler;
    handler.answer_at_end = (mode & 2) != 0;
    handler.reset_some = (mode & 4) != 0;
    {
        http2::ServerSession session(handler, limits);
        handler.session = &session;
        if (!session.start()) {
            return 0;
        }
        std::string input(kPreface);
        input.append(reinterpret_cast<const char*>(data + 1), size - 1);
        std::uint64_t now = 1000;
        bool open = true;
        for (std::size_t at = 0; at < input.size() && open;) {
            const std::size_t n = split ? std::min(piece, input.size() - at) : input.size() - at;
            open = session.receive(input.data() + at, n, now);
            at += n;
            now += 7;
            (void)session.send();
        }
        if (!open) {
            // After receive() said the connection is over, no stream opens any more.
            const unsigned before = handler.opened;
            (void)session.receive(input.data() + kPreface.size(), input.size() - kPreface.size(), now);
            check(handler.opened == before);
        }
        (void)session.send();
        (void)session.done();
        handler.session = nullptr;
    }
    return 0;
}

// SendQueue, the ordered output of a connection or stream: copies (first into the queue's own
// small area, then reactor blocks, then heap memory), static spans, owned blocks, moves and
// shares between queues, partial writes, retaining for a retry. A reactor without a backend
// supplies the blocks.
#include <catch2/catch_test_macros.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "server/reactor.hpp"
#include "server/send_queue.hpp"

using blitz::server::ReactorImpl;
using blitz::server::SendQueue;

namespace {

class NoOwner final : public blitz::server::ReactorOwner {
public:
    std::vector<std::shared_ptr<const blitz::server::ListenerShared>> listeners() const override { return {}; }
    unsigned reactor_count() const noexcept override { return 1; }
    blitz::trace::Exporter* exporter() const noexcept override { return nullptr; }
    void stop_all() noexcept override {}
};

struct Fixture {
    NoOwner owner;
    ReactorImpl reactor{owner, 0, blitz::server::MetricsLimits{}};
};

/// What the queue would write next, as prepare() lays it out (at most kMaxIov segments).
std::string prepared(SendQueue& q) {
    std::string out;
    const unsigned n = q.prepare();
    for (unsigned i = 0; i < n; ++i) {
        out.append(static_cast<const char*>(q.iov()[i].iov_base), q.iov()[i].iov_len);
    }
    return out;
}

/// Writes everything, `step` bytes at a time at most, and returns the bytes in order.
std::string write_all(SendQueue& q, std::size_t step = SIZE_MAX) {
    std::string out;
    while (!q.empty()) {
        const std::string next = prepared(q);
        REQUIRE(!next.empty());
        const std::size_t n = std::min(step, next.size());
        out += next.substr(0, n);
        q.consume(static_cast<std::uint32_t>(n));
    }
    return out;
}

std::string pattern(std::size_t n, char seed) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<char>(seed + static_cast<char>(i % 23));
    }
    return s;
}

bool inside(const SendQueue& q, const void* p) {
    const auto* begin = reinterpret_cast<const char*>(&q);
    return p >= begin && p < begin + sizeof q;
}

}  // namespace

TEST_CASE("SendQueue keeps a small copy inside itself and larger ones in blocks", "[send_queue]") {
    Fixture f;
    SendQueue q(f.reactor);
    const std::string small = pattern(SendQueue::kSmallBytes, 'a');
    q.push_copy(small.data(), static_cast<std::uint32_t>(small.size()));
    REQUIRE(q.prepare() == 1);
    CHECK(inside(q, q.iov()[0].iov_base));
    // One more byte does not fit the small area: it goes to a block of its own.
    q.push_copy("!", 1);
    REQUIRE(q.prepare() == 2);
    CHECK(!inside(q, q.iov()[1].iov_base));
    CHECK(q.bytes() == small.size() + 1);
    CHECK(write_all(q) == small + "!");
    CHECK(q.bytes() == 0);
}

TEST_CASE("SendQueue appends copies to the block it filled last", "[send_queue]") {
    Fixture f;
    SendQueue q(f.reactor);
    std::string expected;
    for (int i = 0; i < 100; ++i) {
        const std::string piece = pattern(100, static_cast<char>('a' + i % 20));
        q.push_copy(piece.data(), static_cast<std::uint32_t>(piece.size()));
        expected += piece;
    }
    // The small area takes the first two pieces (a third does not fit), one block the rest.
    CHECK(q.prepare() == 2);
    CHECK(write_all(q) == expected);
}

TEST_CASE("SendQueue puts a copy larger than a block into memory of its own", "[send_queue]") {
    Fixture f;
    SendQueue q(f.reactor);
    const std::string big = pattern(ReactorImpl::kOutBlockBytes * 3 + 5, 'A');
    q.push_copy("head", 4);
    q.push_copy(big.data(), static_cast<std::uint32_t>(big.size()));
    q.push_copy("tail", 4);
    CHECK(q.bytes() == big.size() + 8);
    CHECK(write_all(q, 1000) == "head" + big + "tail");
}

TEST_CASE("SendQueue keeps the order of copies, static spans and owned blocks beyond its inline segments",
          "[send_queue]") {
    Fixture f;
    SendQueue q(f.reactor);
    static const std::string kStatic = pattern(40, 'k');
    std::string expected;
    for (int i = 0; i < 50; ++i) {
        if (i % 3 == 0) {
            q.push_static(kStatic.data(), static_cast<std::uint32_t>(kStatic.size()));
            expected += kStatic;
        } else if (i % 3 == 1) {
            char* block = f.reactor.take_out_block();
            const std::string body = pattern(300, static_cast<char>('a' + i % 10));
            std::memcpy(block, body.data(), body.size());
            q.push_block(block, static_cast<std::uint32_t>(body.size()), ReactorImpl::kOutBlockBytes);
            expected += body;
        } else {
            const std::string piece = "<" + std::to_string(i) + ">";
            q.push_copy(piece.data(), static_cast<std::uint32_t>(piece.size()));
            expected += piece;
        }
    }
    CHECK(q.prepare() == SendQueue::kMaxIov);  // one write takes at most kMaxIov segments
    CHECK(q.bytes() == expected.size());
    CHECK(write_all(q, 77) == expected);
}

TEST_CASE("SendQueue writes a partly written segment from where the write stopped", "[send_queue]") {
    Fixture f;
    SendQueue q(f.reactor);
    q.push_static("abcdef", 6);
    q.push_copy("ghij", 4);
    q.consume(4);
    CHECK(prepared(q) == "efghij");
    CHECK(q.unwritten() == 6);
    // Bytes appended while a write is under way go after it.
    q.push_copy("kl", 2);
    CHECK(prepared(q) == "efghijkl");
    q.consume(3);
    CHECK(prepared(q) == "hijkl");
    CHECK(write_all(q) == "hijkl");
}

TEST_CASE("SendQueue retains written bytes for a retry until told otherwise", "[send_queue]") {
    Fixture f;
    SendQueue q(f.reactor);
    q.set_retain(true);
    const std::string body = pattern(1000, 'r');
    q.push_static("GET / HTTP/1.1\r\n\r\n", 18);
    q.push_copy(body.data(), static_cast<std::uint32_t>(body.size()));
    CHECK(write_all(q, 100) == "GET / HTTP/1.1\r\n\r\n" + body);
    CHECK(q.empty());
    CHECK(q.bytes() == 18 + body.size());  // kept
    q.rewind();
    CHECK(q.unwritten() == 18 + body.size());
    CHECK(write_all(q) == "GET / HTTP/1.1\r\n\r\n" + body);
    q.set_retain(false);
    CHECK(q.bytes() == 0);
}

TEST_CASE("SendQueue moves its first bytes to another queue, splitting a segment", "[send_queue]") {
    Fixture f;
    SendQueue body(f.reactor);
    SendQueue out(f.reactor);
    body.push_static("0123456789", 10);
    body.push_copy("abcdefghij", 10);
    out.push_copy("[frame]", 7);
    body.move_to(out, 15);
    CHECK(body.bytes() == 5);
    CHECK(out.bytes() == 22);
    CHECK(write_all(out) == "[frame]0123456789abcde");
    body.move_to(out, 5);
    CHECK(body.bytes() == 0);
    CHECK(write_all(out) == "fghij");
    // The source's small area is free again.
    body.push_copy("again", 5);
    REQUIRE(body.prepare() == 1);
    CHECK(inside(body, body.iov()[0].iov_base));
}

TEST_CASE("SendQueue moves a block or heap copy out in pieces and frees it whole", "[send_queue]") {
    // An HTTP/2 stream's body goes out one DATA frame (or window) at a time: the segments it
    // splits are released by the pointers they were given.
    Fixture f;
    for (const std::size_t size : {ReactorImpl::kOutBlockBytes - 100, ReactorImpl::kOutBlockBytes * 3 + 5}) {
        SendQueue body(f.reactor);
        SendQueue out(f.reactor);
        const std::string big = pattern(size, 'a');
        body.push_copy(big.data(), static_cast<std::uint32_t>(big.size()));
        std::string moved;
        for (const std::uint32_t step : {1000u, 16384u, 7u}) {
            while (!body.empty() && moved.size() < size / 2) {
                body.move_to(out, step);
                moved += write_all(out);
            }
        }
        while (!body.empty()) {
            body.move_to(out, 16384);
            moved += write_all(out);
        }
        CHECK(moved == big);
        CHECK(body.bytes() == 0);
        // The queue takes new bytes from the start of a segment again.
        body.push_copy("next", 4);
        body.move_to(out, 4);
        CHECK(write_all(out) == "next");
    }
}

TEST_CASE("SendQueue shares unwritten bytes with another queue and keeps them when retaining",
          "[send_queue]") {
    Fixture f;
    SendQueue upload(f.reactor);
    SendQueue wire(f.reactor);
    upload.set_retain(true);
    upload.push_static("hello ", 6);
    upload.push_copy("world", 5);
    upload.share_to(wire, 8);
    CHECK(upload.unwritten() == 3);
    CHECK(upload.bytes() == 11);
    CHECK(write_all(wire) == "hello wo");
    upload.share_to(wire, 3);
    CHECK(write_all(wire) == "rld");
    // A retry sends the whole body again.
    upload.rewind();
    upload.share_to(wire, 11);
    CHECK(write_all(wire) == "hello world");
}

TEST_CASE("SendQueue releases everything it holds", "[send_queue]") {
    Fixture f;
    SendQueue q(f.reactor);
    const std::string big = pattern(ReactorImpl::kOutBlockBytes + 1, 'z');
    q.push_copy("small", 5);
    q.push_copy(big.data(), static_cast<std::uint32_t>(big.size()));
    char* block = f.reactor.take_out_block();
    q.push_block(block, 3, ReactorImpl::kOutBlockBytes);
    q.consume(2);
    q.release_all();
    CHECK(q.bytes() == 0);
    CHECK(q.empty());
    CHECK(q.prepare() == 0);
    q.push_copy("next", 4);
    CHECK(write_all(q) == "next");
}

#include <string>

#include <catch2/catch_test_macros.hpp>

#include "support.hpp"
#include "tls/output.hpp"

namespace {

using tls_test::CountingBuffers;

std::string drain(blitz::tls::OutputQueue& q) {
    std::string all;
    while (!q.empty()) {
        const std::string_view v = q.front();
        all.append(v);
        q.consume(v.size());
    }
    return all;
}

}  // namespace

TEST_CASE("tls::OutputQueue appends after what front() exposed without moving it", "[tls]") {
    CountingBuffers buffers(64);
    blitz::tls::OutputQueue q(buffers);
    CHECK(q.empty());
    REQUIRE(q.append("0123456789", 10));
    const std::string_view first = q.front();
    REQUIRE(q.append("abcdef", 6));
    CHECK(q.front().data() == first.data());
    CHECK(q.front() == "0123456789abcdef");
    q.consume(4);
    CHECK(q.front() == "456789abcdef");
    CHECK(buffers.outstanding() == 1);
    q.consume(12);
    CHECK(q.empty());
    CHECK(buffers.outstanding() == 0);
}

TEST_CASE("tls::OutputQueue holds two pool buffers at most and spills the rest", "[tls]") {
    CountingBuffers buffers(16);
    blitz::tls::OutputQueue q(buffers);
    std::string data;
    for (int i = 0; i < 70; ++i) {
        data += static_cast<char>('a' + i % 26);
    }
    REQUIRE(q.append(data.data(), data.size()));
    CHECK(q.pooled() == 2);
    CHECK(buffers.taken == 2);
    // Full pool buffers and a spill: no room for application data.
    CHECK(q.room(10) == 0);
    CHECK(drain(q) == data);
    CHECK(q.pooled() == 0);
    CHECK(buffers.outstanding() == 0);
}

TEST_CASE("tls::OutputQueue::room opens a second buffer when the first is nearly full", "[tls]") {
    CountingBuffers buffers(4096);
    blitz::tls::OutputQueue q(buffers);
    CHECK(q.room(100) == 4096);
    CHECK(buffers.taken == 1);
    const std::string big(4000, 'x');
    REQUIRE(q.append(big.data(), big.size()));
    // 96 bytes left: enough for a small record, not for a large one.
    CHECK(q.room(50) == 96);
    CHECK(q.room(3000) == 4096);
    CHECK(q.pooled() == 2);
    CHECK(q.room(3000) == 4096);  // the new one is still empty: no third buffer
    q.trim();
    CHECK(q.pooled() == 1);
    q.clear();
    CHECK(buffers.outstanding() == 0);
}

#include <set>
#include <string>

#include <catch2/catch_test_macros.hpp>

#include "trace/ids.hpp"

using namespace blitz::trace;

namespace {

bool is_lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

}  // namespace

TEST_CASE("trace::IdGenerator request ids are RFC 9562 version-4 UUIDs in lowercase text",
          "[trace]") {
    IdGenerator gen;
    std::set<std::string> seen;
    for (int i = 0; i < 10000; ++i) {
        char buf[kUuidSize];
        gen.request_id(buf);
        std::string id(buf, sizeof buf);
        REQUIRE(id.size() == 36);
        for (std::size_t j = 0; j < id.size(); ++j) {
            if (j == 8 || j == 13 || j == 18 || j == 23) {
                REQUIRE(id[j] == '-');
            } else {
                REQUIRE(is_lower_hex(id[j]));
            }
        }
        // Version nibble 4 and variant bits 10 (RFC 9562 §4.1, §4.2).
        REQUIRE(id[14] == '4');
        REQUIRE(std::string("89ab").find(id[19]) != std::string::npos);
        REQUIRE(valid_request_id(id));
        seen.insert(id);
    }
    CHECK(seen.size() == 10000);
}

TEST_CASE("trace::IdGenerator trace and span ids are non-zero and distinct", "[trace]") {
    IdGenerator gen;
    std::set<std::string> traces;
    std::set<std::string> spans;
    for (int i = 0; i < 10000; ++i) {
        TraceId t = gen.trace_id();
        SpanId s = gen.span_id();
        REQUIRE_FALSE(t.is_zero());
        REQUIRE_FALSE(s.is_zero());
        traces.emplace(reinterpret_cast<const char*>(t.b), sizeof t.b);
        spans.emplace(reinterpret_cast<const char*>(s.b), sizeof s.b);
    }
    CHECK(traces.size() == 10000);
    CHECK(spans.size() == 10000);
}

TEST_CASE("trace::IdGenerator is reproducible from a seed and random without one", "[trace]") {
    IdGenerator a(42);
    IdGenerator b(42);
    IdGenerator c(43);
    for (int i = 0; i < 100; ++i) {
        std::uint64_t x = a.next();
        CHECK(x == b.next());
        CHECK(x != c.next());
    }
    IdGenerator r1;
    IdGenerator r2;
    CHECK(r1.trace_id() != r2.trace_id());
    // A zero seed still gives a working generator (splitmix spreads it).
    IdGenerator z(0);
    CHECK(z.next() != z.next());
}

TEST_CASE("trace::IdGenerator sets the 128 bits of trace ids evenly", "[trace]") {
    IdGenerator gen(7);
    int ones[128] = {};
    constexpr int kDraws = 4000;
    for (int i = 0; i < kDraws; ++i) {
        TraceId t = gen.trace_id();
        for (int bit = 0; bit < 128; ++bit) {
            ones[bit] += (t.b[bit / 8] >> (bit % 8)) & 1;
        }
    }
    for (int bit = 0; bit < 128; ++bit) {
        // Binomial(4000, 0.5): mean 2000, sd ~32; 6 sd either side.
        REQUIRE(ones[bit] > 1800);
        REQUIRE(ones[bit] < 2200);
    }
}

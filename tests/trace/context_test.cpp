#include <string>

#include <catch2/catch_test_macros.hpp>

#include "trace/context.hpp"

using namespace blitz::trace;

namespace {

// The example of Trace Context §3.2.2.
constexpr std::string_view kSpecTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr std::string_view kSpecParent = "00f067aa0ba902b7";

std::string traceparent(std::string_view version, std::string_view trace, std::string_view parent,
                        std::string_view flags) {
    return std::string(version) + "-" + std::string(trace) + "-" + std::string(parent) + "-" +
           std::string(flags);
}

std::string hex(const TraceId& id) {
    char buf[32];
    format_hex(buf, id);
    return {buf, sizeof buf};
}

std::string hex(const SpanId& id) {
    char buf[16];
    format_hex(buf, id);
    return {buf, sizeof buf};
}

}  // namespace

TEST_CASE("trace::parse_traceparent accepts the spec example and keeps ids and flags", "[trace]") {
    auto tp = parse_traceparent(traceparent("00", kSpecTrace, kSpecParent, "01"));
    REQUIRE(tp);
    CHECK(hex(tp->trace) == kSpecTrace);
    CHECK(hex(tp->parent) == kSpecParent);
    CHECK(tp->flags == 0x01);
    CHECK(tp->trace.b[0] == 0x4b);
    CHECK(tp->parent.b[7] == 0xb7);

    auto unsampled = parse_traceparent(traceparent("00", kSpecTrace, kSpecParent, "00"));
    REQUIRE(unsampled);
    CHECK(unsampled->flags == 0x00);
    // Unknown flag bits are kept as received (§3.2.2.5).
    auto other_bits = parse_traceparent(traceparent("00", kSpecTrace, kSpecParent, "ff"));
    REQUIRE(other_bits);
    CHECK(other_bits->flags == 0xff);
}

TEST_CASE("trace::format_traceparent writes what parse_traceparent reads", "[trace]") {
    std::string in = traceparent("00", kSpecTrace, kSpecParent, "01");
    auto tp = parse_traceparent(in);
    REQUIRE(tp);
    char out[kTraceParentSize];
    format_traceparent(out, tp->trace, tp->parent, tp->flags);
    CHECK(std::string(out, sizeof out) == in);
    format_traceparent(out, tp->trace, tp->parent, 0);
    CHECK(std::string(out, sizeof out) == traceparent("00", kSpecTrace, kSpecParent, "00"));
}

TEST_CASE("trace::parse_traceparent rejects every malformed version-00 value", "[trace]") {
    const std::string valid = traceparent("00", kSpecTrace, kSpecParent, "01");
    REQUIRE(parse_traceparent(valid));
    // Version 00 has exactly 55 characters: nothing may follow, not even a dash.
    CHECK_FALSE(parse_traceparent(valid + "-"));
    CHECK_FALSE(parse_traceparent(valid + "-extra"));
    CHECK_FALSE(parse_traceparent(valid + " "));
    CHECK_FALSE(parse_traceparent(valid.substr(0, 54)));
    CHECK_FALSE(parse_traceparent(""));
    // Uppercase hex anywhere.
    CHECK_FALSE(parse_traceparent(
        traceparent("00", "4BF92F3577B34DA6A3CE929D0E0E4736", kSpecParent, "01")));
    CHECK_FALSE(parse_traceparent(traceparent("00", kSpecTrace, "00F067AA0BA902B7", "01")));
    CHECK_FALSE(parse_traceparent(traceparent("00", kSpecTrace, kSpecParent, "0A")));
    CHECK_FALSE(parse_traceparent(traceparent("0A", kSpecTrace, kSpecParent, "01")));
    // Non-hex characters.
    CHECK_FALSE(parse_traceparent(traceparent("0g", kSpecTrace, kSpecParent, "01")));
    CHECK_FALSE(parse_traceparent(
        traceparent("00", "4bf92f3577b34da6a3ce929d0e0e473g", kSpecParent, "01")));
    CHECK_FALSE(parse_traceparent(traceparent("00", kSpecTrace, "00f067aa0ba902bz", "01")));
    CHECK_FALSE(parse_traceparent(traceparent("00", kSpecTrace, kSpecParent, "0x")));
    // All-zero ids.
    CHECK_FALSE(parse_traceparent(traceparent("00", std::string(32, '0'), kSpecParent, "01")));
    CHECK_FALSE(parse_traceparent(traceparent("00", kSpecTrace, std::string(16, '0'), "01")));
    // Wrong delimiters or field lengths that still add up to 55.
    std::string bad = valid;
    bad[2] = '_';
    CHECK_FALSE(parse_traceparent(bad));
    bad = valid;
    bad[35] = '.';
    CHECK_FALSE(parse_traceparent(bad));
    bad = valid;
    bad[52] = ' ';
    CHECK_FALSE(parse_traceparent(bad));
    CHECK_FALSE(parse_traceparent(
        traceparent("00", std::string(kSpecTrace) + "0", kSpecParent.substr(1), "01")));
}

TEST_CASE("trace::parse_traceparent treats version ff as invalid and parses future versions",
          "[trace]") {
    CHECK_FALSE(parse_traceparent(traceparent("ff", kSpecTrace, kSpecParent, "01")));
    CHECK_FALSE(parse_traceparent(traceparent("ff", kSpecTrace, kSpecParent, "01") + "-x"));

    auto exact = parse_traceparent(traceparent("cc", kSpecTrace, kSpecParent, "01"));
    REQUIRE(exact);
    CHECK(hex(exact->trace) == kSpecTrace);
    CHECK(hex(exact->parent) == kSpecParent);
    CHECK(exact->flags == 0x01);

    auto longer = parse_traceparent(traceparent("cc", kSpecTrace, kSpecParent, "09") +
                                    "-what-the-future-will-be-like");
    REQUIRE(longer);
    CHECK(longer->flags == 0x09);
    CHECK(hex(longer->parent) == kSpecParent);

    // The 56th character must be a dash.
    CHECK_FALSE(parse_traceparent(traceparent("cc", kSpecTrace, kSpecParent, "01") + "x"));
    CHECK_FALSE(parse_traceparent(traceparent("cc", kSpecTrace, kSpecParent, "010")));
    // A future version still cannot be shorter than 55 or have zero ids.
    CHECK_FALSE(parse_traceparent(traceparent("cc", kSpecTrace, kSpecParent, "1")));
    CHECK_FALSE(parse_traceparent(traceparent("cc", std::string(32, '0'), kSpecParent, "01")));
    CHECK_FALSE(parse_traceparent(traceparent("01", kSpecTrace, kSpecParent, "0G") + "-"));
}

TEST_CASE("trace::valid_tracestate accepts the key and value grammar of the spec", "[trace]") {
    CHECK(valid_tracestate("rojo=00f067aa0ba902b7"));
    CHECK(valid_tracestate("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"));
    CHECK(valid_tracestate("fw529a3039@dt=t61rcWkgMzE"));
    CHECK(valid_tracestate("1tenant@vendor=x"));
    CHECK(valid_tracestate("a_-*/9=v a l!~"));
    // Optional whitespace around members and empty members (§3.3.1.2).
    CHECK(valid_tracestate(" a=1 ,,\tb=2\t, "));
    CHECK(valid_tracestate("a= leading-space-is-a-value-char"));
    CHECK(valid_tracestate(std::string(256, 'k') + "=v"));
    CHECK(valid_tracestate("k=" + std::string(256, 'v')));
    CHECK(valid_tracestate(std::string(241, 't') + "@" + std::string(14, 's') + "=v"));
}

TEST_CASE("trace::valid_tracestate rejects malformed members", "[trace]") {
    CHECK_FALSE(valid_tracestate(""));
    CHECK_FALSE(valid_tracestate(" , ,"));
    CHECK_FALSE(valid_tracestate("Rojo=1"));
    CHECK_FALSE(valid_tracestate("1abc=1"));
    CHECK_FALSE(valid_tracestate("rojo"));
    CHECK_FALSE(valid_tracestate("=1"));
    CHECK_FALSE(valid_tracestate("rojo="));
    CHECK_FALSE(valid_tracestate("rojo=a=b"));
    CHECK_FALSE(valid_tracestate("rojo=a\x7f"));
    CHECK_FALSE(valid_tracestate("rojo=a\tb"));
    CHECK_FALSE(valid_tracestate("ro jo=1"));
    CHECK_FALSE(valid_tracestate("rojo=1,rojo=2"));
    CHECK_FALSE(valid_tracestate("@dt=1"));
    CHECK_FALSE(valid_tracestate("t@=1"));
    CHECK_FALSE(valid_tracestate("t@1dt=1"));
    CHECK_FALSE(valid_tracestate("t@d@t=1"));
    CHECK_FALSE(valid_tracestate(std::string(257, 'k') + "=v"));
    CHECK_FALSE(valid_tracestate("k=" + std::string(257, 'v')));
    CHECK_FALSE(valid_tracestate(std::string(242, 't') + "@s=v"));
    CHECK_FALSE(valid_tracestate("t@" + std::string(15, 's') + "=v"));
}

TEST_CASE("trace::valid_tracestate enforces 512 bytes and 32 members", "[trace]") {
    std::string members;
    for (int i = 0; i < 32; ++i) {
        members += (i != 0 ? ",k" : "k") + std::to_string(i) + "=v";
    }
    CHECK(valid_tracestate(members));
    CHECK_FALSE(valid_tracestate(members + ",k32=v"));
    // Empty members do not count towards the 32.
    CHECK(valid_tracestate(members + ",,"));

    std::string at_limit = "k=" + std::string(254, 'v') + ",l=" + std::string(253, 'v');
    REQUIRE(at_limit.size() == 512);
    CHECK(valid_tracestate(at_limit));
    CHECK_FALSE(valid_tracestate(at_limit + " "));
}

TEST_CASE("trace::valid_request_id accepts visible ASCII up to 128 bytes", "[trace]") {
    CHECK(valid_request_id("f81d4fae-7dec-41d0-a765-00a0c91e6bf6"));
    CHECK(valid_request_id("a"));
    CHECK(valid_request_id("!#$%&'()*+,-./:;<=>?@[]^_`{|}~"));
    CHECK(valid_request_id(std::string(128, 'x')));
    CHECK_FALSE(valid_request_id(std::string(129, 'x')));
    CHECK_FALSE(valid_request_id(""));
    CHECK_FALSE(valid_request_id("a b"));
    CHECK_FALSE(valid_request_id("a\"b"));
    CHECK_FALSE(valid_request_id("a\\b"));
    CHECK_FALSE(valid_request_id("a\tb"));
    CHECK_FALSE(valid_request_id("a\x7f"));
    CHECK_FALSE(valid_request_id("caf\xc3\xa9"));
    CHECK_FALSE(valid_request_id(std::string_view("a\0b", 3)));
    CHECK_FALSE(valid_request_id("a\r\nX-Evil: 1"));
}

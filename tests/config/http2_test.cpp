#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

#include <blitz/config.hpp>
#include <blitz/listener.hpp>

#include "helpers.hpp"

namespace {

using namespace std::chrono_literals;
using blitz::config::test::error_of;
using blitz::config::test::parse_ok;
using blitz::config::test::require_error_at;
using blitz::config::test::ScopedEnv;

/// A document with one plain listener whose "http2" is `value`.
std::string listener_http2(std::string_view value) {
    return R"({"listeners": [{"address": "127.0.0.1:8080", "http2": )" + std::string(value) +
           R"(}], "routes": []})";
}

const blitz::Http2Options& http2_of(const blitz::Config& c) {
    REQUIRE(c.listeners.size() == 1);
    return c.listeners[0].http2;
}

/// Every value equal to the documented default (docs/config.md, docs/config.schema.json).
void check_defaults(const blitz::Http2Options& h) {
    CHECK(h.max_concurrent_streams == 100);
    CHECK(h.initial_stream_window == 262'144);
    CHECK(h.connection_window == 1'048'576);
    CHECK(h.max_frame_size == 16'384);
    CHECK(h.header_table_size == 4096);
    CHECK(h.max_continuation_frames == 8);
    CHECK(h.reset_rate == 33);
    CHECK(h.reset_burst == 200);
    CHECK(h.control_frame_rate == 100);
    CHECK(h.control_frame_burst == 1000);
    CHECK(h.zero_window_timeout == 30'000ms);
}

}  // namespace

TEST_CASE("config::parse_config reads every key of a listener's http2 object", "[config][http2]") {
    const blitz::Config c = parse_ok(listener_http2(R"({
        "enabled": true,
        "max_concurrent_streams": 250,
        "initial_stream_window": 65535,
        "connection_window": 16777216,
        "max_frame_size": 32768,
        "header_table_size": 0,
        "max_continuation_frames": 3,
        "reset_rate": 10,
        "reset_burst": 50,
        "control_frame_rate": 20,
        "control_frame_burst": 40,
        "zero_window_timeout_ms": 5000})"));
    const blitz::Http2Options& h = http2_of(c);
    CHECK(h.enabled);
    CHECK(h.max_concurrent_streams == 250);
    CHECK(h.initial_stream_window == 65'535);
    CHECK(h.connection_window == 16'777'216);
    CHECK(h.max_frame_size == 32'768);
    CHECK(h.header_table_size == 0);
    CHECK(h.max_continuation_frames == 3);
    CHECK(h.reset_rate == 10);
    CHECK(h.reset_burst == 50);
    CHECK(h.control_frame_rate == 20);
    CHECK(h.control_frame_burst == 40);
    CHECK(h.zero_window_timeout == 5000ms);

    // The ends of every range are accepted.
    const blitz::Config low = parse_ok(listener_http2(R"({
        "max_concurrent_streams": 1, "initial_stream_window": 1, "connection_window": 65535,
        "max_frame_size": 16384, "header_table_size": 0, "max_continuation_frames": 1,
        "reset_rate": 1, "reset_burst": 1, "control_frame_rate": 1, "control_frame_burst": 1,
        "zero_window_timeout_ms": 1})"));
    CHECK(http2_of(low).max_concurrent_streams == 1);
    CHECK(http2_of(low).initial_stream_window == 1);
    CHECK(http2_of(low).connection_window == 65'535);
    CHECK(http2_of(low).max_frame_size == 16'384);
    CHECK(http2_of(low).max_continuation_frames == 1);
    CHECK(http2_of(low).reset_rate == 1);
    CHECK(http2_of(low).zero_window_timeout == 1ms);
    const blitz::Config high = parse_ok(listener_http2(R"({
        "max_concurrent_streams": 2147483647, "initial_stream_window": 2147483647,
        "connection_window": 2147483647, "max_frame_size": 16777215,
        "header_table_size": 65536, "max_continuation_frames": 1000,
        "reset_rate": 4294967295, "reset_burst": 4294967295,
        "control_frame_rate": 4294967295, "control_frame_burst": 4294967295,
        "zero_window_timeout_ms": 86400000})"));
    const blitz::Http2Options& hh = http2_of(high);
    CHECK(hh.max_concurrent_streams == 2'147'483'647u);
    CHECK(hh.initial_stream_window == 2'147'483'647u);
    CHECK(hh.connection_window == 2'147'483'647u);
    CHECK(hh.max_frame_size == 16'777'215u);
    CHECK(hh.header_table_size == 65'536u);
    CHECK(hh.max_continuation_frames == 1000u);
    CHECK(hh.reset_rate == 4'294'967'295u);
    CHECK(hh.reset_burst == 4'294'967'295u);
    CHECK(hh.control_frame_rate == 4'294'967'295u);
    CHECK(hh.control_frame_burst == 4'294'967'295u);
    CHECK(hh.zero_window_timeout == 86'400'000ms);
}

TEST_CASE("config::parse_config gives http2 the documented defaults", "[config][http2]") {
    // The struct's defaults are the documented ones, and a listener without "http2" gets them.
    const blitz::Http2Options def;
    CHECK(def.enabled);
    check_defaults(def);
    const blitz::Config none =
        parse_ok(R"({"listeners": [{"address": "127.0.0.1:8080"}], "routes": []})");
    CHECK(http2_of(none).enabled);
    check_defaults(http2_of(none));

    const blitz::Config on = parse_ok(listener_http2("true"));
    CHECK(http2_of(on).enabled);
    check_defaults(http2_of(on));

    const blitz::Config off = parse_ok(listener_http2("false"));
    CHECK_FALSE(http2_of(off).enabled);
    check_defaults(http2_of(off));

    // An object turns HTTP/2 on, even an empty one; keys it leaves out keep their defaults.
    const blitz::Config empty = parse_ok(listener_http2("{}"));
    CHECK(http2_of(empty).enabled);
    check_defaults(http2_of(empty));
    const blitz::Config one = parse_ok(listener_http2(R"({"max_concurrent_streams": 7})"));
    CHECK(http2_of(one).enabled);
    CHECK(http2_of(one).max_concurrent_streams == 7);
    CHECK(http2_of(one).initial_stream_window == def.initial_stream_window);
    CHECK(http2_of(one).zero_window_timeout == def.zero_window_timeout);

    // "enabled": false keeps the object written but off.
    const blitz::Config kept =
        parse_ok(listener_http2(R"({"enabled": false, "max_concurrent_streams": 7})"));
    CHECK_FALSE(http2_of(kept).enabled);
    CHECK(http2_of(kept).max_concurrent_streams == 7);

    // Each listener has its own.
    const blitz::Config two = parse_ok(R"({"listeners": [
        {"address": "127.0.0.1:8080", "http2": false},
        {"address": "127.0.0.1:8081", "http2": {"max_frame_size": 65536}}], "routes": []})");
    REQUIRE(two.listeners.size() == 2);
    CHECK_FALSE(two.listeners[0].http2.enabled);
    CHECK(two.listeners[1].http2.enabled);
    CHECK(two.listeners[1].http2.max_frame_size == 65'536);
    CHECK(two.listeners[0].http2.max_frame_size == def.max_frame_size);
}

TEST_CASE("config::parse_config reads http2 values from environment expressions",
          "[config][http2]") {
    ScopedEnv off("BLITZ_TEST_HTTP2", "false");
    ScopedEnv unset("BLITZ_TEST_UNSET", nullptr);
    CHECK_FALSE(http2_of(parse_ok(listener_http2(R"("${BLITZ_TEST_HTTP2}")"))).enabled);
    CHECK(http2_of(parse_ok(listener_http2(R"("${BLITZ_TEST_UNSET:-true}")"))).enabled);
    const blitz::Config c = parse_ok(listener_http2(
        R"({"enabled": "${BLITZ_TEST_UNSET:-true}", "max_concurrent_streams": "${BLITZ_TEST_UNSET:-64}"})"));
    CHECK(http2_of(c).enabled);
    CHECK(http2_of(c).max_concurrent_streams == 64);
    require_error_at(listener_http2(R"("${BLITZ_TEST_UNSET:-yes}")"), "\"${",
                     "$.listeners[0].http2",
                     "expected true, false or an object of HTTP/2 settings, found \"yes\" (from "
                     "\"${BLITZ_TEST_UNSET:-yes}\")");
}

TEST_CASE("config::parse_config refuses an http2 value that is no boolean or object at the value",
          "[config][http2]") {
    const std::string kExpected = "expected true, false or an object of HTTP/2 settings, found ";
    require_error_at(listener_http2("1"), "1}", "$.listeners[0].http2", kExpected + "1");
    require_error_at(listener_http2(R"("on")"), "\"on\"", "$.listeners[0].http2",
                     kExpected + "\"on\"");
    require_error_at(listener_http2("null"), "null", "$.listeners[0].http2", kExpected + "null");
    require_error_at(listener_http2(R"(["h2"])"), "[\"h2\"]", "$.listeners[0].http2",
                     kExpected + "an array");
}

TEST_CASE("config::parse_config refuses http2 values out of range at the value",
          "[config][http2]") {
    struct Case {
        std::string_view key;
        std::string_view value;
        std::string message;
    };
    const std::string from1to31 = "expected an integer from 1 to 2147483647, found ";
    const std::string from1to32 = "expected an integer from 1 to 4294967295, found ";
    const Case cases[] = {
        {"max_concurrent_streams", "0", from1to31 + "0"},
        {"max_concurrent_streams", "2147483648", from1to31 + "2147483648"},
        {"max_concurrent_streams", "-1", from1to31 + "-1"},
        {"max_concurrent_streams", "10.5", from1to31 + "10.5"},
        {"max_concurrent_streams", "1e2", from1to31 + "1e2"},
        {"max_concurrent_streams", "\"100\"", from1to31 + "\"100\""},
        {"initial_stream_window", "0", from1to31 + "0"},
        {"initial_stream_window", "2147483648", from1to31 + "2147483648"},
        {"connection_window", "65534", "expected an integer from 65535 to 2147483647, found 65534"},
        {"connection_window", "2147483648",
         "expected an integer from 65535 to 2147483647, found 2147483648"},
        {"max_frame_size", "16383", "expected an integer from 16384 to 16777215, found 16383"},
        {"max_frame_size", "16777216",
         "expected an integer from 16384 to 16777215, found 16777216"},
        {"header_table_size", "-1", "expected an integer from 0 to 65536, found -1"},
        {"header_table_size", "65537", "expected an integer from 0 to 65536, found 65537"},
        {"max_continuation_frames", "0", "expected an integer from 1 to 1000, found 0"},
        {"max_continuation_frames", "1001", "expected an integer from 1 to 1000, found 1001"},
        {"reset_rate", "0", from1to32 + "0"},
        {"reset_rate", "4294967296", from1to32 + "4294967296"},
        {"reset_burst", "0", from1to32 + "0"},
        {"control_frame_rate", "0", from1to32 + "0"},
        {"control_frame_burst", "0", from1to32 + "0"},
        {"control_frame_burst", "true", from1to32 + "true"},
        {"zero_window_timeout_ms", "0", "expected an integer from 1 to 86400000, found 0"},
        {"zero_window_timeout_ms", "86400001",
         "expected an integer from 1 to 86400000, found 86400001"},
        {"enabled", "1", "expected true or false, found 1"},
        {"enabled", "\"false\"", "expected true or false, found \"false\""},
    };
    for (const Case& c : cases) {
        // Another key first, so the position is not that of the object.
        const std::string_view first =
            c.key == "header_table_size" ? "reset_rate" : "header_table_size";
        const std::string json =
            listener_http2("{\"" + std::string(first) + "\": 99, \"" + std::string(c.key) +
                           "\": " + std::string(c.value) + "}");
        require_error_at(json, std::string(c.value) + "}",
                         "$.listeners[0].http2." + std::string(c.key), c.message);
    }
    // Two lines in, to check the line and the column.
    require_error_at(R"({"listeners": [
  {"address": "127.0.0.1:8080",
   "http2": {"max_frame_size": 1024}}], "routes": []})",
                     "1024", "$.listeners[0].http2.max_frame_size",
                     "expected an integer from 16384 to 16777215, found 1024");
    const blitz::ConfigError e = error_of(R"({"listeners": [
  {"address": "127.0.0.1:8080",
   "http2": {"max_frame_size": 1024}}], "routes": []})");
    CHECK(e.line == 3);
    CHECK(e.column == 32);
}

TEST_CASE("config::parse_config rejects unknown keys in http2 and lists the allowed ones",
          "[config][http2]") {
    require_error_at(listener_http2(R"({"max_concurrent_streams": 10, "enable_push": false})"),
                     "\"enable_push\"", "$.listeners[0].http2.enable_push",
                     "unknown key \"enable_push\"; allowed keys: enabled, max_concurrent_streams, "
                     "initial_stream_window, connection_window, max_frame_size, "
                     "header_table_size, max_continuation_frames, reset_rate, reset_burst, "
                     "control_frame_rate, control_frame_burst, zero_window_timeout_ms");
    // The top level has no http2 object: it is a listener's.
    require_error_at(R"({"listeners": [{"address": "127.0.0.1:8080"}], "routes": [], "http2": {}})",
                     "\"http2\"", "$.http2",
                     "unknown key \"http2\"; allowed keys: $schema, workers, pin_cpus, backend, "
                     "log, buffers, limits, shutdown, reload, admin, metrics, tracing, listeners, upstreams, routes");
}

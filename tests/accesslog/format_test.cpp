#include "accesslog/format.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>
#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include "core/utf8.hpp"

using namespace blitz;
using accesslog::Format;
using accesslog::Record;
using accesslog::TimeCache;

namespace {

// 2026-11-26T13:08:03.123456Z
constexpr std::int64_t kTimeUs = 1795698483'123456;

Record typical() {
    Record r;
    r.time_us = kTimeUs;
    r.duration_us = 1234;
    r.client = "192.0.2.7";
    r.client_port = 51234;
    r.method = "GET";
    r.scheme = "https";
    r.authority = "api.example.com";
    r.path = "/v1/items?id=42";
    r.protocol = "HTTP/1.1";
    r.status = 200;
    r.bytes_received = 312;
    r.bytes_sent = 1045;
    r.route = "items";
    r.upstream = "backend";
    r.upstream_endpoint = "10.0.0.1:8080";
    r.upstream_status = 200;
    r.upstream_connect_us = 150;
    r.upstream_first_byte_us = 900;
    r.attempts = 1;
    r.request_id = "req-1";
    r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    r.span_id = "00f067aa0ba902b7";
    r.tls_version = "TLSv1.3";
    r.tls_sni = "api.example.com";
    r.user_agent = "curl/8.0";
    r.referer = "https://example.com/";
    r.listener = "public";
    return r;
}

std::string line(const Format& f, const Record& r) {
    TimeCache tc;
    std::string out;
    f.append_to(r, tc, out);
    return out;
}

std::string render(std::string_view tmpl, const Record& r) {
    auto f = Format::compile(tmpl);
    REQUIRE(f);
    return line(*f, r);
}

/// Parses one JSON line (simdjson also rejects invalid UTF-8).
simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& text) {
    REQUIRE(!text.empty());
    REQUIRE(text.back() == '\n');
    REQUIRE(text.find('\n') == text.size() - 1);
    simdjson::dom::element e;
    auto ec = parser.parse(text.data(), text.size() - 1).get(e);
    INFO(text);
    REQUIRE(ec == simdjson::SUCCESS);
    return e;
}

std::string str(simdjson::dom::element e, const char* key) {
    std::string_view v;
    REQUIRE(e[key].get(v) == simdjson::SUCCESS);
    return std::string(v);
}

std::int64_t num(simdjson::dom::element e, const char* key) {
    std::int64_t v = 0;
    REQUIRE(e[key].get(v) == simdjson::SUCCESS);
    return v;
}

bool has(simdjson::dom::element e, const char* key) { return e[key].error() == simdjson::SUCCESS; }

}  // namespace

TEST_CASE("accesslog::Format::json writes every field of a typical record as one JSON line",
          "[accesslog]") {
    simdjson::dom::parser parser;
    const std::string text = line(Format::json(), typical());
    auto e = parse(parser, text);
    CHECK(str(e, "time") == "2026-11-26T13:08:03.123Z");
    CHECK(num(e, "duration_us") == 1234);
    CHECK(str(e, "client") == "192.0.2.7");
    CHECK(num(e, "client_port") == 51234);
    CHECK(str(e, "method") == "GET");
    CHECK(str(e, "scheme") == "https");
    CHECK(str(e, "authority") == "api.example.com");
    CHECK(str(e, "path") == "/v1/items?id=42");
    CHECK(str(e, "protocol") == "HTTP/1.1");
    CHECK(num(e, "status") == 200);
    CHECK(num(e, "bytes_received") == 312);
    CHECK(num(e, "bytes_sent") == 1045);
    CHECK(str(e, "route") == "items");
    CHECK(str(e, "upstream") == "backend");
    CHECK(str(e, "upstream_endpoint") == "10.0.0.1:8080");
    CHECK(num(e, "upstream_status") == 200);
    CHECK(num(e, "upstream_connect_us") == 150);
    CHECK(num(e, "upstream_first_byte_us") == 900);
    CHECK(num(e, "attempts") == 1);
    CHECK(str(e, "request_id") == "req-1");
    CHECK(str(e, "trace_id") == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(str(e, "span_id") == "00f067aa0ba902b7");
    CHECK(str(e, "tls_version") == "TLSv1.3");
    CHECK(str(e, "tls_sni") == "api.example.com");
    CHECK(str(e, "user_agent") == "curl/8.0");
    CHECK(str(e, "referer") == "https://example.com/");
    CHECK(str(e, "listener") == "public");
    simdjson::dom::object obj;
    REQUIRE(e.get(obj) == simdjson::SUCCESS);
    CHECK(obj.size() == 27);
}

TEST_CASE("accesslog::Format::json omits empty strings and absent upstream values", "[accesslog]") {
    simdjson::dom::parser parser;
    Record r;
    r.time_us = kTimeUs;
    r.method = "GET";
    r.status = 404;
    auto e = parse(parser, line(Format::json(), r));
    CHECK(str(e, "method") == "GET");
    CHECK(num(e, "status") == 404);
    CHECK(num(e, "attempts") == 0);
    CHECK(num(e, "client_port") == 0);
    for (const char* key : {"client", "route", "upstream", "upstream_endpoint", "upstream_status",
                            "upstream_connect_us", "upstream_first_byte_us", "trace_id",
                            "tls_version", "user_agent", "referer", "listener"}) {
        CAPTURE(key);
        CHECK_FALSE(has(e, key));
    }
}

TEST_CASE("accesslog::Format::json escapes hostile values so that they parse back", "[accesslog]") {
    simdjson::dom::parser parser;
    Record r = typical();
    const std::string controls = [] {
        std::string s;
        for (int c = 0; c < 0x20; ++c) {
            s.push_back(static_cast<char>(c));
        }
        s.push_back('\x7f');
        return s;
    }();
    const std::string quotes = "a\"b\\c\"}{\"x\":1";
    const std::string long_value(100'000, 'A');
    r.path = quotes;
    r.user_agent = controls;
    r.referer = long_value;
    // Valid multi-byte UTF-8 is kept; é, €, 😀.
    r.authority = "caf\xC3\xA9.\xE2\x82\xAC.\xF0\x9F\x98\x80";
    const std::string text = line(Format::json(), r);
    auto e = parse(parser, text);
    CHECK(str(e, "path") == quotes);
    CHECK(str(e, "user_agent") == controls);
    CHECK(str(e, "referer") == long_value);
    CHECK(str(e, "authority") == "caf\xC3\xA9.\xE2\x82\xAC.\xF0\x9F\x98\x80");
    CHECK(text.find("\\u0000") != std::string::npos);
    CHECK(text.find("\\u007f") != std::string::npos);
    CHECK(text.find("\\n") != std::string::npos);
}

TEST_CASE("accesslog::Format::json sees a byte to escape at any position of a value of any length",
          "[accesslog]") {
    // Values are checked a word at a time with an overlapping last word, and values under eight
    // bytes gathered into one word: every length from 1 to 24 and every position of the byte
    // must still take the escaping path, and plain values of every length come out unchanged.
    simdjson::dom::parser parser;
    const auto bad = GENERATE(as<char>{}, '"', '\\', '\x01', '\x7f', '\xff');
    for (std::size_t len = 1; len <= 24; ++len) {
        for (std::size_t pos = 0; pos <= len; ++pos) {
            std::string value(len, 'v');
            if (pos < len) {
                value[pos] = bad;
            }
            Record r = typical();
            r.path = value;
            const std::string text = line(Format::json(), r);
            INFO("length " << len << ", position " << pos << ", byte " << int(static_cast<unsigned char>(bad)));
            auto e = parse(parser, text);
            const std::string expect =
                pos < len && bad == '\xff' ? value.substr(0, pos) + "\xEF\xBF\xBD" + value.substr(pos + 1) : value;
            CHECK(str(e, "path") == expect);
        }
    }
}

TEST_CASE("accesslog::Format::json stays within 1024 bytes plus six per value byte", "[accesslog]") {
    // format_to writes a JSON line without bounds tests when the buffer holds that much: the
    // longest line (every number at its longest, every value byte escaped to six) must fit.
    Record r;
    r.time_us = INT64_MAX;
    r.duration_us = INT64_MIN;
    r.client_port = UINT16_MAX;
    r.status = UINT16_MAX;
    r.bytes_received = UINT64_MAX;
    r.bytes_sent = UINT64_MAX;
    r.upstream_status = UINT16_MAX;
    r.upstream_connect_us = INT64_MAX;
    r.upstream_first_byte_us = INT64_MAX;
    r.attempts = UINT32_MAX;
    const std::string_view control("\x01", 1);
    for (std::string_view* v : {&r.client, &r.method, &r.scheme, &r.authority, &r.path, &r.protocol,
                                &r.route, &r.upstream, &r.upstream_endpoint, &r.request_id, &r.trace_id,
                                &r.span_id, &r.tls_version, &r.tls_sni, &r.user_agent, &r.referer,
                                &r.listener}) {
        *v = control;
    }
    const std::string text = line(Format::json(), r);
    CHECK(text.size() <= 1024 + 6 * 17);
    CHECK(text.size() > 6 * 17);  // every value is in it, escaped
}

TEST_CASE("accesslog::Format writes numbers exactly at their digit boundaries", "[accesslog]") {
    simdjson::dom::parser parser;
    const auto v = GENERATE(as<std::int64_t>{}, 0, 9, 10, 99, 100, 999, 1000, 65535, 1234567890123,
                            INT64_MAX);
    Record r = typical();
    r.duration_us = v;
    r.bytes_sent = static_cast<std::uint64_t>(v);
    r.upstream_connect_us = v;
    auto e = parse(parser, line(Format::json(), r));
    CHECK(num(e, "duration_us") == v);
    CHECK(num(e, "bytes_sent") == v);
    CHECK(num(e, "upstream_connect_us") == v);
    CHECK(render("$duration_us", r) == std::to_string(v) + "\n");
    r.duration_us = -v;
    CHECK(render("$duration_us", r) == std::to_string(-v) + "\n");
}

TEST_CASE("accesslog::Format::json replaces each byte of invalid UTF-8 with U+FFFD",
          "[accesslog]") {
    simdjson::dom::parser parser;
    const std::string replacement = "\xEF\xBF\xBD";
    struct Case {
        std::string in;
        std::string out;
    };
    auto c = GENERATE_COPY(
        Case{"\x80", replacement},  // lone continuation
        Case{"a\xFF"
             "b",
             "a" + replacement + "b"},                                  // never valid
        Case{"\xC0\xAF", replacement + replacement},                    // overlong '/'
        Case{"\xE0\x80\xAF", replacement + replacement + replacement},  // overlong
        Case{"\xED\xA0\x80", replacement + replacement + replacement},  // surrogate D800
        Case{"\xF4\x90\x80\x80", replacement + replacement + replacement + replacement},  // >10FFFF
        Case{"\xE2\x82", replacement + replacement},  // truncated at the end
        Case{"\xC3"
             "A",
             replacement + "A"});  // bad continuation
    Record r;
    r.path = c.in;
    auto e = parse(parser, line(Format::json(), r));
    CHECK(str(e, "path") == c.out);
}

TEST_CASE("accesslog::Format::json writes RFC 3339 UTC times with milliseconds", "[accesslog]") {
    simdjson::dom::parser parser;
    struct Case {
        std::int64_t us;
        const char* text;
    };
    auto c = GENERATE(
        Case{0, "1970-01-01T00:00:00.000Z"}, Case{951782400'999999, "2000-02-29T00:00:00.999Z"},
        Case{1709251199'001000, "2024-02-29T23:59:59.001Z"}, Case{-5, "1970-01-01T00:00:00.000Z"},
        Case{INT64_MAX, "9999-12-31T23:59:59.775Z"});
    Record r;
    r.time_us = c.us;
    CHECK(str(parse(parser, line(Format::json(), r)), "time") == c.text);
}

TEST_CASE("accesslog::Format::compile renders the nginx combined-like template", "[accesslog]") {
    Record r = typical();
    CHECK(render("$client - - [$time_local] \"$method $path $protocol\" $status $bytes_sent", r) ==
          "192.0.2.7 - - [26/Nov/2026:13:08:03 +0000] \"GET /v1/items?id=42 HTTP/1.1\" 200 1045\n");
    CHECK(render("$time_iso8601 $time", r) ==
          "2026-11-26T13:08:03+00:00 2026-11-26T13:08:03.123Z\n");
    CHECK(render("$time_us $duration_us $upstream_connect_us/$upstream_first_byte_us", r) ==
          "1795698483123456 1234 150/900\n");
}

TEST_CASE("accesslog::Format::compile supports $$ and ${name}", "[accesslog]") {
    Record r = typical();
    CHECK(render("cost: $$5 $${status}", r) == "cost: $5 ${status}\n");
    CHECK(render("${status}x", r) == "200x\n");
    CHECK(render("${status}${bytes_sent}", r) == "2001045\n");
    CHECK(render("$status$bytes_sent", r) == "2001045\n");
    CHECK(render("$status.$method-", r) == "200.GET-\n");
    CHECK(render("", r) == "\n");
    CHECK(render("$$", r) == "$\n");
}

TEST_CASE("accesslog::Format::compile reports the offset of a bad field reference", "[accesslog]") {
    struct Case {
        const char* tmpl;
        std::size_t offset;
    };
    auto c = GENERATE(Case{"$nosuch", 0}, Case{"ok $statusx", 3}, Case{"a $", 2}, Case{"a $ b", 2},
                      Case{"x ${status", 2}, Case{"x ${}", 2}, Case{"$$ ${status}${nope}", 12},
                      Case{"$status $-", 8}, Case{"${stat us}", 0});
    CAPTURE(c.tmpl);
    auto f = Format::compile(c.tmpl);
    REQUIRE_FALSE(f);
    CHECK(f.error().offset == c.offset);
    CHECK(std::string_view(f.error().message).size() > 0);
}

TEST_CASE("accesslog::Format templates escape values like nginx escape=default", "[accesslog]") {
    Record r;
    r.path = "/a\"b\\c\x01\n\x7f\xC3\xA9";
    r.user_agent = "";
    CHECK(render("$path|$user_agent|$upstream_status|$upstream_connect_us|\"lit\\\"", r) ==
          "/a\\x22b\\x5Cc\\x01\\x0A\\x7F\\xC3\\xA9|-|-|-|\"lit\\\"\n");
}

namespace {

/// RFC 8259 §7 as format.hpp states it, a byte at a time: the reference the formatter's word-wise
/// paths are checked against.
std::string reference_json_chars(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t len = detail::utf8_sequence(s.substr(i));
            out += len != 0 ? std::string(s.substr(i, len)) : std::string("\\ufffd");
            i += len != 0 ? len : 1;
            continue;
        }
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (c < 0x20 || c == 0x7F) {
            static constexpr char kHexDigits[] = "0123456789abcdef";
            out += "\\u00";
            out += kHexDigits[c >> 4];
            out += kHexDigits[c & 0xF];
        } else {
            out += static_cast<char>(c);
        }
        ++i;
    }
    return out;
}

}  // namespace

TEST_CASE(
    "accesslog::Format::json writes the same line with and without room to spare, for random "
    "values",
    "[accesslog]") {
    // With room for the longest line the values are copied unchecked and checked together once
    // per line; a buffer of exactly the line's length takes the bounded path, which checks and
    // escapes each value on its own. Both must agree with a byte-at-a-time reference for values
    // of every length up to 40 holding any byte at any position.
    std::mt19937_64 rng(20261127);
    const Format f = Format::json();
    TimeCache tc;
    std::vector<char> big(1 << 16);
    std::string values[6];
    for (int iteration = 0; iteration < 20000; ++iteration) {
        Record r = typical();
        std::string_view* fields[] = {&r.client,     &r.authority, &r.path,
                                      &r.user_agent, &r.referer,   &r.request_id};
        const int bad_odds =
            static_cast<int>(rng() % 4);  // 0: all plain .. 3: one byte in four may be hostile
        for (std::size_t k = 0; k < std::size(values); ++k) {
            std::string& v = values[k];
            v.assign(rng() % 41, '\0');
            for (char& c : v) {
                const bool any = bad_odds != 0 && static_cast<int>(rng() % 16) < bad_odds * 2;
                c = static_cast<char>(any ? rng() % 256 : 0x20 + rng() % 95);
            }
            *fields[k] = v;
        }
        r.bytes_sent = rng() >> (rng() % 64);
        r.duration_us = static_cast<std::int64_t>(rng() >> (1 + rng() % 63));
        const std::size_t n = f.format_to(r, tc, big);
        REQUIRE(n <= big.size());
        const std::string_view fast(big.data(), n);
        std::string exact(n, '\0');
        REQUIRE(f.format_to(r, tc, exact) == n);
        INFO("iteration " << iteration);
        REQUIRE(exact == fast);
        const char* keys[] = {"client", "authority", "path", "user_agent", "referer", "request_id"};
        for (std::size_t k = 0; k < std::size(values); ++k) {
            if (!values[k].empty()) {
                const std::string expect =
                    "\"" + std::string(keys[k]) + "\":\"" + reference_json_chars(values[k]) + "\"";
                REQUIRE(fast.find(expect) != std::string_view::npos);
            }
        }
        REQUIRE(fast.find("\"bytes_sent\":" + std::to_string(r.bytes_sent) + ",") !=
                std::string_view::npos);
        REQUIRE(fast.find("\"duration_us\":" + std::to_string(r.duration_us) + ",") !=
                std::string_view::npos);
    }
}

TEST_CASE("accesslog::Format::format_to reports the full length and keeps the prefix when short",
          "[accesslog]") {
    const Format f = Format::json();
    const Record r = typical();
    TimeCache tc;
    const std::string whole = line(f, r);
    char buf[40];
    const std::size_t n = f.format_to(r, tc, buf);
    CHECK(n == whole.size());
    CHECK(std::string_view(buf, sizeof buf) == std::string_view(whole).substr(0, sizeof buf));
    CHECK(f.format_to(r, tc, {}) == whole.size());
}

TEST_CASE("accesslog::Format::append_to does not allocate when the string has room",
          "[accesslog]") {
    const Format f = Format::json();
    TimeCache tc;
    std::string out = "prefix|";
    out.reserve(4096);
    const char* data = out.data();
    f.append_to(typical(), tc, out);
    f.append_to(typical(), tc, out);
    CHECK(out.data() == data);
    CHECK(out.substr(0, 7) == "prefix|");
    const std::string one = line(f, typical());
    CHECK(out == "prefix|" + one + one);

    std::string tiny;
    f.append_to(typical(), tc, tiny);  // grows when there is no room
    CHECK(tiny == one);
}

TEST_CASE("accesslog::TimeCache recomputes only when the second changes", "[accesslog]") {
    TimeCache tc;
    const auto& a = tc.at(1795698483);
    CHECK(std::string_view(a.local, sizeof a.local) == "26/Nov/2026:13:08:03 +0000");
    CHECK(std::string_view(a.date_time, sizeof a.date_time) == "2026-11-26T13:08:03");
    const auto& b = tc.at(1795698484);
    CHECK(std::string_view(b.local, sizeof b.local) == "26/Nov/2026:13:08:04 +0000");
    const auto& c = tc.at(1704067199);  // the last second of 2023
    CHECK(std::string_view(c.local, sizeof c.local) == "31/Dec/2023:23:59:59 +0000");
}

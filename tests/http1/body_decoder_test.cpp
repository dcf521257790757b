#include "http1/parser.hpp"

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>

namespace {

using namespace std::string_view_literals;
using blitz::http1::BodyDecoder;

struct Outcome {
    std::string body;
    std::string trailer;  // the Step::trailer pieces, concatenated
    std::size_t consumed = 0;
    bool done = false;
    int error_status = 0;
};

// Feeds `wire` in pieces ending at each of `cuts` (then the rest), as a connection would:
// decode until a piece is used up, carrying over what decode() did not consume.
Outcome run(BodyDecoder& d, std::string_view wire, const std::vector<std::size_t>& cuts = {}) {
    Outcome out;
    std::size_t available = 0;
    std::vector<std::size_t> ends = cuts;
    ends.push_back(wire.size());
    for (std::size_t end : ends) {
        available = end;
        for (;;) {
            const std::span<const char> in(wire.data() + out.consumed, available - out.consumed);
            const BodyDecoder::Step s = d.decode(in);
            REQUIRE(s.consumed <= in.size());
            if (!s.data.empty()) {
                REQUIRE(s.data.data() >= in.data());
                REQUIRE(s.data.data() + s.data.size() <= in.data() + s.consumed);
            }
            if (!s.trailer.empty()) {
                REQUIRE(s.trailer.data() >= in.data());
                REQUIRE(s.trailer.data() + s.trailer.size() <= in.data() + s.consumed);
            }
            out.body.append(s.data.data(), s.data.size());
            out.trailer.append(s.trailer.data(), s.trailer.size());
            out.consumed += s.consumed;
            if (s.error_status != 0) {
                out.error_status = s.error_status;
                return out;
            }
            if (s.done) {
                out.done = true;
                return out;
            }
            // No progress is allowed only when there is nothing to decode.
            if (s.consumed == 0) {
                REQUIRE(in.empty());
                break;
            }
        }
    }
    return out;
}

Outcome run_chunked(std::string_view wire, const std::vector<std::size_t>& cuts = {}) {
    BodyDecoder d;
    d.reset_chunked();
    return run(d, wire, cuts);
}

TEST_CASE("http1::BodyDecoder streams a Content-Length body as views and stops at its end",
          "[http1]") {
    BodyDecoder d;
    d.reset_length(5);
    CHECK_FALSE(d.done());
    const std::string wire = "hel";
    BodyDecoder::Step s = d.decode(wire);
    CHECK(std::string_view(s.data.data(), s.data.size()) == "hel");
    CHECK(s.data.data() == wire.data());
    CHECK(s.consumed == 3);
    CHECK_FALSE(s.done);
    const std::string rest = "loGET / HTTP/1.1";
    s = d.decode(rest);
    CHECK(std::string_view(s.data.data(), s.data.size()) == "lo");
    CHECK(s.consumed == 2);
    CHECK(s.done);
    CHECK(d.done());
    // A finished decoder consumes nothing more: the next request's bytes stay put.
    s = d.decode(std::span<const char>(rest).subspan(2));
    CHECK(s.consumed == 0);
    CHECK(s.done);
    CHECK(s.data.empty());
}

TEST_CASE("http1::BodyDecoder with a zero length is done at once", "[http1]") {
    BodyDecoder d;
    d.reset_length(0);
    CHECK(d.done());
    const BodyDecoder::Step s = d.decode(std::string_view("GET"));
    CHECK(s.done);
    CHECK(s.consumed == 0);
}

TEST_CASE("http1::BodyDecoder decodes chunked bodies and leaves what follows", "[http1]") {
    const std::string_view body = "5\r\nhello\r\nA\r\n, chunked!\r\n0\r\n\r\n";
    std::string wire(body);
    wire += "GET /next HTTP/1.1\r\n";
    const Outcome o = run_chunked(wire);
    CHECK(o.done);
    CHECK(o.error_status == 0);
    CHECK(o.body == "hello, chunked!");
    CHECK(o.consumed == body.size());
}

TEST_CASE("http1::BodyDecoder gives the same body for every split of the input", "[http1]") {
    const std::string_view wire =
        "4;ext=\"v\"\r\nWiki\r\n5 ;a\r\npedia\r\ne\r\n in\r\n\r\nchunks.\r\n0\r\nX-T: 1\r\n\r\n";
    const std::string expected = "Wikipedia in\r\n\r\nchunks.";
    const Outcome whole = run_chunked(wire);
    REQUIRE(whole.done);
    REQUIRE(whole.body == expected);
    REQUIRE(whole.consumed == wire.size());
    for (std::size_t i = 0; i <= wire.size(); ++i) {
        for (std::size_t j = i; j <= wire.size(); ++j) {
            CAPTURE(i, j);
            const Outcome o = run_chunked(wire, {i, j});
            REQUIRE(o.done);
            REQUIRE(o.body == expected);
            REQUIRE(o.trailer == "X-T: 1\r\n\r\n");
            REQUIRE(o.consumed == wire.size());
        }
    }
    std::vector<std::size_t> every_byte;
    for (std::size_t i = 1; i < wire.size(); ++i) {
        every_byte.push_back(i);
    }
    const Outcome bytewise = run_chunked(wire, every_byte);
    CHECK(bytewise.done);
    CHECK(bytewise.body == expected);
}

TEST_CASE("http1::BodyDecoder accepts upper- and lower-case hex and a full 16-digit size",
          "[http1]") {
    CHECK(run_chunked("a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n").body.size() == 20);
    BodyDecoder d;
    d.reset_chunked();
    const BodyDecoder::Step s = d.decode(std::string_view("7fffffffffffffff\r\nxy"));
    CHECK(s.error_status == 0);
    CHECK(s.consumed == 20);
    CHECK(std::string_view(s.data.data(), s.data.size()) == "xy");
    CHECK_FALSE(s.done);
}

TEST_CASE("http1::BodyDecoder hands out the trailer section apart from the body", "[http1]") {
    const Outcome o = run_chunked("3\r\nabc\r\n0\r\nX-Checksum: 123\r\nX-Empty:\r\n\r\n");
    CHECK(o.done);
    CHECK(o.body == "abc");
    CHECK(o.trailer == "X-Checksum: 123\r\nX-Empty:\r\n\r\n");
    const Outcome none = run_chunked("0\r\n\r\n");
    CHECK(none.done);
    CHECK(none.trailer == "\r\n");
    BodyDecoder d;
    d.reset_length(3);
    CHECK(d.decode(std::string_view("abc")).trailer.empty());
}

TEST_CASE("http1::parse_trailer_fields splits a validated section into trimmed fields", "[http1]") {
    const Outcome o = run_chunked("0\r\nX-Checksum: \t123 \r\nX-Empty:\r\ngrpc-status:0\r\n\r\n", {4, 9, 30});
    REQUIRE(o.done);
    std::array<blitz::Header, 4> fields{};
    const auto n = blitz::http1::parse_trailer_fields(o.trailer, fields);
    REQUIRE(n == 3u);
    CHECK(fields[0].name == "X-Checksum");
    CHECK(fields[0].value == "123");
    CHECK(fields[1].name == "X-Empty");
    CHECK(fields[1].value.empty());
    CHECK(fields[2].name == "grpc-status");
    CHECK(fields[2].value == "0");
    CHECK(blitz::http1::parse_trailer_fields("\r\n", fields) == 0u);
}

TEST_CASE("http1::parse_trailer_fields refuses more fields than it has room for", "[http1]") {
    std::array<blitz::Header, 2> fields{};
    CHECK(blitz::http1::parse_trailer_fields("A: 1\r\nB: 2\r\n\r\n", fields) == 2u);
    CHECK_FALSE(blitz::http1::parse_trailer_fields("A: 1\r\nB: 2\r\nC: 3\r\n\r\n", fields).has_value());
}

TEST_CASE("http1::BodyDecoder rejects malformed chunk framing with 400", "[http1]") {
    struct Case {
        const char* what;
        std::string_view wire;
    };
    const std::string long_ext = "1;" + std::string(BodyDecoder::kMaxChunkLineBytes, 'x') + "\r\n";
    const Case kCases[] = {
        {"non-hex size", "g\r\nx\r\n0\r\n\r\n"},
        {"empty size", "\r\nx\r\n0\r\n\r\n"},
        {"size with sign", "+1\r\nx\r\n0\r\n\r\n"},
        {"size with 0x prefix", "0x1\r\nx\r\n0\r\n\r\n"},
        {"17 hex digits", "00000000000000001\r\nx\r\n0\r\n\r\n"},
        {"size overflowing 64 bits", "10000000000000000\r\n"},
        {"size line ended by bare LF", "1\nx\r\n0\r\n\r\n"},
        {"size line ended by bare CR", "1\rx\r\n0\r\n\r\n"},
        {"whitespace after size without extension", "1 \r\nx\r\n0\r\n\r\n"},
        {"garbage after size", "1x\r\nx\r\n0\r\n\r\n"},
        {"garbage after size whitespace", "1 x\r\nx\r\n0\r\n\r\n"},
        {"bare LF in extension", "1;a\nb\r\nx\r\n0\r\n\r\n"},
        {"bare CR in extension", "1;a\rb\r\nx\r\n0\r\n\r\n"},
        {"NUL in extension", "1;a\0b\r\nx\r\n0\r\n\r\n"sv},
        {"extension too long", long_ext},
        {"data not followed by CRLF", "5\r\nhelloX\r\n0\r\n\r\n"},
        {"data followed by bare LF", "5\r\nhello\n0\r\n\r\n"},
        {"data followed by CR only", "5\r\nhello\r0\r\n\r\n"},
        {"last chunk followed by bare LF", "0\r\n\n"},
        {"trailer obs-fold", "0\r\nX-A: 1\r\n 2\r\n\r\n"},
        {"trailer without colon", "0\r\nX-A\r\n\r\n"},
        {"trailer space before colon", "0\r\nX-A : 1\r\n\r\n"},
        {"trailer with bare LF", "0\r\nX-A: 1\n\r\n"},
        {"trailer with control in value", "0\r\nX-A: \x01\r\n\r\n"},
        {"trailer line with bare CR", "0\r\nX-A: 1\rX\r\n\r\n"},
    };
    for (const Case& c : kCases) {
        DYNAMIC_SECTION(c.what) {
            const Outcome o = run_chunked(c.wire);
            CHECK_FALSE(o.done);
            CHECK(o.error_status == 400);
        }
    }
}

TEST_CASE("http1::BodyDecoder answers 431 for an oversized trailer section", "[http1]") {
    std::string wire = "0\r\n";
    while (wire.size() < BodyDecoder::kMaxTrailerBytes + 16) {
        wire += "X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    }
    wire += "\r\n";
    const Outcome o = run_chunked(wire);
    CHECK(o.error_status == 431);

    std::string fits = "0\r\n";
    fits += "X-Pad: " + std::string(BodyDecoder::kMaxTrailerBytes - 11, 'a') + "\r\n\r\n";
    REQUIRE(fits.size() - 3 == BodyDecoder::kMaxTrailerBytes);
    CHECK(run_chunked(fits).done);
}

TEST_CASE("http1::BodyDecoder keeps reporting an error once framing failed", "[http1]") {
    BodyDecoder d;
    d.reset_chunked();
    const BodyDecoder::Step first = d.decode(std::string_view("zz\r\n"));
    REQUIRE(first.error_status == 400);
    const BodyDecoder::Step again = d.decode(std::string_view("5\r\nhello\r\n"));
    CHECK(again.error_status == 400);
    CHECK(again.consumed == 0);
    CHECK(again.data.empty());
    CHECK_FALSE(d.done());
    // A reset starts a fresh body.
    d.reset_length(1);
    const BodyDecoder::Step fresh = d.decode(std::string_view("x"));
    CHECK(fresh.error_status == 0);
    CHECK(fresh.done);
}

}  // namespace

#include "http1/parser.hpp"

#include <array>
#include <cctype>
#include <memory>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

namespace {

using namespace std::string_view_literals;
using blitz::Method;
using blitz::Version;
using blitz::http1::BodyKind;
using blitz::http1::Limits;
using blitz::http1::ParseResult;
using blitz::http1::ParseStatus;
using blitz::http1::RequestHead;

// Owns a mutable copy of the bytes, so the views in `head` stay valid; never moved.
struct Parsed {
    explicit Parsed(std::string_view text, const Limits& limits = {}) : bytes(text) {
        result = blitz::http1::parse_request_head(bytes, storage, limits, head);
    }
    Parsed(const Parsed&) = delete;
    Parsed& operator=(const Parsed&) = delete;

    bool done() const { return result.status == ParseStatus::Done; }
    int status() const { return result.status == ParseStatus::Error ? result.error_status : 0; }
    bool inside(std::string_view v) const {
        return v.empty() ||
               (v.data() >= bytes.data() && v.data() + v.size() <= bytes.data() + bytes.size());
    }

    std::string bytes;
    std::array<blitz::Header, 64> storage{};
    RequestHead head;
    ParseResult result;
};

struct ErrorCase {
    const char* what;
    std::string_view request;
    int status;
};

void check_errors(std::span<const ErrorCase> cases) {
    for (const ErrorCase& c : cases) {
        DYNAMIC_SECTION(c.what) {
            const Parsed p(c.request);
            INFO("reason: " << p.result.reason);
            REQUIRE(p.result.status == ParseStatus::Error);
            CHECK(p.result.error_status == c.status);
            CHECK(std::string_view(p.result.reason).size() > 0);
        }
    }
}

TEST_CASE("http1::parse_request_head parses a simple GET into views", "[http1]") {
    const Parsed p("GET /index.html?a=1&b=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
    REQUIRE(p.done());
    CHECK(p.result.consumed == p.bytes.size());
    CHECK(p.head.method == Method::Get);
    CHECK(p.head.method_name == "GET");
    CHECK(p.head.version == Version::Http11);
    CHECK(p.head.raw_target == "/index.html?a=1&b=2");
    CHECK(p.head.scheme == "http");
    CHECK(p.head.authority == "example.com");
    CHECK(p.head.path == "/index.html");
    CHECK(p.head.query == "a=1&b=2");
    REQUIRE(p.head.headers.size() == 2);
    CHECK(p.head.headers[0].name == "Host");
    CHECK(p.head.headers[0].value == "example.com");
    CHECK(p.head.headers[1].name == "Accept");
    CHECK(p.head.headers[1].value == "*/*");
    CHECK(p.head.body == BodyKind::None);
    CHECK(p.head.keep_alive);
    CHECK_FALSE(p.head.expect_continue);
    // Zero-copy: every view lies in the receive buffer.
    CHECK(p.inside(p.head.method_name));
    CHECK(p.inside(p.head.raw_target));
    CHECK(p.inside(p.head.path));
    CHECK(p.inside(p.head.query));
    CHECK(p.inside(p.head.authority));
    for (const blitz::Header& h : p.head.headers) {
        CHECK(p.inside(h.name));
        CHECK(p.inside(h.value));
    }
    CHECK(p.head.headers.data() == p.storage.data());
}

TEST_CASE("http1::parse_request_head keeps extension methods and their exact token", "[http1]") {
    const Parsed purge("PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(purge.done());
    CHECK(purge.head.method == Method::Other);
    CHECK(purge.head.method_name == "PURGE");
    const Parsed lower("get /x HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(lower.done());
    CHECK(lower.head.method == Method::Other);
    const Parsed head("HEAD / HTTP/1.1\r\nHost: a\r\n\r\n");
    REQUIRE(head.done());
    CHECK(head.head.method == Method::Head);
}

TEST_CASE("http1::parse_request_head trims OWS around values and allows empty values", "[http1]") {
    const Parsed p(
        "GET / HTTP/1.1\r\nHost:example.com\r\nX-A: \t value with  inner space \t \r\n"
        "X-Empty:\r\nX-Blank:   \t\r\nX-Obs: caf\xc3\xa9\r\n\r\n");
    REQUIRE(p.done());
    REQUIRE(p.head.headers.size() == 5);
    CHECK(p.head.headers[0].value == "example.com");
    CHECK(p.head.headers[1].value == "value with  inner space");
    CHECK(p.head.headers[2].value.empty());
    CHECK(p.head.headers[3].value.empty());
    CHECK(p.head.headers[4].value == "caf\xc3\xa9");  // obs-text is allowed (RFC 9110 §5.5)
}

TEST_CASE("http1::parse_request_head returns Incomplete for every prefix, then the same result",
          "[http1]") {
    const std::string_view request =
        "\r\nPOST /up%6Coad/./x?q=%41 HTTP/1.1\r\nHost: example.com:8080\r\n"
        "Content-Length: 5\r\nExpect: 100-continue\r\nConnection: keep-alive\r\n\r\n";
    const Parsed whole(request);
    REQUIRE(whole.done());
    CHECK(whole.result.consumed == request.size());
    for (std::size_t n = 0; n < request.size(); ++n) {
        CAPTURE(n);
        const Parsed prefix(request.substr(0, n));
        REQUIRE(prefix.result.status == ParseStatus::Incomplete);
        // An Incomplete parse must not rewrite the buffer (normalisation happens on Done).
        CHECK(prefix.bytes == request.substr(0, n));
    }
    CHECK(whole.head.method == Method::Post);
    CHECK(whole.head.path == "/upload/x");
    CHECK(whole.head.query == "q=%41");
    CHECK(whole.head.authority == "example.com:8080");
    CHECK(whole.head.body == BodyKind::Length);
    CHECK(whole.head.content_length == 5);
    CHECK(whole.head.expect_continue);
}

TEST_CASE("http1::parse_request_head stops at the end of the first of pipelined requests",
          "[http1]") {
    const std::string_view first = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::string_view second = "GET /b HTTP/1.1\r\nHost: y\r\nConnection: close\r\n\r\n";
    std::string both(first);
    both += second;
    std::array<blitz::Header, 8> storage{};
    RequestHead head;
    const ParseResult r1 = blitz::http1::parse_request_head(both, storage, {}, head);
    REQUIRE(r1.status == ParseStatus::Done);
    CHECK(r1.consumed == first.size());
    CHECK(head.path == "/a");
    CHECK(head.keep_alive);
    const ParseResult r2 = blitz::http1::parse_request_head(
        std::span<char>(both).subspan(r1.consumed), storage, {}, head);
    REQUIRE(r2.status == ParseStatus::Done);
    CHECK(r2.consumed == second.size());
    CHECK(head.path == "/b");
    CHECK(head.authority == "y");
    CHECK_FALSE(head.keep_alive);
}

TEST_CASE("http1::parse_request_head does not count a body that follows the head", "[http1]") {
    const std::string_view head_text = "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n";
    std::string request(head_text);
    request += "\r\n\r\n";  // body bytes that look like an end of head
    const Parsed p(request);
    REQUIRE(p.done());
    CHECK(p.result.consumed == head_text.size());
}

TEST_CASE("http1::parse_request_head skips a bounded number of empty lines before the request",
          "[http1]") {
    const Parsed one("\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(one.done());
    CHECK(one.result.consumed == one.bytes.size());
    CHECK(one.head.method_name == "GET");
    std::string eight;
    for (int i = 0; i < 8; ++i) {
        eight += "\r\n";
    }
    const Parsed ok(eight + "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(ok.done());
    const Parsed too_many(eight + "\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(too_many.status() == 400);
    const Parsed bare_lf("\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(bare_lf.status() == 400);
    const Parsed bare_cr("\rGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(bare_cr.status() == 400);
}

TEST_CASE("http1::parse_request_head applies HTTP/1.1 and HTTP/1.0 keep-alive rules", "[http1]") {
    struct Case {
        std::string_view request;
        bool keep_alive;
    };
    constexpr Case kCases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: CLOSE\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive,close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: x\r\nConnection: close\r\n\r\n", false},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: closed\r\n\r\n", true},
        {"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: foo, keep-alive\r\n\r\n", true},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n", false},
    };
    for (const Case& c : kCases) {
        CAPTURE(c.request);
        const Parsed p(c.request);
        REQUIRE(p.done());
        CHECK(p.head.keep_alive == c.keep_alive);
    }
}

TEST_CASE("http1::parse_request_head accepts HTTP/1.0 without Host", "[http1]") {
    const Parsed p("GET /x HTTP/1.0\r\n\r\n");
    REQUIRE(p.done());
    CHECK(p.head.version == Version::Http10);
    CHECK(p.head.authority.empty());
}

TEST_CASE("http1::parse_request_head treats HTTP/1.2 to 1.9 as HTTP/1.1", "[http1]") {
    for (char minor = '2'; minor <= '9'; ++minor) {
        std::string request = "GET / HTTP/1.0\r\nHost: x\r\n\r\n";
        request[13] = minor;
        CAPTURE(request);
        const Parsed p(request);
        REQUIRE(p.done());
        CHECK(p.head.version == Version::Http11);
    }
}

TEST_CASE("http1::parse_request_head answers other major versions with 505", "[http1]") {
    const ErrorCase kCases[] = {
        {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
        {"HTTP/0.9", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
        {"HTTP/3.0", "GET / HTTP/3.0\r\nHost: x\r\n\r\n", 505},
    };
    check_errors(kCases);
}

TEST_CASE("http1::parse_request_head rejects malformed request lines with 400", "[http1]") {
    const ErrorCase kCases[] = {
        {"two spaces after method", "GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"two spaces after target", "GET /  HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"leading space", " GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"trailing space after version", "GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400},
        {"tab as separator", "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"missing version", "GET /\r\nHost: x\r\n\r\n", 400},
        {"missing version after space", "GET / \r\nHost: x\r\n\r\n", 400},
        {"lowercase version", "GET / http/1.1\r\nHost: x\r\n\r\n", 400},
        {"version without minor", "GET / HTTP/1\r\nHost: x\r\n\r\n", 400},
        {"two-digit minor", "GET / HTTP/1.10\r\nHost: x\r\n\r\n", 400},
        {"two-digit major", "GET / HTTP/11.1\r\nHost: x\r\n\r\n", 400},
        {"request line ended by bare LF", "GET / HTTP/1.1\nHost: x\r\n\r\n", 400},
        {"request line ended by bare CR", "GET / HTTP/1.1\rHost: x\r\n\r\n", 400},
        {"invalid token char in method", "GE(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"at sign in method", "G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"empty method", " / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"NUL in method", "GE\0T / HTTP/1.1\r\nHost: x\r\n\r\n"sv, 400},
        {"fragment in target", "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"backslash in target", "GET /a\\b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"raw non-ASCII in target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"control in target", "GET /a\x01 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"malformed escape in path", "GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"truncated escape in path", "GET /a% HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"encoded NUL in path", "GET /a%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"malformed escape in query", "GET /a?x=%g1 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"relative target", "GET a/b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    };
    check_errors(kCases);
}

TEST_CASE("http1::parse_request_head applies the request-target byte policy to path and query",
          "[http1]") {
    struct Case {
        std::string_view target;
        bool accepted;
        std::string_view path;  // after normalisation, when accepted
        std::string_view query;
    };
    constexpr Case kCases[] = {
        // Path: "|^[]{}`" are literal bytes, kept through normalisation.
        {"/a|b^c", true, "/a|b^c", ""},
        {"/a[1]/b", true, "/a[1]/b", ""},
        {"/{id}/`x`", true, "/{id}/`x`", ""},
        {"/a/./[b]/../c|d", true, "/a/c|d", ""},
        {"/%7C|", true, "/%7C|", ""},
        {"/a\\b", false, "", ""},
        {"/a\"b", false, "", ""},
        {"/a<b", false, "", ""},
        {"/a>b", false, "", ""},
        {"/a#b", false, "", ""},
        {"/a\x7f", false, "", ""},
        {"/caf\xc3\xa9", false, "", ""},
        // Query: every visible ASCII byte but '#'.
        {"/a?x={1}&y=[2]|3^4`5`", true, "/a", "x={1}&y=[2]|3^4`5`"},
        {"/a?q=\"<b>\"\\c", true, "/a", "q=\"<b>\"\\c"},
        {"/a?q=/../?", true, "/a", "q=/../?"},
        {"/./a?q=\\", true, "/a", "q=\\"},
        {"/a?q=#", false, "", ""},
        {"/a?q=\x01", false, "", ""},
        {"/a?q=\x7f", false, "", ""},
        {"/a?q=\xc3\xa9", false, "", ""},
        {"/a?q=%zz", false, "", ""},
        {"/a\\b?q", false, "", ""},
    };
    for (const Case& c : kCases) {
        CAPTURE(c.target);
        const Parsed p("GET " + std::string(c.target) + " HTTP/1.1\r\nHost: x\r\n\r\n");
        INFO("reason: " << p.result.reason);
        if (!c.accepted) {
            CHECK(p.status() == 400);
            continue;
        }
        REQUIRE(p.done());
        CHECK(p.head.path == c.path);
        CHECK(p.head.query == c.query);
        CHECK(p.head.raw_target ==
              std::string(c.path) + (c.query.empty() ? "" : "?") + std::string(c.query));
    }

    // Brackets still delimit an IP-literal in an absolute-form authority, and nowhere else there.
    const Parsed v6("GET http://[::1]:8080/a[1]?b=[2] HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    REQUIRE(v6.done());
    CHECK(v6.head.authority == "[::1]:8080");
    CHECK(v6.head.path == "/a[1]");
    CHECK(v6.head.query == "b=[2]");
    const ErrorCase kAuthority[] = {
        {"bracket in reg-name", "GET http://a[b]/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"brace in authority", "GET http://a{b}/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"pipe in authority", "GET http://a|b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"backslash after authority", "GET http://a\\b/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"bracket in CONNECT target", "CONNECT [a]:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    };
    check_errors(kAuthority);
}

TEST_CASE("http1::parse_request_head rejects malformed field lines with 400", "[http1]") {
    const ErrorCase kCases[] = {
        {"obs-fold with space", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400},
        {"obs-fold with tab", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tb\r\n\r\n", 400},
        {"whitespace before first field", "GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400},
        {"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"tab before colon", "GET / HTTP/1.1\r\nHost\t: x\r\n\r\n", 400},
        {"missing colon", "GET / HTTP/1.1\r\nHost x\r\n\r\n", 400},
        {"empty field name", "GET / HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n", 400},
        {"invalid token char in name", "GET / HTTP/1.1\r\nHost: x\r\nX(a): v\r\n\r\n", 400},
        {"non-ASCII in name", "GET / HTTP/1.1\r\nHost: x\r\nX\xc3\xa9: v\r\n\r\n", 400},
        {"bare CR in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
        {"bare CR in name", "GET / HTTP/1.1\r\nHost: x\r\nX\r-A: a\r\n\r\n", 400},
        {"bare CR as end of head", "GET / HTTP/1.1\r\nHost: x\r\n\rX", 400},
        {"bare LF ending a field", "GET / HTTP/1.1\r\nHost: x\nX-A: a\r\n\r\n", 400},
        {"bare LF ending the head", "GET / HTTP/1.1\r\nHost: x\r\n\n", 400},
        {"bare LF only line endings", "GET / HTTP/1.1\nHost: x\n\n", 400},
        {"NUL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"sv, 400},
        {"control char in value",
         "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01"
         "b\r\n\r\n",
         400},
        {"DEL in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x7f\r\n\r\n", 400},
        {"escape char in value", "GET / HTTP/1.1\r\nHost: x\r\nX-A: \x1b[0m\r\n\r\n", 400},
    };
    check_errors(kCases);
}

// Independent of the parser's tables: RFC 9110 §5.6.2 tchar, §5.5 field-vchar, RFC 3986 pchar.
bool expect_tchar(unsigned char c) {
    return std::isalnum(c) != 0 ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
bool expect_field_value(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
// The target policy in parser.hpp: pchar, '/', and "|^[]{}`" in the path ('?' starts the
// query); any visible ASCII byte but '#' in the query.
bool expect_path(unsigned char c) {
    return std::isalnum(c) != 0 ||
           std::string_view("-._~!$&'()*+,;=:@/?%|^[]{}`").find(static_cast<char>(c)) !=
               std::string_view::npos;
}
bool expect_query(unsigned char c) { return c >= 0x21 && c <= 0x7e && c != '#'; }

// Each byte value in a long run (scanned 16 bytes a step) and near the end of the buffer
// (scanned bytewise) must be classified the same way.
TEST_CASE("http1::parse_request_head classifies every byte value alike in every scan path",
          "[http1]") {
    const std::string pad(24, 'a');
    for (int i = 0; i < 256; ++i) {
        const auto c = static_cast<unsigned char>(i);
        const std::string b(1, static_cast<char>(c));
        CAPTURE(i);
        {
            const Parsed p("GE" + b + "T" + pad + " / HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(p.done() == expect_tchar(c));
        }
        {
            const Parsed long_name("GET / HTTP/1.1\r\nHost: x\r\nAb" + b + pad +
                                   ": v\r\nX-Pad: " + pad + "\r\n\r\n");
            CHECK(long_name.done() == (expect_tchar(c) || c == ':'));
            const Parsed short_name("GET / HTTP/1.1\r\nHost: x\r\nAb" + b + "c: v\r\n\r\n");
            CHECK(short_name.done() == (expect_tchar(c) || c == ':'));
        }
        {
            const Parsed long_value("GET / HTTP/1.1\r\nHost: x\r\nX-A: ab" + b + pad +
                                    "\r\nX-Pad: " + pad + "\r\n\r\n");
            CHECK(long_value.done() == expect_field_value(c));
            const Parsed short_value("GET / HTTP/1.1\r\nHost: x\r\nX-A: a" + b + "b\r\n\r\n");
            CHECK(short_value.done() == expect_field_value(c));
        }
        {
            // "%" followed by "aa" is a valid escape; a space ends the target early.
            const Parsed path("GET /ab" + b + pad + " HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(path.done() == expect_path(c));
            const Parsed short_path("GET /ab" + b + "aa HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(short_path.done() == expect_path(c));
            const Parsed query("GET /a?b" + b + pad + " HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(query.done() == expect_query(c));
            const Parsed short_query("GET /a?b" + b + "aa HTTP/1.1\r\nHost: x\r\n\r\n");
            CHECK(short_query.done() == expect_query(c));
            // Which part a byte is in is known only once the target is complete, so the scan
            // refuses only what no part allows.
            const Parsed partial("GET /ab" + b + "aa");
            CHECK((partial.result.status == ParseStatus::Incomplete) == expect_query(c));
        }
    }
}

TEST_CASE("http1::parse_request_head allows HTAB inside field values", "[http1]") {
    const Parsed p("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\tb\r\n\r\n");
    REQUIRE(p.done());
    CHECK(p.head.headers[1].value == "a\tb");
}

TEST_CASE("http1::parse_request_head enforces Host presence, uniqueness and syntax", "[http1]") {
    const ErrorCase kCases[] = {
        {"missing Host on HTTP/1.1", "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400},
        {"two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
        {"two Host fields, different case", "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400},
        {"Host list", "GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 400},
        {"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 400},
        {"Host with userinfo", "GET / HTTP/1.1\r\nHost: user@example.com\r\n\r\n", 400},
        {"Host with path", "GET / HTTP/1.1\r\nHost: example.com/x\r\n\r\n", 400},
        {"Host with bad port", "GET / HTTP/1.1\r\nHost: example.com:8o\r\n\r\n", 400},
        {"Host with port above 65535", "GET / HTTP/1.1\r\nHost: example.com:65536\r\n\r\n", 400},
        {"Host with empty port", "GET / HTTP/1.1\r\nHost: example.com:\r\n\r\n", 400},
        {"Host with unclosed IP-literal", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 400},
        {"Host with IPv6 zone", "GET / HTTP/1.1\r\nHost: [fe80::1%25eth0]\r\n\r\n", 400},
        {"Host with space", "GET / HTTP/1.1\r\nHost: exa mple.com\r\n\r\n", 400},
        {"invalid Host on HTTP/1.0", "GET / HTTP/1.0\r\nHost: a@b\r\n\r\n", 400},
    };
    check_errors(kCases);
    const Parsed v6("GET / HTTP/1.1\r\nhost: [::1]:8080\r\n\r\n");
    REQUIRE(v6.done());
    CHECK(v6.head.authority == "[::1]:8080");
}

TEST_CASE("http1::parse_request_head takes scheme and authority from an absolute-form target",
          "[http1]") {
    const Parsed p(
        "GET http://Example.com:8080/a/b?q=1 HTTP/1.1\r\nHost: example.COM:8080\r\n\r\n");
    REQUIRE(p.done());
    CHECK(p.head.scheme == "http");
    CHECK(p.head.authority == "Example.com:8080");
    CHECK(p.head.path == "/a/b");
    CHECK(p.head.query == "q=1");
    CHECK(p.head.raw_target == "http://Example.com:8080/a/b?q=1");

    const Parsed https("GET HTTPS://example.com/x HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    REQUIRE(https.done());
    CHECK(https.head.scheme == "https");
    CHECK(https.head.authority == "example.com");

    const Parsed default_port("GET http://example.com:80/ HTTP/1.1\r\nHost: example.com\r\n\r\n");
    CHECK(default_port.done());

    const Parsed no_path("GET http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    REQUIRE(no_path.done());
    CHECK(no_path.head.path == "/");
    const Parsed query_only("GET http://example.com?x HTTP/1.1\r\nHost: example.com\r\n\r\n");
    REQUIRE(query_only.done());
    CHECK(query_only.head.path == "/");
    CHECK(query_only.head.query == "x");

    const Parsed options("OPTIONS http://example.com HTTP/1.1\r\nHost: example.com\r\n\r\n");
    REQUIRE(options.done());
    CHECK(options.head.path == "*");

    const Parsed v6("GET http://[::1]:8080/x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    REQUIRE(v6.done());
    CHECK(v6.head.authority == "[::1]:8080");

    const Parsed http10("GET http://example.com/x HTTP/1.0\r\n\r\n");
    REQUIRE(http10.done());
    CHECK(http10.head.authority == "example.com");

    const Parsed normalised(
        "GET http://example.com/a/%2e%2e/b%7e?x=%2e HTTP/1.1\r\nHost: example.com\r\n\r\n");
    REQUIRE(normalised.done());
    CHECK(normalised.head.path == "/b~");
    CHECK(normalised.head.query == "x=%2e");
    CHECK(normalised.head.raw_target == "http://example.com/b~?x=%2e");
}

TEST_CASE("http1::parse_request_head rejects absolute-form targets that disagree or are invalid",
          "[http1]") {
    const ErrorCase kCases[] = {
        {"Host names another host",
         "GET http://example.com/ HTTP/1.1\r\nHost: evil.example\r\n\r\n", 400},
        {"Host names another port",
         "GET http://example.com:81/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
        {"Host adds a non-default port",
         "GET http://example.com/ HTTP/1.1\r\nHost: example.com:8080\r\n\r\n", 400},
        {"https default port differs from 80",
         "GET https://example.com/ HTTP/1.1\r\nHost: example.com:80\r\n\r\n", 400},
        {"missing Host on HTTP/1.1", "GET http://example.com/ HTTP/1.1\r\n\r\n", 400},
        {"userinfo", "GET http://user@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
        {"empty authority", "GET http:///x HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
        {"other scheme", "GET ftp://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
        {"scheme only", "GET http:// HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
        {"bad path", "GET http://example.com/%zz HTTP/1.1\r\nHost: example.com\r\n\r\n", 400},
    };
    check_errors(kCases);
}

TEST_CASE("http1::parse_request_head allows asterisk-form only for OPTIONS", "[http1]") {
    const Parsed options("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(options.done());
    CHECK(options.head.method == Method::Options);
    CHECK(options.head.path == "*");
    CHECK(options.head.raw_target == "*");
    CHECK(options.head.authority == "x");
    const ErrorCase kCases[] = {
        {"GET *", "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"OPTIONS *x", "OPTIONS *x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
    };
    check_errors(kCases);
}

TEST_CASE("http1::parse_request_head allows authority-form only for CONNECT", "[http1]") {
    const Parsed connect("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    REQUIRE(connect.done());
    CHECK(connect.head.method == Method::Connect);
    CHECK(connect.head.authority == "example.com:443");
    CHECK(connect.head.path.empty());
    CHECK(connect.head.raw_target == "example.com:443");
    const ErrorCase kCases[] = {
        {"GET with authority-form", "GET example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"CONNECT with origin-form", "CONNECT / HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"CONNECT without port", "CONNECT example.com HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"CONNECT with userinfo", "CONNECT u@example.com:443 HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"CONNECT with path", "CONNECT example.com:443/x HTTP/1.1\r\nHost: x\r\n\r\n", 400},
        {"CONNECT without Host", "CONNECT example.com:443 HTTP/1.1\r\n\r\n", 400},
    };
    check_errors(kCases);
}

TEST_CASE("http1::parse_request_head normalises the path in place and keeps the query", "[http1]") {
    const Parsed p("GET /a/./b/../c%41%2f/?x=/../%2e HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(p.done());
    CHECK(p.head.path == "/a/cA%2F/");
    CHECK(p.head.query == "x=/../%2e");
    CHECK(p.head.raw_target == "/a/cA%2F/?x=/../%2e");
    CHECK(p.inside(p.head.path));
    CHECK(p.inside(p.head.query));
    CHECK(p.head.path.data() == p.head.raw_target.data());
    // The rest of the head is untouched.
    REQUIRE(p.head.headers.size() == 1);
    CHECK(p.head.headers[0].value == "x");
    CHECK(p.result.consumed == p.bytes.size());

    const Parsed unchanged("GET /static/app.js?v=1.2 HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(unchanged.done());
    CHECK(unchanged.head.path == "/static/app.js");
    CHECK(unchanged.head.raw_target == "/static/app.js?v=1.2");

    const Parsed up("GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(up.done());
    CHECK(up.head.path == "/etc/passwd");
}

TEST_CASE("http1::parse_request_head frames bodies by Content-Length or chunked", "[http1]") {
    const Parsed length("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 42\r\n\r\n");
    REQUIRE(length.done());
    CHECK(length.head.body == BodyKind::Length);
    CHECK(length.head.content_length == 42);

    const Parsed zero("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    REQUIRE(zero.done());
    CHECK(zero.head.body == BodyKind::Length);
    CHECK(zero.head.content_length == 0);

    const Parsed chunked("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n");
    REQUIRE(chunked.done());
    CHECK(chunked.head.body == BodyKind::Chunked);

    const Parsed none("POST / HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(none.done());
    CHECK(none.head.body == BodyKind::None);

    const Parsed max("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\n");
    REQUIRE(max.done());
    CHECK(max.head.content_length == 9223372036854775807ULL);

    const Parsed leading_zeros("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 007\r\n\r\n");
    REQUIRE(leading_zeros.done());
    CHECK(leading_zeros.head.content_length == 7);
}

TEST_CASE("http1::parse_request_head accepts repeated identical Content-Length values", "[http1]") {
    // RFC 9110 §8.6 lets a recipient accept a list of identical values as one value.
    const Parsed list("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n");
    REQUIRE(list.done());
    CHECK(list.head.content_length == 5);
    const Parsed fields(
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\ncontent-length:5\r\n\r\n");
    REQUIRE(fields.done());
    CHECK(fields.head.content_length == 5);
}

TEST_CASE("http1::parse_request_head rejects request smuggling vectors with their status",
          "[http1]") {
    const ErrorCase kCases[] = {
        {"Content-Length with Transfer-Encoding",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"Transfer-Encoding with Content-Length",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
         400},
        {"conflicting Content-Length fields",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400},
        {"conflicting Content-Length list",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\n", 400},
        {"Content-Length non-digits", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
         400},
        {"Content-Length hex", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x5\r\n\r\n", 400},
        {"Content-Length plus sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
         400},
        {"Content-Length minus sign", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
         400},
        {"Content-Length space inside", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n",
         400},
        {"Content-Length empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400},
        {"Content-Length empty list element",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5,\r\n\r\n", 400},
        {"Content-Length 2^63",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775808\r\n\r\n", 400},
        {"Content-Length 2^64",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 18446744073709551616\r\n\r\n", 400},
        {"Content-Length far beyond 2^64",
         "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999999\r\n\r\n", 400},
        {"Transfer-Encoding on HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
         400},
        {"unknown transfer coding before chunked",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501},
        {"gzip transfer coding before chunked",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"unknown coding in an earlier field",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked"
         "\r\n\r\n",
         501},
        {"chunked not final",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"chunked not final across fields",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip"
         "\r\n\r\n",
         400},
        {"chunked twice",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 400},
        {"chunked twice across fields",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
         "\r\n\r\n",
         400},
        {"no chunked at all", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
        {"chunked with parameters",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 400},
        {"empty Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n\r\n",
         400},
        {"empty transfer coding element",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: , chunked\r\n\r\n", 400},
        {"chunked with trailing garbage",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunkedx\r\n\r\n", 400},
        {"invalid transfer coding token",
         "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400},
    };
    check_errors(kCases);
}

TEST_CASE("http1::parse_request_head recognises framing fields in any case and nothing near them",
          "[http1]") {
    struct Field {
        std::string_view name;
        std::string_view value;  // refused (or, for Connection, closing) when recognised
    };
    constexpr Field kFields[] = {{"Host", "a@b"},
                                 {"Expect", "nope"},
                                 {"Connection", "close"},
                                 {"Content-Length", "abc"},
                                 {"Transfer-Encoding", "gzip"}};
    for (const Field& f : kFields) {
        CAPTURE(f.name);
        const auto parse = [&f](const std::string& name) {
            return std::make_unique<Parsed>("GET / HTTP/1.1\r\nHost: x\r\n" + name + ": " +
                                            std::string(f.value) + "\r\n\r\n");
        };
        std::string upper(f.name);
        for (char& c : upper) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        const auto recognised = parse(upper);
        CHECK((recognised->status() != 0 || (recognised->done() && !recognised->head.keep_alive)));
        // One byte off, anywhere in the name: just another field (a second Host would be 400).
        for (std::size_t i = 0; i < f.name.size(); ++i) {
            std::string near(f.name);
            near[i] = near[i] == 'x' ? 'y' : 'x';
            CAPTURE(near);
            const auto other = parse(near);
            REQUIRE(other->done());
            CHECK(other->head.keep_alive);
        }
    }
}

TEST_CASE("http1::parse_request_head exposes Expect: 100-continue and rejects other expectations",
          "[http1]") {
    const Parsed expect(
        "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n");
    REQUIRE(expect.done());
    CHECK(expect.head.expect_continue);
    const Parsed chunked(
        "PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n");
    REQUIRE(chunked.done());
    CHECK(chunked.head.expect_continue);
    const Parsed no_body("GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n");
    REQUIRE(no_body.done());
    CHECK_FALSE(no_body.head.expect_continue);
    const Parsed http10("PUT / HTTP/1.0\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    REQUIRE(http10.done());
    CHECK_FALSE(http10.head.expect_continue);
    const ErrorCase kCases[] = {
        {"unknown expectation", "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n", 417},
        {"expectation with parameter",
         "PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue; x=1\r\n\r\n", 417},
        {"empty expectation", "PUT / HTTP/1.1\r\nHost: x\r\nExpect:\r\n\r\n", 417},
    };
    check_errors(kCases);
}

std::string head_of_size(std::size_t total) {
    std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    const std::size_t tail = 4;  // "\r\n\r\n"
    REQUIRE(total >= head.size() + tail);
    head.append(total - head.size() - tail, 'a');
    head += "\r\n\r\n";
    return head;
}

TEST_CASE("http1::parse_request_head answers 431 for a head over max_head_bytes", "[http1]") {
    const Limits limits{.max_head_bytes = 256};
    const Parsed exact(head_of_size(256), limits);
    CHECK(exact.done());
    const Parsed over(head_of_size(257), limits);
    CHECK(over.status() == 431);

    // Without waiting for the end of the head: as soon as more than the limit is buffered.
    std::string endless = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    endless.append(256 - endless.size(), 'a');
    const Parsed at_limit(endless, limits);
    CHECK(at_limit.result.status == ParseStatus::Incomplete);
    endless += 'a';
    const Parsed past_limit(endless, limits);
    CHECK(past_limit.status() == 431);

    // A complete head within the limit is Done even when more bytes (a body) follow.
    std::string with_body = head_of_size(256);
    with_body.append(1000, 'b');
    const Parsed body_after(with_body, limits);
    REQUIRE(body_after.done());
    CHECK(body_after.result.consumed == 256);
}

TEST_CASE("http1::parse_request_head answers 431 for more than max_headers fields", "[http1]") {
    const Limits limits{.max_headers = 3};
    const Parsed three("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", limits);
    CHECK(three.done());
    const Parsed four("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits);
    CHECK(four.status() == 431);

    // The caller's storage bounds the count too.
    std::string request = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
    std::array<blitz::Header, 2> small{};
    RequestHead head;
    const ParseResult r = blitz::http1::parse_request_head(request, small, {}, head);
    REQUIRE(r.status == ParseStatus::Error);
    CHECK(r.error_status == 431);
}

TEST_CASE("http1::parse_request_head answers 414 for a target over max_path_bytes", "[http1]") {
    const Limits limits{.max_path_bytes = 64};
    std::string target = "/";
    target.append(63, 'a');
    const Parsed exact("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n", limits);
    CHECK(exact.done());
    const Parsed over("GET " + target + "a HTTP/1.1\r\nHost: x\r\n\r\n", limits);
    CHECK(over.status() == 414);
    const Parsed query("GET " + target.substr(0, 60) + "?abcd HTTP/1.1\r\nHost: x\r\n\r\n", limits);
    CHECK(query.status() == 414);

    // Reported while the request line is still arriving.
    const Parsed in_progress("GET " + target, limits);
    CHECK(in_progress.result.status == ParseStatus::Incomplete);
    const Parsed past("GET " + target + "a", limits);
    CHECK(past.status() == 414);
}

}  // namespace

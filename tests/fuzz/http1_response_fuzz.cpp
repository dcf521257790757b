// libFuzzer target for the upstream side of the HTTP/1.1 codec: parse_response_head (as the
// answer to a GET and to a HEAD), the body that follows it per its framing, and the proxy
// writers. Besides "does not crash" (ASan, UBSan), it checks on every input: views lie inside
// the head, a head's prefix never parses to something else, the framing follows RFC 9112 §6.3,
// and whatever the writers produce parses back to exactly what they were given, with no
// hop-by-hop field and no field injected by the bytes of another.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "http1/parser.hpp"
#include "http1/proxy.hpp"

namespace {

using blitz::Header;
using blitz::Headers;
using blitz::iequals;
using blitz::Method;
using blitz::Version;
using blitz::http1::BodyDecoder;
using blitz::http1::BodyKind;
using blitz::http1::Framing;
using blitz::http1::ParseResult;
using blitz::http1::ParseStatus;
using blitz::http1::ResponseHead;
using blitz::http1::ResponseLimits;

constexpr std::string_view kDate = "Tue, 15 Nov 1994 08:12:31 GMT";
constexpr std::string_view kVia = "1.1 blitz";

void check(bool ok, const char* invariant) {
    if (!ok) {
        std::fprintf(stderr, "http1_response_fuzz: invariant violated: %s\n", invariant);
        std::abort();
    }
}

bool within(std::string_view v, std::string_view buf) {
    return v.empty() || (v.data() >= buf.data() && v.data() + v.size() <= buf.data() + buf.size());
}

struct Parse {
    std::array<Header, 300> storage{};
    ResponseHead head;
    ParseResult result;

    Parse(std::string_view bytes, const ResponseLimits& limits, Method method) {
        result = blitz::http1::parse_response_head(bytes, storage, limits, method, head);
    }
};

// Everything a Done result says, as text, for comparing two parses.
std::string summary(const Parse& p) {
    const ResponseHead& h = p.head;
    std::string s(h.reason);
    s += '\n';
    for (const Header& f : h.headers) {
        s.append(f.name);
        s += ':';
        s.append(f.value);
        s += '\n';
    }
    for (std::uint64_t n :
         {std::uint64_t(h.status), std::uint64_t(h.version), std::uint64_t(h.body),
          h.content_length, std::uint64_t(h.has_content_length), std::uint64_t(h.keep_alive),
          std::uint64_t(h.upgrade), std::uint64_t(p.result.consumed)}) {
        s += std::to_string(n) + ' ';
    }
    return s;
}

void check_head(const Parse& p, std::string_view input, const ResponseLimits& limits,
                Method method) {
    const ParseResult& r = p.result;
    switch (r.status) {
        case ParseStatus::Incomplete:
            check(input.size() <= limits.max_head_bytes, "Incomplete only within max_head_bytes");
            return;
        case ParseStatus::Error:
            check(r.error_status == 502, "every upstream error is 502");
            check(r.reason != nullptr && r.reason[0] != '\0', "an error has a reason");
            return;
        case ParseStatus::Done:
            break;
    }
    const ResponseHead& h = p.head;
    const std::size_t n = r.consumed;
    const std::string_view head = input.substr(0, n);
    check(n >= 16 && n <= input.size() && n <= limits.max_head_bytes, "consumed within limits");
    check(head.substr(n - 4) == "\r\n\r\n", "a head ends with CRLF CRLF");
    check(head.substr(0, 7) == "HTTP/1.", "a head starts with HTTP/1.");
    check(h.status >= 100 && h.status <= 599, "status in 100..599");
    check(within(h.reason, head), "reason in the head");
    check(h.headers.size() <= limits.max_headers && h.headers.data() == p.storage.data(),
          "headers in the caller's storage, within max_headers");
    for (const Header& f : h.headers) {
        check(!f.name.empty() && within(f.name, head) && within(f.value, head),
              "fields in the head");
        check(f.value.empty() || (f.value.front() != ' ' && f.value.back() != ' '),
              "values are OWS-trimmed");
    }
    const bool tunnel = method == Method::Connect && h.status >= 200 && h.status < 300;
    if (method == Method::Head || h.status < 200 || h.status == 204 || h.status == 304 || tunnel) {
        check(h.body == Framing::None, "no body for HEAD, 1xx, 204, 304 and a tunnel");
    } else {
        check(h.body != Framing::None, "a body or a close for every other response");
    }
    check(h.upgrade == (h.status == 101 || tunnel), "upgrade exactly for 101 and a tunnel");
    check(h.interim() == (h.status < 200 && h.status != 101), "interim is 1xx but 101");
    check(!(h.upgrade || h.body == Framing::UntilClose) || !h.keep_alive,
          "no reuse after a switch or a close-delimited body");
    check(h.body != Framing::Length || h.has_content_length, "Length comes from Content-Length");
    check(h.body != Framing::Chunked || h.version == Version::Http11, "chunked only in HTTP/1.1");
    check(!h.has_content_length || h.content_length <= INT64_MAX, "length fits int64");

    // The head alone parses the same; one byte less is not yet a head.
    const Parse exact(head, limits, method);
    check(exact.result.status == ParseStatus::Done && summary(exact) == summary(p),
          "the head alone parses to the same result");
    const Parse shorter(head.substr(0, n - 1), limits, method);
    check(shorter.result.status == ParseStatus::Incomplete, "a strict prefix is Incomplete");
}

// Decodes `wire` whole and in pieces of 1..9 bytes (sizes taken from `piece_sizes`); both must
// agree, and every step must make progress within its input.
struct Decoded {
    std::string body;
    std::size_t consumed = 0;
    bool done = false;
    int error_status = 0;
};

Decoded decode(BodyDecoder d, std::string_view wire, std::string_view piece_sizes) {
    Decoded out;
    std::size_t available = 0;
    std::size_t next_piece = 0;
    for (std::size_t calls = 0;; ++calls) {
        check(calls <= 2 * wire.size() + 4, "the decoder makes progress");
        const std::span<const char> in(wire.data() + out.consumed, available - out.consumed);
        const BodyDecoder::Step s = d.decode(in);
        check(s.consumed <= in.size(), "consumed within the input");
        out.body.append(s.data.data(), s.data.size());
        out.consumed += s.consumed;
        if (s.error_status != 0 || s.done) {
            out.error_status = s.error_status;
            out.done = s.done;
            return out;
        }
        if (s.consumed == 0) {
            if (available == wire.size()) {
                return out;
            }
            std::size_t step = wire.size();
            if (!piece_sizes.empty()) {
                step =
                    static_cast<unsigned char>(piece_sizes[next_piece++ % piece_sizes.size()]) % 9 +
                    1;
            }
            available = std::min(wire.size(), available + step);
        }
    }
}

void check_body(const ResponseHead& h, std::string_view rest, std::string_view piece_sizes) {
    BodyDecoder d;
    switch (h.body) {
        case Framing::None:
        case Framing::UntilClose:
            return;  // nothing to decode: no body, or every byte up to the close
        case Framing::Length:
            d.reset_length(h.content_length);
            break;
        case Framing::Chunked:
            d.reset_chunked();
            break;
    }
    const Decoded whole = decode(d, rest, {});
    const Decoded pieces = decode(d, rest, piece_sizes);
    check(whole.body == pieces.body && whole.consumed == pieces.consumed &&
              whole.done == pieces.done && whole.error_status == pieces.error_status,
          "the same body however the input is split");
    if (h.body == Framing::Length) {
        check(whole.error_status == 0 &&
                  whole.body.size() == std::min<std::uint64_t>(h.content_length, rest.size()),
              "a Content-Length body is exactly its length");
    }
}

bool has_field(Headers fields, std::string_view name) {
    return std::any_of(fields.begin(), fields.end(),
                       [name](const Header& f) { return iequals(f.name, name); });
}

bool same_fields(std::span<const Header> a, const std::vector<Header>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Header& x, const Header& y) {
        return x.name == y.name && x.value == y.value;
    });
}

// The parsed response forwarded to a client: it parses back (as the answer to the same
// method) to the same status, framing and end-to-end fields, plus Date and Via.
void round_trip_response(const ResponseHead& h, Method method, Version client) {
    static std::array<char, 192 * 1024> out;
    const Headers fields(h.headers);
    const std::size_t n = blitz::http1::write_proxied_response_head(
        out, h.status, h.reason, fields, h.body, h.content_length, h.keep_alive, client, kVia,
        kDate);
    if (n == 0) {
        // Refused only: a 101 that switches to h2c, and what HTTP/1.0 has no means for.
        check(h.status == 101 ||
                  (client == Version::Http10 && (h.status < 200 || h.body == Framing::Chunked)),
              "a parsed response can be forwarded");
        return;
    }
    const std::string_view wire(out.data(), n);
    const bool keep_length = h.body == Framing::None && h.status >= 200 && h.status != 204;
    std::vector<Header> expected;
    for (const Header& f : h.headers) {
        if (blitz::http1::is_hop_by_hop(f.name, fields) ||
            (iequals(f.name, "content-length") && !keep_length)) {
            continue;
        }
        expected.push_back(f);
    }
    // A Date the upstream listed in Connection is not forwarded, so the proxy adds its own.
    if (!has_field(Headers(expected), "date")) {
        expected.push_back({"Date", kDate});
    }
    expected.push_back({"Via", kVia});

    const Parse again(wire, ResponseLimits{.max_head_bytes = 1 << 20, .max_headers = 300}, method);
    check(again.result.status == ParseStatus::Done && again.result.consumed == n,
          "a forwarded head parses whole");
    const ResponseHead& a = again.head;
    check(a.status == h.status && a.version == Version::Http11, "the same status");
    check(h.reason.empty() || a.reason == h.reason, "the upstream's reason is kept");
    check(a.body == h.body, "the same framing");
    check(a.body != Framing::Length || a.content_length == h.content_length, "the same length");
    const bool close = !h.keep_alive || h.body == Framing::UntilClose;
    const std::size_t framing_fields =
        h.status == 101 ? 2
        : h.interim()   ? 0
                        : (h.body == Framing::Length || h.body == Framing::Chunked) +
                            (close || client == Version::Http10);
    check(a.headers.size() == expected.size() + framing_fields &&
              same_fields(a.headers.first(expected.size()), expected),
          "the end-to-end fields in order, then Date and Via, then framing");
    if (!h.interim() && !a.upgrade) {
        check(a.keep_alive == !close, "the client's keep-alive as given");
    }
}

// The parsed fields sent upstream as a client's request: it parses back to the same request
// line, Host first, the forwardable fields in order, the extra field, and the framing given.
void round_trip_request(const ResponseHead& h, Method method) {
    static std::array<char, 192 * 1024> out;
    const Headers fields(h.headers);
    const std::array<std::string_view, 1> drop = {"X-Drop"};
    const std::array<Header, 1> extra = {{{"X-Forwarded-For", "192.0.2.1"}}};
    const BodyKind body = h.body == Framing::Length    ? BodyKind::Length
                          : h.body == Framing::Chunked ? BodyKind::Chunked
                                                       : BodyKind::None;
    const blitz::http1::UpstreamRequest request{
        .method = method == Method::Head ? "HEAD" : "GET",
        .target = "/fuzz?q=1",
        .host = "upstream.test:8080",
        .headers = fields,
        .drop = drop,
        .extra = Headers(extra),
        .body = body,
        .content_length = h.content_length,
        .upgrade = method == Method::Head ? blitz::http1::requested_upgrade(fields, Version::Http11)
                                          : fields.get("upgrade"),
        .te_trailers = blitz::http1::accepts_trailers(fields),
    };
    const std::size_t n = blitz::http1::write_request_head(out, request);
    check(n > 0, "parsed fields can be forwarded upstream");
    std::string wire(out.data(), n);
    std::vector<Header> expected;
    for (const Header& f : h.headers) {
        if (blitz::http1::is_hop_by_hop(f.name, fields) || iequals(f.name, "host") ||
            iequals(f.name, "content-length") || iequals(f.name, "x-drop")) {
            continue;
        }
        expected.push_back(f);
    }
    expected.push_back(extra[0]);

    std::array<Header, 300> storage{};
    blitz::http1::RequestHead parsed;
    const ParseResult r = blitz::http1::parse_request_head(
        wire, storage,
        blitz::http1::Limits{.max_head_bytes = 1 << 20, .max_headers = 300, .max_path_bytes = 64},
        parsed);
    if (r.status == ParseStatus::Error && r.error_status == 417) {
        check(has_field(fields, "expect"), "only an Expect field makes the request fail (417)");
        return;
    }
    check(r.status == ParseStatus::Done && r.consumed == n, "a request head parses whole");
    check(parsed.method_name == request.method && parsed.raw_target == request.target &&
              parsed.authority == request.host,
          "the same request line and Host");
    check(parsed.headers.size() > expected.size() && parsed.headers[0].name == "Host" &&
              same_fields(parsed.headers.subspan(1, expected.size()), expected),
          "Host, then the forwardable fields in order, then extra");
    check(parsed.body == body, "the framing given");
    for (const Header& f : parsed.headers.subspan(1 + expected.size())) {
        check(iequals(f.name, "content-length") || iequals(f.name, "transfer-encoding") ||
                  iequals(f.name, "connection") || iequals(f.name, "upgrade") ||
                  iequals(f.name, "te"),
              "only framing and connection fields follow");
    }
}

// Raw input bytes as fields (lines split at '\n', name and value at the first ':'), so the
// writers see every byte a caller could pass: what they accept must parse back to exactly the
// fields given, so no byte of a value can inject a field or end the head.
void check_raw_fields(std::string_view input) {
    std::vector<Header> fields;
    for (std::size_t start = 0; start < input.size() && fields.size() < 64;) {
        std::size_t end = input.find('\n', start);
        if (end == std::string_view::npos) {
            end = input.size();
        }
        const std::string_view line = input.substr(start, end - start);
        const std::size_t colon = line.find(':');
        fields.push_back(colon == std::string_view::npos
                             ? Header{line, {}}
                             : Header{line.substr(0, colon), line.substr(colon + 1)});
        start = end + 1;
    }
    static std::array<char, 64 * 1024> out;
    const std::size_t n = blitz::http1::write_proxied_response_head(
        out, 200, "OK", Headers(fields), Framing::Length, 0, true, Version::Http11, {}, {});
    if (n != 0) {
        const Parse again(std::string_view(out.data(), n),
                          ResponseLimits{.max_head_bytes = 1 << 20, .max_headers = 300},
                          Method::Get);
        check(again.result.status == ParseStatus::Done && again.result.consumed == n,
              "a written response head parses whole");
        std::size_t forwarded = 0;
        for (const Header& f : fields) {
            forwarded += !blitz::http1::is_hop_by_hop(f.name, Headers(fields)) &&
                         !iequals(f.name, "content-length");
        }
        check(again.head.headers.size() == forwarded + 1, "no field injected into a response");
    }
    const std::size_t m = blitz::http1::write_request_head(
        out, {.method = "POST", .target = "/", .host = "h", .extra = Headers(fields)});
    if (m != 0) {
        std::string wire(out.data(), m);
        std::array<Header, 300> storage{};
        blitz::http1::RequestHead parsed;
        const ParseResult r = blitz::http1::parse_request_head(
            wire, storage, blitz::http1::Limits{.max_head_bytes = 1 << 20, .max_headers = 300},
            parsed);
        if (r.status == ParseStatus::Error && r.error_status == 417) {
            return;  // an Expect field with an expectation HTTP does not define
        }
        check(r.status == ParseStatus::Done && r.consumed == m,
              "a written request head parses whole");
        check(parsed.headers.size() == fields.size() + 1, "no field injected into a request");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    // Default limits, and tiny ones so that the limit paths are reached too.
    const ResponseLimits kDefault{};
    const ResponseLimits kTiny{.max_head_bytes = 128, .max_headers = 4};
    for (const ResponseLimits& limits : {kDefault, kTiny}) {
        for (Method method : {Method::Get, Method::Head, Method::Connect}) {
            const Parse p(input, limits, method);
            check_head(p, input, limits, method);
            if (p.result.status != ParseStatus::Done) {
                continue;
            }
            check_body(p.head, input.substr(p.result.consumed), input.substr(0, 16));
            // HEAD responses go to an HTTP/1.0 client, the others to an HTTP/1.1 one.
            round_trip_response(p.head, method,
                                method == Method::Head ? Version::Http10 : Version::Http11);
            if (method != Method::Connect) {
                round_trip_request(p.head, method);
            }
        }
    }
    check_raw_fields(input);
    return 0;
}

// libFuzzer target for the HTTP/1.1 request parser and body decoder. Besides "does not
// crash" (ASan, UBSan), it checks the codec's contract on every input: views lie inside the
// head, Incomplete never writes, a head's prefix never parses to something else, the body
// decoder always makes progress and gives the same result however its input is split.

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "http/uri.hpp"
#include "http1/parser.hpp"

namespace {

using blitz::Header;
using blitz::http1::BodyDecoder;
using blitz::http1::BodyKind;
using blitz::http1::Limits;
using blitz::http1::ParseResult;
using blitz::http1::ParseStatus;
using blitz::http1::RequestHead;

void check(bool ok, const char* invariant) {
    if (!ok) {
        std::fprintf(stderr, "http1_fuzz: invariant violated: %s\n", invariant);
        std::abort();
    }
}

bool within(std::string_view v, const std::string& buf, std::size_t len) {
    return v.empty() || (v.data() >= buf.data() && v.data() + v.size() <= buf.data() + len);
}

struct Parse {
    std::string buf;
    std::array<Header, 128> storage{};
    RequestHead head;
    ParseResult result;

    Parse(std::string_view bytes, const Limits& limits) : buf(bytes) {
        result = blitz::http1::parse_request_head(buf, storage, limits, head);
    }
};

// Everything a Done result says, as text, for comparing two parses.
std::string summary(const Parse& p) {
    const RequestHead& h = p.head;
    std::string s;
    for (std::string_view part :
         {h.method_name, h.raw_target, h.scheme, h.authority, h.path, h.query}) {
        s.append(part);
        s += '\n';
    }
    for (const Header& f : h.headers) {
        s.append(f.name);
        s += ':';
        s.append(f.value);
        s += '\n';
    }
    s += std::to_string(static_cast<int>(h.method)) + std::to_string(static_cast<int>(h.version)) +
         std::to_string(static_cast<int>(h.body)) + std::to_string(h.content_length) +
         std::to_string(h.keep_alive) + std::to_string(h.expect_continue) +
         std::to_string(p.result.consumed);
    return s;
}

void check_head(const Parse& p, std::string_view input, const Limits& limits) {
    const ParseResult& r = p.result;
    switch (r.status) {
        case ParseStatus::Incomplete:
            check(input.size() <= limits.max_head_bytes, "Incomplete only within max_head_bytes");
            check(p.buf == input, "Incomplete never writes to the buffer");
            return;
        case ParseStatus::Error:
            check(r.error_status == 400 || r.error_status == 414 || r.error_status == 417 ||
                      r.error_status == 431 || r.error_status == 501 || r.error_status == 505,
                  "error status is one of the documented ones");
            check(r.reason != nullptr && r.reason[0] != '\0', "an error has a reason");
            return;
        case ParseStatus::Done:
            break;
    }
    const RequestHead& h = p.head;
    const std::size_t n = r.consumed;
    check(n >= 4 && n <= input.size() && n <= limits.max_head_bytes, "consumed within limits");
    check(input.substr(n - 4, 4) == "\r\n\r\n", "a head ends with CRLF CRLF");
    check(p.buf.compare(n, std::string::npos, input.substr(n)) == 0,
          "nothing after the head is written");
    check(!h.method_name.empty() && within(h.method_name, p.buf, n), "method in the head");
    check(within(h.raw_target, p.buf, n) && !h.raw_target.empty(), "target in the head");
    check(within(h.authority, p.buf, n), "authority in the head");
    check(within(h.query, p.buf, n), "query in the head");
    check(h.scheme == "http" || h.scheme == "https", "scheme is http or https");
    check(h.headers.size() <= limits.max_headers && h.headers.data() == p.storage.data(),
          "headers in the caller's storage, within max_headers");
    for (const Header& f : h.headers) {
        check(!f.name.empty() && within(f.name, p.buf, n) && within(f.value, p.buf, n),
              "fields in the head");
    }
    check(h.raw_target.size() <= limits.max_path_bytes, "target within max_path_bytes");
    if (h.method == blitz::Method::Connect) {
        check(h.path.empty() && blitz::http::valid_authority(h.authority),
              "CONNECT has an authority and no path");
    } else if (h.path == "*") {
        check(h.method == blitz::Method::Options, "only OPTIONS has a '*' path");
    } else {
        check(!h.path.empty() && h.path[0] == '/', "a path starts with '/'");
        check(h.path == "/" || within(h.path, p.buf, n), "path in the head");
        std::string again(h.path);
        const long len = blitz::http::normalize_path(again);
        check(len >= 0 && std::string_view(again.data(), static_cast<std::size_t>(len)) == h.path,
              "the path is normalised (normalising again changes nothing)");
    }
    check(h.version == blitz::Version::Http10 || !h.authority.empty(),
          "an HTTP/1.1 request has an authority");
    if (!h.authority.empty()) {
        check(blitz::http::valid_authority(h.authority), "the authority is valid");
    }
    check(h.body != BodyKind::Length || h.content_length <= INT64_MAX, "length fits int64");
    check(h.body != BodyKind::Chunked || h.version == blitz::Version::Http11,
          "chunked only on HTTP/1.1");
    check(!h.expect_continue || h.body != BodyKind::None, "100-continue only with a body");

    // The head alone parses the same; one byte less is not yet a head.
    const Parse exact(input.substr(0, n), limits);
    check(exact.result.status == ParseStatus::Done && summary(exact) == summary(p),
          "the head alone parses to the same result");
    const Parse shorter(input.substr(0, n - 1), limits);
    check(shorter.result.status == ParseStatus::Incomplete, "a strict prefix is Incomplete");
}

struct Decoded {
    std::string body;
    std::string trailer;  // the trailer-section bytes the steps handed out, concatenated
    std::size_t consumed = 0;
    bool done = false;
    int error_status = 0;
};

// Feeds `wire` to `d` in pieces of the given sizes (cycled; 0 means all at once), checking
// the Step contract at every call.
Decoded decode(BodyDecoder d, std::string_view wire, std::string_view piece_sizes) {
    Decoded out;
    std::size_t available = 0;
    std::size_t next_piece = 0;
    std::size_t calls = 0;
    while (true) {
        const std::span<const char> in(wire.data() + out.consumed, available - out.consumed);
        const BodyDecoder::Step s = d.decode(in);
        ++calls;
        check(calls <= 2 * wire.size() + 4, "the decoder makes progress");
        check(s.consumed <= in.size(), "consumed within the input");
        if (!s.data.empty()) {
            check(s.data.data() >= in.data() &&
                      s.data.data() + s.data.size() <= in.data() + s.consumed,
                  "data is a view into the consumed input");
        }
        if (!s.trailer.empty()) {
            check(s.trailer.data() >= in.data() &&
                      s.trailer.data() + s.trailer.size() <= in.data() + s.consumed,
                  "trailer bytes are a view into the consumed input");
        }
        out.body.append(s.data.data(), s.data.size());
        out.trailer.append(s.trailer.data(), s.trailer.size());
        out.consumed += s.consumed;
        if (s.error_status != 0) {
            check(s.error_status == 400 || s.error_status == 431, "decoder error is 400 or 431");
            check(!s.done && !d.done(), "an error is not done");
            const BodyDecoder::Step again = d.decode(in.subspan(s.consumed));
            check(again.error_status == s.error_status && again.consumed == 0, "an error sticks");
            out.error_status = s.error_status;
            return out;
        }
        if (s.done) {
            check(d.done(), "done() agrees with the step");
            const BodyDecoder::Step after = d.decode(in.subspan(s.consumed));
            check(after.done && after.consumed == 0 && after.data.empty(),
                  "a finished body consumes nothing more");
            out.done = true;
            return out;
        }
        if (s.consumed == 0) {
            check(in.empty(), "no progress only on empty input");
            if (available == wire.size()) {
                return out;
            }
            std::size_t step = wire.size();
            if (!piece_sizes.empty()) {
                const auto size_byte =
                    static_cast<unsigned char>(piece_sizes[next_piece++ % piece_sizes.size()]);
                step = size_byte % 9 + 1;
            }
            available = std::min(wire.size(), available + step);
        }
    }
}

void check_body(BodyDecoder fresh, std::string_view wire, std::string_view piece_sizes,
                const RequestHead* head) {
    const Decoded whole = decode(fresh, wire, {});
    const Decoded pieces = decode(fresh, wire, piece_sizes);
    check(whole.body == pieces.body && whole.consumed == pieces.consumed &&
              whole.done == pieces.done && whole.error_status == pieces.error_status,
          "the same body however the input is split");
    // (After an error the bytes handed out before it differ with the split; the message is
    // refused then, so they do not matter.)
    check(whole.error_status != 0 || whole.trailer == pieces.trailer,
          "the same trailer section however the input is split");
    check(whole.trailer.size() <= BodyDecoder::kMaxTrailerBytes, "the trailer section is bounded");
    if (whole.done && !whole.trailer.empty()) {
        // A section the decoder let through splits into fields that are all non-empty names
        // without a colon, and values without surrounding whitespace; the count is bounded by
        // the space given.
        std::array<blitz::Header, 8> fields;
        const auto n = blitz::http1::parse_trailer_fields(whole.trailer, fields);
        if (n) {
            check(*n <= fields.size(), "fields within the space given");
            for (std::size_t i = 0; i < *n; ++i) {
                const blitz::Header& h = fields[i];
                check(!h.name.empty() && h.name.find(':') == std::string_view::npos, "a field name");
                check(h.value.empty() || (h.value.front() != ' ' && h.value.front() != '\t' &&
                                          h.value.back() != ' ' && h.value.back() != '\t'),
                      "a trimmed value");
            }
        }
    }
    if (head != nullptr && head->body == BodyKind::Length) {
        check(whole.error_status == 0, "a Content-Length body has no framing errors");
        check(whole.body.size() == std::min<std::uint64_t>(head->content_length, wire.size()),
              "a Content-Length body is exactly its length");
        check(whole.done == (head->content_length <= wire.size()), "done at the length");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    // Default limits, and tiny ones so that the limit paths are reached too.
    const Limits kDefault{};
    const Limits kTiny{.max_head_bytes = 160, .max_headers = 4, .max_path_bytes = 24};
    for (const Limits& limits : {kDefault, kTiny}) {
        const Parse p(input, limits);
        check_head(p, input, limits);
        if (p.result.status == ParseStatus::Done && p.head.body != BodyKind::None) {
            BodyDecoder d;
            if (p.head.body == BodyKind::Length) {
                d.reset_length(p.head.content_length);
            } else {
                d.reset_chunked();
            }
            check_body(d, input.substr(p.result.consumed), input, &p.head);
        }
    }
    // The chunked decoder on its own, so that its states are reached without a valid head.
    BodyDecoder chunked;
    chunked.reset_chunked();
    check_body(chunked, input, input.substr(0, 16), nullptr);
    return 0;
}

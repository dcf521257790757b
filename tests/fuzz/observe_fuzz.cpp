// libFuzzer target for the observability parsers: W3C trace context (traceparent, tracestate,
// request ids), access-log templates and the lines they format, and the configuration
// redaction. The first byte of an input picks the part (mod 3); the rest is its input:
//
//   0: traceparent / tracestate / request id. A traceparent that parses formats back to the
//      same 55 characters (version 00, lowercase) and parses again to the same value.
//   1: "template\nfield\nfield..." : a template that compiles formats a Record whose string
//      fields are the following lines (hostile bytes included); format_to() reports the whole
//      length even into a short buffer and writes the same prefix; a JSON line is valid UTF-8,
//      has no raw control byte and ends with "\n".
//   2: a JSON document: when it redacts, redacting the output again changes nothing.
//
// Besides these checks, ASan and UBSan watch every part.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "accesslog/format.hpp"
#include "accesslog/record.hpp"
#include "config/redact.hpp"
#include "core/utf8.hpp"
#include "trace/context.hpp"

namespace {

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "observe_fuzz: %s\n", what);
    std::abort();
}

void trace_context(std::string_view in) {
    if (auto tp = blitz::trace::parse_traceparent(in)) {
        char out[blitz::trace::kTraceParentSize];
        blitz::trace::format_traceparent(out, tp->trace, tp->parent, tp->flags);
        auto again = blitz::trace::parse_traceparent({out, sizeof out});
        if (!again || !(again->trace == tp->trace) || !(again->parent == tp->parent) || again->flags != tp->flags) {
            fail("a parsed traceparent does not survive format and parse");
        }
        if (in.substr(0, 2) == "00" && std::string_view(out, sizeof out) != in) {
            fail("a version-00 traceparent formats differently");
        }
    }
    (void)blitz::trace::valid_tracestate(in);
    if (blitz::trace::valid_request_id(in)) {
        for (const char c : in) {
            if (c <= ' ' || c == '"' || c == '\\' || c == 0x7F) {
                fail("a request id with a control, space, quote or backslash was accepted");
            }
        }
    }
}

void access_log(std::string_view in) {
    const std::size_t nl = in.find('\n');
    const std::string_view tmpl = in.substr(0, nl);
    std::vector<std::string_view> fields;
    for (std::string_view rest = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
         !rest.empty();) {
        const std::size_t end = rest.find('\n');
        fields.push_back(rest.substr(0, end));
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
    const auto field = [&fields](std::size_t i) { return i < fields.size() ? fields[i] : std::string_view(); };
    blitz::accesslog::Record r;
    r.time_us = 1'764'162'483'123'456;
    r.duration_us = static_cast<std::int64_t>(in.size());
    r.client = field(0);
    r.method = field(1);
    r.authority = field(2);
    r.path = field(3);
    r.user_agent = field(4);
    r.referer = field(5);
    r.route = field(6);
    r.request_id = field(7);
    r.upstream_endpoint = field(8);
    r.status = static_cast<std::uint16_t>(in.size() % 600);
    for (const bool json : {true, false}) {
        blitz::accesslog::Format format = blitz::accesslog::Format::json();
        if (!json) {
            auto compiled = blitz::accesslog::Format::compile(tmpl);
            if (!compiled) {
                continue;
            }
            format = std::move(*compiled);
        }
        blitz::accesslog::TimeCache time;
        std::string whole(65536, '\0');
        const std::size_t n = format.format_to(r, time, whole);
        if (n > whole.size()) {
            continue;  // longer than any buffer the writer has; cut there (documented)
        }
        whole.resize(n);
        std::string part(n / 2, '\0');
        if (format.format_to(r, time, part) != n || whole.compare(0, part.size(), part) != 0) {
            fail("a short buffer got another length or other bytes");
        }
        if (n == 0 || whole.back() != '\n') {
            fail("a line does not end with a newline");
        }
        if (json) {
            for (std::size_t i = 0; i + 1 < n;) {
                const std::size_t len = blitz::detail::utf8_sequence(std::string_view(whole).substr(i));
                if (len == 0 || static_cast<unsigned char>(whole[i]) < 0x20) {
                    fail("a JSON line carries invalid UTF-8 or a raw control byte");
                }
                i += len;
            }
        }
    }
}

void redaction(std::string_view in) {
    auto once = blitz::config::redacted_json(in);
    if (!once) {
        return;
    }
    auto twice = blitz::config::redacted_json(*once);
    if (!twice || *twice != *once) {
        fail("redacting a redacted document changed it");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
    switch (data[0] % 3) {
        case 0:
            trace_context(in);
            break;
        case 1:
            access_log(in);
            break;
        default:
            redaction(in);
            break;
    }
    return 0;
}

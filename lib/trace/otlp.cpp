#include "trace/otlp.hpp"

#include <charconv>

#include "core/hex.hpp"
#include "core/json.hpp"

namespace blitz::trace {

namespace {

/// A trace or span id as a JSON string of its hex digits (OTLP/JSON: ids are hex, not base64).
template <std::size_t N>
void append_hex(std::string& out, const std::uint8_t (&b)[N]) {
    char hex[2 * N];
    blitz::detail::encode_hex(b, N, hex);
    out += '"';
    out.append(hex, sizeof hex);
    out += '"';
}

template <class Int>
void append_int(std::string& out, Int v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// OTLP JSON: 64-bit integers are decimal strings (proto3 JSON mapping).
template <class Int>
void append_int_string(std::string& out, Int v) {
    out += '"';
    append_int(out, v);
    out += '"';
}

void append_string_attribute(std::string& out, std::string_view key, std::string_view value) {
    out += "{\"key\":";
    blitz::detail::append_json_string(out, key);
    out += ",\"value\":{\"stringValue\":";
    blitz::detail::append_json_string(out, value);
    out += "}}";
}

void append_span(std::string& out, const Span& s) {
    out += "{\"traceId\":";
    append_hex(out, s.trace.b);
    out += ",\"spanId\":";
    append_hex(out, s.id.b);
    if (s.parent) {
        out += ",\"parentSpanId\":";
        append_hex(out, s.parent->b);
    }
    out += ",\"name\":";
    blitz::detail::append_json_string(out, s.name);
    out += ",\"kind\":";
    append_int(out, static_cast<int>(s.kind));
    out += ",\"startTimeUnixNano\":";
    append_int_string(out, s.start_unix_ns);
    out += ",\"endTimeUnixNano\":";
    append_int_string(out, s.end_unix_ns);
    out += ",\"attributes\":[";
    bool first = true;
    for (const Attribute& a : s.attrs()) {
        if (!first) {
            out += ',';
        }
        first = false;
        if (a.is_int) {
            out += "{\"key\":";
            blitz::detail::append_json_string(out, a.key);
            out += ",\"value\":{\"intValue\":";
            append_int_string(out, a.num);
            out += "}}";
        } else {
            append_string_attribute(out, a.key, a.str);
        }
    }
    out += "],\"status\":{";
    if (s.status != StatusCode::Unset) {
        out += "\"code\":";
        append_int(out, static_cast<int>(s.status));
    }
    out += "}}";
}

}  // namespace

void encode_otlp_json(std::string& out, std::string_view service_name,
                      std::span<const Span> spans) {
    out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":[";
    append_string_attribute(out, "service.name", service_name);
    out += ',';
    append_string_attribute(out, "telemetry.sdk.name", "blitz");
    out += ',';
    append_string_attribute(out, "telemetry.sdk.language", "cpp");
    out += "]},\"scopeSpans\":[{\"scope\":{\"name\":\"blitz\"},\"spans\":[";
    bool first = true;
    for (const Span& s : spans) {
        if (!first) {
            out += ',';
        }
        first = false;
        append_span(out, s);
    }
    out += "]}]}]}";
}

}  // namespace blitz::trace

// The observability keys: access_log (listeners, routes), request_id (listeners), tracing.

#include <cmath>
#include <cstdlib>

#include "accesslog/format.hpp"
#include "config/parts.hpp"
#include "config/syntax.hpp"
#include "http/token.hpp"
#include "net/address.hpp"

namespace blitz::config {

namespace {

// A log file: "stderr", or a file name (relative ones are joined to the config's directory).
// Not one of the named files: the watch must not reload on the log's own writes.
bool read_log_path(Walker& w, Node& n, std::string& out) {
    Text t;
    if (!w.text(n, "\"stderr\" or a file name", t)) {
        return false;
    }
    if (t.value.empty() || t.value.find('\0') != std::string::npos) {
        return w.mismatch(n, "\"stderr\" or a non-empty file name without NUL characters", t);
    }
    out = t.value == "stderr" ? t.value : w.resolve(t.value);
    return true;
}

const std::array<Field<AccessLogOptions>, 5> kAccessLogFields = {{
    {"enabled", [](Walker& w, Node& n, AccessLogOptions& o) { return w.boolean(n, o.enabled); }},
    {"path", [](Walker& w, Node& n, AccessLogOptions& o) { return read_log_path(w, n, o.path); }},
    {"format",
     [](Walker& w, Node& n, AccessLogOptions& o) {
         Text t;
         if (!w.text(n, "\"json\" or a template with $field names", t)) {
             return false;
         }
         if (t.value != "json") {
             auto f = accesslog::Format::compile(t.value);
             if (!f) {
                 // The offset is into the expanded text; it is the value's position when it has
                 // no ${...} expansion, the usual case.
                 return w.fail(n.offset, n.path,
                               std::string(f.error().message) + " at byte " + std::to_string(f.error().offset) +
                                   " of the template");
             }
         }
         o.format = std::move(t.value);
         return true;
     }},
    {"buffer_bytes",
     [](Walker& w, Node& n, AccessLogOptions& o) { return w.integer(n, 4096, 64 * 1024 * 1024, o.buffer_bytes); }},
    {"flush_interval_ms",
     [](Walker& w, Node& n, AccessLogOptions& o) { return w.milliseconds(n, 1, o.flush_interval); }},
}};

const std::array<Field<RequestIdOptions>, 3> kRequestIdFields = {{
    {"header",
     [](Walker& w, Node& n, RequestIdOptions& o) {
         Text t;
         if (!w.text(n, "a header name (an RFC 9110 token)", t)) {
             return false;
         }
         if (!http::is_token(t.value)) {
             return w.mismatch(n, "a header name (an RFC 9110 token)", t);
         }
         o.header = std::move(t.value);
         return true;
     }},
    {"trust_incoming", [](Walker& w, Node& n, RequestIdOptions& o) { return w.boolean(n, o.trust_incoming); }},
    {"echo", [](Walker& w, Node& n, RequestIdOptions& o) { return w.boolean(n, o.echo); }},
}};

const std::array<Field<TracingOptions>, 8> kTracingFields = {{
    {"collector",
     [](Walker& w, Node& n, TracingOptions& o) {
         constexpr std::string_view kExpected =
             "\"IPv4:port\" or \"[IPv6]:port\" with a numeric address and a port from 1 to 65535 (e.g. "
             "\"127.0.0.1:4318\")";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (net::SocketAddress a; !net::SocketAddress::parse(t.value, a) || a.port() == 0) {
             return w.mismatch(n, kExpected, t);
         }
         o.collector = std::move(t.value);
         return true;
     }},
    {"path",
     [](Walker& w, Node& n, TracingOptions& o) {
         Text t;
         if (!w.text(n, "a request path starting with '/'", t)) {
             return false;
         }
         if (t.value.empty() || t.value.front() != '/' || t.value.find_first_of(" \r\n\t") != std::string::npos) {
             return w.mismatch(n, "a request path starting with '/' without spaces", t);
         }
         o.path = std::move(t.value);
         return true;
     }},
    {"sample_ratio",
     [](Walker& w, Node& n, TracingOptions& o) {
         constexpr std::string_view kExpected = "a number from 0 to 1";
         Scalar s;
         if (!w.scalar(n, kExpected, s)) {
             return false;
         }
         char* end = nullptr;
         const double v = std::strtod(s.text.c_str(), &end);
         if (s.plain_string || s.text.empty() || end != s.text.c_str() + s.text.size() || !std::isfinite(v) ||
             v < 0 || v > 1) {
             return w.scalar_mismatch(n, kExpected, s);
         }
         o.sample_ratio = v;
         return true;
     }},
    {"service_name", [](Walker& w, Node& n, TracingOptions& o) { return w.name(n, o.service_name); }},
    {"batch_spans", [](Walker& w, Node& n, TracingOptions& o) { return w.integer(n, 1, 65536, o.batch_spans); }},
    {"queue_batches", [](Walker& w, Node& n, TracingOptions& o) { return w.integer(n, 1, 4096, o.queue_batches); }},
    {"flush_interval_ms",
     [](Walker& w, Node& n, TracingOptions& o) { return w.milliseconds(n, 1, o.flush_interval); }},
    {"timeout_ms", [](Walker& w, Node& n, TracingOptions& o) { return w.milliseconds(n, 1, o.timeout); }},
}};

}  // namespace

bool read_access_log(Walker& w, Node& n, std::optional<AccessLogOptions>& out) {
    out.emplace();
    return w.object(n, kAccessLogFields, *out);
}

bool read_request_id(Walker& w, Node& n, std::optional<RequestIdOptions>& out) {
    out.emplace();
    return w.object(n, kRequestIdFields, *out);
}

bool read_tracing(Walker& w, Node& n, std::optional<TracingOptions>& out) {
    out.emplace();
    if (!w.object(n, kTracingFields, *out)) {
        return false;
    }
    if (out->collector.empty()) {
        return w.fail(n.offset, n.path, "missing required key \"collector\"");
    }
    return true;
}

std::vector<std::string_view> observe_keys(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::AccessLog:
            return keys_of(kAccessLogFields);
        case ObjectKind::RequestId:
            return keys_of(kRequestIdFields);
        case ObjectKind::Tracing:
            return keys_of(kTracingFields);
        default:
            return {};
    }
}

}  // namespace blitz::config

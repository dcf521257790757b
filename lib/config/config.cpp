#include <blitz/config.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include "config/json_text.hpp"
#include "config/keys.hpp"
#include "config/load.hpp"
#include "config/parts.hpp"
#include "config/redact.hpp"
#include "config/syntax.hpp"
#include "config/walker.hpp"
#include "net/address.hpp"

namespace blitz {

std::string ConfigError::to_string() const {
    std::string out = source;
    if (line > 0) {
        out += ':' + std::to_string(line) + ':' + std::to_string(column);
    }
    out += ": ";
    if (!path.empty()) {
        out += path + ": ";
    }
    out += message;
    return out;
}

namespace config {
namespace {

/// Limits set in one "limits" object; unset keys inherit (defaults ← top level ← listener).
struct LimitsOverride {
    std::optional<std::uint32_t> max_request_head_bytes;
    std::optional<std::uint32_t> max_headers;
    std::optional<std::uint32_t> max_path_bytes;
    std::optional<std::uint64_t> max_body_bytes;
    std::optional<std::uint32_t> max_requests_per_connection;
    std::optional<std::uint64_t> max_drain_bytes;
    std::optional<std::chrono::milliseconds> idle_timeout;
    std::optional<std::chrono::milliseconds> request_head_timeout;
    std::optional<std::chrono::milliseconds> max_connection_age;

    void apply_to(HttpLimits& l) const {
        l.max_request_head_bytes = max_request_head_bytes.value_or(l.max_request_head_bytes);
        l.max_headers = max_headers.value_or(l.max_headers);
        l.max_path_bytes = max_path_bytes.value_or(l.max_path_bytes);
        l.max_body_bytes = max_body_bytes.value_or(l.max_body_bytes);
        l.max_requests_per_connection =
            max_requests_per_connection.value_or(l.max_requests_per_connection);
        l.max_drain_bytes = max_drain_bytes.value_or(l.max_drain_bytes);
        l.idle_timeout = idle_timeout.value_or(l.idle_timeout);
        l.request_head_timeout = request_head_timeout.value_or(l.request_head_timeout);
        l.max_connection_age = max_connection_age.value_or(l.max_connection_age);
    }
};

struct ListenerState {
    ListenerOptions options;
    LimitsOverride limits;
    std::size_t name_offset = 0;  ///< of the "name" value, else of the listener object
    bool has_address = false;
    Place http2_off;  ///< the value that turned HTTP/2 off, when one did
    AlpnWritten alpn;
};

struct Document {
    Config config;
    LimitsOverride limits;
    std::vector<ListenerState> listeners;
    RouteSet routes;
    UpstreamSet upstreams;
    bool has_listeners = false;
    bool has_routes = false;
    Place routes_at;
    Place admin_at;
};

// ---- dispatch tables: the keys of each object and what reads them --------------------------

constexpr std::array<std::string_view, 4> kLogLevels = {"debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 3> kBackends = {"auto", "io_uring", "epoll"};

// A listening address: numeric IPv4 or bracketed IPv6 and a port (host names are not resolved).
bool read_address(Walker& w, Node& n, std::string_view example, std::string& out) {
    const std::string expected =
        "\"IPv4:port\" or \"[IPv6]:port\" with a numeric address and a port from 0 to 65535 (e.g. " +
        std::string(example) + ")";
    Text t;
    if (!w.text(n, expected, t)) {
        return false;
    }
    if (net::SocketAddress addr; !net::SocketAddress::parse(t.value, addr)) {
        return w.mismatch(n, expected, t);
    }
    out = std::move(t.value);
    return true;
}

const std::array<Field<Document>, 2> kAdminFields = {{
    {"address",
     [](Walker& w, Node& n, Document& d) {
         d.admin_at = Walker::place(n);
         return read_address(w, n, "\"127.0.0.1:9901\"", d.config.server.admin->address);
     }},
    {"token",
     [](Walker& w, Node& n, Document& d) {
         Text t;
         if (!w.text(n, "a string", t)) {
             return false;
         }
         d.config.server.admin->token = std::move(t.value);
         return true;
     }},
}};

const std::array<Field<MetricsOptions>, 2> kMetricsFields = {{
    {"max_route_labels",
     [](Walker& w, Node& n, MetricsOptions& m) { return w.integer(n, 1, 100'000, m.max_route_labels); }},
    {"max_endpoint_labels",
     [](Walker& w, Node& n, MetricsOptions& m) { return w.integer(n, 1, 100'000, m.max_endpoint_labels); }},
}};

const std::array<Field<Document>, 1> kShutdownFields = {{
    {"drain_timeout_ms",
     [](Walker& w, Node& n, Document& d) { return w.milliseconds(n, 0, d.config.server.drain_timeout); }},
}};

const std::array<Field<Document>, 1> kReloadFields = {{
    {"watch", [](Walker& w, Node& n, Document& d) { return w.boolean(n, d.config.watch); }},
}};

const std::array<Field<Document>, 1> kLogFields = {{
    {"level",
     [](Walker& w, Node& n, Document& d) {
         std::size_t i = 0;
         if (!w.choice(n, kLogLevels, i)) {
             return false;
         }
         constexpr LogLevel kLevels[] = {LogLevel::Debug, LogLevel::Info, LogLevel::Warn,
                                         LogLevel::Error};
         d.config.log_level = kLevels[i];
         return true;
     }},
}};

const std::array<Field<ServerOptions>, 2> kBufferFields = {{
    {"recv_buffer_bytes",
     [](Walker& w, Node& n, ServerOptions& s) {
         return w.integer(n, 1024, 1024 * 1024, s.recv_buffer_bytes);
     }},
    {"max_recv_buffers",
     [](Walker& w, Node& n, ServerOptions& s) {
         // The buffer ring size must be a power of two (io_uring_register_buf_ring(3)).
         std::int64_t v = 0;
         if (!w.integer(n, 16, 65536, v, "a power of two from 16 to 65536",
                        [](std::int64_t x) { return (x & (x - 1)) == 0; })) {
             return false;
         }
         s.max_recv_buffers = static_cast<std::uint32_t>(v);
         return true;
     }},
}};

const std::array<Field<LimitsOverride>, 9> kLimitFields = {{
    {"max_request_head_bytes",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 256, 1024 * 1024, l.max_request_head_bytes);
     }},
    {"max_headers",
     [](Walker& w, Node& n, LimitsOverride& l) { return w.integer(n, 1, 10000, l.max_headers); }},
    {"max_path_bytes",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 16, 1024 * 1024, l.max_path_bytes);
     }},
    {"max_body_bytes",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 0, kMaxExactInteger, l.max_body_bytes);
     }},
    {"max_requests_per_connection",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 0, kMaxU32, l.max_requests_per_connection);
     }},
    {"max_drain_bytes",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 0, kMaxExactInteger, l.max_drain_bytes);
     }},
    {"idle_timeout_ms",
     [](Walker& w, Node& n, LimitsOverride& l) { return w.milliseconds(n, l.idle_timeout); }},
    {"request_head_timeout_ms",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.milliseconds(n, l.request_head_timeout);
     }},
    {"max_connection_age_ms",
     [](Walker& w, Node& n, LimitsOverride& l) { return w.milliseconds(n, l.max_connection_age); }},
}};

// RFC 9113 §6.9.1: a flow-control window never exceeds 2^31 - 1; stream identifiers have 31
// bits (§5.1.1), so no more streams than that can ever be open.
constexpr std::int64_t kMaxWindow = 0x7FFF'FFFF;
// RFC 9113 §4.2 and §6.5.2: SETTINGS_MAX_FRAME_SIZE lies between the initial 2^14 and 2^24 - 1.
constexpr std::int64_t kMinFrameSize = 16'384;
constexpr std::int64_t kMaxFrameSize = 16'777'215;
// RFC 9113 §6.9.2: every connection's window starts at 65535 and SETTINGS cannot change it;
// a configured window can only widen it (WINDOW_UPDATE).
constexpr std::int64_t kMinConnectionWindow = 65'535;
// The HPACK dynamic table a client may make the server keep (RFC 7541 §4.2): sixteen times the
// protocol's default is ample for compression and keeps what a hostile client can pin small.
constexpr std::int64_t kMaxHeaderTable = 65'536;
// The largest request head allowed (1 MiB) fits in 64 frames of the smallest maximum frame
// size; a cap far above that only helps a CONTINUATION flood.
constexpr std::int64_t kMaxContinuationFrames = 1000;

/// A listener's "http2" object as read.
struct Http2State {
    Http2Options options;
    Place enabled;  ///< the "enabled" value
};

const std::array<Field<Http2State>, 12> kHttp2Fields = {{
    {"enabled",
     [](Walker& w, Node& n, Http2State& h) {
         h.enabled = Walker::place(n);
         return w.boolean(n, h.options.enabled);
     }},
    {"max_concurrent_streams",
     [](Walker& w, Node& n, Http2State& h) {
         return w.integer(n, 1, kMaxWindow, h.options.max_concurrent_streams);
     }},
    {"initial_stream_window",
     [](Walker& w, Node& n, Http2State& h) {
         return w.integer(n, 1, kMaxWindow, h.options.initial_stream_window);
     }},
    {"connection_window",
     [](Walker& w, Node& n, Http2State& h) {
         return w.integer(n, kMinConnectionWindow, kMaxWindow, h.options.connection_window);
     }},
    {"max_frame_size",
     [](Walker& w, Node& n, Http2State& h) {
         return w.integer(n, kMinFrameSize, kMaxFrameSize, h.options.max_frame_size);
     }},
    {"header_table_size",
     [](Walker& w, Node& n, Http2State& h) {
         return w.integer(n, 0, kMaxHeaderTable, h.options.header_table_size);
     }},
    {"max_continuation_frames",
     [](Walker& w, Node& n, Http2State& h) {
         return w.integer(n, 1, kMaxContinuationFrames, h.options.max_continuation_frames);
     }},
    {"reset_rate", [](Walker& w, Node& n,
                      Http2State& h) { return w.integer(n, 1, kMaxU32, h.options.reset_rate); }},
    {"reset_burst", [](Walker& w, Node& n,
                       Http2State& h) { return w.integer(n, 1, kMaxU32, h.options.reset_burst); }},
    {"control_frame_rate",
     [](Walker& w, Node& n, Http2State& h) {
         return w.integer(n, 1, kMaxU32, h.options.control_frame_rate);
     }},
    {"control_frame_burst",
     [](Walker& w, Node& n, Http2State& h) {
         return w.integer(n, 1, kMaxU32, h.options.control_frame_burst);
     }},
    {"zero_window_timeout_ms",
     [](Walker& w, Node& n, Http2State& h) {
         return w.milliseconds(n, 1, h.options.zero_window_timeout);
     }},
}};

/// A listener's "http2": true (the defaults), false (off), or an object of settings, which
/// turns HTTP/2 on unless it says "enabled": false.
bool read_http2(Walker& w, Node& n, ListenerState& l) {
    constexpr std::string_view kExpected = "true, false or an object of HTTP/2 settings";
    if (n.type != od::json_type::object) {
        bool on = false;
        if (!w.boolean(n, on, kExpected)) {
            return false;
        }
        l.options.http2 = Http2Options{};
        l.options.http2.enabled = on;
        l.http2_off = l.options.http2.enabled ? Place{} : Walker::place(n);
        return true;
    }
    Http2State h;
    if (!w.object(n, kHttp2Fields, h)) {
        return false;
    }
    l.options.http2 = h.options;
    l.http2_off = h.options.enabled ? Place{} : h.enabled;
    return true;
}

/// The checks across a listener's "tls" and "http2" keys, which may come in either order.
bool check_listener_alpn(Walker& w, ListenerState& l) {
    if (!l.options.tls) {
        return true;
    }
    if (l.alpn.h2.set && !l.options.http2.enabled) {
        return w.fail(l.alpn.h2, "\"h2\" needs http2 enabled on this listener (turned off at " +
                                     l.http2_off.path + ")");
    }
    if (!l.alpn.set && !l.options.http2.enabled) {
        // The default list without "h2": HTTP/2 is not offered where it is off.
        std::erase(l.options.tls->alpn, "h2");
    }
    return true;
}

/// Peers trusted with X-Forwarded-*: addresses or CIDR blocks.
bool read_trusted_proxies(Walker& w, Node& n, std::vector<std::string>& out) {
    constexpr std::string_view kExpected =
        "an IPv4 or IPv6 address with an optional prefix length (\"10.0.0.0/8\", \"192.0.2.7\", "
        "\"2001:db8::/32\", \"::1\")";
    std::size_t count = 0;
    return w.elements(n, "an array of addresses and CIDR blocks", count, [&](Node& e, std::size_t) {
        Text t;
        if (!w.text(e, kExpected, t)) {
            return false;
        }
        std::string network;
        switch (parse_cidr(t.value, network)) {
            case CidrCheck::Ok:
                break;
            case CidrCheck::Malformed:
                return w.mismatch(e, kExpected, t);
            case CidrCheck::HostBits:
                // "10.1.2.3/8" is usually a typo for a host or for "10.0.0.0/8"; say which
                // block it would mean instead of guessing.
                return w.fail(e.offset, e.path,
                              "expected a CIDR block without host bits, found " + Walker::found(t) +
                                  " (write " + quote(network) + ")");
        }
        out.push_back(std::move(t.value));
        return true;
    });
}

const std::array<Field<ListenerState>, 12> kListenerFields = {{
    {"name",
     [](Walker& w, Node& n, ListenerState& l) {
         l.name_offset = n.offset;
         return w.name(n, l.options.name);
     }},
    {"address",
     [](Walker& w, Node& n, ListenerState& l) {
         l.has_address = true;
         return read_address(w, n, "\"127.0.0.1:8080\", \"[::]:8080\"", l.options.address);
     }},
    {"backlog", [](Walker& w, Node& n,
                   ListenerState& l) { return w.integer(n, 1, 65535, l.options.backlog); }},
    {"max_connections",
     [](Walker& w, Node& n, ListenerState& l) {
         return w.integer(n, 0, kMaxU32, l.options.max_connections);
     }},
    {"tcp_nodelay",
     [](Walker& w, Node& n, ListenerState& l) { return w.boolean(n, l.options.tcp_nodelay); }},
    {"ipv6_dual_stack",
     [](Walker& w, Node& n, ListenerState& l) { return w.boolean(n, l.options.ipv6_dual_stack); }},
    {"trusted_proxies",
     [](Walker& w, Node& n, ListenerState& l) {
         return read_trusted_proxies(w, n, l.options.trusted_proxies);
     }},
    {"limits",
     [](Walker& w, Node& n, ListenerState& l) { return w.object(n, kLimitFields, l.limits); }},
    {"http2", [](Walker& w, Node& n, ListenerState& l) { return read_http2(w, n, l); }},
    {"tls", [](Walker& w, Node& n,
               ListenerState& l) { return read_listener_tls(w, n, l.options.tls, l.alpn); }},
    {"access_log",
     [](Walker& w, Node& n, ListenerState& l) { return read_access_log(w, n, l.options.access_log); }},
    {"request_id",
     [](Walker& w, Node& n, ListenerState& l) { return read_request_id(w, n, l.options.request_id); }},
}};

bool read_listener(Walker& w, Node& n, std::size_t index, Document& d) {
    ListenerState l;
    l.options.name = "listener" + std::to_string(index);
    l.name_offset = n.offset;
    const Place at = Walker::place(n);
    if (!w.object(n, kListenerFields, l)) {
        return false;
    }
    if (!l.has_address) {
        return w.fail(at, "missing required key \"address\"");
    }
    if (!check_listener_alpn(w, l)) {
        return false;
    }
    for (std::size_t i = 0; i < d.listeners.size(); ++i) {
        if (d.listeners[i].options.name == l.options.name) {
            return w.fail(l.name_offset, at.path + ".name",
                          "duplicate listener name " + quote(l.options.name) +
                              " (also $.listeners[" + std::to_string(i) + "])");
        }
    }
    d.listeners.push_back(std::move(l));
    return true;
}

const std::array<Field<Document>, 15> kRootFields = {{
    // Lets editors find docs/config.schema.json; not used by the loader.
    {"$schema",
     [](Walker& w, Node& n, Document&) {
         Text t;
         return w.text(n, "a string", t);
     }},
    {"workers",
     [](Walker& w, Node& n, Document& d) {
         constexpr std::string_view kExpected = "\"auto\" or an integer from 1 to 1024";
         Scalar s;
         if (!w.scalar(n, kExpected, s)) {
             return false;
         }
         std::int64_t v = 0;
         if (s.text == "auto") {
             v = 0;
         } else if (s.plain_string || !parse_integer(s.text, v) || v < 1 || v > 1024) {
             return w.scalar_mismatch(n, kExpected, s);
         }
         d.config.server.workers = static_cast<unsigned>(v);
         return true;
     }},
    {"pin_cpus",
     [](Walker& w, Node& n, Document& d) { return w.boolean(n, d.config.server.pin_cpus); }},
    {"backend",
     [](Walker& w, Node& n, Document& d) {
         std::size_t i = 0;
         if (!w.choice(n, kBackends, i)) {
             return false;
         }
         constexpr Backend kValues[] = {Backend::Auto, Backend::IoUring, Backend::Epoll};
         d.config.server.backend = kValues[i];
         return true;
     }},
    {"log", [](Walker& w, Node& n, Document& d) { return w.object(n, kLogFields, d); }},
    {"buffers",
     [](Walker& w, Node& n, Document& d) { return w.object(n, kBufferFields, d.config.server); }},
    {"limits", [](Walker& w, Node& n, Document& d) { return w.object(n, kLimitFields, d.limits); }},
    {"shutdown", [](Walker& w, Node& n, Document& d) { return w.object(n, kShutdownFields, d); }},
    {"reload", [](Walker& w, Node& n, Document& d) { return w.object(n, kReloadFields, d); }},
    {"admin",
     [](Walker& w, Node& n, Document& d) {
         d.config.server.admin.emplace();
         d.admin_at = Walker::place(n);
         return w.object(n, kAdminFields, d);
     }},
    {"metrics",
     [](Walker& w, Node& n, Document& d) { return w.object(n, kMetricsFields, d.config.server.metrics); }},
    {"tracing", [](Walker& w, Node& n, Document& d) { return read_tracing(w, n, d.config.server.tracing); }},
    {"listeners",
     [](Walker& w, Node& n, Document& d) {
         d.has_listeners = true;
         std::size_t count = 0;
         const bool ok =
             w.elements(n, "an array of listener objects", count,
                        [&](Node& e, std::size_t i) { return read_listener(w, e, i, d); });
         if (ok && count == 0) {
             return w.fail(n.offset, n.path,
                           "expected at least one listener, found an empty array");
         }
         return ok;
     }},
    {"upstreams",
     [](Walker& w, Node& n, Document& d) {
         std::size_t count = 0;
         return w.elements(n, "an array of upstream objects", count,
                           [&](Node& e, std::size_t) { return read_upstream(w, e, d.upstreams); });
     }},
    {"routes",
     [](Walker& w, Node& n, Document& d) {
         d.has_routes = true;
         d.routes_at = Walker::place(n);
         std::size_t count = 0;
         return w.elements(n, "an array of route objects", count,
                           [&](Node& e, std::size_t i) { return read_route(w, e, i, d.routes); });
     }},
}};

}  // namespace

std::vector<std::string_view> accepted_keys(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::Root:
            return keys_of(kRootFields);
        case ObjectKind::Log:
            return keys_of(kLogFields);
        case ObjectKind::Buffers:
            return keys_of(kBufferFields);
        case ObjectKind::Shutdown:
            return keys_of(kShutdownFields);
        case ObjectKind::Reload:
            return keys_of(kReloadFields);
        case ObjectKind::Admin:
            return keys_of(kAdminFields);
        case ObjectKind::Metrics:
            return keys_of(kMetricsFields);
        case ObjectKind::Limits:
            return keys_of(kLimitFields);
        case ObjectKind::Listener:
            return keys_of(kListenerFields);
        case ObjectKind::Http2:
            return keys_of(kHttp2Fields);
        default:
            break;
    }
    if (std::vector<std::string_view> keys = route_keys(kind); !keys.empty()) {
        return keys;
    }
    if (std::vector<std::string_view> keys = upstream_keys(kind); !keys.empty()) {
        return keys;
    }
    if (std::vector<std::string_view> keys = observe_keys(kind); !keys.empty()) {
        return keys;
    }
    return tls_keys(kind);
}

Result<Config, ConfigError> parse(std::string_view json, std::string_view source, FileRules files,
                                  const Config* previous) {
    if (auto syntax = SyntaxChecker(json).run()) {
        const TextPosition p = position_at(json, syntax->offset);
        return fail(ConfigError{std::string(source), std::move(syntax->path), p.line, p.column,
                                std::move(syntax->message)});
    }
    // The syntax check skipped a byte order mark; simdjson must not see it.
    const std::size_t skew = json.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    const simdjson::padded_string padded(json.substr(skew));
    od::parser parser;
    od::document doc;
    Walker w(json, source, padded.data(), skew, std::move(files));
    std::size_t root_offset = skew;
    while (root_offset < json.size() && (json[root_offset] == ' ' || json[root_offset] == '\t' ||
                                         json[root_offset] == '\n' || json[root_offset] == '\r')) {
        ++root_offset;
    }
    if (auto ec = parser.iterate(padded).get(doc)) {
        w.fail(root_offset, "$",
               std::string("cannot read the document: ") + simdjson::error_message(ec));
        return fail(w.error());
    }
    Node root{od::value{}, "$", root_offset};
    if (auto ec = doc.type().get(root.type)) {
        w.broken(root, ec);
        return fail(w.error());
    }
    if (root.type != od::json_type::object) {
        // simdjson cannot hand out a scalar document as a value; describe it from the text.
        root.token = json.substr(root_offset);
        w.mismatch(root, "an object at the top level");
        return fail(w.error());
    }
    if (auto ec = doc.get_value().get(root.value)) {
        w.broken(root, ec);
        return fail(w.error());
    }
    Document d;
    d.upstreams.previous = previous;
    if (!w.object(root, kRootFields, d)) {
        return fail(w.error());
    }
    if (!d.has_listeners) {
        w.fail(root_offset, "$", "missing required key \"listeners\"");
        return fail(w.error());
    }
    if (!d.has_routes) {
        w.fail(root_offset, "$", "missing required key \"routes\"");
        return fail(w.error());
    }
    if (d.config.server.admin) {
        // The admin listener is never reachable through a public one.
        net::SocketAddress admin;
        if (net::SocketAddress::parse(d.config.server.admin->address, admin) && admin.port() != 0) {
            for (const ListenerState& l : d.listeners) {
                net::SocketAddress a;
                if (net::SocketAddress::parse(l.options.address, a) && a.to_string() == admin.to_string()) {
                    w.fail(d.admin_at, "the admin address " + quote(d.config.server.admin->address) +
                                           " is also listener " + quote(l.options.name) + "'s");
                    return fail(w.error());
                }
            }
        }
    }
    HttpLimits base;
    d.limits.apply_to(base);
    for (ListenerState& l : d.listeners) {
        l.options.limits = base;
        l.limits.apply_to(l.options.limits);
        d.config.listeners.push_back(std::move(l.options));
    }
    // Routes may name upstreams defined after them; both are complete only now.
    if (!resolve_upstreams(w, d.routes, d.upstreams) || !freeze_routes(w, d.routes, d.routes_at)) {
        return fail(w.error());
    }
    d.config.router = std::move(d.routes.router);
    d.config.upstreams = std::move(d.upstreams.upstreams);
    d.config.files = w.named_files();
    // The document checked above parses: redaction cannot fail on it.
    if (auto shown = redacted_json(json.substr(skew)); shown) {
        d.config.redacted = std::move(*shown);
    }
    return std::move(d.config);
}

Result<Config, ConfigError> load(const std::string& path, bool check_files, const Config* previous) {
    // Before reading: a file written while this load runs counts as newer on the next one.
    const auto loaded_at = std::filesystem::file_time_type::clock::now();
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return fail(ConfigError{path, "$", 0, 0,
                                std::string("cannot open the file: ") + std::strerror(errno)});
    }
    std::string text;
    char buf[16384];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        text.append(buf, n);
    }
    const int read_errno = std::ferror(f) ? errno : 0;
    std::fclose(f);
    if (read_errno != 0) {
        return fail(ConfigError{path, "$", 0, 0,
                                std::string("cannot read the file: ") + std::strerror(read_errno)});
    }
    // Absolute, so the names stay right for whoever opens the files later, whatever its
    // working directory then (the TLS engine at start and on reload). Not normalised: "a/l/.."
    // must go through the symbolic link l as the kernel did when it opened the config.
    std::error_code ec;
    std::filesystem::path full = std::filesystem::absolute(path, ec);
    if (ec) {
        full = path;
    }
    FileRules files{full.parent_path().string(), check_files};
    auto config = parse(text, path, std::move(files), previous);
    if (config) {
        config->loaded_at = loaded_at;
        config->files.insert(config->files.begin(), full.string());
    }
    return config;
}

}  // namespace config

Result<Config, ConfigError> parse_config(std::string_view json, std::string_view source) {
    return config::parse(json, source, config::FileRules{});
}

Result<Config, ConfigError> load_config(const std::string& path, const Config* previous) {
    return config::load(path, true, previous);
}

}  // namespace blitz

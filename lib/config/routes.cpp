#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blitz/filters.hpp>
#include <blitz/http.hpp>

#include "config/parts.hpp"
#include "config/syntax.hpp"
#include "http/token.hpp"
#include "http/uri.hpp"
#include "router/route_table.hpp"

namespace blitz::config {
namespace {

constexpr std::array<std::string_view, 9> kMethodTokens = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
constexpr std::array<std::string_view, 1> kFilterTypes = {"headers"};
constexpr std::array<std::string_view, 2> kSchemes = {"http", "https"};
constexpr std::int64_t kMaxRetries = 100;

constexpr std::string_view kWirePath =
    "a path starting with '/', of visible ASCII characters, without '?' or '#'";
constexpr std::string_view kAuthority =
    "a host with an optional port (\"api.internal\", \"10.0.0.1:8080\", \"[::1]:8080\")";

struct RouteState {
    Route route;
    Place match;
    Place respond;
    std::string_view path_key;    ///< "path", "path_prefix" or "path_regex", once given
    std::string_view action_key;  ///< "respond", "upstream", "proxy" or "redirect", once given
    bool has_status = false;
    std::string upstream;  ///< named by "upstream" or "proxy.upstream"
    Place upstream_at;
    Place prefix_rewrite;  ///< of "proxy" or "redirect"
};

struct MatcherState {
    bool header = true;  ///< a header matcher (else a query-parameter matcher)
    std::string name;
    bool has_name = false;
    MatchKind kind = MatchKind::Exact;
    std::string value;
    std::string_view kind_key;  ///< "exact", "prefix", "suffix", "regex", "present" or "absent"
};

struct RegexRewriteState {
    Text pattern;
    Text substitution;
    bool has_pattern = false;
    bool has_substitution = false;
};

struct RedirectState {
    Redirect redirect;
    Place prefix_rewrite;
};

struct FilterState {
    bool has_type = false;
    filters::HeaderEdits request;
    filters::HeaderEdits response;
};

// ---- match ---------------------------------------------------------------------------------

bool claim_path(Walker& w, Node& n, RouteState& rs, std::string_view key) {
    if (!rs.path_key.empty()) {
        return w.fail(n.offset, n.path,
                      "use only one of \"path\", \"path_prefix\" and \"path_regex\" (found " +
                          quote(rs.path_key) + " already)");
    }
    rs.path_key = key;
    return true;
}

bool read_path(Walker& w, Node& n, RouteState& rs, bool prefix) {
    if (!claim_path(w, n, rs, prefix ? "path_prefix" : "path")) {
        return false;
    }
    constexpr std::string_view kExpected = "a string starting with '/'";
    Text t;
    if (!w.text(n, kExpected, t)) {
        return false;
    }
    if (!t.value.starts_with('/')) {
        return w.mismatch(n, kExpected, t);
    }
    if (t.value.find_first_of("?#") != std::string::npos) {
        // RFC 3986 §3.4: the matched path excludes the query; the fragment is never sent.
        return w.mismatch(n, "a path without '?' or '#'", t);
    }
    // Requests are matched after normalisation (lib/http/uri.hpp); a path that normalisation
    // would change could never match.
    std::string normal = t.value;
    const long len = http::normalize_path(std::span<char>(normal.data(), normal.size()));
    if (len < 0) {
        return w.mismatch(n, "a valid URI path (RFC 3986 §3.3)", t);
    }
    normal.resize(static_cast<std::size_t>(len));
    if (normal != t.value) {
        return w.fail(n.offset, n.path,
                      "expected a normalised path, found " + Walker::found(t) +
                          " (requests are matched after normalisation; write " + quote(normal) +
                          ")");
    }
    rs.route.path = std::move(t.value);
    rs.route.prefix = prefix;
    return true;
}

bool read_path_regex(Walker& w, Node& n, RouteState& rs) {
    if (!claim_path(w, n, rs, "path_regex")) {
        return false;
    }
    // The pattern's syntax is checked by Router::freeze(), which compiles it.
    return w.name(n, rs.route.path_regex);
}

bool read_methods(Walker& w, Node& n, RouteState& rs) {
    std::string expected = "a standard method (";
    for (std::size_t i = 0; i < kMethodTokens.size(); ++i) {
        expected += (i > 0 ? ", " : "") + std::string(kMethodTokens[i]);
    }
    expected += ')';
    MethodSet set;
    std::size_t count = 0;
    const bool ok = w.elements(n, "an array of methods", count, [&](Node& e, std::size_t) {
        Text t;
        if (!w.text(e, expected, t)) {
            return false;
        }
        const Method m = method_from_token(t.value);
        if (m == Method::Other) {
            return w.mismatch(e, expected, t);
        }
        if (set.contains(m)) {
            return w.fail(e.offset, e.path, "duplicate method " + quote(t.value));
        }
        set.add(m);
        return true;
    });
    if (ok && count == 0) {
        return w.fail(
            n.offset, n.path,
            "expected at least one method, found an empty array (omit \"methods\" to match every "
            "method)");
    }
    rs.route.methods = set;
    return ok;
}

bool claim_kind(Walker& w, Node& n, MatcherState& m, std::string_view key, MatchKind kind) {
    if (!m.kind_key.empty()) {
        return w.fail(n.offset, n.path,
                      "use only one of \"exact\", \"prefix\", \"suffix\", \"regex\", "
                      "\"present\" and \"absent\" (found " +
                          quote(m.kind_key) + " already)");
    }
    m.kind_key = key;
    m.kind = kind;
    return true;
}

bool read_match_value(Walker& w, Node& n, MatcherState& m, std::string_view key, MatchKind kind) {
    if (!claim_kind(w, n, m, key, kind)) {
        return false;
    }
    const std::string_view expected = kind == MatchKind::Exact   ? "a string"
                                      : kind == MatchKind::Regex ? "a non-empty RE2 pattern"
                                                                 : "a non-empty string";
    Text t;
    if (!w.text(n, expected, t)) {
        return false;
    }
    if (kind != MatchKind::Exact && t.value.empty()) {
        return w.mismatch(n, expected, t);
    }
    // A header value with control characters could never be received (RFC 9110 §5.5).
    if (m.header && kind != MatchKind::Regex && !is_field_value(t.value)) {
        return w.mismatch(n, "a header value without control characters (RFC 9110 §5.5)", t);
    }
    m.value = std::move(t.value);
    return true;
}

bool read_match_flag(Walker& w, Node& n, MatcherState& m, std::string_view key, MatchKind kind) {
    if (!claim_kind(w, n, m, key, kind)) {
        return false;
    }
    bool on = false;
    if (!w.boolean(n, on)) {
        return false;
    }
    if (!on) {
        return w.fail(n.offset, n.path,
                      std::string("expected true, found false (write \"") +
                          (kind == MatchKind::Present ? "absent" : "present") +
                          "\": true for the opposite)");
    }
    return true;
}

const std::array<Field<MatcherState>, 7> kMatcherFields = {{
    {"name",
     [](Walker& w, Node& n, MatcherState& m) {
         m.has_name = true;
         if (!m.header) {
             return w.name(n, m.name);
         }
         constexpr std::string_view kExpected = "a header name (an RFC 9110 token)";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (!http::is_token(t.value)) {
             return w.mismatch(n, kExpected, t);
         }
         m.name = std::move(t.value);
         return true;
     }},
    {"exact", [](Walker& w, Node& n,
                 MatcherState& m) { return read_match_value(w, n, m, "exact", MatchKind::Exact); }},
    {"prefix",
     [](Walker& w, Node& n, MatcherState& m) {
         return read_match_value(w, n, m, "prefix", MatchKind::Prefix);
     }},
    {"suffix",
     [](Walker& w, Node& n, MatcherState& m) {
         return read_match_value(w, n, m, "suffix", MatchKind::Suffix);
     }},
    {"regex", [](Walker& w, Node& n,
                 MatcherState& m) { return read_match_value(w, n, m, "regex", MatchKind::Regex); }},
    {"present",
     [](Walker& w, Node& n, MatcherState& m) {
         return read_match_flag(w, n, m, "present", MatchKind::Present);
     }},
    {"absent",
     [](Walker& w, Node& n, MatcherState& m) {
         return read_match_flag(w, n, m, "absent", MatchKind::Absent);
     }},
}};

/// The keys of a client_cert text matcher: those of a header matcher without "name".
const std::span<const Field<MatcherState>> kCertTextFields(kMatcherFields.begin() + 1,
                                                           kMatcherFields.end());

template <class T>
bool read_matchers(Walker& w, Node& n, bool header, std::vector<T>& out) {
    std::size_t count = 0;
    const bool ok = w.elements(n, "an array of matcher objects", count, [&](Node& e, std::size_t) {
        MatcherState m;
        m.header = header;
        const Place at = Walker::place(e);
        if (!w.object(e, kMatcherFields, m)) {
            return false;
        }
        if (!m.has_name) {
            return w.fail(at, "missing required key \"name\"");
        }
        if (m.kind_key.empty()) {
            return w.fail(at,
                          "missing required key \"exact\", \"prefix\", \"suffix\", \"regex\", "
                          "\"present\" or \"absent\"");
        }
        out.push_back(T{std::move(m.name), m.kind, std::move(m.value)});
        return true;
    });
    if (ok && count == 0) {
        return w.fail(n.offset, n.path,
                      std::string("expected at least one matcher, found an empty array (omit \"") +
                          (header ? "headers" : "query") + "\" to match any)");
    }
    return ok;
}

/// Reads a client_cert "subject" or "san" object into `out`.
bool read_cert_text(Walker& w, Node& n, std::optional<CertTextMatcher>& out) {
    MatcherState m;
    m.header = false;
    const Place at = Walker::place(n);
    if (!w.object(n, kCertTextFields, m)) {
        return false;
    }
    if (m.kind_key.empty()) {
        return w.fail(at,
                      "missing required key \"exact\", \"prefix\", \"suffix\", \"regex\", "
                      "\"present\" or \"absent\"");
    }
    out = CertTextMatcher{m.kind, std::move(m.value)};
    return true;
}

bool read_optional_bool(Walker& w, Node& n, std::optional<bool>& out) {
    bool v = false;
    if (!w.boolean(n, v)) {
        return false;
    }
    out = v;
    return true;
}

const std::array<Field<ClientCertMatcher>, 4> kClientCertFields = {{
    {"presented", [](Walker& w, Node& n,
                     ClientCertMatcher& m) { return read_optional_bool(w, n, m.presented); }},
    {"verified",
     [](Walker& w, Node& n, ClientCertMatcher& m) { return read_optional_bool(w, n, m.verified); }},
    {"subject",
     [](Walker& w, Node& n, ClientCertMatcher& m) { return read_cert_text(w, n, m.subject); }},
    {"san", [](Walker& w, Node& n, ClientCertMatcher& m) { return read_cert_text(w, n, m.san); }},
}};

bool read_client_cert(Walker& w, Node& n, RouteState& rs) {
    ClientCertMatcher m;
    const Place at = Walker::place(n);
    if (!w.object(n, kClientCertFields, m)) {
        return false;
    }
    if (!m.presented && !m.verified && !m.subject && !m.san) {
        return w.fail(at,
                      "expected at least one of \"presented\", \"verified\", \"subject\" and "
                      "\"san\" (omit \"client_cert\" to match any)");
    }
    rs.route.client_cert = std::move(m);
    return true;
}

const std::array<Field<RouteState>, 8> kMatchFields = {{
    {"host",
     [](Walker& w, Node& n, RouteState& rs) {
         constexpr std::string_view kExpected =
             "a host name (\"api.example.com\"), a wildcard (\"*.example.com\") or a bracketed "
             "IPv6 address, without a port";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (t.value.empty() || !router::valid_route_host(t.value)) {
             return w.mismatch(n, kExpected, t);
         }
         rs.route.host = std::move(t.value);
         return true;
     }},
    {"path", [](Walker& w, Node& n, RouteState& rs) { return read_path(w, n, rs, false); }},
    {"path_prefix", [](Walker& w, Node& n, RouteState& rs) { return read_path(w, n, rs, true); }},
    {"path_regex", [](Walker& w, Node& n, RouteState& rs) { return read_path_regex(w, n, rs); }},
    {"methods", [](Walker& w, Node& n, RouteState& rs) { return read_methods(w, n, rs); }},
    {"headers", [](Walker& w, Node& n,
                   RouteState& rs) { return read_matchers(w, n, true, rs.route.headers); }},
    {"query",
     [](Walker& w, Node& n, RouteState& rs) { return read_matchers(w, n, false, rs.route.query); }},
    {"client_cert", [](Walker& w, Node& n, RouteState& rs) { return read_client_cert(w, n, rs); }},
}};

// ---- actions -------------------------------------------------------------------------------

bool claim_action(Walker& w, Node& n, RouteState& rs, std::string_view key) {
    if (!rs.action_key.empty()) {
        return w.fail(n.offset, n.path,
                      "a route has one action: " + quote(key) + " cannot be combined with " +
                          quote(rs.action_key));
    }
    rs.action_key = key;
    return true;
}

bool read_upstream_name(Walker& w, Node& n, RouteState& rs) {
    rs.upstream_at = Walker::place(n);
    return w.name(n, rs.upstream);
}

bool read_wire_path(Walker& w, Node& n, std::string& out) {
    Text t;
    if (!w.text(n, kWirePath, t)) {
        return false;
    }
    if (!is_wire_path(t.value)) {
        return w.mismatch(n, kWirePath, t);
    }
    out = std::move(t.value);
    return true;
}

bool read_authority(Walker& w, Node& n, std::string& out) {
    Text t;
    if (!w.text(n, kAuthority, t)) {
        return false;
    }
    if (!is_authority(t.value, false)) {
        return w.mismatch(n, kAuthority, t);
    }
    out = std::move(t.value);
    return true;
}

const std::array<Field<RouteState>, 4> kRespondFields = {{
    {"status",
     [](Walker& w, Node& n, RouteState& rs) {
         // RFC 9110 §15.2: a 1xx response is interim, never the answer to a request.
         rs.has_status = true;
         return w.integer(n, 200, 599, rs.route.direct.status);
     }},
    {"body",
     [](Walker& w, Node& n, RouteState& rs) {
         Text t;
         if (!w.text(n, "a string", t)) {
             return false;
         }
         rs.route.direct.body = std::move(t.value);
         return true;
     }},
    {"content_type",
     [](Walker& w, Node& n, RouteState& rs) {
         constexpr std::string_view kExpected =
             "a non-empty media type string (\"application/json\")";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (t.value.empty() || !is_field_value(t.value)) {
             return w.mismatch(n, kExpected, t);
         }
         rs.route.direct.content_type = std::move(t.value);
         return true;
     }},
    {"headers", [](Walker& w, Node& n,
                   RouteState& rs) { return w.header_map(n, true, rs.route.direct.headers); }},
}};

/// The retry conditions of "on": named failures, or statuses. Given, it replaces the default
/// set entirely.
bool read_retry_on(Walker& w, Node& n, RetryPolicy& p) {
    constexpr std::string_view kExpected =
        "\"connect_failure\", \"reset\", \"per_try_timeout\", \"5xx\", \"gateway_error\" or a "
        "status code from 400 to 599";
    p.on_connect_failure = false;
    p.on_reset = false;
    p.on_per_try_timeout = false;
    p.on_statuses.clear();
    std::vector<std::string> seen;
    std::size_t count = 0;
    const bool ok = w.elements(n, "an array of retry conditions", count, [&](Node& e, std::size_t) {
        std::int64_t status = 0;
        std::string name;
        if (e.type == od::json_type::number) {
            if (!w.integer(e, 400, 599, status, std::string(kExpected))) {
                return false;
            }
            name = std::to_string(status);
        } else {
            Text t;
            if (!w.text(e, kExpected, t)) {
                return false;
            }
            name = t.value;
            // A status may come from an environment expression ("${RETRY_STATUS}").
            std::int64_t expanded = 0;
            if (t.raw != t.value && parse_integer(t.value, expanded) && expanded >= 400 &&
                expanded <= 599) {
                status = expanded;
            } else if (name == "connect_failure") {
                p.on_connect_failure = true;
            } else if (name == "reset") {
                p.on_reset = true;
            } else if (name == "per_try_timeout") {
                p.on_per_try_timeout = true;
            } else if (name == "5xx") {
                for (int s = 500; s <= 599; ++s) {
                    p.on_statuses.push_back(s);
                }
            } else if (name == "gateway_error") {
                p.on_statuses.insert(p.on_statuses.end(), {502, 503, 504});
            } else {
                return w.mismatch(e, kExpected, t);
            }
        }
        if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
            return w.fail(e.offset, e.path, "duplicate retry condition " + quote(name));
        }
        seen.push_back(name);
        if (status != 0) {
            p.on_statuses.push_back(static_cast<int>(status));
        }
        return true;
    });
    // "5xx" and "gateway_error" overlap explicit statuses; keep each status once.
    std::sort(p.on_statuses.begin(), p.on_statuses.end());
    p.on_statuses.erase(std::unique(p.on_statuses.begin(), p.on_statuses.end()),
                        p.on_statuses.end());
    return ok;
}

const std::array<Field<RetryPolicy>, 5> kRetryFields = {{
    {"max_retries", [](Walker& w, Node& n,
                       RetryPolicy& p) { return w.integer(n, 0, kMaxRetries, p.max_retries); }},
    {"on", [](Walker& w, Node& n, RetryPolicy& p) { return read_retry_on(w, n, p); }},
    {"non_idempotent",
     [](Walker& w, Node& n, RetryPolicy& p) { return w.boolean(n, p.non_idempotent); }},
    {"backoff_base_ms",
     [](Walker& w, Node& n, RetryPolicy& p) { return w.milliseconds(n, 0, p.backoff_base); }},
    {"backoff_max_ms",
     [](Walker& w, Node& n, RetryPolicy& p) { return w.milliseconds(n, 0, p.backoff_max); }},
}};

const std::array<Field<RegexRewriteState>, 2> kRegexRewriteFields = {{
    {"pattern",
     [](Walker& w, Node& n, RegexRewriteState& r) {
         r.has_pattern = true;
         if (!w.text(n, "a non-empty RE2 pattern", r.pattern)) {
             return false;
         }
         return !r.pattern.value.empty() || w.mismatch(n, "a non-empty RE2 pattern", r.pattern);
     }},
    {"substitution",
     [](Walker& w, Node& n, RegexRewriteState& r) {
         // The result is sent as the path: the same bytes as a rewritten prefix.
         constexpr std::string_view kExpected =
             "a non-empty string of visible ASCII characters without '?' or '#' (the new path; "
             "\\1 to \\9 insert the pattern's groups)";
         r.has_substitution = true;
         if (!w.text(n, kExpected, r.substitution)) {
             return false;
         }
         const std::string& v = r.substitution.value;
         const bool ok = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
             return c > 0x20 && c < 0x7F && c != '?' && c != '#';
         });
         return ok || w.mismatch(n, kExpected, r.substitution);
     }},
}};

const std::array<Field<RouteState>, 10> kProxyFields = {{
    {"upstream", [](Walker& w, Node& n, RouteState& rs) { return read_upstream_name(w, n, rs); }},
    {"timeout_ms", [](Walker& w, Node& n,
                      RouteState& rs) { return w.milliseconds(n, 0, rs.route.proxy.timeout); }},
    {"per_try_timeout_ms",
     [](Walker& w, Node& n, RouteState& rs) {
         return w.milliseconds(n, 0, rs.route.proxy.per_try_timeout);
     }},
    {"idle_timeout_ms",
     [](Walker& w, Node& n, RouteState& rs) {
         return w.milliseconds(n, 0, rs.route.proxy.idle_timeout);
     }},
    {"retry",
     [](Walker& w, Node& n, RouteState& rs) {
         const Place at = Walker::place(n);
         RetryPolicy& p = rs.route.proxy.retry;
         if (!w.object(n, kRetryFields, p)) {
             return false;
         }
         if (p.backoff_base > p.backoff_max) {
             return w.fail(at, "backoff_base_ms (" + std::to_string(p.backoff_base.count()) +
                                   ") must not exceed backoff_max_ms (" +
                                   std::to_string(p.backoff_max.count()) + ")");
         }
         return true;
     }},
    {"prefix_rewrite",
     [](Walker& w, Node& n, RouteState& rs) {
         if (!rs.route.proxy.regex_rewrite.empty()) {
             return w.fail(n.offset, n.path,
                           "use either \"prefix_rewrite\" or \"regex_rewrite\", not both");
         }
         rs.prefix_rewrite = Walker::place(n);
         return read_wire_path(w, n, rs.route.proxy.prefix_rewrite);
     }},
    {"regex_rewrite",
     [](Walker& w, Node& n, RouteState& rs) {
         if (rs.prefix_rewrite.set) {
             return w.fail(n.offset, n.path,
                           "use either \"prefix_rewrite\" or \"regex_rewrite\", not both");
         }
         const Place at = Walker::place(n);
         RegexRewriteState r;
         if (!w.object(n, kRegexRewriteFields, r)) {
             return false;
         }
         if (!r.has_pattern) {
             return w.fail(at, "missing required key \"pattern\"");
         }
         if (!r.has_substitution) {
             return w.fail(at, "missing required key \"substitution\"");
         }
         rs.route.proxy.regex_rewrite = std::move(r.pattern.value);
         rs.route.proxy.regex_substitution = std::move(r.substitution.value);
         return true;
     }},
    {"host_rewrite",
     [](Walker& w, Node& n, RouteState& rs) {
         return read_authority(w, n, rs.route.proxy.host_rewrite);
     }},
    {"forwarded_headers",
     [](Walker& w, Node& n, RouteState& rs) {
         return w.boolean(n, rs.route.proxy.forwarded_headers);
     }},
    {"via", [](Walker& w, Node& n, RouteState& rs) { return w.boolean(n, rs.route.proxy.via); }},
}};

const std::array<Field<RedirectState>, 6> kRedirectFields = {{
    {"status",
     [](Walker& w, Node& n, RedirectState& r) {
         // RFC 9110 §15.4: the redirect statuses that carry a Location (300 and 305 do not
         // redirect by themselves; 306 is unused).
         std::int64_t v = 0;
         if (!w.integer(n, 301, 308, v, "one of 301, 302, 303, 307, 308",
                        [](std::int64_t s) { return s <= 303 || s >= 307; })) {
             return false;
         }
         r.redirect.status = static_cast<int>(v);
         return true;
     }},
    {"scheme",
     [](Walker& w, Node& n, RedirectState& r) {
         std::size_t i = 0;
         if (!w.choice(n, kSchemes, i)) {
             return false;
         }
         r.redirect.scheme = std::string(kSchemes[i]);
         return true;
     }},
    {"host",
     [](Walker& w, Node& n, RedirectState& r) { return read_authority(w, n, r.redirect.host); }},
    {"path",
     [](Walker& w, Node& n, RedirectState& r) {
         if (r.prefix_rewrite.set) {
             return w.fail(n.offset, n.path, "use either \"path\" or \"prefix_rewrite\", not both");
         }
         return read_wire_path(w, n, r.redirect.path);
     }},
    {"prefix_rewrite",
     [](Walker& w, Node& n, RedirectState& r) {
         if (!r.redirect.path.empty()) {
             return w.fail(n.offset, n.path, "use either \"path\" or \"prefix_rewrite\", not both");
         }
         r.prefix_rewrite = Walker::place(n);
         return read_wire_path(w, n, r.redirect.prefix_rewrite);
     }},
    {"strip_query",
     [](Walker& w, Node& n, RedirectState& r) { return w.boolean(n, r.redirect.strip_query); }},
}};

// ---- filters and header edits --------------------------------------------------------------

bool read_header_names(Walker& w, Node& n, std::vector<std::string>& out) {
    std::size_t count = 0;
    return w.elements(n, "an array of header names", count, [&](Node& e, std::size_t) {
        Text t;
        if (!w.text(e, "a header name string", t) || !w.header_name(e.offset, e.path, t.value)) {
            return false;
        }
        out.push_back(std::move(t.value));
        return true;
    });
}

const std::array<Field<filters::HeaderEdits>, 3> kHeaderEditFields = {{
    {"add",
     [](Walker& w, Node& n, filters::HeaderEdits& e) { return w.header_map(n, false, e.add); }},
    {"set",
     [](Walker& w, Node& n, filters::HeaderEdits& e) { return w.header_map(n, false, e.set); }},
    {"remove",
     [](Walker& w, Node& n, filters::HeaderEdits& e) { return read_header_names(w, n, e.remove); }},
}};

const std::array<Field<FilterState>, 3> kFilterFields = {{
    {"type",
     [](Walker& w, Node& n, FilterState& f) {
         std::size_t i = 0;
         f.has_type = true;
         return w.choice(n, kFilterTypes, i);
     }},
    {"request",
     [](Walker& w, Node& n, FilterState& f) { return w.object(n, kHeaderEditFields, f.request); }},
    {"response",
     [](Walker& w, Node& n, FilterState& f) { return w.object(n, kHeaderEditFields, f.response); }},
}};

bool read_filters(Walker& w, Node& n, RouteState& rs) {
    std::size_t count = 0;
    return w.elements(n, "an array of filter objects", count, [&](Node& e, std::size_t) {
        FilterState f;
        const Place at = Walker::place(e);
        if (!w.object(e, kFilterFields, f)) {
            return false;
        }
        if (!f.has_type) {
            return w.fail(at, "missing required key \"type\"");
        }
        rs.route.filters.push_back(
            std::make_shared<filters::Headers>(std::move(f.request), std::move(f.response)));
        return true;
    });
}

// ---- the route -----------------------------------------------------------------------------

const std::array<Field<RouteState>, 12> kRouteFields = {{
    {"name", [](Walker& w, Node& n, RouteState& rs) { return w.name(n, rs.route.name); }},
    {"match",
     [](Walker& w, Node& n, RouteState& rs) {
         rs.match = Walker::place(n);
         return w.object(n, kMatchFields, rs);
     }},
    {"priority",
     [](Walker& w, Node& n, RouteState& rs) {
         return w.integer(n, INT32_MIN, INT32_MAX, rs.route.priority);
     }},
    {"max_body_bytes",
     [](Walker& w, Node& n, RouteState& rs) {
         return w.integer(n, 0, kMaxExactInteger, rs.route.max_body_bytes);
     }},
    {"filters", [](Walker& w, Node& n, RouteState& rs) { return read_filters(w, n, rs); }},
    {"access_log",
     [](Walker& w, Node& n, RouteState& rs) { return read_access_log(w, n, rs.route.access_log); }},
    {"request_headers",
     [](Walker& w, Node& n, RouteState& rs) {
         return w.object(n, kHeaderEditFields, rs.route.request_headers);
     }},
    {"response_headers",
     [](Walker& w, Node& n, RouteState& rs) {
         return w.object(n, kHeaderEditFields, rs.route.response_headers);
     }},
    {"respond",
     [](Walker& w, Node& n, RouteState& rs) {
         rs.respond = Walker::place(n);
         return claim_action(w, n, rs, "respond") && w.object(n, kRespondFields, rs);
     }},
    {"upstream",
     [](Walker& w, Node& n, RouteState& rs) {
         return claim_action(w, n, rs, "upstream") && read_upstream_name(w, n, rs);
     }},
    {"proxy",
     [](Walker& w, Node& n, RouteState& rs) {
         const Place at = Walker::place(n);
         if (!claim_action(w, n, rs, "proxy") || !w.object(n, kProxyFields, rs)) {
             return false;
         }
         return !rs.upstream.empty() || w.fail(at, "missing required key \"upstream\"");
     }},
    {"redirect",
     [](Walker& w, Node& n, RouteState& rs) {
         const Place at = Walker::place(n);
         if (!claim_action(w, n, rs, "redirect")) {
             return false;
         }
         RedirectState state;
         if (!w.object(n, kRedirectFields, state)) {
             return false;
         }
         rs.prefix_rewrite = std::move(state.prefix_rewrite);
         const Redirect& r = rs.route.redirect.emplace(std::move(state.redirect));
         // Without a change the client would be sent to the URL it asked for, in a loop.
         if (r.scheme.empty() && r.host.empty() && r.path.empty() && r.prefix_rewrite.empty() &&
             !r.strip_query) {
             return w.fail(at,
                           "a redirect must change the URL: set \"scheme\", \"host\", \"path\", "
                           "\"prefix_rewrite\" or \"strip_query\"");
         }
         return true;
     }},
}};

}  // namespace

bool read_route(Walker& w, Node& n, std::size_t index, RouteSet& routes) {
    RouteState rs;
    rs.route.name = "route" + std::to_string(index);
    const Place at = Walker::place(n);
    if (!w.object(n, kRouteFields, rs)) {
        return false;
    }
    if (!rs.match.set) {
        return w.fail(at, "missing required key \"match\"");
    }
    if (rs.path_key.empty()) {
        return w.fail(rs.match, "missing required key \"path\", \"path_prefix\" or \"path_regex\"");
    }
    if (rs.action_key.empty()) {
        return w.fail(at,
                      "missing required key \"respond\", \"upstream\", \"proxy\" or \"redirect\" "
                      "(the route's action)");
    }
    if (rs.action_key == "respond") {
        if (!rs.has_status) {
            return w.fail(rs.respond, "missing required key \"status\"");
        }
        const int status = rs.route.direct.status;
        // RFC 9110 §15.3.5 and §15.4.5: 204 and 304 responses have no content.
        if ((status == 204 || status == 304) && !rs.route.direct.body.empty()) {
            return w.fail(rs.respond,
                          "a " + std::to_string(status) + " response cannot have a body");
        }
    }
    if (rs.prefix_rewrite.set && rs.path_key != "path_prefix") {
        return w.fail(rs.prefix_rewrite,
                      "\"prefix_rewrite\" replaces the prefix matched by \"path_prefix\"; this "
                      "route matches with " +
                          quote(rs.path_key));
    }
    const std::size_t route_index = routes.router.routes().size();
    if (!rs.upstream.empty()) {
        routes.upstream_refs.push_back(
            UpstreamRef{route_index, std::move(rs.upstream), std::move(rs.upstream_at)});
    }
    routes.offsets.push_back(at.offset);
    routes.router.add(std::move(rs.route));
    return true;
}

bool resolve_upstreams(Walker& w, RouteSet& routes, const UpstreamSet& upstreams) {
    for (const UpstreamRef& ref : routes.upstream_refs) {
        std::size_t i = 0;
        while (i < upstreams.names.size() && upstreams.names[i] != ref.name) {
            ++i;
        }
        if (i == upstreams.names.size()) {
            if (upstreams.names.empty()) {
                return w.fail(ref.at, "unknown upstream " + quote(ref.name) +
                                          "; no upstreams are defined (add them to \"upstreams\")");
            }
            std::string known;
            for (const std::string& name : upstreams.names) {
                known += (known.empty() ? "" : ", ") + quote(name);
            }
            return w.fail(ref.at,
                          "unknown upstream " + quote(ref.name) + "; known upstreams: " + known);
        }
        routes.router.routes()[ref.route].proxy.upstream = upstreams.upstreams[i];
    }
    return true;
}

bool freeze_routes(Walker& w, const RouteSet& routes, const Place& at) {
    // The router validates routes again when it compiles them (and alone checks regex syntax,
    // by compiling it); its message starts with the route it refuses, `route "name" (#i)`
    // (every route read here has a name).
    auto table = routes.router.freeze();
    if (table) {
        return true;
    }
    const std::string& message = table.error();
    const std::vector<Route>& list = routes.router.routes();
    for (std::size_t i = 0; i < list.size() && i < routes.offsets.size(); ++i) {
        if (message.starts_with("route \"" + list[i].name + "\" (#" + std::to_string(i) + ")")) {
            return w.fail(routes.offsets[i], path_index("$.routes", i), message);
        }
    }
    return w.fail(at, message);
}

std::vector<std::string_view> route_keys(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::Route:
            return keys_of(kRouteFields);
        case ObjectKind::Match:
            return keys_of(kMatchFields);
        case ObjectKind::Matcher:
            return keys_of(kMatcherFields);
        case ObjectKind::ClientCert:
            return keys_of(kClientCertFields);
        case ObjectKind::CertText:
            return keys_of(kCertTextFields);
        case ObjectKind::Respond:
            return keys_of(kRespondFields);
        case ObjectKind::Proxy:
            return keys_of(kProxyFields);
        case ObjectKind::Retry:
            return keys_of(kRetryFields);
        case ObjectKind::RegexRewrite:
            return keys_of(kRegexRewriteFields);
        case ObjectKind::Redirect:
            return keys_of(kRedirectFields);
        case ObjectKind::Filter:
            return keys_of(kFilterFields);
        case ObjectKind::HeaderEdits:
            return keys_of(kHeaderEditFields);
        default:
            return {};
    }
}

}  // namespace blitz::config

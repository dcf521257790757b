#include <blitz/router.hpp>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <blitz/filters.hpp>

#include "http/token.hpp"
#include "http/uri.hpp"
#include "router/compiled_route.hpp"
#include "router/route_table.hpp"

namespace blitz {
namespace {

/// RFC 3986 §3.2.2 IP-literal, checked loosely: hex digits, colons and dots (for an embedded
/// IPv4 address) between brackets, with at least one colon.
bool valid_ipv6_literal(std::string_view h) noexcept {
    if (h.size() < 4 || h.front() != '[' || h.back() != ']') {
        return false;
    }
    const std::string_view inner = h.substr(1, h.size() - 2);
    return inner.find(':') != std::string_view::npos &&
           std::all_of(inner.begin(), inner.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                      c == ':' || c == '.';
           });
}

/// Lowercases the host and drops one trailing dot, as normalise_host() does for requests.
std::string canonical_host(std::string_view h) {
    if (h.ends_with('.')) {
        h.remove_suffix(1);
    }
    std::string out(h);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

std::string describe_route(const Route& r, std::size_t index) {
    std::string out = "route ";
    if (!r.name.empty()) {
        out += '"';
        out += r.name;
        out += "\" (#";
        out += std::to_string(index);
        out += ')';
    } else {
        out += '#';
        out += std::to_string(index);
    }
    return out;
}

std::string quoted(std::string_view s) {
    std::string out = "\"";
    out += s;
    out += '"';
    return out;
}

/// RFC 9110 §5.5, restricted to what a config should write: visible ASCII, SP and HTAB.
bool is_field_value(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return (c >= 0x21 && c <= 0x7e) || c == ' ' || c == '\t'; });
}

/// Bytes that may go on the wire in a path as they are: visible ASCII except '?' and '#'.
bool is_wire_path_bytes(std::string_view s) noexcept {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return c >= 0x21 && c <= 0x7e && c != '?' && c != '#'; });
}

bool is_wire_path(std::string_view s) noexcept {
    return s.starts_with('/') && is_wire_path_bytes(s);
}

/// RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool is_scheme(std::string_view s) noexcept {
    auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
    return !s.empty() && alpha(s.front()) && std::all_of(s.begin(), s.end(), [&alpha](char c) {
        return alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
    });
}

/// Message framing is the codec's (RFC 9112 §6): an edit of these would contradict it.
bool is_framing_header(std::string_view name) noexcept {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
           iequals(name, "connection");
}

/// Compiles `pattern` into `out`; on failure, what is wrong ("<what> "<pattern>" is invalid:
/// <RE2's reason>").
std::optional<std::string> compile_regex(std::string_view what, const std::string& pattern,
                                         std::unique_ptr<const RE2>& out) {
    auto re = std::make_unique<const RE2>(pattern, router::regex_options());
    if (!re->ok()) {
        return std::string(what) + " " + quoted(pattern) + " is invalid: " + re->error();
    }
    out = std::move(re);
    return std::nullopt;
}

/// Checks one matcher's name, kind and value; compiles its regex into `re`.
template <class Matcher>
std::optional<std::string> check_matcher(const Matcher& m, std::string prefix, bool token_name,
                                         std::unique_ptr<const RE2>& re) {
    prefix += " (" + quoted(m.name) + ")";
    if (token_name ? !http::is_token(m.name) : m.name.empty()) {
        return prefix + (token_name ? ": name is not a token" : ": name is empty");
    }
    if ((m.kind == MatchKind::Present || m.kind == MatchKind::Absent) && !m.value.empty()) {
        return prefix + ": Present and Absent matchers take no value";
    }
    if (m.kind == MatchKind::Regex) {
        return compile_regex(prefix + ": regex", m.value, re);
    }
    return std::nullopt;
}

/// Checks one client_cert text matcher; compiles its regex into `re`.
std::optional<std::string> check_cert_text(const std::optional<CertTextMatcher>& m,
                                           std::string_view what, std::unique_ptr<const RE2>& re) {
    if (!m) {
        return std::nullopt;
    }
    const std::string prefix = "client_cert " + std::string(what);
    if ((m->kind == MatchKind::Present || m->kind == MatchKind::Absent) && !m->value.empty()) {
        return prefix + ": Present and Absent matchers take no value";
    }
    if (m->kind == MatchKind::Regex) {
        return compile_regex(prefix + ": regex", m->value, re);
    }
    return std::nullopt;
}

std::optional<std::string> check_edits(const filters::HeaderEdits& edits, std::string_view what) {
    auto check_name = [&](const std::string& name) -> std::optional<std::string> {
        if (!http::is_token(name)) {
            return std::string(what) + ": header name " + quoted(name) + " is not a token";
        }
        if (is_framing_header(name)) {
            return std::string(what) + ": " + quoted(name) +
                   " frames the message, which the codec does";
        }
        return std::nullopt;
    };
    for (const auto* list : {&edits.add, &edits.set}) {
        for (const auto& [name, value] : *list) {
            if (auto error = check_name(name)) {
                return error;
            }
            if (!is_field_value(value)) {
                return std::string(what) + ": the value of " + quoted(name) +
                       " is not a field value (visible ASCII, SP, HTAB)";
            }
        }
    }
    for (const std::string& name : edits.remove) {
        if (auto error = check_name(name)) {
            return error;
        }
    }
    return std::nullopt;
}

std::optional<std::string> check_redirect(const Route& r) {
    const Redirect& d = *r.redirect;
    // RFC 9110 §15.4: the redirect statuses that carry a Location (300, 304 and 305 do not).
    if (d.status != 301 && d.status != 302 && d.status != 303 && d.status != 307 &&
        d.status != 308) {
        return "redirect status " + std::to_string(d.status) +
               " is not one of 301, 302, 303, 307, 308";
    }
    if (!d.scheme.empty() && !is_scheme(d.scheme)) {
        return "redirect scheme " + quoted(d.scheme) + " is not a URI scheme";
    }
    if (!d.host.empty() && !http::valid_authority(d.host)) {
        return "redirect host " + quoted(d.host) + " is not a host[:port]";
    }
    if (!d.path.empty() && !is_wire_path(d.path)) {
        return "redirect path " + quoted(d.path) +
               " is not an absolute path (visible ASCII, no '?' or '#')";
    }
    if (!d.prefix_rewrite.empty()) {
        if (!d.path.empty()) {
            return std::string("redirect sets both path and prefix_rewrite");
        }
        if (!r.prefix) {
            return std::string("redirect prefix_rewrite needs a prefix route");
        }
        if (!is_wire_path(d.prefix_rewrite)) {
            return "redirect prefix_rewrite " + quoted(d.prefix_rewrite) +
                   " is not an absolute path (visible ASCII, no '?' or '#')";
        }
    }
    return std::nullopt;
}

std::optional<std::string> check_proxy(const Route& r, router::CompiledRoute& compiled) {
    const ProxyAction& p = r.proxy;
    if (!p.upstream) {
        if (!p.prefix_rewrite.empty() || !p.regex_rewrite.empty() ||
            !p.regex_substitution.empty() || !p.host_rewrite.empty()) {
            return std::string("proxy rewrites are set but proxy.upstream is not");
        }
        return std::nullopt;
    }
    if (!p.prefix_rewrite.empty()) {
        if (!p.regex_rewrite.empty()) {
            return std::string("proxy sets both prefix_rewrite and regex_rewrite");
        }
        if (!r.prefix) {
            return std::string("proxy prefix_rewrite needs a prefix route");
        }
        if (!is_wire_path(p.prefix_rewrite)) {
            return "proxy prefix_rewrite " + quoted(p.prefix_rewrite) +
                   " is not an absolute path (visible ASCII, no '?' or '#')";
        }
    }
    if (p.regex_rewrite.empty()) {
        if (!p.regex_substitution.empty()) {
            return std::string("proxy regex_substitution needs a regex_rewrite");
        }
    } else {
        if (auto error = compile_regex("proxy regex_rewrite", p.regex_rewrite, compiled.rewrite)) {
            return error;
        }
        if (!is_wire_path_bytes(p.regex_substitution)) {
            return "proxy regex_substitution " + quoted(p.regex_substitution) +
                   " is not path bytes (visible ASCII, no '?' or '#')";
        }
        std::string why;
        if (!compiled.rewrite->CheckRewriteString(p.regex_substitution, &why)) {
            return "proxy regex_substitution " + quoted(p.regex_substitution) + ": " + why;
        }
        compiled.rewrite_groups = RE2::MaxSubmatch(p.regex_substitution);
    }
    if (!p.host_rewrite.empty() && !http::valid_authority(p.host_rewrite)) {
        return "proxy host_rewrite " + quoted(p.host_rewrite) + " is not a host[:port]";
    }
    return std::nullopt;
}

/// What is wrong with the route, or nothing. Normalises the host it checked and compiles the
/// route's patterns into `compiled`.
std::optional<std::string> check(Route& r, router::CompiledRoute& compiled) {
    // A regex route does not use `path`.
    if (r.path_regex.empty() && !r.path.starts_with('/')) {
        return "path must start with '/' (got \"" + r.path + "\")";
    }
    if (r.path_regex.empty() && r.path.find_first_of("?#") != std::string::npos) {
        // The matched path excludes the query (RFC 3986 §3.4) and the fragment is never sent,
        // so such a route could never match.
        return "path must not contain '?' or '#' (got \"" + r.path + "\")";
    }
    if (!router::valid_route_host(r.host)) {
        return "host \"" + r.host +
               "\" is not a hostname, \"*.\" + hostname or [IPv6] literal (ports are not "
               "matched)";
    }
    r.host = canonical_host(r.host);
    if (!r.path_regex.empty()) {
        if (r.prefix) {
            return std::string("a path_regex route cannot also be a prefix route");
        }
        if (auto error = compile_regex("path_regex", r.path_regex, compiled.path_regex)) {
            return error;
        }
    }
    compiled.header_regexes.resize(r.headers.size());
    for (std::size_t i = 0; i < r.headers.size(); ++i) {
        if (auto error = check_matcher(r.headers[i], "header matcher #" + std::to_string(i), true,
                                       compiled.header_regexes[i])) {
            return error;
        }
    }
    compiled.query_regexes.resize(r.query.size());
    for (std::size_t i = 0; i < r.query.size(); ++i) {
        if (auto error = check_matcher(r.query[i], "query matcher #" + std::to_string(i), false,
                                       compiled.query_regexes[i])) {
            return error;
        }
    }
    if (r.client_cert) {
        if (auto error =
                check_cert_text(r.client_cert->subject, "subject", compiled.subject_regex)) {
            return error;
        }
        if (auto error = check_cert_text(r.client_cert->san, "san", compiled.san_regex)) {
            return error;
        }
    }
    for (std::size_t i = 0; i < r.filters.size(); ++i) {
        if (!r.filters[i]) {
            return "filter #" + std::to_string(i) + " is null";
        }
    }
    const int actions = (r.handler ? 1 : 0) + (r.proxy.upstream ? 1 : 0) + (r.redirect ? 1 : 0);
    if (actions > 1) {
        return std::string(
            "more than one action: a handler, a proxy upstream and a redirect exclude each "
            "other");
    }
    // RFC 9110 §15.2: a 1xx response is interim; the client would keep waiting for a final one.
    if (actions == 0 && (r.direct.status < 200 || r.direct.status > 599)) {
        return "direct response status " + std::to_string(r.direct.status) +
               " is not a final status (200..599)";
    }
    if (r.redirect) {
        if (auto error = check_redirect(r)) {
            return error;
        }
    }
    if (auto error = check_proxy(r, compiled)) {
        return error;
    }
    if (auto error = check_edits(r.request_headers, "request_headers")) {
        return error;
    }
    return check_edits(r.response_headers, "response_headers");
}

/// Puts a filters::Headers for the route's header edits first in its filters (replacing the
/// one an earlier freeze() put there, when the route came out of a RouteTable).
void install_header_edits(Route& r, router::CompiledRoute& compiled) {
    if (r.compiled && r.compiled->header_edits && !r.filters.empty() &&
        r.filters.front() == r.compiled->header_edits) {
        r.filters.erase(r.filters.begin());
    }
    if (r.request_headers.empty() && r.response_headers.empty()) {
        return;
    }
    // First in the chain: request edits are seen by every later filter and what is sent on;
    // response phases run in reverse, so response edits apply to the final response.
    compiled.header_edits =
        std::make_shared<filters::Headers>(r.request_headers, r.response_headers);
    r.filters.insert(r.filters.begin(), compiled.header_edits);
}

void clear_actions(Route& r) noexcept {
    r.handler = nullptr;
    r.proxy.upstream.reset();
    r.redirect.reset();
}

}  // namespace

RouteBuilder& RouteBuilder::name(std::string_view n) {
    spec().name = n;
    return *this;
}

RouteBuilder& RouteBuilder::host(std::string_view h) {
    spec().host = h;
    return *this;
}

RouteBuilder& RouteBuilder::prefix() {
    spec().prefix = true;
    return *this;
}

RouteBuilder& RouteBuilder::methods(MethodSet m) {
    spec().methods = m;
    return *this;
}

RouteBuilder& RouteBuilder::max_body_bytes(std::uint64_t n) {
    spec().max_body_bytes = n;
    return *this;
}

RouteBuilder& RouteBuilder::filter(std::shared_ptr<Filter> f) {
    spec().filters.push_back(std::move(f));
    return *this;
}

RouteBuilder& RouteBuilder::respond(int status, std::string_view body,
                                    std::string_view content_type) {
    return respond(DirectResponse{status, std::string(body), std::string(content_type), {}});
}

RouteBuilder& RouteBuilder::respond(DirectResponse r) {
    Route& route = spec();
    // The last action configured is the one that answers.
    clear_actions(route);
    route.direct = std::move(r);
    return *this;
}

RouteBuilder& RouteBuilder::handle(Handler h) {
    Route& route = spec();
    clear_actions(route);
    route.handler = std::move(h);
    return *this;
}

RouteBuilder& RouteBuilder::proxy(std::shared_ptr<Upstream> upstream) {
    Route& route = spec();
    clear_actions(route);
    route.proxy.upstream = std::move(upstream);
    return *this;
}

RouteBuilder& RouteBuilder::proxy(ProxyAction action) {
    Route& route = spec();
    clear_actions(route);
    route.proxy = std::move(action);
    return *this;
}

RouteBuilder& RouteBuilder::redirect(Redirect r) {
    Route& route = spec();
    clear_actions(route);
    route.redirect = std::move(r);
    return *this;
}

RouteBuilder& RouteBuilder::path_regex(std::string_view pattern) {
    spec().path_regex = pattern;
    return *this;
}

RouteBuilder& RouteBuilder::header(HeaderMatcher m) {
    spec().headers.push_back(std::move(m));
    return *this;
}

RouteBuilder& RouteBuilder::client_cert(ClientCertMatcher m) {
    spec().client_cert = std::move(m);
    return *this;
}

RouteBuilder& RouteBuilder::query(QueryMatcher m) {
    spec().query.push_back(std::move(m));
    return *this;
}

RouteBuilder& RouteBuilder::priority(std::int32_t p) {
    spec().priority = p;
    return *this;
}

Route& RouteBuilder::spec() { return router_->routes()[index_]; }

RouteBuilder Router::route(Method method, std::string_view path) {
    RouteBuilder b = route(path);
    b.spec().methods.add(method);
    if (method == Method::Other) {
        other_method_routes_.push_back(routes_.size() - 1);
    }
    return b;
}

RouteBuilder Router::route(std::string_view path) {
    Route r;
    r.path = path;
    return add(std::move(r));
}

RouteBuilder Router::add(Route r) {
    routes_.push_back(std::move(r));
    return RouteBuilder(*this, routes_.size() - 1);
}

Result<std::shared_ptr<const RouteTable>, std::string> Router::freeze() const {
    std::vector<Route> routes = routes_;
    for (std::size_t i = 0; i < routes.size(); ++i) {
        Route& r = routes[i];
        r.order = static_cast<std::uint32_t>(i);
        if (std::find(other_method_routes_.begin(), other_method_routes_.end(), i) !=
            other_method_routes_.end()) {
            return fail(describe_route(r, i) +
                        ": Method::Other names no method; match extension methods with "
                        "route(path).methods(MethodSet().add(Method::Other))");
        }
        auto compiled = std::make_shared<router::CompiledRoute>();
        if (auto error = check(r, *compiled)) {
            return fail(describe_route(r, i) + ": " + *error);
        }
        install_header_edits(r, *compiled);
        r.compiled = std::move(compiled);
    }
    return router::compile(std::move(routes));
}

}  // namespace blitz

namespace blitz::router {

bool valid_route_host(std::string_view h) noexcept {
    // One trailing dot is dropped first, so "example.com.." stays invalid.
    if (h.ends_with('.')) {
        h.remove_suffix(1);
    }
    if (h.empty()) {
        return true;
    }
    if (valid_ipv6_literal(h)) {
        return true;
    }
    if (h.starts_with("*.")) {
        h.remove_prefix(2);
    }
    return http::is_hostname(h);
}

}  // namespace blitz::router

#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blitz/exchange.hpp>
#include <blitz/filter.hpp>
#include <blitz/filters.hpp>
#include <blitz/http.hpp>
#include <blitz/observe.hpp>
#include <blitz/result.hpp>
#include <blitz/tls.hpp>
#include <blitz/upstream.hpp>

namespace blitz {

namespace router {
struct CompiledRoute;
}

/// A C++ callback that answers a request (see Exchange::respond). Return Flow::Pause to answer
/// later from the same reactor.
using Handler = std::function<Flow(Exchange&)>;

/// A fixed response configured on a route.
struct DirectResponse {
    int status = 200;
    std::string body;
    std::string content_type = "text/plain; charset=utf-8";
    std::vector<std::pair<std::string, std::string>> headers;
};

/// How a header, query-parameter or client-certificate matcher compares a value. Regexes use
/// RE2 syntax (linear time: no pattern can make matching slow) and must match the whole value.
enum class MatchKind : std::uint8_t { Exact, Prefix, Regex, Present, Absent, Suffix };

/// A condition on a request header (name compared case-insensitively; a token). With several
/// fields of that name, any one matching is enough (Absent: none may be present). Each field
/// line is compared whole: a comma-separated list value is not split.
struct HeaderMatcher {
    std::string name;
    MatchKind kind = MatchKind::Exact;
    std::string value;  ///< Exact/Prefix/Suffix: compared case-sensitively; Regex: the pattern
};

/// A condition on a query parameter (name compared exactly, after percent-decoding both name
/// and value; `a=1&a=2` has two values and either may match). The query is split on '&';
/// "a" without '=' has the empty value; '+' is not decoded to a space (RFC 3986 gives it no
/// meaning; match form-encoded spaces with a Regex such as "a[+ ]b"). A Regex needs the
/// decoded value in a 4 KiB stack buffer: a longer value containing escapes never matches it.
struct QueryMatcher {
    std::string name;
    MatchKind kind = MatchKind::Exact;
    std::string value;
};

/// A condition on one text of a client certificate (see ClientCertMatcher): Exact, Prefix and
/// Suffix compare case-sensitively; Regex matches the whole text; Present / Absent hold when
/// the text is non-empty / empty (and take no value).
struct CertTextMatcher {
    MatchKind kind = MatchKind::Exact;
    std::string value;  ///< Exact/Prefix/Suffix: the text; Regex: the pattern
};

/// A condition on the TLS client certificate of the connection a request came on (mutual TLS;
/// Envoy's route `tls_context` and RBAC principal matchers). Each set field must hold.
///
/// `presented`: whether a client certificate was presented. `verified`: whether it was
/// verified against the listener's `client_ca`. A listener with `client_auth` set fails the
/// handshake of a certificate that does not verify, so there every presented certificate is a
/// verified one; a listener without client_auth asks for none. `subject` (RFC 2253 form, as
/// TlsInfo::client_subject) and `san` need a presented certificate: a plaintext request or one
/// without a certificate fails them, even with MatchKind::Absent. `san` holds when any of the
/// certificate's subjectAltNames (TlsInfo::client_sans: DNS, URI, email, IP) satisfies it, as
/// Envoy's SAN matchers do; Present holds when there is at least one, Absent when there is
/// none. A plaintext request counts as "no certificate presented": only `presented: false` /
/// `verified: false` can match it.
struct ClientCertMatcher {
    std::optional<bool> presented;
    std::optional<bool> verified;
    std::optional<CertTextMatcher> subject;
    std::optional<CertTextMatcher> san;
};

/// A redirect answer (RFC 9110 §15.4). Each empty part keeps the request's own: scheme
/// ("http" when the request names none), host (may carry ":port"; the request's authority
/// otherwise, whose port is dropped when the scheme changes and the port was the old scheme's
/// default), path; `prefix_rewrite` replaces the matched prefix of a prefix route instead of
/// the whole path (at most one of `path` and `prefix_rewrite`). The query is kept unless
/// `strip_query`. Without any host the Location is relative (RFC 9110 §10.2.2).
struct Redirect {
    int status = 302;  ///< 301, 302, 303, 307 or 308
    std::string scheme;
    std::string host;
    std::string path;
    std::string prefix_rewrite;
    bool strip_query = false;
};

/// Which failures a proxied request is retried on (to another endpoint when there is one).
struct RetryPolicy {
    std::uint32_t max_retries = 1;
    bool on_connect_failure = true;
    bool on_reset = true;             ///< the upstream closed or reset before a response
    bool on_per_try_timeout = true;
    std::vector<int> on_statuses{502, 503, 504};
    /// Retry POST, PATCH, ... too. Off: only idempotent methods (RFC 9110 §9.2.2) are retried
    /// once their request may have reached the upstream.
    bool non_idempotent = false;
    std::chrono::milliseconds backoff_base{25};  ///< jittered, doubling per retry
    std::chrono::milliseconds backoff_max{250};
};

/// The proxy action of a route.
///
/// Timeouts (0 = none): `timeout` bounds the whole exchange including retries (no default:
/// long polls and streams must not be cut); `per_try_timeout` bounds each attempt until the
/// response head; both run from when the whole request (body included) was received.
/// `idle_timeout` bounds silence in either direction once proxying (uploads included).
struct ProxyAction {
    std::shared_ptr<Upstream> upstream;
    std::chrono::milliseconds timeout{0};
    std::chrono::milliseconds per_try_timeout{15'000};
    std::chrono::milliseconds idle_timeout{60'000};
    RetryPolicy retry;
    /// Path rewrite: replace the matched prefix of a prefix route, or RE2 `regex_rewrite`: when
    /// it matches the whole path, the path becomes `regex_substitution` with \0..\9 replaced by
    /// groups (and "\\" by a backslash); a path it does not match is sent unchanged. At most
    /// one of the two. A rewritten path that does not start with '/' gets one.
    std::string prefix_rewrite;
    std::string regex_rewrite;
    std::string regex_substitution;
    /// Host header sent upstream; empty keeps the client's.
    std::string host_rewrite;
    /// Adds X-Forwarded-For/-Proto/-Host (see ListenerOptions::trusted_proxies) and Via.
    bool forwarded_headers = true;
    bool via = true;
};

/// One route: what it matches, the filters it runs, and its action.
///
/// Matching: `host` is empty (any host), exact ("api.example.com") or a wildcard
/// ("*.example.com": one or more labels before the suffix); host comparison ignores case and
/// the port. `path` is an exact path, or a prefix when `prefix` is set ("/v1/" matches
/// "/v1/x"); when `path_regex` is set, the route instead matches the paths that RE2 pattern
/// matches in full, and `path` is not used. `methods` empty means every method. Every header
/// and query matcher, and the `client_cert` matcher when set, must hold too.
///
/// Actions: `handler` when set, else `proxy` when `proxy.upstream` is set, else `redirect`
/// when set, else `direct` (freeze() rejects more than one of the first three).
/// `request_headers` / `response_headers` edits apply to the request sent on (to the handler or
/// upstream) and to every response sent back, local ones included: freeze() puts a
/// filters::Headers for them first in `filters`.
///
/// Thread: immutable once its Router is frozen; shared by all reactors. Lifetime: owned by
/// the RouteTable (and the Router it was built from).
struct Route {
    std::string name;
    std::string host;
    std::string path = "/";
    bool prefix = false;
    std::string path_regex;
    MethodSet methods;
    std::vector<HeaderMatcher> headers;
    std::vector<QueryMatcher> query;
    /// Checked after every other criterion, and only for routes that have one.
    std::optional<ClientCertMatcher> client_cert;
    /// Higher wins before any other precedence rule (see RouteTable).
    std::int32_t priority = 0;
    std::vector<std::shared_ptr<Filter>> filters;
    filters::HeaderEdits request_headers;
    filters::HeaderEdits response_headers;
    /// Largest request body accepted on this route, in bytes (413 beyond); 0 = the listener's
    /// limit for a locally answered route, no limit for a proxied one (bodies stream through).
    std::uint64_t max_body_bytes = 0;
    DirectResponse direct;
    Handler handler;  ///< when set, answers instead of `direct`
    ProxyAction proxy;
    std::optional<Redirect> redirect;
    /// This route's access log instead of its listener's (`enabled = false`: none).
    std::optional<AccessLogOptions> access_log;
    /// Position in the Router (config order), the final tie-breaker.
    std::uint32_t order = 0;
    /// Set by Router::freeze(): compiled regexes and the like, so request-time code reaches
    /// them without a lookup (internal; lib/router/compiled_route.hpp).
    std::shared_ptr<const router::CompiledRoute> compiled;
};

/// The result of a lookup: the route, or why none matched.
struct RouteMatch {
    const Route* route = nullptr;
    /// When route is null but some route matched host and path for other methods, the
    /// methods those routes allow (answer 405 with Allow); empty means 404. HEAD is in the set
    /// wherever GET is; Method::Other stands for extension methods, which Allow cannot name.
    MethodSet allowed;
};

/// An immutable, compiled route table: what reactors look requests up in.
///
/// Precedence (deterministic, documented in docs/config.md): among the routes that match the
/// host, path, method, headers, query and client certificate, the highest `priority` wins; then the
/// most specific host wins (exact, then the longest wildcard suffix, then any host); then the most
/// specific path (exact, then the longest prefix, then a regex: regexes in config order); then the
/// route that came first. A route whose header, query or client-certificate matchers fail is passed
/// over: the next route in this order is tried.
///
/// Cost: exact and prefix lookups cost O(length of host + path), independent of the number of
/// routes, and allocate nothing. Each distinct `priority` value adds one such lookup (searched
/// from the highest). Routes sharing one host and path are tried in config order, so header
/// and query matchers cost in proportion to the routes sharing it. Regex routes are indexed by
/// their pattern's literal prefix ("/users/" for "/users/[0-9]+"): only those whose literal
/// prefix the path starts with are evaluated, each in linear time (RE2); a regex without a
/// literal prefix is evaluated for every path that reaches the regexes of its host.
///
/// A prefix is a plain byte prefix: "/v1" matches "/v1", "/v1/x" and "/v10". HEAD requests
/// also match routes that allow GET (RFC 9110 §9.3.2); among routes with the same host and
/// path, one that allows HEAD itself is preferred to one that only allows GET. Method::Other
/// in a route's methods matches every extension method. A host is compared without its port
/// and one trailing dot; a wildcard "*.example.com" matches "a.example.com" and
/// "a.b.example.com", not "example.com"; hosts longer than 255 bytes match only routes for
/// any host.
///
/// Thread: shared read-only by all reactors. Lifetime: shared_ptr; a reload swaps a new one in
/// and exchanges in flight keep the old one alive.
class RouteTable {
public:
    virtual ~RouteTable() = default;
    /// `host` may carry a port (ignored) and any case; `path` is the normalised path. Without
    /// a request, routes with header, query or client-certificate matchers never match (nor
    /// count in `allowed`).
    virtual RouteMatch match(std::string_view host, std::string_view path,
                             Method method) const noexcept = 0;
    /// As above for request.authority, request.path and request.method, also checking routes'
    /// header and query matchers against `request` and client-certificate matchers against
    /// `tls` (null: a plaintext request, which presented no certificate); `allowed` counts
    /// only routes whose matchers hold. `tls` is read only for routes with a client_cert
    /// matcher: callers may pass null when uses_client_cert() is false.
    virtual RouteMatch match(const Request& request, const TlsInfo* tls) const noexcept = 0;
    /// A plaintext request (no client certificate). Not virtual: a default argument on a
    /// virtual function would be taken from the static type, whatever the override says.
    RouteMatch match(const Request& request) const noexcept { return match(request, nullptr); }
    /// Whether some route has a client_cert matcher (so match() needs the TlsInfo).
    virtual bool uses_client_cert() const noexcept = 0;
    virtual std::size_t size() const noexcept = 0;
    /// The routes in config order (for listings such as the admin listener's GET /routes).
    virtual std::span<const Route> routes() const noexcept = 0;
};

class Router;

/// Fluent configuration of one route, returned by Router::route().
///
/// Thread: config-time only. Lifetime: refers into its Router; use it in one statement.
class RouteBuilder {
public:
    RouteBuilder(Router& router, std::size_t index) noexcept : router_(&router), index_(index) {}
    RouteBuilder& name(std::string_view n);
    RouteBuilder& host(std::string_view h);
    RouteBuilder& prefix();
    RouteBuilder& methods(MethodSet m);
    RouteBuilder& max_body_bytes(std::uint64_t n);
    RouteBuilder& filter(std::shared_ptr<Filter> f);
    template <class F, class... Args>
    RouteBuilder& filter(Args&&... args) {
        return filter(std::make_shared<F>(std::forward<Args>(args)...));
    }
    /// Action: a fixed response. Each action setter clears the handler, upstream and redirect
    /// set earlier: the last action set answers.
    RouteBuilder& respond(int status, std::string_view body = {},
                          std::string_view content_type = "text/plain; charset=utf-8");
    RouteBuilder& respond(DirectResponse r);
    /// Action: a C++ callback.
    RouteBuilder& handle(Handler h);
    /// Action: proxy to `upstream` (other ProxyAction fields keep their values).
    RouteBuilder& proxy(std::shared_ptr<Upstream> upstream);
    RouteBuilder& proxy(ProxyAction action);
    /// Action: a redirect.
    RouteBuilder& redirect(Redirect r);
    /// Matches paths by an RE2 pattern (whole path) instead of `path`.
    RouteBuilder& path_regex(std::string_view pattern);
    /// Adds a header / query matcher (all of a route's matchers must hold).
    RouteBuilder& header(HeaderMatcher m);
    RouteBuilder& query(QueryMatcher m);
    /// Sets the client-certificate matcher.
    RouteBuilder& client_cert(ClientCertMatcher m);
    RouteBuilder& priority(std::int32_t p);
    Route& spec();

private:
    Router* router_;
    std::size_t index_;
};

/// Collects routes at configuration time, then compiles them into a RouteTable.
///
/// Thread: config-time, single-threaded. Lifetime: a value type; freeze() copies what it needs.
class Router {
public:
    /// A route for `path` and one method (Method::Other is not allowed here).
    RouteBuilder route(Method method, std::string_view path);
    /// A route for `path` and any method.
    RouteBuilder route(std::string_view path);
    /// Adds a fully described route (used by the config loader).
    RouteBuilder add(Route r);
    const std::vector<Route>& routes() const noexcept { return routes_; }
    std::vector<Route>& routes() noexcept { return routes_; }

    /// Validates every route and compiles the table. Checked: paths of non-regex routes start
    /// with '/' and hold no '?' or '#'; hosts are empty, a hostname, "*." + hostname or a
    /// bracketed IPv6 literal; filters are non-null; a direct response's status is a final
    /// one, 200..599; regexes compile (RE2's error is quoted); a regex route is not a prefix
    /// route; matcher names are tokens (headers) or non-empty (query) and Present/Absent
    /// matchers (client_cert texts too) have no value; at most one of handler, proxy upstream
    /// and redirect; a redirect status is 301, 302, 303, 307 or 308 and its parts are
    /// well-formed; prefix rewrites only on prefix routes, not both a prefix and a regex
    /// rewrite, substitution groups the pattern has; header edits use token names and field values
    /// and leave the framing headers alone. The table gets the routes with hosts lowercased,
    /// Route::order set to each route's index, Route::compiled set, and a filters::Headers first in
    /// the filters of routes with header edits. The error message names the offending route: `route
    /// "api" (#3): path must start with '/' (got "v1/")`, where #3 is the route's 0-based index.
    Result<std::shared_ptr<const RouteTable>, std::string> freeze() const;

private:
    std::vector<Route> routes_;
    /// Indices of routes made by route(Method::Other, ...), which names no method; freeze()
    /// rejects them.
    std::vector<std::size_t> other_method_routes_;
};

}  // namespace blitz

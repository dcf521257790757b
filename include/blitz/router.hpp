#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <blitz/exchange.hpp>
#include <blitz/filter.hpp>
#include <blitz/http.hpp>
#include <blitz/result.hpp>

namespace blitz {

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

/// One route: what it matches, the filters it runs, and its action.
///
/// Matching: `host` is empty (any host), exact ("api.example.com") or a wildcard
/// ("*.example.com": one or more labels before the suffix); host comparison ignores case and
/// the port. `path` is an exact path, or a prefix when `prefix` is set ("/v1/" matches
/// "/v1/x"). `methods` empty means every method.
///
/// Thread: immutable once its Router is frozen; shared by all reactors. Lifetime: owned by
/// the RouteTable (and the Router it was built from).
struct Route {
    std::string name;
    std::string host;
    std::string path = "/";
    bool prefix = false;
    MethodSet methods;
    std::vector<std::shared_ptr<Filter>> filters;
    /// Largest request body accepted on this route, in bytes (413 beyond); 0 = the listener's.
    std::uint64_t max_body_bytes = 0;
    DirectResponse direct;
    Handler handler;  ///< when set, answers instead of `direct`
    /// Position in the Router (config order), the final tie-breaker.
    std::uint32_t order = 0;
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
/// host, path and method, the most specific host wins (exact, then the longest wildcard
/// suffix, then any host); then the most specific path (exact, then the longest prefix); then
/// the route that came first. Exact and prefix lookups cost O(length of host + path),
/// independent of the number of routes.
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
    /// `host` may carry a port (ignored) and any case; `path` is the normalised path.
    virtual RouteMatch match(std::string_view host, std::string_view path,
                             Method method) const noexcept = 0;
    virtual std::size_t size() const noexcept = 0;
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
    /// Action: a fixed response (clears a handler set earlier: the last action set answers).
    RouteBuilder& respond(int status, std::string_view body = {},
                          std::string_view content_type = "text/plain; charset=utf-8");
    RouteBuilder& respond(DirectResponse r);
    /// Action: a C++ callback.
    RouteBuilder& handle(Handler h);
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

    /// Validates every route (paths start with '/' and hold no '?' or '#'; hosts are empty, a
    /// hostname, "*." + hostname or a bracketed IPv6 literal; filters are non-null; a direct
    /// response's status is a final one, 200..599) and compiles the table, with hosts
    /// lowercased and Route::order set to each route's index. The error message names the
    /// offending route: `route "api" (#3): path must start with '/' (got "v1/")`, where #3 is
    /// the route's 0-based index.
    Result<std::shared_ptr<const RouteTable>, std::string> freeze() const;

private:
    std::vector<Route> routes_;
    /// Indices of routes made by route(Method::Other, ...), which names no method; freeze()
    /// rejects them.
    std::vector<std::size_t> other_method_routes_;
};

}  // namespace blitz

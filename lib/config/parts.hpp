#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <blitz/observe.hpp>
#include <blitz/router.hpp>
#include <blitz/server.hpp>
#include <blitz/tls.hpp>
#include <blitz/upstream.hpp>

#include "config/keys.hpp"
#include "config/walker.hpp"

/// The sections of the document that have a file of their own: routes (routes.cpp), upstreams
/// (upstreams.cpp) and TLS settings (tls.cpp). config.cpp reads the rest and calls these.
namespace blitz::config {

/// A route's reference to an upstream by name. Upstreams may come after the routes in the
/// document, so names are resolved once the whole document is read.
struct UpstreamRef {
    std::size_t route = 0;  ///< index in the Router
    std::string name;
    Place at;  ///< the name's value
};

/// The routes read so far.
struct RouteSet {
    Router router;
    std::vector<std::size_t> offsets;  ///< of each route object, for errors from freeze()
    std::vector<UpstreamRef> upstream_refs;
};

/// The upstreams read so far.
struct UpstreamSet {
    std::vector<std::shared_ptr<Upstream>> upstreams;
    std::vector<std::string> names;  ///< each upstream's name, in the same order
    /// Reloading: the running configuration's upstreams, reused when unchanged.
    const Config* previous = nullptr;
};

/// Reads `routes[index]` into `routes`.
bool read_route(Walker& w, Node& n, std::size_t index, RouteSet& routes);

/// Reads an element of "upstreams", makes it with Upstream::make() and adds it to `upstreams`;
/// an error from make() is reported at the element.
bool read_upstream(Walker& w, Node& n, UpstreamSet& upstreams);

/// Points each proxy route at the upstream it names; an unknown name is an error at the name.
bool resolve_upstreams(Walker& w, RouteSet& routes, const UpstreamSet& upstreams);

/// Compiles the routes with Router::freeze(). Its errors name a route by index ("route "api"
/// (#3): ..."); they are reported at that route object, else at the routes array (`at`).
bool freeze_routes(Walker& w, const RouteSet& routes, const Place& at);

/// "access_log" of a listener or route, "request_id" of a listener, the top-level "tracing".
bool read_access_log(Walker& w, Node& n, std::optional<AccessLogOptions>& out);
bool read_request_id(Walker& w, Node& n, std::optional<RequestIdOptions>& out);
bool read_tracing(Walker& w, Node& n, std::optional<TracingOptions>& out);
/// The keys of AccessLog, RequestId and Tracing objects; empty for other kinds.
std::vector<std::string_view> observe_keys(ObjectKind kind);

/// The keys of the route-side objects (Route, Match, Matcher, Respond, Proxy, Retry,
/// RegexRewrite, Redirect, Filter, HeaderEdits); empty for other kinds.
std::vector<std::string_view> route_keys(ObjectKind kind);

/// The keys of the upstream-side objects (Upstream, Endpoint, Hash, Pool, HealthCheck,
/// Outlier, CircuitBreaker, RetryBudget, Dns); empty for other kinds.
std::vector<std::string_view> upstream_keys(ObjectKind kind);

/// Where a listener's tls object named its ALPN protocols. The listener checks them against
/// its "http2" key once both are read, as either may come first in the document.
struct AlpnWritten {
    bool set = false;  ///< "alpn" was written (else TlsOptions::alpn is the default list)
    Place h2;          ///< its "h2" element, when it lists one
};

/// Reads a listener's "tls" object into `out`, checks its keys against each other, then opens
/// every file it names (Walker::readable) and, when files are checked, builds the listener's
/// TLS context once (tls::ServerContext::make) so that what the files hold (PEM syntax,
/// validity dates, a key that matches its certificate) is judged at load time too. `alpn`
/// tells whether and where "alpn" listed "h2".
bool read_listener_tls(Walker& w, Node& n, std::optional<TlsOptions>& out, AlpnWritten& alpn);

/// Where an upstream's "tls" object named its files (unset when it did not).
struct UpstreamTlsPlaces {
    Place ca;
    Place cert;
    Place key;
};

/// Reads an upstream's "tls": true or false, or an object of settings (which turns TLS on),
/// then opens every file it names; `places` gets where the file keys are.
bool read_upstream_tls(Walker& w, Node& n, UpstreamTlsOptions& out, UpstreamTlsPlaces& places);

/// Reports an error of building an upstream (Upstream::make) at the "tls" key of the file it
/// is about when it is about one (`tls` and `places` as read by read_upstream_tls), else at
/// `at`.
bool upstream_error(Walker& w, const Place& at, const UpstreamTlsOptions& tls,
                    const UpstreamTlsPlaces& places, const std::string& message);

/// The keys of the TLS objects (Tls, Certificate, UpstreamTls); empty for other kinds.
std::vector<std::string_view> tls_keys(ObjectKind kind);

}  // namespace blitz::config

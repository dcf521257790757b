#pragma once

#include <string_view>

#include <blitz/arena.hpp>
#include <blitz/http.hpp>
#include <blitz/router.hpp>

/// Request-time helpers of a matched route's actions, for the proxy engine and redirects.
namespace blitz::router {

/// The path to send upstream for `path` (the normalised request path, without the query)
/// matched by `route`, a route out of a RouteTable: with ProxyAction::prefix_rewrite, the
/// route's prefix replaced by it; with regex_rewrite matching the whole path, the
/// substitution with its \N groups filled in. A result that does not start with '/' gets one
/// (a substitution like "\2" can produce one). Returns `path` itself when nothing applies:
/// no rewrite, a path the prefix or regex does not match.
///
/// Thread: the reactor owning `arena`. Lifetime: the result views `path`, the route or the
/// arena. Allocates from the arena only when the path changes (and RE2 may allocate in its
/// own caches for a regex).
std::string_view rewrite_path(const Route& route, std::string_view path, Arena& arena);

/// The Location of the route's Redirect for `request` (RFC 9110 §10.2.2): scheme "://" host
/// path ["?" query], each part the Redirect's or else the request's (see Redirect). The
/// request's authority is used only when it is a valid host[:port] (RFC 3986 §3.2.2); without a
/// host the Location is the relative path ["?" query]. The request's path and query are used as
/// the codec produced them (validated; see docs/architecture.md). Empty when the route has no
/// redirect.
///
/// Thread: the reactor owning `arena`. Lifetime: the result lives in the arena.
std::string_view redirect_location(const Route& route, const Request& request, Arena& arena);

}  // namespace blitz::router

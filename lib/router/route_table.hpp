#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <blitz/router.hpp>

namespace blitz::router {

/// Longest host, in bytes, that can match a host-specific route (RFC 1035 §2.3.4 allows 255
/// octets on the wire); longer hosts match only routes for any host.
inline constexpr std::size_t kMaxHostBytes = 255;

/// The host part of an authority as routes compare it: the port removed ("[::1]:8080" keeps
/// its brackets: "[::1]"), one trailing dot removed (an absolute DNS name, RFC 1034 §3.1, names
/// the same host), lowercased into `buf`. Empty when there is no host or it is longer than
/// kMaxHostBytes.
///
/// Thread: any. Lifetime: the result views `buf`.
std::string_view normalise_host(std::string_view authority,
                                std::span<char, kMaxHostBytes> buf) noexcept;

/// Whether `host` may be a route's host: empty (any host), a host name of dot-separated labels
/// (RFC 1035 §2.3.4; '_' allowed, as service names use it), "*." + such a name, or a bracketed
/// IPv6 literal; one trailing dot allowed. No port: ports are not matched. The config loader
/// checks with this too, so both accept exactly the same hosts.
bool valid_route_host(std::string_view host) noexcept;

/// Compiles routes into a table. The routes must already be valid (see Router::freeze):
/// hosts lowercased without a trailing dot, `order` set to the route's index.
///
/// Thread: config-time. Lifetime: the table owns the routes.
std::shared_ptr<const RouteTable> compile(std::vector<Route> routes);

}  // namespace blitz::router

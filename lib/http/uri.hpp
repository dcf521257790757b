#pragma once

#include <span>
#include <string_view>

/// URI pieces shared by every codec (RFC 3986), so HTTP/1.1, /2 and /3 route the same path.
namespace blitz::http {

/// Normalises an origin-form path in place and returns the new length, or -1 when the path
/// must be rejected (400). Policy (docs/architecture.md): percent-encoded unreserved characters
/// are decoded, other escapes are kept with upper-case hex; "%2F" and "%5C" stay encoded (never
/// become separators); "." and ".." segments are removed (".." never climbs above "/"); a raw
/// '\\', a NUL, a control character or a malformed escape is rejected. `path` excludes the query
/// and starts with '/'.
long normalize_path(std::span<char> path) noexcept;

/// Whether `authority` is a valid RFC 3986 host[:port] for a request (reg-name, IPv4, or
/// bracketed IPv6; no userinfo; port digits only, <= 65535).
bool valid_authority(std::string_view authority) noexcept;

/// The host part of an authority (port and IPv6 brackets kept as sent: "[::1]").
std::string_view authority_host(std::string_view authority) noexcept;

}  // namespace blitz::http

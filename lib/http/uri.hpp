#pragma once

#include <span>
#include <string_view>

/// URI pieces shared by every codec (RFC 3986), so HTTP/1.1, /2 and /3 route the same path.
namespace blitz::http {

/// Normalises an origin-form path in place and returns the new length, or -1 when the path
/// must be rejected (400). Policy (docs/architecture.md): percent-encoded unreserved characters
/// are decoded, other escapes are kept with upper-case hex; "%2F" and "%5C" stay encoded (never
/// become separators); "." and ".." segments are removed after decoding, so "%2E%2E" is one
/// too (RFC 3986 §5.2.4, §6.2.2; ".." never climbs above "/"); empty segments ("//") are kept,
/// since a backend may tell "//a" from "/a". Accepted bytes: RFC 3986 pchar and `/`, plus `|`
/// `[` `]` `^` (browsers leave them unencoded, WHATWG URL) and `{` `}` backtick (other clients
/// send them raw; nginx and Envoy accept all seven); those are kept as they are (never decoded,
/// never separators).
/// Rejected: any other byte (so a raw `\`, NUL, control, space, DEL, `"`, `<`, `>`, `#`, `?`
/// or byte >= 0x80), a malformed escape, and "%00". `path` excludes the query and starts with
/// `/`. Normalising is idempotent. On -1 the bytes may be partly rewritten.
///
/// Thread: any. Lifetime: writes only inside `path`.
long normalize_path(std::span<char> path) noexcept;

/// Whether `authority` is a valid RFC 3986 host[:port] for a request (reg-name, IPv4, or
/// bracketed IPv6 / IPvFuture without zone; no userinfo; a non-empty host; a port of digits
/// only, <= 65535, and not empty when its ':' is there).
///
/// Thread: any. Lifetime: nothing kept.
bool valid_authority(std::string_view authority) noexcept;

/// The host part of an authority (port and IPv6 brackets kept as sent: "[::1]").
///
/// Thread: any. Lifetime: a view into `authority`.
std::string_view authority_host(std::string_view authority) noexcept;

}  // namespace blitz::http

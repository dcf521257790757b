#pragma once

#include <cstdint>
#include <string>
#include <string_view>

/// Checks of the textual forms config values take (tokens, field values, authorities, CIDR
/// blocks), independent of JSON. The config loader turns a false answer into a located error.
namespace blitz::config {

/// `s` without trailing JSON whitespace.
std::string_view trim_right(std::string_view s) noexcept;

/// A decimal integer, optionally negative, and nothing else.
bool parse_integer(std::string_view s, std::int64_t& out) noexcept;

/// RFC 9110 §5.5: visible characters, SP and HTAB only.
bool is_field_value(std::string_view s) noexcept;

/// Content-Length, Transfer-Encoding or Connection: the codec writes the message framing
/// (RFC 9112 §6), so a configured value would contradict it.
bool is_framing_header(std::string_view name) noexcept;

/// Whether `s` is "host", "host:port", "IPv4", "IPv4:port", "[IPv6]" or "[IPv6]:port" with a
/// port from 1 to 65535 (RFC 3986 §3.2.2 authority, without userinfo). With `port_required`
/// the port must be there.
bool is_authority(std::string_view s, bool port_required) noexcept;

/// Whether `s` is an absolute path to send on the wire: starts with '/', visible ASCII only,
/// no '#', and no '?' unless `query` (RFC 3986 §3.3, §3.4).
bool is_wire_path(std::string_view s, bool query = false) noexcept;

/// The outcome of parse_cidr().
enum class CidrCheck : std::uint8_t {
    Ok,
    Malformed,  ///< not an address, or the prefix length is out of range
    HostBits,   ///< bits set below the prefix; `canonical` holds the network
};

/// Checks "10.0.0.0/8", "192.0.2.1", "2001:db8::/32" or "::1": an IPv4 or IPv6 address
/// (inet_pton(3) syntax, no brackets) with an optional prefix length (0..32 or 0..128).
/// For HostBits, `canonical` is the block written with its host bits cleared.
CidrCheck parse_cidr(std::string_view s, std::string& canonical);

}  // namespace blitz::config

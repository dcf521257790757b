#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

/// The protocol-neutral HTTP message model. Codecs (HTTP/1.1 today, HTTP/2 and /3 later)
/// produce these types; the router, filters and handlers only ever see these types.
namespace blitz {

/// Request methods. `Other` is any valid extension method (see Request::method_name).
enum class Method : std::uint8_t { Get, Head, Post, Put, Delete, Connect, Options, Trace, Patch, Other };
inline constexpr std::size_t kMethodCount = 10;

/// The method for its exact, case-sensitive token (RFC 9110 §9.1); Other if not a standard one.
Method method_from_token(std::string_view token) noexcept;
/// The canonical token of a standard method ("GET"); "" for Other.
std::string_view method_token(Method m) noexcept;

/// A set of methods, used by route matching.
class MethodSet {
public:
    constexpr MethodSet() = default;
    static constexpr MethodSet all() { return MethodSet((1u << kMethodCount) - 1); }
    constexpr MethodSet& add(Method m) {
        bits_ |= 1u << static_cast<unsigned>(m);
        return *this;
    }
    constexpr bool contains(Method m) const { return bits_ & (1u << static_cast<unsigned>(m)); }
    constexpr bool empty() const { return bits_ == 0; }
    constexpr bool is_all() const { return bits_ == all().bits_; }
    constexpr bool operator==(const MethodSet&) const = default;

private:
    constexpr explicit MethodSet(std::uint16_t b) : bits_(b) {}
    std::uint16_t bits_ = 0;
};

enum class Version : std::uint8_t { Http10, Http11, Http2, Http3 };

/// One header field. Both views point into connection or arena memory (see Exchange).
struct Header {
    std::string_view name;
    std::string_view value;
};

/// ASCII case-insensitive equality, for header names and tokens.
bool iequals(std::string_view a, std::string_view b) noexcept;

/// A read-only list of header fields in wire order.
///
/// Thread: reactor-local. Lifetime: a view; valid while the message it belongs to is.
class Headers {
public:
    constexpr Headers() = default;
    constexpr explicit Headers(std::span<const Header> fields) : fields_(fields) {}

    /// The first field with this name (case-insensitive), or an empty view when absent.
    std::string_view get(std::string_view name) const noexcept;
    /// Whether a field with this name is present.
    bool has(std::string_view name) const noexcept;
    std::size_t size() const noexcept { return fields_.size(); }
    auto begin() const noexcept { return fields_.begin(); }
    auto end() const noexcept { return fields_.end(); }
    std::span<const Header> fields() const noexcept { return fields_; }

private:
    std::span<const Header> fields_;
};

/// A request as the router and filters see it, whatever the wire protocol.
///
/// `path` is normalised once by the codec (percent-decoded unreserved characters, dot-segments
/// removed; see docs/architecture.md) and excludes the query; `raw_target` is the
/// request-target with that normalised path in place of the sent one (scheme, authority and
/// query as sent), so it is what a proxy forwards and matches what the router saw; it equals
/// the bytes the client sent only when normalisation changed nothing. `authority` is the Host
/// header or the absolute-form authority, validated.
struct Request {
    Method method = Method::Get;
    Version version = Version::Http11;
    std::string_view method_name;
    std::string_view scheme;
    std::string_view authority;
    std::string_view path;
    std::string_view query;
    std::string_view raw_target;
    Headers headers;
    bool has_body = false;
    /// Declared body length; -1 when the body is chunked (length unknown) or absent.
    std::int64_t content_length = -1;
};

/// Canonical reason phrase for a status code ("Not Found"); "" when unknown.
std::string_view reason_phrase(int status) noexcept;

}  // namespace blitz

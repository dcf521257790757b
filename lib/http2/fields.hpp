#pragma once

#include <nghttp2/nghttp2.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <blitz/arena.hpp>
#include <blitz/http.hpp>

/// Field helpers both HTTP/2 codecs (server and client) share.
namespace blitz::http2 {

/// The field name in lower case — `name` itself when it already is, else a copy in the arena —
/// or empty when it is not a valid name (RFC 9110 §5.6.2 token characters; RFC 9113 §8.2.1
/// wants lower case).
std::string_view lower_name(Arena& a, std::string_view name);

/// Whether `s` is a non-empty token (RFC 9110 §5.6.2), e.g. a method.
bool token(std::string_view s) noexcept;
/// Whether `s` is a field name as HTTP/2 carries it: a non-empty token in lower case (RFC 9113
/// §8.2.1).
bool lower_token(std::string_view s) noexcept;

/// RFC 9113 §8.2.2: fields that belong to a connection, not to a message; they never go out on
/// an HTTP/2 stream. `te` is among them: only `te: trailers` may be sent, by a client.
bool connection_specific(std::string_view lower_name) noexcept;

/// Whether a value can be sent: no CR, LF or NUL (RFC 9113 §8.2.1).
bool valid_value(std::string_view v) noexcept;

inline std::string_view view(const std::uint8_t* p, std::size_t n) noexcept {
    return {reinterpret_cast<const char*>(p), n};
}

/// Appends `field` to a stream's field list (`fields`, `count`, `capacity`) in the stream's
/// arena, doubling the list when it is full (16 fields first): the head and trailer lists both
/// codecs fill as HPACK decodes them. The caller has checked the limits on their number.
template <class Stream>
void append_field(Stream& s, Header field) {
    if (s.count == s.capacity) {
        const std::uint16_t cap = s.capacity == 0 ? 16 : static_cast<std::uint16_t>(s.capacity * 2);
        auto* grown =
            static_cast<Header*>(s.arena->allocate(sizeof(Header) * cap, alignof(Header)));
        if (s.count > 0) {
            std::memcpy(static_cast<void*>(grown), s.fields, sizeof(Header) * s.count);
        }
        s.fields = grown;
        s.capacity = cap;
    }
    s.fields[s.count++] = field;
}

/// An nghttp2 field naming bytes that live until the frame is submitted (nghttp2 copies them).
inline nghttp2_nv field_nv(std::string_view name, std::string_view value) noexcept {
    return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
}

}  // namespace blitz::http2

#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <blitz/result.hpp>

#include "accesslog/record.hpp"

namespace blitz::accesslog {

/// The text forms of one second, computed once per second instead of once per line.
///
/// Thread: reactor-local (one per Writer). Lifetime: value type.
class TimeCache {
 public:
    /// "2026-11-26T13:08:03" (UTC) and "26/Nov/2026:13:08:03 +0000" for `unix_s`, recomputed
    /// only when the second changes. Seconds outside years 1970..9999 are clamped into them.
    struct Text {
        char date_time[19];
        char local[26];
    };
    const Text& at(std::int64_t unix_s) noexcept;

 private:
    std::int64_t second_ = -1;
    Text text_{};
};

/// Where a template fails to compile: byte offset of the offending `$` in the template and a
/// static message.
///
/// Thread: value type. Lifetime: `message` is a string literal.
struct FormatError {
    std::size_t offset = 0;
    const char* message = "";
};

/// A compiled access-log line format: JSON lines or a `$field` template.
///
/// JSON (`Format::json()`): one object per line, keys named as the Record fields except that
/// `time_us` is written as `"time"`, an RFC 3339 UTC timestamp with milliseconds
/// ("2026-11-26T13:08:03.123Z"). Numbers are JSON numbers. A string field is omitted when it is
/// empty; `upstream_status` when 0; `upstream_connect_us` and `upstream_first_byte_us` when
/// negative; every other number is always written. Strings are escaped per RFC 8259 §7:
/// `"` and `\` and control characters (and DEL) are escaped, valid UTF-8 (RFC 3629) is copied,
/// and each byte that is not part of a valid UTF-8 sequence becomes U+FFFD (`\ufffd`), so every
/// line is valid JSON in valid UTF-8 whatever the client sent.
///
/// Template (`Format::compile()`): literal text with `$name` or `${name}`; a name is the longest
/// run of `[A-Za-z0-9_]` after `$`, so `${status}x` is needed to follow a field with a name
/// character. Names are the Record fields plus `time` (as in JSON), `time_local`
/// ("26/Nov/2026:13:08:03 +0000", nginx's form, always UTC) and `time_iso8601`
/// ("2026-11-26T13:08:03+00:00"); `$$` is a literal dollar. A string value is escaped like
/// nginx's `escape=default`: `"`, `\`, bytes below 0x20 and bytes from 0x7F up become `\xHH`;
/// an empty string, an `upstream_status` of 0 and a negative upstream timing are written as
/// `-`. Literal text is copied as written; each line ends with "\n".
///
/// Thread: immutable after construction; share it between reactors. Lifetime: value type; the
/// config that owns it outlives the writers using it.
class Format {
 public:
    /// The JSON lines format.
    static Format json();
    /// Compiles a template; an unknown name, a `$` without a name or an unclosed `${` fails
    /// with the offset of its `$`.
    static Result<Format, FormatError> compile(std::string_view tmpl);

    /// True for Format::json().
    bool is_json() const noexcept { return json_; }

    /// Formats one line (with its "\n") into `out` without allocating. Returns the length of
    /// the whole line; when that exceeds out.size(), `out` holds the line's first out.size()
    /// bytes and the caller decides (retry with more room, truncate or drop).
    std::size_t format_to(const Record& r, TimeCache& time, std::span<char> out) const noexcept;

    /// Appends one line to `out`, allocating only when its capacity is too small.
    void append_to(const Record& r, TimeCache& time, std::string& out) const;

 private:
    Format() = default;

    /// One piece of a template: literal text (literals_[offset, offset + length)) or a field.
    struct Piece {
        std::uint32_t offset = 0;
        std::uint32_t length = 0;
        std::uint8_t field = 0;
    };

    bool json_ = false;
    std::string literals_;
    std::vector<Piece> pieces_;
};

}  // namespace blitz::accesslog

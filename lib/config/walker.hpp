#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include <blitz/config.hpp>

#include "config/json_text.hpp"
#include "config/load.hpp"

/// The document walker the config loader's parts (config.cpp, routes.cpp, upstreams.cpp, tls.cpp)
/// read values with: typed readers that record the first error with its JSON path and position.
namespace blitz::config {

namespace od = simdjson::ondemand;

// Byte counts are capped at 2^53 - 1, the largest integer every JSON implementation reads
// exactly (RFC 8259 §6).
inline constexpr std::int64_t kMaxExactInteger = (std::int64_t{1} << 53) - 1;
inline constexpr std::int64_t kMaxU32 = 0xFFFF'FFFF;
inline constexpr std::int64_t kMaxTimeoutMs = 86'400'000;  // one day

/// A value being read: its simdjson handle, JSON path, and what it looked like before reading
/// (byte offset in the input, JSON type, raw token) for messages.
struct Node {
    od::value value;
    std::string path;
    std::size_t offset = 0;
    od::json_type type{};
    std::string_view token;
};

/// A string value after `${...}` substitution, with the text it came from.
struct Text {
    std::string value;
    std::string raw;
};

/// The text of a number or boolean key: the JSON token, or the expansion of a string that is
/// exactly one `${...}` expression (`via` holds that string).
struct Scalar {
    std::string text;
    std::string via;
    bool plain_string = false;  ///< a string without `${...}`: only "auto"-style keys take it
};

/// Where a value was, kept to report an error found after the whole object was read.
struct Place {
    std::size_t offset = 0;
    std::string path;
    bool set = false;
};

class Walker;

/// One key of an object and its reader.
template <class T>
struct Field {
    std::string_view key;
    bool (*read)(Walker&, Node&, T&);
};

template <class T>
std::vector<std::string_view> keys_of(std::span<const Field<T>> fields) {
    std::vector<std::string_view> out;
    for (const Field<T>& f : fields) {
        out.push_back(f.key);
    }
    return out;
}

template <class T, std::size_t N>
std::vector<std::string_view> keys_of(const std::array<Field<T>, N>& fields) {
    return keys_of(std::span<const Field<T>>(fields));
}

/// Walks the document with simdjson On-Demand, in document order, and records the first error
/// with its position. Every reader returns false once an error is recorded.
///
/// Thread: one parse. Lifetime: refers to the input text while parsing.
class Walker {
 public:
    Walker(std::string_view text, std::string_view source, const char* base, std::size_t skew,
           FileRules files)
        : text_(text), source_(source), base_(base), skew_(skew), files_(std::move(files)) {}

    bool fail(std::size_t offset, std::string path, std::string message);
    bool fail(const Place& at, std::string message) {
        return fail(at.offset, at.path, std::move(message));
    }
    ConfigError error() const { return *error_; }

    /// Fills in the node's position, type and token before its value is read.
    bool locate(Node& n);
    /// simdjson refused something the syntax check accepted (it should not happen).
    bool broken(const Node& n, simdjson::error_code ec);

    /// How the value looks in the input, for "found ..." in messages.
    static std::string found(const Node& n);
    static std::string found(const Text& t);
    static Place place(const Node& n) { return Place{n.offset, n.path, true}; }

    bool mismatch(const Node& n, std::string_view expected);
    bool mismatch(const Node& n, std::string_view expected, const Text& t);

    /// A string value with `${...}` substituted.
    bool text(Node& n, std::string_view expected, Text& out);
    /// A number, a boolean, or a string that is exactly one `${...}` expression.
    bool scalar(Node& n, std::string_view expected, Scalar& out);
    bool scalar_mismatch(Node& n, std::string_view expected, const Scalar& s);

    /// An integer in [min, max] that also passes `ok` when given.
    bool integer(Node& n, std::int64_t min, std::int64_t max, std::int64_t& out,
                 std::string expected = {}, bool (*ok)(std::int64_t) = nullptr);

    template <class T>
    bool integer(Node& n, std::int64_t min, std::int64_t max, T& out) {
        std::int64_t v = 0;
        if (!integer(n, min, max, v)) {
            return false;
        }
        out = static_cast<T>(v);
        return true;
    }

    template <class T>
    bool integer(Node& n, std::int64_t min, std::int64_t max, std::optional<T>& out) {
        T v{};
        if (!integer(n, min, max, v)) {
            return false;
        }
        out = v;
        return true;
    }

    /// A duration in milliseconds from 1 to one day.
    bool milliseconds(Node& n, std::optional<std::chrono::milliseconds>& out);
    /// A duration in milliseconds from `min` to one day.
    bool milliseconds(Node& n, std::int64_t min, std::chrono::milliseconds& out);
    /// true or false; `expected` names what the key takes where it also takes something else
    /// (an object of settings, read by the caller).
    bool boolean(Node& n, bool& out, std::string_view expected = "true or false");
    /// One of `options`; `index` is its position.
    bool choice(Node& n, std::span<const std::string_view> options, std::size_t& index);
    /// A non-empty string.
    bool name(Node& n, std::string& out);
    /// A file name (a non-empty string without NUL). A relative one is joined to
    /// FileRules::base_dir. `at` gets the value's place, for readable().
    bool file(Node& n, std::string& out, Place& at);
    /// `name` joined to FileRules::base_dir when relative (not recorded as a named file).
    std::string resolve(std::string name) const;
    /// Opens `path` and reads a byte of it, so that a missing, unreadable or empty file is
    /// refused at the key naming it when the config is loaded, not later by whatever uses it.
    /// Always true when FileRules::check is off.
    bool readable(const Place& at, const std::string& path);
    /// Whether named files are opened (FileRules::check): also whether contexts that read them
    /// are built while loading.
    bool checks_files() const noexcept { return files_.check; }
    /// Every file name read by file(), resolved, in document order (each once).
    const std::vector<std::string>& named_files() const noexcept { return named_; }

    /// Calls `each(member, key, key_offset)` for every member of an object value.
    template <class F>
    bool members(Node& n, F&& each) {
        if (n.type != od::json_type::object) {
            return mismatch(n, "an object");
        }
        od::object obj;
        if (auto ec = n.value.get_object().get(obj)) {
            return broken(n, ec);
        }
        for (auto result : obj) {
            od::field field;
            if (auto ec = std::move(result).get(field)) {
                return broken(n, ec);
            }
            const std::size_t key_offset =
                static_cast<std::size_t>(field.key().raw() - 1 - base_) + skew_;
            std::string_view key_view;
            if (auto ec = field.unescaped_key().get(key_view)) {
                return broken(n, ec);
            }
            const std::string key(key_view);
            Node member{field.value(), path_member(n.path, key)};
            if (!locate(member) || !each(member, std::string_view(key), key_offset)) {
                return false;
            }
        }
        return true;
    }

    /// Reads an object whose keys are listed in `fields`; any other key is an error.
    template <class T, std::size_t N>
    bool object(Node& n, const std::array<Field<T>, N>& fields, T& target) {
        return object(n, std::span<const Field<T>>(fields), target);
    }

    /// As above, for a sub-range of a field table.
    template <class T>
    bool object(Node& n, std::span<const Field<T>> fields, T& target) {
        return members(n, [&](Node& member, std::string_view key, std::size_t key_offset) {
            for (const Field<T>& f : fields) {
                if (f.key == key) {
                    return f.read(*this, member, target);
                }
            }
            std::string allowed;
            for (const Field<T>& f : fields) {
                allowed += (allowed.empty() ? "" : ", ") + std::string(f.key);
            }
            return fail(key_offset, member.path,
                        "unknown key " + quote(key) + "; allowed keys: " + allowed);
        });
    }

    /// Calls `each(element, index)` for every element of an array value; `count` gets their
    /// number.
    template <class F>
    bool elements(Node& n, std::string_view expected, std::size_t& count, F&& each) {
        if (n.type != od::json_type::array) {
            return mismatch(n, expected);
        }
        od::array arr;
        if (auto ec = n.value.get_array().get(arr)) {
            return broken(n, ec);
        }
        count = 0;
        for (auto result : arr) {
            Node element{od::value{}, path_index(n.path, count)};
            if (auto ec = std::move(result).get(element.value)) {
                return broken(n, ec);
            }
            if (!locate(element) || !each(element, count)) {
                return false;
            }
            ++count;
        }
        return true;
    }

    /// `"Name": "value"` pairs of a header object.
    bool header_map(Node& n, bool in_respond,
                    std::vector<std::pair<std::string, std::string>>& out);
    /// A header name that may be configured (a token, not a framing header).
    bool header_name(std::size_t offset, const std::string& path, std::string_view name);

 private:
    /// `${VAR}`, `${VAR:-default}` (default when VAR is unset or empty) and `$$` → `$`; any
    /// other '$' is literal. One pass: expansions are not expanded again.
    bool expand(const Node& n, std::string_view in, std::string& out);

    std::string_view text_;
    std::string_view source_;
    const char* base_;
    std::size_t skew_;
    FileRules files_;
    std::vector<std::string> named_;
    std::optional<ConfigError> error_;
};

}  // namespace blitz::config

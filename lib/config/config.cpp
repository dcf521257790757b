#include <blitz/config.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>

#include <blitz/filters.hpp>
#include <blitz/http.hpp>

#include "config/json_text.hpp"
#include "config/keys.hpp"
#include "router/route_table.hpp"
#include "http/uri.hpp"
#include "net/address.hpp"

namespace blitz {

std::string ConfigError::to_string() const {
    std::string out = source;
    if (line > 0) {
        out += ':' + std::to_string(line) + ':' + std::to_string(column);
    }
    out += ": ";
    if (!path.empty()) {
        out += path + ": ";
    }
    out += message;
    return out;
}

namespace config {
namespace {

namespace od = simdjson::ondemand;

// Byte counts are capped at 2^53 - 1, the largest integer every JSON implementation reads
// exactly (RFC 8259 §6).
constexpr std::int64_t kMaxExactInteger = (std::int64_t{1} << 53) - 1;
constexpr std::int64_t kMaxU32 = 0xFFFF'FFFF;
constexpr std::int64_t kMaxTimeoutMs = 86'400'000;  // one day

/// Limits set in one "limits" object; unset keys inherit (defaults ← top level ← listener).
struct LimitsOverride {
    std::optional<std::uint32_t> max_request_head_bytes;
    std::optional<std::uint32_t> max_headers;
    std::optional<std::uint32_t> max_path_bytes;
    std::optional<std::uint64_t> max_body_bytes;
    std::optional<std::uint32_t> max_requests_per_connection;
    std::optional<std::uint64_t> max_drain_bytes;
    std::optional<std::chrono::milliseconds> idle_timeout;
    std::optional<std::chrono::milliseconds> request_head_timeout;
    std::optional<std::chrono::milliseconds> max_connection_age;

    void apply_to(HttpLimits& l) const {
        l.max_request_head_bytes = max_request_head_bytes.value_or(l.max_request_head_bytes);
        l.max_headers = max_headers.value_or(l.max_headers);
        l.max_path_bytes = max_path_bytes.value_or(l.max_path_bytes);
        l.max_body_bytes = max_body_bytes.value_or(l.max_body_bytes);
        l.max_requests_per_connection =
            max_requests_per_connection.value_or(l.max_requests_per_connection);
        l.max_drain_bytes = max_drain_bytes.value_or(l.max_drain_bytes);
        l.idle_timeout = idle_timeout.value_or(l.idle_timeout);
        l.request_head_timeout = request_head_timeout.value_or(l.request_head_timeout);
        l.max_connection_age = max_connection_age.value_or(l.max_connection_age);
    }
};

struct ListenerState {
    ListenerOptions options;
    LimitsOverride limits;
    std::size_t name_offset = 0;  ///< of the "name" value, else of the listener object
    bool has_address = false;
};

struct RouteState {
    Route route;
    std::size_t match_offset = 0;
    std::size_t respond_offset = 0;
    bool has_match = false;
    bool has_path = false;
    bool has_path_prefix = false;
    bool has_respond = false;
    bool has_status = false;
};

struct FilterState {
    bool has_type = false;
    filters::HeaderEdits request;
    filters::HeaderEdits response;
};

struct Document {
    Config config;
    LimitsOverride limits;
    std::vector<ListenerState> listeners;
    bool has_listeners = false;
    bool has_routes = false;
    std::size_t routes_offset = 0;
};

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

std::string_view trim_right(std::string_view s) noexcept {
    while (!s.empty() &&
           (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

/// A decimal integer, optionally negative, and nothing else.
bool parse_integer(std::string_view s, std::int64_t& out) noexcept {
    const char* first = s.data();
    const char* last = s.data() + s.size();
    if (s.empty() || (s[0] != '-' && !(s[0] >= '0' && s[0] <= '9'))) {
        return false;
    }
    auto [end, ec] = std::from_chars(first, last, out);
    return ec == std::errc{} && end == last;
}

bool is_single_expression(std::string_view s) noexcept {
    return s.size() >= 3 && s.starts_with("${") && s.find('}') == s.size() - 1;
}

bool is_name_char(char c, bool first) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

// RFC 9110 §5.6.2: token = 1*tchar.
bool is_token(std::string_view s) noexcept {
    constexpr std::string_view kSpecials = "!#$%&'*+-.^_`|~";
    if (s.empty()) {
        return false;
    }
    for (char c : s) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && kSpecials.find(c) == std::string_view::npos) {
            return false;
        }
    }
    return true;
}

// RFC 9110 §5.5: field values are visible characters, SP and HTAB; CR, LF and NUL would split
// or truncate the field on the wire, and other controls are invalid too.
bool is_field_value(std::string_view s) noexcept {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t') || c == 0x7F) {
            return false;
        }
    }
    return true;
}

// The codec writes the framing of every response (RFC 9112 §6); a configured value would
// contradict it.
bool is_framing_header(std::string_view name) noexcept {
    return iequals(name, "Content-Length") || iequals(name, "Transfer-Encoding") ||
           iequals(name, "Connection");
}

constexpr std::array<std::string_view, 9> kMethodTokens = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};

class Walker;

template <class T>
struct Field {
    std::string_view key;
    bool (*read)(Walker&, Node&, T&);
};

template <class T, std::size_t N>
std::vector<std::string_view> keys_of(const std::array<Field<T>, N>& fields) {
    std::vector<std::string_view> out;
    for (const Field<T>& f : fields) {
        out.push_back(f.key);
    }
    return out;
}

/// Walks the document with simdjson On-Demand, in document order, and records the first error
/// with its position.
class Walker {
 public:
    Walker(std::string_view text, std::string_view source, const char* base, std::size_t skew)
        : text_(text), source_(source), base_(base), skew_(skew) {}

    bool fail(std::size_t offset, std::string path, std::string message) {
        if (!error_) {
            const TextPosition p = position_at(text_, offset);
            error_ = ConfigError{std::string(source_), std::move(path), p.line, p.column,
                                 std::move(message)};
        }
        return false;
    }

    ConfigError error() const { return *error_; }

    /// Fills in the node's position, type and token before its value is read.
    bool locate(Node& n) {
        n.token = n.value.raw_json_token();
        n.offset = static_cast<std::size_t>(n.token.data() - base_) + skew_;
        if (auto ec = n.value.type().get(n.type)) {
            return broken(n, ec);
        }
        return true;
    }

    /// simdjson refused something the syntax check accepted (it should not happen).
    bool broken(const Node& n, simdjson::error_code ec) {
        return fail(n.offset, n.path,
                    std::string("cannot read the value: ") + simdjson::error_message(ec));
    }

    /// How the value looks in the input, for "found ..." in messages.
    static std::string found(const Node& n) {
        if (n.type == od::json_type::object) {
            return "an object";
        }
        if (n.type == od::json_type::array) {
            return "an array";
        }
        const std::string_view tok = trim_right(n.token);
        if (tok.size() <= 60) {
            return std::string(tok);
        }
        std::size_t cut = 56;
        while (cut > 0 && (static_cast<unsigned char>(tok[cut]) & 0xC0) == 0x80) {
            --cut;  // do not split a UTF-8 sequence
        }
        return std::string(tok.substr(0, cut)) + "...";
    }

    static std::string found(const Text& t) {
        return t.raw == t.value ? quote(t.value) : quote(t.value) + " (from " + quote(t.raw) + ")";
    }

    bool mismatch(const Node& n, std::string_view expected) {
        return fail(n.offset, n.path, "expected " + std::string(expected) + ", found " + found(n));
    }

    bool mismatch(const Node& n, std::string_view expected, const Text& t) {
        return fail(n.offset, n.path, "expected " + std::string(expected) + ", found " + found(t));
    }

    /// A string value with `${...}` substituted.
    bool text(Node& n, std::string_view expected, Text& out) {
        if (n.type != od::json_type::string) {
            return mismatch(n, expected);
        }
        std::string_view s;
        if (auto ec = n.value.get_string().get(s)) {
            return broken(n, ec);
        }
        out.raw = std::string(s);
        return expand(n, out.raw, out.value);
    }

    bool scalar(Node& n, std::string_view expected, Scalar& out) {
        if (n.type == od::json_type::number || n.type == od::json_type::boolean) {
            out.text = std::string(trim_right(n.token));
            return true;
        }
        if (n.type != od::json_type::string) {
            return mismatch(n, expected);
        }
        std::string_view s;
        if (auto ec = n.value.get_string().get(s)) {
            return broken(n, ec);
        }
        if (!is_single_expression(s)) {
            out.text = std::string(s);
            out.plain_string = true;
            return true;
        }
        out.via = std::string(s);
        return expand(n, out.via, out.text);
    }

    bool scalar_mismatch(Node& n, std::string_view expected, const Scalar& s) {
        if (s.via.empty()) {
            return mismatch(n, expected);
        }
        return fail(n.offset, n.path,
                    "expected " + std::string(expected) + ", found " + quote(s.text) + " (from " +
                        quote(s.via) + ")");
    }

    /// An integer in [min, max] that also passes `ok` when given.
    bool integer(Node& n, std::int64_t min, std::int64_t max, std::int64_t& out,
                 std::string expected = {}, bool (*ok)(std::int64_t) = nullptr) {
        if (expected.empty()) {
            expected = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
        }
        Scalar s;
        if (!scalar(n, expected, s)) {
            return false;
        }
        if (s.plain_string || !parse_integer(s.text, out) || out < min || out > max ||
            (ok != nullptr && !ok(out))) {
            return scalar_mismatch(n, expected, s);
        }
        return true;
    }

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

    bool milliseconds(Node& n, std::optional<std::chrono::milliseconds>& out) {
        std::int64_t v = 0;
        if (!integer(n, 1, kMaxTimeoutMs, v)) {
            return false;
        }
        out = std::chrono::milliseconds(v);
        return true;
    }

    bool boolean(Node& n, bool& out) {
        Scalar s;
        if (!scalar(n, "true or false", s)) {
            return false;
        }
        if (s.plain_string || (s.text != "true" && s.text != "false")) {
            return scalar_mismatch(n, "true or false", s);
        }
        out = s.text == "true";
        return true;
    }

    /// One of `options`; `index` is its position.
    bool choice(Node& n, std::span<const std::string_view> options, std::size_t& index) {
        std::string expected = "one of ";
        for (std::size_t i = 0; i < options.size(); ++i) {
            expected += (i > 0 ? ", " : "") + quote(options[i]);
        }
        Text t;
        if (!text(n, expected, t)) {
            return false;
        }
        for (index = 0; index < options.size(); ++index) {
            if (options[index] == t.value) {
                return true;
            }
        }
        return mismatch(n, expected, t);
    }

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

    /// Calls `each(element, index)` for every element of an array value; `count` gets their number.
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
                    std::vector<std::pair<std::string, std::string>>& out) {
        return members(n, [&](Node& member, std::string_view name, std::size_t key_offset) {
            if (!header_name(key_offset, member.path, name)) {
                return false;
            }
            if (in_respond && iequals(name, "Content-Type")) {
                return fail(key_offset, member.path,
                            "set the content type with \"content_type\", not in \"headers\"");
            }
            Text value;
            if (!text(member, "a header value string", value)) {
                return false;
            }
            if (!is_field_value(value.value)) {
                return mismatch(member, "a header value without control characters (RFC 9110 §5.5)",
                                value);
            }
            out.emplace_back(name, std::move(value.value));
            return true;
        });
    }

    bool header_name(std::size_t offset, const std::string& path, std::string_view name) {
        if (!is_token(name)) {
            return fail(offset, path,
                        "expected a header name (an RFC 9110 token), found " + quote(name));
        }
        if (is_framing_header(name)) {
            return fail(
                offset, path,
                quote(name) + " cannot be configured: the HTTP codec writes the message framing");
        }
        return true;
    }

 private:
    /// `${VAR}`, `${VAR:-default}` (default when VAR is unset or empty) and `$$` → `$`; any
    /// other '$' is literal. One pass: expansions are not expanded again.
    bool expand(const Node& n, std::string_view in, std::string& out) {
        out.clear();
        std::size_t i = 0;
        while (i < in.size()) {
            if (in[i] != '$' || i + 1 == in.size() || (in[i + 1] != '$' && in[i + 1] != '{')) {
                out += in[i++];
                continue;
            }
            if (in[i + 1] == '$') {
                out += '$';
                i += 2;
                continue;
            }
            const std::size_t close = in.find('}', i + 2);
            if (close == std::string_view::npos) {
                return fail(n.offset, n.path,
                            "unterminated \"${\" in " + quote(in) + " (write $$ for a literal $)");
            }
            const std::string_view expr = in.substr(i + 2, close - i - 2);
            std::size_t name_len = 0;
            while (name_len < expr.size() && is_name_char(expr[name_len], name_len == 0)) {
                ++name_len;
            }
            const std::string name(expr.substr(0, name_len));
            const std::string_view rest = expr.substr(name_len);
            const bool has_default = rest.starts_with(":-");
            if (name.empty() || (!rest.empty() && !has_default)) {
                return fail(
                    n.offset, n.path,
                    "expected ${NAME} or ${NAME:-default} (NAME: letters, digits, '_'), found " +
                        quote(in.substr(i, close + 1 - i)));
            }
            const char* value = std::getenv(name.c_str());
            if (value != nullptr && (*value != '\0' || !has_default)) {
                out += value;
            } else if (has_default) {
                out += rest.substr(2);
            } else {
                return fail(n.offset, n.path,
                            "environment variable " + name + " is not set (write ${" + name +
                                ":-default} to give a default)");
            }
            i = close + 1;
        }
        return true;
    }

    std::string_view text_;
    std::string_view source_;
    const char* base_;
    std::size_t skew_;
    std::optional<ConfigError> error_;
};

// ---- leaf readers -------------------------------------------------------------------------

bool read_path(Walker& w, Node& n, RouteState& rs, bool prefix) {
    if (rs.has_path || rs.has_path_prefix) {
        return w.fail(n.offset, n.path, "use either \"path\" or \"path_prefix\", not both");
    }
    constexpr std::string_view kExpected = "a string starting with '/'";
    Text t;
    if (!w.text(n, kExpected, t)) {
        return false;
    }
    if (!t.value.starts_with('/')) {
        return w.mismatch(n, kExpected, t);
    }
    if (t.value.find_first_of("?#") != std::string::npos) {
        // RFC 3986 §3.4: the matched path excludes the query; the fragment is never sent.
        return w.mismatch(n, "a path without '?' or '#'", t);
    }
    // Requests are matched after normalisation (lib/http/uri.hpp); a path that normalisation
    // would change could never match.
    std::string normal = t.value;
    const long len = http::normalize_path(std::span<char>(normal.data(), normal.size()));
    if (len < 0) {
        return w.mismatch(n, "a valid URI path (RFC 3986 §3.3)", t);
    }
    normal.resize(static_cast<std::size_t>(len));
    if (normal != t.value) {
        return w.fail(n.offset, n.path,
                      "expected a normalised path, found " + Walker::found(t) +
                          " (requests are matched after "
                          "normalisation; write " +
                          quote(normal) + ")");
    }
    rs.route.path = std::move(t.value);
    rs.route.prefix = prefix;
    (prefix ? rs.has_path_prefix : rs.has_path) = true;
    return true;
}

bool read_methods(Walker& w, Node& n, RouteState& rs) {
    std::string expected = "a standard method (";
    for (std::size_t i = 0; i < kMethodTokens.size(); ++i) {
        expected += (i > 0 ? ", " : "") + std::string(kMethodTokens[i]);
    }
    expected += ')';
    MethodSet set;
    std::size_t count = 0;
    const bool ok = w.elements(n, "an array of methods", count, [&](Node& e, std::size_t) {
        Text t;
        if (!w.text(e, expected, t)) {
            return false;
        }
        const Method m = method_from_token(t.value);
        if (m == Method::Other) {
            return w.mismatch(e, expected, t);
        }
        if (set.contains(m)) {
            return w.fail(e.offset, e.path, "duplicate method " + quote(t.value));
        }
        set.add(m);
        return true;
    });
    if (ok && count == 0) {
        return w.fail(
            n.offset, n.path,
            "expected at least one method, found an empty array (omit \"methods\" to match every "
            "method)");
    }
    rs.route.methods = set;
    return ok;
}

bool read_header_names(Walker& w, Node& n, std::vector<std::string>& out) {
    std::size_t count = 0;
    return w.elements(n, "an array of header names", count, [&](Node& e, std::size_t) {
        Text t;
        if (!w.text(e, "a header name string", t) || !w.header_name(e.offset, e.path, t.value)) {
            return false;
        }
        out.push_back(std::move(t.value));
        return true;
    });
}

bool read_name(Walker& w, Node& n, std::string& out) {
    Text t;
    if (!w.text(n, "a non-empty string", t)) {
        return false;
    }
    if (t.value.empty()) {
        return w.mismatch(n, "a non-empty string", t);
    }
    out = std::move(t.value);
    return true;
}

// ---- dispatch tables: the keys of each object and what reads them --------------------------

constexpr std::array<std::string_view, 4> kLogLevels = {"debug", "info", "warn", "error"};
constexpr std::array<std::string_view, 3> kBackends = {"auto", "io_uring", "epoll"};
constexpr std::array<std::string_view, 1> kFilterTypes = {"headers"};

const std::array<Field<Document>, 1> kLogFields = {{
    {"level",
     [](Walker& w, Node& n, Document& d) {
         std::size_t i = 0;
         if (!w.choice(n, kLogLevels, i)) {
             return false;
         }
         constexpr LogLevel kLevels[] = {LogLevel::Debug, LogLevel::Info, LogLevel::Warn,
                                         LogLevel::Error};
         d.config.log_level = kLevels[i];
         return true;
     }},
}};

const std::array<Field<ServerOptions>, 2> kBufferFields = {{
    {"recv_buffer_bytes",
     [](Walker& w, Node& n, ServerOptions& s) {
         return w.integer(n, 1024, 1024 * 1024, s.recv_buffer_bytes);
     }},
    {"max_recv_buffers",
     [](Walker& w, Node& n, ServerOptions& s) {
         // The buffer ring size must be a power of two (io_uring_register_buf_ring(3)).
         std::int64_t v = 0;
         if (!w.integer(n, 16, 65536, v, "a power of two from 16 to 65536",
                        [](std::int64_t x) { return (x & (x - 1)) == 0; })) {
             return false;
         }
         s.max_recv_buffers = static_cast<std::uint32_t>(v);
         return true;
     }},
}};

const std::array<Field<LimitsOverride>, 9> kLimitFields = {{
    {"max_request_head_bytes",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 256, 1024 * 1024, l.max_request_head_bytes);
     }},
    {"max_headers",
     [](Walker& w, Node& n, LimitsOverride& l) { return w.integer(n, 1, 10000, l.max_headers); }},
    {"max_path_bytes",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 16, 1024 * 1024, l.max_path_bytes);
     }},
    {"max_body_bytes",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 0, kMaxExactInteger, l.max_body_bytes);
     }},
    {"max_requests_per_connection",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 0, kMaxU32, l.max_requests_per_connection);
     }},
    {"max_drain_bytes",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.integer(n, 0, kMaxExactInteger, l.max_drain_bytes);
     }},
    {"idle_timeout_ms",
     [](Walker& w, Node& n, LimitsOverride& l) { return w.milliseconds(n, l.idle_timeout); }},
    {"request_head_timeout_ms",
     [](Walker& w, Node& n, LimitsOverride& l) {
         return w.milliseconds(n, l.request_head_timeout);
     }},
    {"max_connection_age_ms",
     [](Walker& w, Node& n, LimitsOverride& l) { return w.milliseconds(n, l.max_connection_age); }},
}};

const std::array<Field<ListenerState>, 7> kListenerFields = {{
    {"name",
     [](Walker& w, Node& n, ListenerState& l) {
         l.name_offset = n.offset;
         return read_name(w, n, l.options.name);
     }},
    {"address",
     [](Walker& w, Node& n, ListenerState& l) {
         constexpr std::string_view kExpected =
             "\"IPv4:port\" or \"[IPv6]:port\" with a numeric address and a port from 0 to 65535 "
             "(e.g. \"127.0.0.1:8080\", \"[::]:8080\")";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (net::SocketAddress addr; !net::SocketAddress::parse(t.value, addr)) {
             return w.mismatch(n, kExpected, t);
         }
         l.options.address = std::move(t.value);
         l.has_address = true;
         return true;
     }},
    {"backlog", [](Walker& w, Node& n,
                   ListenerState& l) { return w.integer(n, 1, 65535, l.options.backlog); }},
    {"max_connections",
     [](Walker& w, Node& n, ListenerState& l) {
         return w.integer(n, 0, kMaxU32, l.options.max_connections);
     }},
    {"tcp_nodelay",
     [](Walker& w, Node& n, ListenerState& l) { return w.boolean(n, l.options.tcp_nodelay); }},
    {"ipv6_dual_stack",
     [](Walker& w, Node& n, ListenerState& l) { return w.boolean(n, l.options.ipv6_dual_stack); }},
    {"limits",
     [](Walker& w, Node& n, ListenerState& l) { return w.object(n, kLimitFields, l.limits); }},
}};

const std::array<Field<RouteState>, 4> kMatchFields = {{
    {"host",
     [](Walker& w, Node& n, RouteState& rs) {
         constexpr std::string_view kExpected =
             "a host name (\"api.example.com\"), a wildcard (\"*.example.com\") or a bracketed "
             "IPv6 "
             "address, without a port";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (t.value.empty() || !router::valid_route_host(t.value)) {
             return w.mismatch(n, kExpected, t);
         }
         rs.route.host = std::move(t.value);
         return true;
     }},
    {"path", [](Walker& w, Node& n, RouteState& rs) { return read_path(w, n, rs, false); }},
    {"path_prefix", [](Walker& w, Node& n, RouteState& rs) { return read_path(w, n, rs, true); }},
    {"methods", [](Walker& w, Node& n, RouteState& rs) { return read_methods(w, n, rs); }},
}};

const std::array<Field<RouteState>, 4> kRespondFields = {{
    {"status",
     [](Walker& w, Node& n, RouteState& rs) {
         // RFC 9110 §15.2: a 1xx response is interim, never the answer to a request.
         rs.has_status = true;
         return w.integer(n, 200, 599, rs.route.direct.status);
     }},
    {"body",
     [](Walker& w, Node& n, RouteState& rs) {
         Text t;
         if (!w.text(n, "a string", t)) {
             return false;
         }
         rs.route.direct.body = std::move(t.value);
         return true;
     }},
    {"content_type",
     [](Walker& w, Node& n, RouteState& rs) {
         constexpr std::string_view kExpected =
             "a non-empty media type string (\"application/json\")";
         Text t;
         if (!w.text(n, kExpected, t)) {
             return false;
         }
         if (t.value.empty() || !is_field_value(t.value)) {
             return w.mismatch(n, kExpected, t);
         }
         rs.route.direct.content_type = std::move(t.value);
         return true;
     }},
    {"headers", [](Walker& w, Node& n,
                   RouteState& rs) { return w.header_map(n, true, rs.route.direct.headers); }},
}};

const std::array<Field<filters::HeaderEdits>, 3> kHeaderEditFields = {{
    {"add",
     [](Walker& w, Node& n, filters::HeaderEdits& e) { return w.header_map(n, false, e.add); }},
    {"set",
     [](Walker& w, Node& n, filters::HeaderEdits& e) { return w.header_map(n, false, e.set); }},
    {"remove",
     [](Walker& w, Node& n, filters::HeaderEdits& e) { return read_header_names(w, n, e.remove); }},
}};

const std::array<Field<FilterState>, 3> kFilterFields = {{
    {"type",
     [](Walker& w, Node& n, FilterState& f) {
         std::size_t i = 0;
         f.has_type = true;
         return w.choice(n, kFilterTypes, i);
     }},
    {"request",
     [](Walker& w, Node& n, FilterState& f) { return w.object(n, kHeaderEditFields, f.request); }},
    {"response",
     [](Walker& w, Node& n, FilterState& f) { return w.object(n, kHeaderEditFields, f.response); }},
}};

bool read_filters(Walker& w, Node& n, RouteState& rs) {
    std::size_t count = 0;
    return w.elements(n, "an array of filter objects", count, [&](Node& e, std::size_t) {
        FilterState f;
        const std::size_t at = e.offset;
        const std::string path = e.path;
        if (!w.object(e, kFilterFields, f)) {
            return false;
        }
        if (!f.has_type) {
            return w.fail(at, path, "missing required key \"type\"");
        }
        rs.route.filters.push_back(
            std::make_shared<filters::Headers>(std::move(f.request), std::move(f.response)));
        return true;
    });
}

const std::array<Field<RouteState>, 5> kRouteFields = {{
    {"name", [](Walker& w, Node& n, RouteState& rs) { return read_name(w, n, rs.route.name); }},
    {"match",
     [](Walker& w, Node& n, RouteState& rs) {
         rs.has_match = true;
         rs.match_offset = n.offset;
         return w.object(n, kMatchFields, rs);
     }},
    {"max_body_bytes",
     [](Walker& w, Node& n, RouteState& rs) {
         return w.integer(n, 0, kMaxExactInteger, rs.route.max_body_bytes);
     }},
    {"respond",
     [](Walker& w, Node& n, RouteState& rs) {
         rs.has_respond = true;
         rs.respond_offset = n.offset;
         return w.object(n, kRespondFields, rs);
     }},
    {"filters", [](Walker& w, Node& n, RouteState& rs) { return read_filters(w, n, rs); }},
}};

bool read_route(Walker& w, Node& n, std::size_t index, Document& d) {
    RouteState rs;
    rs.route.name = "route" + std::to_string(index);
    const std::size_t at = n.offset;
    const std::string path = n.path;
    if (!w.object(n, kRouteFields, rs)) {
        return false;
    }
    if (!rs.has_match) {
        return w.fail(at, path, "missing required key \"match\"");
    }
    if (!rs.has_path && !rs.has_path_prefix) {
        return w.fail(rs.match_offset, path + ".match",
                      "missing required key \"path\" or \"path_prefix\"");
    }
    if (!rs.has_respond) {
        return w.fail(at, path, "missing required key \"respond\"");
    }
    if (!rs.has_status) {
        return w.fail(rs.respond_offset, path + ".respond", "missing required key \"status\"");
    }
    const int status = rs.route.direct.status;
    // RFC 9110 §15.3.5 and §15.4.5: 204 and 304 responses have no content.
    if ((status == 204 || status == 304) && !rs.route.direct.body.empty()) {
        return w.fail(rs.respond_offset, path + ".respond",
                      "a " + std::to_string(status) + " response cannot have a body");
    }
    d.config.router.add(std::move(rs.route));
    return true;
}

bool read_listener(Walker& w, Node& n, std::size_t index, Document& d) {
    ListenerState l;
    l.options.name = "listener" + std::to_string(index);
    l.name_offset = n.offset;
    const std::size_t at = n.offset;
    const std::string path = n.path;
    if (!w.object(n, kListenerFields, l)) {
        return false;
    }
    if (!l.has_address) {
        return w.fail(at, path, "missing required key \"address\"");
    }
    for (std::size_t i = 0; i < d.listeners.size(); ++i) {
        if (d.listeners[i].options.name == l.options.name) {
            return w.fail(l.name_offset, path + ".name",
                          "duplicate listener name " + quote(l.options.name) +
                              " (also $.listeners[" + std::to_string(i) + "])");
        }
    }
    d.listeners.push_back(std::move(l));
    return true;
}

const std::array<Field<Document>, 9> kRootFields = {{
    // Lets editors find docs/config.schema.json; not used by the loader.
    {"$schema",
     [](Walker& w, Node& n, Document&) {
         Text t;
         return w.text(n, "a string", t);
     }},
    {"workers",
     [](Walker& w, Node& n, Document& d) {
         constexpr std::string_view kExpected = "\"auto\" or an integer from 1 to 1024";
         Scalar s;
         if (!w.scalar(n, kExpected, s)) {
             return false;
         }
         std::int64_t v = 0;
         if (s.text == "auto") {
             v = 0;
         } else if (s.plain_string || !parse_integer(s.text, v) || v < 1 || v > 1024) {
             return w.scalar_mismatch(n, kExpected, s);
         }
         d.config.server.workers = static_cast<unsigned>(v);
         return true;
     }},
    {"pin_cpus",
     [](Walker& w, Node& n, Document& d) { return w.boolean(n, d.config.server.pin_cpus); }},
    {"backend",
     [](Walker& w, Node& n, Document& d) {
         std::size_t i = 0;
         if (!w.choice(n, kBackends, i)) {
             return false;
         }
         constexpr Backend kValues[] = {Backend::Auto, Backend::IoUring, Backend::Epoll};
         d.config.server.backend = kValues[i];
         return true;
     }},
    {"log", [](Walker& w, Node& n, Document& d) { return w.object(n, kLogFields, d); }},
    {"buffers",
     [](Walker& w, Node& n, Document& d) { return w.object(n, kBufferFields, d.config.server); }},
    {"limits", [](Walker& w, Node& n, Document& d) { return w.object(n, kLimitFields, d.limits); }},
    {"listeners",
     [](Walker& w, Node& n, Document& d) {
         d.has_listeners = true;
         std::size_t count = 0;
         const bool ok =
             w.elements(n, "an array of listener objects", count,
                        [&](Node& e, std::size_t i) { return read_listener(w, e, i, d); });
         if (ok && count == 0) {
             return w.fail(n.offset, n.path,
                           "expected at least one listener, found an empty array");
         }
         return ok;
     }},
    {"routes",
     [](Walker& w, Node& n, Document& d) {
         d.has_routes = true;
         d.routes_offset = n.offset;
         std::size_t count = 0;
         return w.elements(n, "an array of route objects", count,
                           [&](Node& e, std::size_t i) { return read_route(w, e, i, d); });
     }},
}};

}  // namespace

std::vector<std::string_view> accepted_keys(ObjectKind kind) {
    switch (kind) {
        case ObjectKind::Root:
            return keys_of(kRootFields);
        case ObjectKind::Log:
            return keys_of(kLogFields);
        case ObjectKind::Buffers:
            return keys_of(kBufferFields);
        case ObjectKind::Limits:
            return keys_of(kLimitFields);
        case ObjectKind::Listener:
            return keys_of(kListenerFields);
        case ObjectKind::Route:
            return keys_of(kRouteFields);
        case ObjectKind::Match:
            return keys_of(kMatchFields);
        case ObjectKind::Respond:
            return keys_of(kRespondFields);
        case ObjectKind::Filter:
            return keys_of(kFilterFields);
        case ObjectKind::HeaderEdits:
            return keys_of(kHeaderEditFields);
    }
    return {};
}

}  // namespace config

Result<Config, ConfigError> parse_config(std::string_view json, std::string_view source) {
    using namespace config;
    if (auto syntax = SyntaxChecker(json).run()) {
        const TextPosition p = position_at(json, syntax->offset);
        return fail(ConfigError{std::string(source), std::move(syntax->path), p.line, p.column,
                                std::move(syntax->message)});
    }
    // The syntax check skipped a byte order mark; simdjson must not see it.
    const std::size_t skew = json.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    const simdjson::padded_string padded(json.substr(skew));
    od::parser parser;
    od::document doc;
    Walker w(json, source, padded.data(), skew);
    std::size_t root_offset = skew;
    while (root_offset < json.size() && (json[root_offset] == ' ' || json[root_offset] == '\t' ||
                                         json[root_offset] == '\n' || json[root_offset] == '\r')) {
        ++root_offset;
    }
    if (auto ec = parser.iterate(padded).get(doc)) {
        w.fail(root_offset, "$",
               std::string("cannot read the document: ") + simdjson::error_message(ec));
        return fail(w.error());
    }
    Node root{od::value{}, "$", root_offset};
    if (auto ec = doc.type().get(root.type)) {
        w.broken(root, ec);
        return fail(w.error());
    }
    if (root.type != od::json_type::object) {
        // simdjson cannot hand out a scalar document as a value; describe it from the text.
        root.token = json.substr(root_offset);
        w.mismatch(root, "an object at the top level");
        return fail(w.error());
    }
    if (auto ec = doc.get_value().get(root.value)) {
        w.broken(root, ec);
        return fail(w.error());
    }
    Document d;
    if (!w.object(root, kRootFields, d)) {
        return fail(w.error());
    }
    if (!d.has_listeners) {
        w.fail(root_offset, "$", "missing required key \"listeners\"");
        return fail(w.error());
    }
    if (!d.has_routes) {
        w.fail(root_offset, "$", "missing required key \"routes\"");
        return fail(w.error());
    }
    HttpLimits base;
    d.limits.apply_to(base);
    for (ListenerState& l : d.listeners) {
        l.options.limits = base;
        l.limits.apply_to(l.options.limits);
        d.config.listeners.push_back(std::move(l.options));
    }
    // The router validates routes again when it compiles them; the checks above match its
    // rules, so this only fires if they drift apart, and then still at load time.
    if (auto table = d.config.router.freeze(); !table) {
        w.fail(d.routes_offset, "$.routes", table.error());
        return fail(w.error());
    }
    return std::move(d.config);
}

Result<Config, ConfigError> load_config(const std::string& path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return fail(ConfigError{path, "$", 0, 0,
                                std::string("cannot open the file: ") + std::strerror(errno)});
    }
    std::string text;
    char buf[16384];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
        text.append(buf, n);
    }
    const int read_errno = std::ferror(f) ? errno : 0;
    std::fclose(f);
    if (read_errno != 0) {
        return fail(ConfigError{path, "$", 0, 0,
                                std::string("cannot read the file: ") + std::strerror(read_errno)});
    }
    return parse_config(text, path);
}

}  // namespace blitz

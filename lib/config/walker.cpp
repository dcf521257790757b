#include "config/walker.hpp"

#include <algorithm>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <blitz/http.hpp>

#include "config/syntax.hpp"
#include "http/token.hpp"

namespace blitz::config {
namespace {

bool is_single_expression(std::string_view s) noexcept {
    return s.size() >= 3 && s.starts_with("${") && s.find('}') == s.size() - 1;
}

bool is_name_char(char c, bool first) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

}  // namespace

bool Walker::fail(std::size_t offset, std::string path, std::string message) {
    if (!error_) {
        const TextPosition p = position_at(text_, offset);
        error_ = ConfigError{std::string(source_), std::move(path), p.line, p.column,
                             std::move(message)};
    }
    return false;
}

bool Walker::locate(Node& n) {
    n.token = n.value.raw_json_token();
    n.offset = static_cast<std::size_t>(n.token.data() - base_) + skew_;
    if (auto ec = n.value.type().get(n.type)) {
        return broken(n, ec);
    }
    return true;
}

bool Walker::broken(const Node& n, simdjson::error_code ec) {
    return fail(n.offset, n.path,
                std::string("cannot read the value: ") + simdjson::error_message(ec));
}

std::string Walker::found(const Node& n) {
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

std::string Walker::found(const Text& t) {
    return t.raw == t.value ? quote(t.value) : quote(t.value) + " (from " + quote(t.raw) + ")";
}

bool Walker::mismatch(const Node& n, std::string_view expected) {
    return fail(n.offset, n.path, "expected " + std::string(expected) + ", found " + found(n));
}

bool Walker::mismatch(const Node& n, std::string_view expected, const Text& t) {
    return fail(n.offset, n.path, "expected " + std::string(expected) + ", found " + found(t));
}

bool Walker::text(Node& n, std::string_view expected, Text& out) {
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

bool Walker::scalar(Node& n, std::string_view expected, Scalar& out) {
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

bool Walker::scalar_mismatch(Node& n, std::string_view expected, const Scalar& s) {
    if (s.via.empty()) {
        return mismatch(n, expected);
    }
    return fail(n.offset, n.path,
                "expected " + std::string(expected) + ", found " + quote(s.text) + " (from " +
                    quote(s.via) + ")");
}

bool Walker::integer(Node& n, std::int64_t min, std::int64_t max, std::int64_t& out,
                     std::string expected, bool (*ok)(std::int64_t)) {
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

bool Walker::milliseconds(Node& n, std::optional<std::chrono::milliseconds>& out) {
    std::chrono::milliseconds v{};
    if (!milliseconds(n, 1, v)) {
        return false;
    }
    out = v;
    return true;
}

bool Walker::milliseconds(Node& n, std::int64_t min, std::chrono::milliseconds& out) {
    std::int64_t v = 0;
    if (!integer(n, min, kMaxTimeoutMs, v)) {
        return false;
    }
    out = std::chrono::milliseconds(v);
    return true;
}

bool Walker::boolean(Node& n, bool& out, std::string_view expected) {
    Scalar s;
    if (!scalar(n, expected, s)) {
        return false;
    }
    if (s.plain_string || (s.text != "true" && s.text != "false")) {
        return scalar_mismatch(n, expected, s);
    }
    out = s.text == "true";
    return true;
}

bool Walker::choice(Node& n, std::span<const std::string_view> options, std::size_t& index) {
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

bool Walker::name(Node& n, std::string& out) {
    Text t;
    if (!text(n, "a non-empty string", t)) {
        return false;
    }
    if (t.value.empty()) {
        return mismatch(n, "a non-empty string", t);
    }
    out = std::move(t.value);
    return true;
}

std::string Walker::resolve(std::string name) const {
    if (name.front() == '/' || files_.base_dir.empty()) {
        return name;
    }
    return files_.base_dir.back() == '/' ? files_.base_dir + name : files_.base_dir + '/' + name;
}

bool Walker::file(Node& n, std::string& out, Place& at) {
    constexpr std::string_view kExpected = "a file name";
    at = place(n);
    Text t;
    if (!text(n, kExpected, t)) {
        return false;
    }
    if (t.value.empty() || t.value.find('\0') != std::string::npos) {
        return mismatch(n, "a non-empty file name without NUL characters", t);
    }
    out = resolve(std::move(t.value));
    if (std::find(named_.begin(), named_.end(), out) == named_.end()) {
        named_.push_back(out);
    }
    return true;
}

bool Walker::readable(const Place& at, const std::string& path) {
    if (!files_.check) {
        return true;
    }
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
        return fail(at, "cannot read " + quote(path) + ": " + std::strerror(errno));
    }
    // fopen(3) opens a directory for reading; the first read is what fails (EISDIR).
    const int c = std::fgetc(f);
    const int read_errno = std::ferror(f) ? errno : 0;
    std::fclose(f);
    if (read_errno != 0) {
        return fail(at, "cannot read " + quote(path) + ": " + std::strerror(read_errno));
    }
    if (c == EOF) {
        return fail(at, "cannot read " + quote(path) + ": the file is empty");
    }
    return true;
}

bool Walker::header_map(Node& n, bool in_respond,
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

bool Walker::header_name(std::size_t offset, const std::string& path, std::string_view name) {
    if (!http::is_token(name)) {
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

bool Walker::expand(const Node& n, std::string_view in, std::string& out) {
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

}  // namespace blitz::config

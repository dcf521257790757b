#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "core/hex.hpp"

/// Text-level JSON helpers for the config loader: a strict RFC 8259 syntax check that says
/// where a document breaks (simdjson's On-Demand API is lazy and reports no positions for
/// malformed input), line/column positions, and JSON paths.
namespace blitz::config {

/// A 1-based line and column; the column counts code points, so it matches what editors show.
struct TextPosition {
    int line = 1;
    int column = 1;
};

/// Where `offset` (a byte offset into `text`) is.
inline TextPosition position_at(std::string_view text, std::size_t offset) noexcept {
    TextPosition p;
    const std::size_t end = offset < text.size() ? offset : text.size();
    for (std::size_t i = 0; i < end; ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\n') {
            ++p.line;
            p.column = 1;
        } else if ((c & 0xC0) != 0x80) {
            ++p.column;  // UTF-8 continuation bytes belong to the previous column
        }
    }
    return p;
}

/// `s` as a JSON string literal, for messages ("a\"b" → "\"a\\\"b\"").
inline std::string quote(std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 0xF];
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
    return out;
}

/// Appends the member `key` to a JSON path: `.key` for identifier-like keys, else `["key"]`.
inline std::string path_member(std::string_view path, std::string_view key) {
    bool plain = !key.empty() && !(key[0] >= '0' && key[0] <= '9');
    for (char c : key) {
        plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '_');
    }
    std::string out(path);
    if (plain) {
        out.append(".").append(key);
    } else {
        out.append("[").append(quote(key)).append("]");
    }
    return out;
}

/// Appends the array element `index` to a JSON path: `[index]`.
inline std::string path_index(std::string_view path, std::size_t index) {
    return std::string(path).append("[").append(std::to_string(index)).append("]");
}

/// A syntax error: byte offset into the checked text, JSON path of the enclosing value, and
/// what was expected.
struct SyntaxError {
    std::size_t offset = 0;
    std::string path;
    std::string message;
};

/// Checks that `text` is exactly one JSON value (RFC 8259), strictly: no comments, no trailing
/// commas, strings valid UTF-8 without raw control characters or unpaired surrogate escapes,
/// and no duplicate keys in an object (RFC 8259 §4 leaves their meaning open; a config must
/// not depend on which one wins). A UTF-8 byte order mark at the start is skipped.
///
/// Thread: any; one checker per call. Lifetime: refers to `text` while running.
class SyntaxChecker {
 public:
    static constexpr int kMaxDepth = 64;

    explicit SyntaxChecker(std::string_view text) noexcept : text_(text) {}

    std::optional<SyntaxError> run() {
        if (text_.substr(0, 3) == "\xEF\xBB\xBF") {
            pos_ = 3;
        }
        skip_ws();
        if (pos_ == text_.size()) {
            fail(0, "$", "expected a JSON object, found end of input (the document is empty)");
            return error_;
        }
        std::string path = "$";
        if (value(path, 0)) {
            skip_ws();
            if (pos_ != text_.size()) {
                fail(pos_, "$",
                     "expected end of input after the top-level value, found " + found());
            }
        }
        return error_;
    }

 private:
    bool fail(std::size_t offset, std::string_view path, std::string message) {
        if (!error_) {
            error_ = SyntaxError{offset, std::string(path), std::move(message)};
        }
        return false;
    }

    bool at_end() const noexcept { return pos_ >= text_.size(); }
    char peek() const noexcept { return at_end() ? '\0' : text_[pos_]; }

    void skip_ws() noexcept {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r')) {
            ++pos_;
        }
    }

    /// What sits at the current position, for "found ..." in messages.
    std::string found() const {
        if (at_end()) {
            return "end of input";
        }
        const auto c = static_cast<unsigned char>(peek());
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
            std::size_t end = pos_;
            while (end < text_.size() && end - pos_ < 24 &&
                   ((text_[end] >= 'a' && text_[end] <= 'z') ||
                    (text_[end] >= 'A' && text_[end] <= 'Z') ||
                    (text_[end] >= '0' && text_[end] <= '9') || text_[end] == '_')) {
                ++end;
            }
            // Appended rather than "'" + std::string(...): GCC 12 at -O3 reports a false
            // -Wrestrict overlap for operator+(const char*, string&&).
            std::string word = "'";
            word.append(text_.substr(pos_, end - pos_));
            word += '\'';
            return word;
        }
        if (c == '\'') {
            return "a single quote (JSON strings use double quotes)";
        }
        if (c == '/') {
            return "'/' (JSON has no comments)";
        }
        if (c > 0x20 && c < 0x7F) {
            return std::string("'") + static_cast<char>(c) + "'";
        }
        static constexpr char kHex[] = "0123456789ABCDEF";
        return std::string("byte 0x") + kHex[c >> 4] + kHex[c & 0xF];
    }

    std::string opened_at(std::size_t offset, std::string_view what) const {
        const TextPosition p = position_at(text_, offset);
        return " (the " + std::string(what) + " opened at line " + std::to_string(p.line) +
               ", column " + std::to_string(p.column) + " is not closed)";
    }

    bool value(std::string& path, int depth) {
        switch (peek()) {
            case '{':
                return object(path, depth + 1);
            case '[':
                return array(path, depth + 1);
            case '"':
                return string(path, nullptr);
            case 't':
                return literal(path, "true");
            case 'f':
                return literal(path, "false");
            case 'n':
                return literal(path, "null");
            default:
                if (peek() == '-' || (peek() >= '0' && peek() <= '9')) {
                    return number(path);
                }
                return fail(pos_, path, "expected a JSON value, found " + found());
        }
    }

    bool literal(std::string_view path, std::string_view word) {
        if (text_.substr(pos_, word.size()) != word) {
            return fail(pos_, path, "expected a JSON value, found " + found());
        }
        pos_ += word.size();
        return true;
    }

    bool digits(std::string_view path, std::string_view after) {
        if (!(peek() >= '0' && peek() <= '9')) {
            return fail(pos_, path,
                        "expected a digit " + std::string(after) + ", found " + found());
        }
        while (peek() >= '0' && peek() <= '9') {
            ++pos_;
        }
        return true;
    }

    // RFC 8259 §6: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    bool number(std::string_view path) {
        const std::size_t start = pos_;
        if (peek() == '-') {
            ++pos_;
        }
        if (peek() == '0') {
            ++pos_;
            if (peek() >= '0' && peek() <= '9') {
                return fail(start, path, "leading zeros are not allowed in JSON numbers");
            }
        } else if (!digits(path, "after '-'")) {
            return false;
        }
        if (peek() == '.') {
            ++pos_;
            if (!digits(path, "after '.'")) {
                return false;
            }
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-') {
                ++pos_;
            }
            if (!digits(path, "in the exponent")) {
                return false;
            }
        }
        return true;
    }

    /// Reads the 4 hex digits of a \u escape at pos_ (after "\u").
    bool hex4(std::string_view path, std::size_t escape_start, std::uint32_t& out) {
        out = 0;
        for (int i = 0; i < 4; ++i) {
            const int h = blitz::detail::hex_value(peek());
            if (at_end() || h < 0) {
                return fail(escape_start, path, "expected 4 hex digits after '\\u' in a string");
            }
            out = out * 16 + static_cast<std::uint32_t>(h);
            ++pos_;
        }
        return true;
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    }

    /// Length of the valid UTF-8 sequence at pos_, or 0 (RFC 3629 §4: no overlong forms, no
    /// surrogates, nothing above U+10FFFF).
    std::size_t utf8_length() const noexcept {
        const auto byte = [&](std::size_t i) {
            return pos_ + i < text_.size() ? static_cast<unsigned char>(text_[pos_ + i]) : 0;
        };
        const unsigned char c = byte(0);
        const auto cont = [&](std::size_t i) { return (byte(i) & 0xC0) == 0x80; };
        if (c >= 0xC2 && c <= 0xDF) {
            return cont(1) ? 2 : 0;
        }
        if (c >= 0xE0 && c <= 0xEF) {
            const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80;
            const unsigned char hi = c == 0xED ? 0x9F : 0xBF;
            return byte(1) >= lo && byte(1) <= hi && cont(2) ? 3 : 0;
        }
        if (c >= 0xF0 && c <= 0xF4) {
            const unsigned char lo = c == 0xF0 ? 0x90 : 0x80;
            const unsigned char hi = c == 0xF4 ? 0x8F : 0xBF;
            return byte(1) >= lo && byte(1) <= hi && cont(2) && cont(3) ? 4 : 0;
        }
        return 0;
    }

    /// A string at pos_ (on its opening quote); its unescaped text goes to `out` when given.
    bool string(std::string_view path, std::string* out) {
        const std::size_t open = pos_++;
        while (true) {
            if (at_end()) {
                return fail(pos_, path,
                            "expected '\"' to close the string, found end of input" +
                                opened_at(open, "string"));
            }
            const auto c = static_cast<unsigned char>(peek());
            if (c == '"') {
                ++pos_;
                return true;
            }
            if (c == '\n' || c == '\r') {
                return fail(pos_, path,
                            "expected '\"' before the end of the line (a string cannot span lines; "
                            "write \\n for a line break)");
            }
            if (c < 0x20) {
                static constexpr char kHex[] = "0123456789ABCDEF";
                return fail(pos_, path,
                            std::string("control character U+00") + kHex[c >> 4] + kHex[c & 0xF] +
                                " must be escaped in a string");
            }
            if (c == '\\') {
                if (!escape(path, out)) {
                    return false;
                }
                continue;
            }
            std::size_t n = 1;
            if (c >= 0x80) {
                n = utf8_length();
                if (n == 0) {
                    static constexpr char kHex[] = "0123456789ABCDEF";
                    return fail(pos_, path,
                                std::string("invalid UTF-8 byte 0x") + kHex[c >> 4] +
                                    kHex[c & 0xF] + " in a string");
                }
            }
            if (out != nullptr) {
                out->append(text_.substr(pos_, n));
            }
            pos_ += n;
        }
    }

    /// An escape at pos_ (on its backslash); RFC 8259 §7.
    bool escape(std::string_view path, std::string* out) {
        const std::size_t start = pos_++;
        const char e = peek();
        constexpr std::string_view kSimple = "\"\\/bfnrt";
        constexpr std::string_view kMeaning = "\"\\/\b\f\n\r\t";
        if (const auto i = kSimple.find(e); !at_end() && i != std::string_view::npos) {
            if (out != nullptr) {
                *out += kMeaning[i];
            }
            ++pos_;
            return true;
        }
        if (e != 'u') {
            return fail(start, path,
                        "invalid escape '\\" + std::string(at_end() ? "" : text_.substr(pos_, 1)) +
                            "' in a string (valid: \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
        }
        ++pos_;
        std::uint32_t cp = 0;
        if (!hex4(path, start, cp)) {
            return false;
        }
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail(start, path, "unpaired UTF-16 surrogate in a \\u escape");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") {
                return fail(start, path, "unpaired UTF-16 surrogate in a \\u escape");
            }
            pos_ += 2;
            std::uint32_t low = 0;
            if (!hex4(path, pos_ - 2, low)) {
                return false;
            }
            if (low < 0xDC00 || low > 0xDFFF) {
                return fail(start, path, "unpaired UTF-16 surrogate in a \\u escape");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        if (out != nullptr) {
            append_utf8(*out, cp);
        }
        return true;
    }

    bool object(std::string& path, int depth) {
        const std::size_t open = pos_++;
        if (depth > kMaxDepth) {
            return fail(open, path, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
        }
        std::unordered_map<std::string, std::size_t> seen;
        skip_ws();
        if (peek() == '}') {
            ++pos_;
            return true;
        }
        bool first = true;
        while (true) {
            if (peek() != '"') {
                if (first) {
                    return fail(pos_, path,
                                "expected a quoted key or '}', found " + found() +
                                    (at_end() ? opened_at(open, "object") : ""));
                }
                if (peek() == '}') {
                    return fail(pos_, path,
                                "expected a quoted key after ',', found '}' (JSON does not allow a "
                                "trailing comma)");
                }
                return fail(pos_, path,
                            "expected a quoted key after ',', found " + found() +
                                (at_end() ? opened_at(open, "object") : ""));
            }
            first = false;
            const std::size_t key_at = pos_;
            std::string key;
            if (!string(path, &key)) {
                return false;
            }
            std::string member = path_member(path, key);
            if (auto [it, fresh] = seen.emplace(key, key_at); !fresh) {
                const TextPosition p = position_at(text_, it->second);
                return fail(key_at, member,
                            "duplicate key " + quote(key) + " (first at line " +
                                std::to_string(p.line) + ", column " + std::to_string(p.column) +
                                ")");
            }
            skip_ws();
            if (peek() != ':') {
                return fail(pos_, member,
                            "expected ':' after the key " + quote(key) + ", found " + found());
            }
            ++pos_;
            skip_ws();
            if (!value(member, depth)) {
                return false;
            }
            skip_ws();
            if (peek() == '}') {
                ++pos_;
                return true;
            }
            if (peek() != ',') {
                return fail(pos_, path,
                            "expected ',' or '}' after the value of " + quote(key) + ", found " +
                                found() + (at_end() ? opened_at(open, "object") : ""));
            }
            ++pos_;
            skip_ws();
        }
    }

    bool array(std::string& path, int depth) {
        const std::size_t open = pos_++;
        if (depth > kMaxDepth) {
            return fail(open, path, "nesting deeper than " + std::to_string(kMaxDepth) + " levels");
        }
        skip_ws();
        if (peek() == ']') {
            ++pos_;
            return true;
        }
        for (std::size_t index = 0;; ++index) {
            std::string element = path_index(path, index);
            if (index > 0 && peek() == ']') {
                return fail(pos_, element,
                            "expected a value after ',', found ']' (JSON does not allow a trailing "
                            "comma)");
            }
            if (at_end()) {
                return fail(pos_, element,
                            "expected a JSON value, found end of input" + opened_at(open, "array"));
            }
            if (!value(element, depth)) {
                return false;
            }
            skip_ws();
            if (peek() == ']') {
                ++pos_;
                return true;
            }
            if (peek() != ',') {
                return fail(pos_, path,
                            "expected ',' or ']' after an array element, found " + found() +
                                (at_end() ? opened_at(open, "array") : ""));
            }
            ++pos_;
            skip_ws();
        }
    }

    std::string_view text_;
    std::size_t pos_ = 0;
    std::optional<SyntaxError> error_;
};

}  // namespace blitz::config

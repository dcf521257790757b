#include "config/redact.hpp"

#include <array>
#include <cstddef>

#include <simdjson.h>

#include "config/json_text.hpp"
#include "config/syntax.hpp"

namespace blitz::config {
namespace {

namespace od = simdjson::ondemand;

constexpr std::array<std::string_view, 11> kSecretNames = {
    "token",
    "password",
    "secret",
    "secrets",
    "api_key",
    "api_keys",
    "private_key",
    "key_pem",
    "hmac_key",
    "authorization",
    "proxy_authorization",
};

constexpr std::array<std::string_view, 4> kSecretSuffixes = {"_secret", "_token", "_password",
                                                             "_api_key"};

/// Key bytes folded for the rule: ASCII lower case, '-' read as '_'.
char fold(char c) noexcept {
    if (c >= 'A' && c <= 'Z') {
        return static_cast<char>(c - 'A' + 'a');
    }
    return c == '-' ? '_' : c;
}

/// Whether `key`, folded, equals `name` (already folded).
bool folded_equals(std::string_view key, std::string_view name) noexcept {
    if (key.size() != name.size()) {
        return false;
    }
    for (std::size_t i = 0; i < key.size(); ++i) {
        if (fold(key[i]) != name[i]) {
            return false;
        }
    }
    return true;
}

void indent(std::string& out, int depth) { out.append(static_cast<std::size_t>(depth) * 2, ' '); }

/// Writes the value at `v`, whose container (if any) is at `depth`. simdjson should not refuse
/// anything the syntax check passed; if it does, the error is returned and the output dropped.
simdjson::error_code write_value(od::value v, int depth, std::string& out) {
    od::json_type type{};
    if (auto ec = v.type().get(type)) {
        return ec;
    }
    switch (type) {
        case od::json_type::object: {
            od::object obj;
            if (auto ec = v.get_object().get(obj)) {
                return ec;
            }
            out += '{';
            bool empty = true;
            for (auto member : obj) {
                od::field field;
                if (auto ec = std::move(member).get(field)) {
                    return ec;
                }
                std::string_view key;
                if (auto ec = field.unescaped_key().get(key)) {
                    return ec;
                }
                out += empty ? "\n" : ",\n";
                empty = false;
                indent(out, depth + 1);
                out += quote(key);
                out += ": ";
                if (is_secret_key(key)) {
                    // Left unread: On-Demand skips a value the loop does not consume.
                    out += quote(kRedacted);
                    continue;
                }
                if (auto ec = write_value(field.value(), depth + 1, out)) {
                    return ec;
                }
            }
            if (!empty) {
                out += '\n';
                indent(out, depth);
            }
            out += '}';
            return simdjson::SUCCESS;
        }
        case od::json_type::array: {
            od::array arr;
            if (auto ec = v.get_array().get(arr)) {
                return ec;
            }
            out += '[';
            bool empty = true;
            for (auto element : arr) {
                od::value item;
                if (auto ec = std::move(element).get(item)) {
                    return ec;
                }
                out += empty ? "\n" : ",\n";
                empty = false;
                indent(out, depth + 1);
                if (auto ec = write_value(item, depth + 1, out)) {
                    return ec;
                }
            }
            if (!empty) {
                out += '\n';
                indent(out, depth);
            }
            out += ']';
            return simdjson::SUCCESS;
        }
        case od::json_type::string: {
            std::string_view s;
            if (auto ec = v.get_string().get(s)) {
                return ec;
            }
            out += quote(s);
            return simdjson::SUCCESS;
        }
        case od::json_type::number:
        case od::json_type::boolean:
        case od::json_type::null:
            // The token as written: parsing a number and printing it again would turn 0.10
            // into 0.1 and 1e3 into 1000, and round integers beyond 2^53.
            out += trim_right(v.raw_json_token());
            return simdjson::SUCCESS;
    }
    return simdjson::INCORRECT_TYPE;
}

}  // namespace

bool is_secret_key(std::string_view key) noexcept {
    for (std::string_view name : kSecretNames) {
        if (folded_equals(key, name)) {
            return true;
        }
    }
    for (std::string_view suffix : kSecretSuffixes) {
        if (key.size() >= suffix.size() &&
            folded_equals(key.substr(key.size() - suffix.size()), suffix)) {
            return true;
        }
    }
    return false;
}

Result<std::string, std::string> redacted_json(std::string_view json_text) {
    // simdjson's On-Demand API is lazy and would stop at a broken value only when it reaches
    // it, possibly after writing half the output; the loader's checker refuses the document
    // first and says where.
    if (auto syntax = SyntaxChecker(json_text).run()) {
        const TextPosition p = position_at(json_text, syntax->offset);
        return fail(std::to_string(p.line) + ":" + std::to_string(p.column) + ": " + syntax->path +
                    ": " + syntax->message);
    }
    const std::size_t skew = json_text.starts_with("\xEF\xBB\xBF") ? 3 : 0;
    const simdjson::padded_string padded(json_text.substr(skew));
    od::parser parser;
    od::document doc;
    if (auto ec = parser.iterate(padded).get(doc)) {
        return fail(std::string("cannot read the document: ") + simdjson::error_message(ec));
    }
    od::json_type type{};
    if (auto ec = doc.type().get(type)) {
        return fail(std::string("cannot read the document: ") + simdjson::error_message(ec));
    }
    if (type != od::json_type::object && type != od::json_type::array) {
        const TextPosition p = position_at(json_text, json_text.find_first_not_of(" \t\r\n", skew));
        return fail(std::to_string(p.line) + ":" + std::to_string(p.column) +
                    ": $: expected an object or an array at the top level");
    }
    od::value root;
    if (auto ec = doc.get_value().get(root)) {
        return fail(std::string("cannot read the document: ") + simdjson::error_message(ec));
    }
    std::string out;
    out.reserve(json_text.size() + json_text.size() / 4);
    if (auto ec = write_value(root, 0, out)) {
        return fail(std::string("cannot read the document: ") + simdjson::error_message(ec));
    }
    out += '\n';
    return out;
}

}  // namespace blitz::config

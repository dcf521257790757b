#pragma once

#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include <catch2/catch_test_macros.hpp>

#include <blitz/config.hpp>

/// Shared by the config test files: parse helpers that report the loader's error, and
/// documents built around a fragment.
namespace blitz::config::test {

inline constexpr std::string_view kListener = R"("listeners": [{"address": "127.0.0.1:8080"}])";

inline Config parse_ok(std::string_view json) {
    auto r = parse_config(json, "test.json");
    if (!r) {
        FAIL(r.error().to_string());
    }
    return std::move(r).value();
}

struct Expected {
    std::string path;
    int line;
    int column;
    std::string message;
};

inline void require_error(std::string_view json, const Expected& e) {
    INFO(json);
    auto r = parse_config(json, "test.json");
    REQUIRE_FALSE(r.has_value());
    const ConfigError& err = r.error();
    CHECK(err.source == "test.json");
    CHECK(err.message == e.message);
    CHECK(err.path == e.path);
    CHECK(err.line == e.line);
    CHECK(err.column == e.column);
}

inline ConfigError error_of(std::string_view json) {
    auto r = parse_config(json, "test.json");
    REQUIRE_FALSE(r.has_value());
    return r.error();
}

/// Expects the error at the `nth` (0-based) occurrence of `needle` in `json`, which must be
/// ASCII (so a column is a byte).
inline void require_error_at(std::string_view json, std::string_view needle,
                             const std::string& path, const std::string& message,
                             std::size_t nth = 0) {
    std::size_t at = json.find(needle);
    for (std::size_t i = 0; i < nth && at != std::string_view::npos; ++i) {
        at = json.find(needle, at + 1);
    }
    REQUIRE(at != std::string_view::npos);
    int line = 1;
    int column = 1;
    for (std::size_t i = 0; i < at; ++i) {
        if (json[i] == '\n') {
            ++line;
            column = 1;
        } else {
            ++column;
        }
    }
    require_error(json, Expected{path, line, column, message});
}

/// A document with the standard listener and `routes` (the text of the routes array).
inline std::string with_routes(std::string_view routes) {
    return "{" + std::string(kListener) + ", \"routes\": [" + std::string(routes) + "]}";
}

/// A document with the standard listener, no routes, and `extra` (top-level members).
inline std::string with_top(std::string_view extra) {
    return "{" + std::string(kListener) + ", \"routes\": [], " + std::string(extra) + "}";
}

/// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
    ScopedEnv(const char* name, const char* value) : name_(name) {
        if (value != nullptr) {
            ::setenv(name, value, 1);
        } else {
            ::unsetenv(name);
        }
    }
    ~ScopedEnv() { ::unsetenv(name_); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
    const char* name_;
};

}  // namespace blitz::config::test

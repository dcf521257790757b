#include "config/redact.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <simdjson.h>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "config/json_text.hpp"

namespace {

namespace od = simdjson::ondemand;
using blitz::config::is_secret_key;
using blitz::config::redacted_json;

std::string redact_ok(std::string_view json) {
    auto r = redacted_json(json);
    if (!r) {
        FAIL(r.error());
    }
    return std::move(r).value();
}

/// The leaves of a document as "path=type:value" lines (strings unescaped, numbers as their
/// token), in document order. A member whose key is a secret becomes "path=SECRET": in `input`
/// mode whatever its value, in output mode only when the value is exactly "[redacted]" (else
/// the line says what was there, and the comparison with the input fails).
class Flattener {
 public:
    explicit Flattener(bool input) : input_(input) {}

    std::vector<std::string> run(std::string_view json) {
        const simdjson::padded_string padded(json);
        od::parser parser;
        od::document doc;
        REQUIRE(parser.iterate(padded).get(doc) == simdjson::SUCCESS);
        od::value root;
        REQUIRE(doc.get_value().get(root) == simdjson::SUCCESS);
        walk(root, "$");
        return std::move(lines_);
    }

 private:
    void walk(od::value v, const std::string& path) {
        od::json_type type{};
        REQUIRE(v.type().get(type) == simdjson::SUCCESS);
        if (type == od::json_type::object) {
            od::object obj;
            REQUIRE(v.get_object().get(obj) == simdjson::SUCCESS);
            lines_.push_back(path + "={");
            for (auto member : obj) {
                od::field field;
                REQUIRE(std::move(member).get(field) == simdjson::SUCCESS);
                std::string_view key_view;
                REQUIRE(field.unescaped_key().get(key_view) == simdjson::SUCCESS);
                const std::string key(key_view);
                const std::string member_path = blitz::config::path_member(path, key);
                if (is_secret_key(key) && (input_ || is_redacted(field.value()))) {
                    lines_.push_back(member_path + "=SECRET");
                    continue;
                }
                walk(field.value(), member_path);
            }
        } else if (type == od::json_type::array) {
            od::array arr;
            REQUIRE(v.get_array().get(arr) == simdjson::SUCCESS);
            lines_.push_back(path + "=[");
            std::size_t i = 0;
            for (auto element : arr) {
                od::value item;
                REQUIRE(std::move(element).get(item) == simdjson::SUCCESS);
                walk(item, blitz::config::path_index(path, i++));
            }
        } else if (type == od::json_type::string) {
            std::string_view s;
            REQUIRE(v.get_string().get(s) == simdjson::SUCCESS);
            lines_.push_back(path + "=string:" + std::string(s));
        } else {
            std::string_view token(v.raw_json_token());
            while (!token.empty() && (token.back() == ' ' || token.back() == '\n' ||
                                      token.back() == '\r' || token.back() == '\t')) {
                token.remove_suffix(1);
            }
            lines_.push_back(path + "=token:" + std::string(token));
        }
    }

    static bool is_redacted(od::value v) {
        std::string_view s;
        return v.get_string().get(s) == simdjson::SUCCESS && s == "[redacted]";
    }

    bool input_;
    std::vector<std::string> lines_;
};

/// Checks the redacted form of `json`: it passes the loader's syntax check, differs from the
/// input exactly at secret keys (each now "[redacted]"), and redacting it again changes nothing.
void check_redaction(std::string_view json) {
    const std::string out = redact_ok(json);
    INFO(out);
    CHECK_FALSE(blitz::config::SyntaxChecker(out).run().has_value());
    CHECK(Flattener(false).run(out) == Flattener(true).run(json));
    CHECK(redact_ok(out) == out);
}

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in.good());
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::filesystem::path> shipped_configs() {
    const std::filesystem::path root(BLITZ_SOURCE_DIR);
    std::vector<std::filesystem::path> files = {root / "config" / "blitzd.json"};
    for (const auto& entry : std::filesystem::directory_iterator(root / "config" / "examples")) {
        if (entry.path().extension() == ".json") {
            files.push_back(entry.path());
        }
    }
    return files;
}

}  // namespace

TEST_CASE("config::is_secret_key names every secret spelling in any case", "[config]") {
    for (const char* key : {"token",
                            "password",
                            "secret",
                            "secrets",
                            "api_key",
                            "api_keys",
                            "private_key",
                            "key_pem",
                            "hmac_key",
                            "TOKEN",
                            "Password",
                            "SeCrEt",
                            "API_KEY",
                            "Private_Key",
                            "KEY_PEM",
                            "Hmac_Key",
                            "admin_token",
                            "client_secret",
                            "db_password",
                            "X_TOKEN",
                            "Upstream_Password",
                            "_token",
                            "api-key",
                            "X-Auth-Token",
                            "Authorization",
                            "proxy-authorization",
                            "X-Api-Key",
                            "hmac-key"}) {
        INFO(key);
        CHECK(is_secret_key(key));
    }
}

TEST_CASE("config::is_secret_key leaves file names and look-alike keys alone", "[config]") {
    for (const char* key : {"key",
                            "key_file",
                            "cert",
                            "ca",
                            "client_ca",
                            "ocsp_staple",
                            "token_file",
                            "tokens",
                            "max_tokens",
                            "passwords",
                            "secret_file",
                            "token_bucket",
                            "session_tickets",
                            "ticket_key_rotation_s",
                            "keys",
                            "hash",
                            "name",
                            "path",
                            "",
                            "tokenx",
                            "xtoken",
                            "my_tokens",
                            "password_file",
                            "Cache-Control",
                            "Cookie",
                            "api_key_file"}) {
        INFO(key);
        CHECK_FALSE(is_secret_key(key));
    }
}

TEST_CASE("config::redacted_json pretty-prints with 2-space indent in the file's key order",
          "[config]") {
    CHECK(redact_ok(R"({"z":1,"a":[true,false,null,"s"],"m":{},"e":[],"o":{"k":"v"}})") ==
          "{\n"
          "  \"z\": 1,\n"
          "  \"a\": [\n"
          "    true,\n"
          "    false,\n"
          "    null,\n"
          "    \"s\"\n"
          "  ],\n"
          "  \"m\": {},\n"
          "  \"e\": [],\n"
          "  \"o\": {\n"
          "    \"k\": \"v\"\n"
          "  }\n"
          "}\n");
    CHECK(redact_ok("[]") == "[]\n");
    CHECK(redact_ok(" \r\n\t{ } ") == "{}\n");
}

TEST_CASE("config::redacted_json replaces secret values at any depth and inside arrays",
          "[config]") {
    CHECK(redact_ok(R"({"admin":{"address":"127.0.0.1:9901","token":"hunter2"}})") ==
          "{\n"
          "  \"admin\": {\n"
          "    \"address\": \"127.0.0.1:9901\",\n"
          "    \"token\": \"[redacted]\"\n"
          "  }\n"
          "}\n");
    const std::string deep = redact_ok(
        R"({"a":[{"b":[[{"PASSWORD":"p1"}]],"c":{"d":{"client_secret":"p2","keep":"k"}}}],)"
        R"("x":[{"Api_Key":"p3"},{"hmac_key":"p4","n":2}],"top_token":"p5"})");
    for (const char* leaked : {"p1", "p2", "p3", "p4", "p5"}) {
        INFO(leaked);
        CHECK(deep.find(leaked) == std::string::npos);
    }
    CHECK(deep.find("\"PASSWORD\": \"[redacted]\"") != std::string::npos);
    CHECK(deep.find("\"client_secret\": \"[redacted]\"") != std::string::npos);
    CHECK(deep.find("\"Api_Key\": \"[redacted]\"") != std::string::npos);
    CHECK(deep.find("\"hmac_key\": \"[redacted]\"") != std::string::npos);
    CHECK(deep.find("\"top_token\": \"[redacted]\"") != std::string::npos);
    CHECK(deep.find("\"keep\": \"k\"") != std::string::npos);
    CHECK(deep.find("\"n\": 2") != std::string::npos);
    check_redaction(R"({"a":[{"b":[[{"PASSWORD":"p1"}]],"c":{"d":{"client_secret":"p2"}}}]})");
}

TEST_CASE("config::redacted_json redacts object, array, number and literal secrets whole",
          "[config]") {
    CHECK(redact_ok(R"({"secrets":{"a":"1","b":{"c":[2,3]}},"api_keys":["k1","k2"],)"
                    R"("password":12345,"token":null,"secret":true,"after":"kept"})") ==
          "{\n"
          "  \"secrets\": \"[redacted]\",\n"
          "  \"api_keys\": \"[redacted]\",\n"
          "  \"password\": \"[redacted]\",\n"
          "  \"token\": \"[redacted]\",\n"
          "  \"secret\": \"[redacted]\",\n"
          "  \"after\": \"kept\"\n"
          "}\n");
}

TEST_CASE("config::redacted_json keeps TLS key file names and header names that are not secret",
          "[config]") {
    const std::string in =
        R"({"tls":{"certificates":[{"cert":"/etc/blitz/site.pem","key":"/etc/blitz/site.key"}]},)"
        R"("request_headers":{"set":{"X-Auth-Token":"t0k","Cache-Control":"no-store"},)"
        R"("remove":["X-Internal-Token"]}})";
    const std::string out = redact_ok(in);
    CHECK(out.find("\"key\": \"/etc/blitz/site.key\"") != std::string::npos);
    CHECK(out.find("\"cert\": \"/etc/blitz/site.pem\"") != std::string::npos);
    CHECK(out.find("\"X-Auth-Token\": \"[redacted]\"") != std::string::npos);
    CHECK(out.find("t0k") == std::string::npos);
    CHECK(out.find("\"Cache-Control\": \"no-store\"") != std::string::npos);
    CHECK(out.find("\"X-Internal-Token\"") != std::string::npos);
    check_redaction(in);
}

TEST_CASE("config::redacted_json copies numbers exactly as written", "[config]") {
    CHECK(redact_ok(R"([1e3,0.10,-0,1E-7,123456789012345678901234567890,-1.50e+10,0,1e400])") ==
          "[\n"
          "  1e3,\n"
          "  0.10,\n"
          "  -0,\n"
          "  1E-7,\n"
          "  123456789012345678901234567890,\n"
          "  -1.50e+10,\n"
          "  0,\n"
          "  1e400\n"
          "]\n");
    CHECK(redact_ok("{\"a\":0.10\n,\"b\":2}") == "{\n  \"a\": 0.10,\n  \"b\": 2\n}\n");
}

TEST_CASE("config::redacted_json preserves unicode and re-escapes strings per RFC 8259",
          "[config]") {
    const std::string in = R"({"caf\u00e9":"\u00e9 \u00E9 é \ud83d\ude00 😀 \u4e2d",)"
                           R"("esc":"q\" b\\ s\/ \b\f\n\r\t \u0001 \u001f \u007f \u2028",)"
                           R"("k\"ey\n":"v"})";
    const std::string out = redact_ok(in);
    CHECK(out ==
          "{\n"
          "  \"café\": \"é é é \xF0\x9F\x98\x80 😀 中\",\n"
          "  \"esc\": \"q\\\" b\\\\ s/ \\u0008\\u000c\\n\\r\\t \\u0001 \\u001f \\u007f "
          "\xE2\x80\xA8\",\n"
          "  \"k\\\"ey\\n\": \"v\"\n"
          "}\n");
    check_redaction(in);
}

TEST_CASE("config::redacted_json output parses back to the same document", "[config]") {
    check_redaction(R"({"a":[1,2.50,{"b":"c","token":"t"}],"d":{"e":[[],{}],"f":false}})");
    check_redaction(R"([{"password":"x"},"y",3e-2])");
    // A UTF-8 byte order mark is skipped, as the loader skips it.
    CHECK(redact_ok("\xEF\xBB\xBF{\"a\":1}") == "{\n  \"a\": 1\n}\n");
}

TEST_CASE("config::redacted_json refuses malformed documents with a located message", "[config]") {
    struct Bad {
        const char* json;
        const char* prefix;
    };
    for (const Bad& bad : {
             Bad{"", "1:1: $: "},
             Bad{"{\"a\":1,}", "1:8: $: "},
             Bad{"{\n  \"a\": [1, 2}", "2:13: $.a: expected ',' or ']'"},
             Bad{"{\"a\":1,\"a\":2}", "1:8: $.a: duplicate key"},
             Bad{"{\"a\":01}", "1:6: $.a: leading zeros"},
             Bad{"{\"a\":\"\\x\"}", "1:7: $.a: invalid escape"},
             Bad{"{\"a\":\"\xC3\"}", "1:7: $.a: invalid UTF-8"},
             Bad{"{\"a\":1} {}", "1:9: $: expected end of input"},
             Bad{"{'a':1}", "1:2: $: "},
             Bad{"{\"a\":1 // c\n}", "1:8: $: "},
             Bad{"\"just a string\"", "1:1: $: expected an object or an array"},
             Bad{"  42", "1:3: $: expected an object or an array"},
         }) {
        INFO(bad.json);
        auto r = redacted_json(bad.json);
        REQUIRE_FALSE(r.has_value());
        CHECK_THAT(r.error(), Catch::Matchers::StartsWith(bad.prefix));
    }
    std::string deep(65, '[');
    deep += std::string(65, ']');
    auto r = redacted_json(deep);
    REQUIRE_FALSE(r.has_value());
    CHECK_THAT(r.error(), Catch::Matchers::ContainsSubstring("nesting deeper than 64 levels"));
}

TEST_CASE("config::redacted_json redacts the shipped configs and changes nothing else",
          "[config]") {
    for (const auto& path : shipped_configs()) {
        INFO(path.string());
        check_redaction(read_file(path));
    }
}

TEST_CASE("config::redacted_json hides an admin token added to each shipped config", "[config]") {
    constexpr std::string_view kToken = "adm1n-s3cret-t0ken";
    for (const auto& path : shipped_configs()) {
        INFO(path.string());
        std::string text = read_file(path);
        const std::size_t open = text.find('{');
        REQUIRE(open != std::string::npos);
        // Shipped configs without an "admin" object get one; one that has it keeps its own
        // and gains a token member in it.
        const std::size_t admin = text.find("\"admin\"");
        if (admin == std::string::npos) {
            text.insert(open + 1, "\"admin\": {\"address\": \"127.0.0.1:9901\", \"token\": \"" +
                                      std::string(kToken) + "\"},");
        } else {
            const std::size_t brace = text.find('{', admin);
            REQUIRE(brace != std::string::npos);
            const std::size_t token = text.find("\"token\"", brace);
            if (token != std::string::npos && text.find('}', brace) > token) {
                const std::size_t colon = text.find(':', token);
                const std::size_t value = text.find('"', colon);
                const std::size_t end = text.find('"', value + 1);
                text.replace(value + 1, end - value - 1, kToken);
            } else {
                text.insert(brace + 1, "\"token\": \"" + std::string(kToken) + "\",");
            }
        }
        REQUIRE(text.find(kToken) != std::string::npos);
        const std::string out = redact_ok(text);
        CHECK(out.find(kToken) == std::string::npos);
        CHECK(out.find("\"token\": \"[redacted]\"") != std::string::npos);
        check_redaction(text);
    }
}

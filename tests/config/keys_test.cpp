#include "config/keys.hpp"

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <simdjson.h>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <blitz/config.hpp>

#include "helpers.hpp"

using blitz::config::test::error_of;
using blitz::config::test::with_routes;
using blitz::config::test::with_top;
using Catch::Matchers::StartsWith;

namespace {

/// Collects, for every schema object with "properties", its JSON pointer and property names.
void collect_properties(simdjson::dom::element node, const std::string& pointer,
                        std::map<std::string, std::set<std::string>>& out) {
    if (node.is_array()) {
        std::size_t i = 0;
        for (simdjson::dom::element child : node.get_array()) {
            collect_properties(child, pointer + "/" + std::to_string(i++), out);
        }
        return;
    }
    if (!node.is_object()) {
        return;
    }
    simdjson::dom::object obj = node.get_object();
    if (simdjson::dom::object props; obj["properties"].get(props) == simdjson::SUCCESS) {
        std::set<std::string>& names = out[pointer];
        for (auto field : props) {
            names.insert(std::string(field.key));
        }
        // Every schema object that lists its keys allows no others.
        bool additional = true;
        INFO(pointer);
        REQUIRE(obj["additionalProperties"].get(additional) == simdjson::SUCCESS);
        CHECK_FALSE(additional);
    }
    for (auto field : obj) {
        collect_properties(field.value, pointer + "/" + std::string(field.key), out);
    }
}

}  // namespace

TEST_CASE("config::accepted_keys and docs/config.schema.json list exactly the same keys",
          "[config]") {
    using blitz::config::ObjectKind;
    simdjson::dom::parser parser;
    simdjson::dom::element schema;
    REQUIRE(parser.load(BLITZ_SOURCE_DIR "/docs/config.schema.json").get(schema) ==
            simdjson::SUCCESS);
    std::map<std::string, std::set<std::string>> in_schema;
    collect_properties(schema, "", in_schema);

    const std::map<std::string, ObjectKind> where = {
        {"", ObjectKind::Root},
        {"/properties/log", ObjectKind::Log},
        {"/properties/buffers", ObjectKind::Buffers},
        {"/properties/shutdown", ObjectKind::Shutdown},
        {"/properties/reload", ObjectKind::Reload},
        {"/properties/admin", ObjectKind::Admin},
        {"/properties/metrics", ObjectKind::Metrics},
        {"/properties/tracing", ObjectKind::Tracing},
        {"/$defs/access_log", ObjectKind::AccessLog},
        {"/$defs/request_id", ObjectKind::RequestId},
        {"/$defs/limits", ObjectKind::Limits},
        {"/$defs/listener", ObjectKind::Listener},
        {"/$defs/http2", ObjectKind::Http2},
        {"/$defs/tls", ObjectKind::Tls},
        {"/$defs/certificate", ObjectKind::Certificate},
        {"/$defs/upstream", ObjectKind::Upstream},
        {"/$defs/endpoint", ObjectKind::Endpoint},
        {"/$defs/hash", ObjectKind::Hash},
        {"/$defs/pool", ObjectKind::Pool},
        {"/$defs/healthCheck", ObjectKind::HealthCheck},
        {"/$defs/outlierDetection", ObjectKind::Outlier},
        {"/$defs/circuitBreaker", ObjectKind::CircuitBreaker},
        {"/$defs/retryBudget", ObjectKind::RetryBudget},
        {"/$defs/dns", ObjectKind::Dns},
        {"/$defs/upstreamTls", ObjectKind::UpstreamTls},
        {"/$defs/route", ObjectKind::Route},
        {"/$defs/match", ObjectKind::Match},
        {"/$defs/matcher", ObjectKind::Matcher},
        {"/$defs/clientCertMatcher", ObjectKind::ClientCert},
        {"/$defs/certTextMatcher", ObjectKind::CertText},
        {"/$defs/respond", ObjectKind::Respond},
        {"/$defs/proxy", ObjectKind::Proxy},
        {"/$defs/retry", ObjectKind::Retry},
        {"/$defs/regexRewrite", ObjectKind::RegexRewrite},
        {"/$defs/redirect", ObjectKind::Redirect},
        {"/$defs/headersFilter", ObjectKind::Filter},
        {"/$defs/headerEdits", ObjectKind::HeaderEdits},
    };
    // Every object kind the parser knows is somewhere in the schema, and nothing else is.
    REQUIRE(where.size() == std::size(blitz::config::kObjectKinds));
    std::set<std::string> schema_objects;
    for (const auto& [pointer, names] : in_schema) {
        schema_objects.insert(pointer);
    }
    std::set<std::string> mapped;
    for (const auto& [pointer, kind] : where) {
        mapped.insert(pointer);
    }
    CHECK(schema_objects == mapped);

    for (const auto& [pointer, kind] : where) {
        INFO("schema object " << (pointer.empty() ? "(root)" : pointer));
        const std::vector<std::string_view> keys = blitz::config::accepted_keys(kind);
        const std::set<std::string> parser_keys(keys.begin(), keys.end());
        CHECK(parser_keys.size() == keys.size());
        CHECK(in_schema[pointer] == parser_keys);
    }
}

TEST_CASE("config::accepted_keys are the keys parse_config dispatches on", "[config]") {
    // Each listed key, given a value no key accepts (an array of an empty array), must fail as a
    // type error at that key, never as an unknown key.
    using blitz::config::ObjectKind;
    const std::string bad = "[[]]";
    const std::string route_head = R"({"match": {"path": "/"}, "respond": {"status": 200})";
    const auto snippet = [&](ObjectKind kind,
                             const std::string& member) -> std::pair<std::string, std::string> {
        const auto upstream_part =
            [&](const std::string& key) -> std::pair<std::string, std::string> {
            return {with_top("\"upstreams\": [{\"" + key + "\": {" + member + "}}]"),
                    "$.upstreams[0]." + key};
        };
        switch (kind) {
            case ObjectKind::Root:
                return {"{" + member + "}", "$"};
            case ObjectKind::Log:
                return {with_top("\"log\": {" + member + "}"), "$.log"};
            case ObjectKind::Buffers:
                return {with_top("\"buffers\": {" + member + "}"), "$.buffers"};
            case ObjectKind::Shutdown:
                return {with_top("\"shutdown\": {" + member + "}"), "$.shutdown"};
            case ObjectKind::Reload:
                return {with_top("\"reload\": {" + member + "}"), "$.reload"};
            case ObjectKind::Admin:
                return {with_top("\"admin\": {" + member + "}"), "$.admin"};
            case ObjectKind::Metrics:
                return {with_top("\"metrics\": {" + member + "}"), "$.metrics"};
            case ObjectKind::Tracing:
                return {with_top("\"tracing\": {" + member + "}"), "$.tracing"};
            case ObjectKind::AccessLog:
                return {"{\"listeners\": [{\"access_log\": {" + member + "}}], \"routes\": []}",
                        "$.listeners[0].access_log"};
            case ObjectKind::RequestId:
                return {"{\"listeners\": [{\"request_id\": {" + member + "}}], \"routes\": []}",
                        "$.listeners[0].request_id"};
            case ObjectKind::Limits:
                return {with_top("\"limits\": {" + member + "}"), "$.limits"};
            case ObjectKind::Listener:
                return {"{\"listeners\": [{" + member + "}], \"routes\": []}", "$.listeners[0]"};
            case ObjectKind::Http2:
                return {"{\"listeners\": [{\"http2\": {" + member + "}}], \"routes\": []}",
                        "$.listeners[0].http2"};
            case ObjectKind::Tls:
                return {"{\"listeners\": [{\"tls\": {" + member + "}}], \"routes\": []}",
                        "$.listeners[0].tls"};
            case ObjectKind::Certificate:
                return {"{\"listeners\": [{\"tls\": {\"certificates\": [{" + member +
                            "}]}}], \"routes\": []}",
                        "$.listeners[0].tls.certificates[0]"};
            case ObjectKind::Upstream:
                return {with_top("\"upstreams\": [{" + member + "}]"), "$.upstreams[0]"};
            case ObjectKind::Endpoint:
                return {with_top("\"upstreams\": [{\"endpoints\": [{" + member + "}]}]"),
                        "$.upstreams[0].endpoints[0]"};
            case ObjectKind::Hash:
                return upstream_part("hash");
            case ObjectKind::Pool:
                return upstream_part("pool");
            case ObjectKind::HealthCheck:
                return upstream_part("health_check");
            case ObjectKind::Outlier:
                return upstream_part("outlier_detection");
            case ObjectKind::CircuitBreaker:
                return upstream_part("circuit_breaker");
            case ObjectKind::RetryBudget:
                return upstream_part("retry_budget");
            case ObjectKind::Dns:
                return upstream_part("dns");
            case ObjectKind::UpstreamTls:
                return upstream_part("tls");
            case ObjectKind::Route:
                return {with_routes("{" + member + "}"), "$.routes[0]"};
            case ObjectKind::Match:
                return {with_routes("{\"match\": {" + member + "}}"), "$.routes[0].match"};
            case ObjectKind::Matcher:
                return {with_routes("{\"match\": {\"headers\": [{" + member + "}]}}"),
                        "$.routes[0].match.headers[0]"};
            case ObjectKind::ClientCert:
                return {with_routes("{\"match\": {\"client_cert\": {" + member + "}}}"),
                        "$.routes[0].match.client_cert"};
            case ObjectKind::CertText:
                return {with_routes("{\"match\": {\"client_cert\": {\"san\": {" + member + "}}}}"),
                        "$.routes[0].match.client_cert.san"};
            case ObjectKind::Respond:
                return {with_routes("{\"respond\": {" + member + "}}"), "$.routes[0].respond"};
            case ObjectKind::Proxy:
                return {with_routes("{\"proxy\": {" + member + "}}"), "$.routes[0].proxy"};
            case ObjectKind::Retry:
                return {with_routes("{\"proxy\": {\"retry\": {" + member + "}}}"),
                        "$.routes[0].proxy.retry"};
            case ObjectKind::RegexRewrite:
                return {with_routes("{\"proxy\": {\"regex_rewrite\": {" + member + "}}}"),
                        "$.routes[0].proxy.regex_rewrite"};
            case ObjectKind::Redirect:
                return {with_routes("{\"redirect\": {" + member + "}}"), "$.routes[0].redirect"};
            case ObjectKind::Filter:
                return {with_routes(route_head + ", \"filters\": [{" + member + "}]}"),
                        "$.routes[0].filters[0]"};
            case ObjectKind::HeaderEdits:
                return {
                    with_routes(route_head + ", \"filters\": [{\"request\": {" + member + "}}]}"),
                    "$.routes[0].filters[0].request"};
        }
        return {};
    };
    for (ObjectKind kind : blitz::config::kObjectKinds) {
        for (std::string_view key : blitz::config::accepted_keys(kind)) {
            const auto [json, prefix] = snippet(kind, "\"" + std::string(key) + "\": " + bad);
            INFO(json);
            const blitz::ConfigError e = error_of(json);
            // "$.log.level", or "$[\"$schema\"]" for a key that is not an identifier.
            CHECK_THAT(e.path, StartsWith(prefix + "." + std::string(key)) ||
                                   StartsWith(prefix + "[\"" + std::string(key) + "\"]"));
            CHECK_THAT(e.message, StartsWith("expected "));
        }
        const auto [json, prefix] = snippet(kind, R"("no_such_key": 1)");
        INFO(json);
        CHECK_THAT(error_of(json).message, StartsWith("unknown key \"no_such_key\""));
    }
}

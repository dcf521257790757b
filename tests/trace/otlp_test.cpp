#include <map>
#include <string>

#include <simdjson.h>
#include <catch2/catch_test_macros.hpp>

#include "trace/otlp.hpp"

using namespace blitz::trace;

namespace {

const TraceId kTrace{{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e,
                      0x0e, 0x47, 0x36}};
const SpanId kServer{{0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}};
const SpanId kClient{{0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88}};
const SpanId kRemote{{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0}};

// Attribute key -> "s:<stringValue>" or "i:<intValue>".
std::map<std::string, std::string> attributes(simdjson::dom::array list) {
    std::map<std::string, std::string> out;
    for (simdjson::dom::element a : list) {
        std::string key{std::string_view(a["key"])};
        simdjson::dom::object value = a["value"];
        REQUIRE(value.size() == 1);
        std::string_view s;
        if (value["stringValue"].get(s) == simdjson::SUCCESS) {
            out[key] = "s:" + std::string(s);
        } else {
            out[key] = "i:" + std::string(std::string_view(value["intValue"]));
        }
    }
    return out;
}

}  // namespace

TEST_CASE("trace::encode_otlp_json writes an ExportTraceServiceRequest with exact fields",
          "[trace]") {
    Batch batch(8);
    Span* server = batch.add(SpanKind::Server, "GET /users/{id}", kTrace, kServer, kRemote,
                             1700000000123456789ULL, 1700000000223456789ULL);
    REQUIRE(server != nullptr);
    batch.set(*server, attr::kHttpRequestMethod, "GET");
    batch.set(*server, attr::kUrlPath, "/users/42");
    batch.set(*server, attr::kUrlQuery, "a=1&b=\"2\"");
    batch.set(*server, attr::kUrlScheme, "https");
    batch.set(*server, attr::kHttpResponseStatusCode, std::int64_t{503});
    batch.set(*server, attr::kServerPort, std::int64_t{8443});
    batch.set(*server, attr::kHttpRoute, "users");
    server->status = http_span_status(SpanKind::Server, 503);
    Span* client = batch.add(SpanKind::Client, "GET", kTrace, kClient, kServer,
                             1700000000130000000ULL, 1700000000220000000ULL);
    REQUIRE(client != nullptr);
    batch.set(*client, attr::kServerAddress, "10.0.0.1");
    batch.set(*client, attr::kHttpResponseStatusCode, std::int64_t{-1});

    std::string json = "garbage-before:";
    std::size_t prefix = json.size();
    encode_otlp_json(json, "edge-gw", batch.spans());
    REQUIRE(json.substr(0, prefix) == "garbage-before:");  // appends

    simdjson::dom::parser parser;
    simdjson::padded_string padded(json.substr(prefix));
    simdjson::dom::element doc = parser.parse(padded);
    simdjson::dom::array resource_spans = doc["resourceSpans"];
    REQUIRE(resource_spans.size() == 1);
    auto rattrs = attributes(resource_spans.at(0)["resource"]["attributes"]);
    CHECK(rattrs["service.name"] == "s:edge-gw");
    CHECK(rattrs["telemetry.sdk.name"] == "s:blitz");
    simdjson::dom::array scope_spans = resource_spans.at(0)["scopeSpans"];
    REQUIRE(scope_spans.size() == 1);
    CHECK(std::string_view(scope_spans.at(0)["scope"]["name"]) == "blitz");
    simdjson::dom::array spans = scope_spans.at(0)["spans"];
    REQUIRE(spans.size() == 2);

    simdjson::dom::element s0 = spans.at(0);
    CHECK(std::string_view(s0["traceId"]) == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(std::string_view(s0["spanId"]) == "00f067aa0ba902b7");
    CHECK(std::string_view(s0["parentSpanId"]) == "123456789abcdef0");
    CHECK(std::string_view(s0["name"]) == "GET /users/{id}");
    CHECK(std::int64_t(s0["kind"]) == 2);
    CHECK(std::string_view(s0["startTimeUnixNano"]) == "1700000000123456789");
    CHECK(std::string_view(s0["endTimeUnixNano"]) == "1700000000223456789");
    CHECK(std::int64_t(s0["status"]["code"]) == 2);
    auto a0 = attributes(s0["attributes"]);
    CHECK(a0.size() == 7);
    CHECK(a0["http.request.method"] == "s:GET");
    CHECK(a0["url.path"] == "s:/users/42");
    CHECK(a0["url.query"] == "s:a=1&b=\"2\"");
    CHECK(a0["url.scheme"] == "s:https");
    CHECK(a0["http.response.status_code"] == "i:503");
    CHECK(a0["server.port"] == "i:8443");
    CHECK(a0["http.route"] == "s:users");

    simdjson::dom::element s1 = spans.at(1);
    CHECK(std::string_view(s1["traceId"]) == "4bf92f3577b34da6a3ce929d0e0e4736");
    CHECK(std::string_view(s1["spanId"]) == "ffeeddccbbaa9988");
    CHECK(std::string_view(s1["parentSpanId"]) == "00f067aa0ba902b7");
    CHECK(std::int64_t(s1["kind"]) == 3);
    CHECK(std::string_view(s1["startTimeUnixNano"]) == "1700000000130000000");
    // Unset status has no code field (proto3 JSON omits default values).
    CHECK(simdjson::dom::object(s1["status"]).size() == 0);
    auto a1 = attributes(s1["attributes"]);
    CHECK(a1["server.address"] == "s:10.0.0.1");
    CHECK(a1["http.response.status_code"] == "i:-1");
}

TEST_CASE("trace::encode_otlp_json omits parentSpanId of a root span and encodes no spans",
          "[trace]") {
    Batch batch(1);
    REQUIRE(batch.add(SpanKind::Server, "GET", kTrace, kServer, std::nullopt, 0, 1) != nullptr);
    std::string json;
    encode_otlp_json(json, "blitz", batch.spans());
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.parse(simdjson::padded_string(json));
    simdjson::dom::element span = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
    CHECK(span["parentSpanId"].error() == simdjson::NO_SUCH_FIELD);
    CHECK(std::string_view(span["startTimeUnixNano"]) == "0");

    std::string empty;
    encode_otlp_json(empty, "blitz", {});
    simdjson::dom::element e = parser.parse(simdjson::padded_string(empty));
    CHECK(simdjson::dom::array(e["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"]).size() == 0);
}

TEST_CASE("trace::encode_otlp_json escapes control bytes and replaces invalid UTF-8", "[trace]") {
    Batch batch(1);
    Span* s = batch.add(SpanKind::Server, "a\"b\\c\x01\n", kTrace, kServer, std::nullopt, 0, 1);
    REQUIRE(s != nullptr);
    batch.set(*s, attr::kUrlPath, "/caf\xc3\xa9/\xff\xfe/\xe2\x82/\xed\xa0\x80/\xf0\x9f\x98\x80");
    batch.set(*s, attr::kUserAgentOriginal, "\xc0\xaf");
    std::string json;
    encode_otlp_json(json, "svc\x7f", batch.spans());
    simdjson::dom::parser parser;
    // simdjson validates UTF-8, so parsing at all shows the output is well-formed.
    simdjson::dom::element doc = parser.parse(simdjson::padded_string(json));
    simdjson::dom::element span = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
    CHECK(std::string_view(span["name"]) == "a\"b\\c\x01\n");
    auto a = attributes(span["attributes"]);
    const std::string r = "\xef\xbf\xbd";  // U+FFFD
    CHECK(a["url.path"] ==
          "s:/caf\xc3\xa9/" + r + r + "/" + r + r + "/" + r + r + r + "/\xf0\x9f\x98\x80");
    CHECK(a["user_agent.original"] == "s:" + r + r);
}

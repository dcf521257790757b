#include <blitz/config.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <blitz/filters.hpp>

#include "config/load.hpp"
#include "helpers.hpp"

namespace {

using namespace std::chrono_literals;
using Catch::Matchers::StartsWith;

using blitz::config::test::error_of;
using blitz::config::test::Expected;
using blitz::config::test::kListener;
using blitz::config::test::parse_ok;
using blitz::config::test::require_error;
using blitz::config::test::ScopedEnv;
using blitz::config::test::with_routes;
using blitz::config::test::with_top;

constexpr std::string_view kComplete = R"({
  "$schema": "../docs/config.schema.json",
  "workers": 4,
  "pin_cpus": true,
  "backend": "epoll",
  "log": {"level": "debug"},
  "buffers": {"recv_buffer_bytes": 4096, "max_recv_buffers": 256},
  "limits": {"max_request_head_bytes": 8192, "max_headers": 50, "max_path_bytes": 2048,
             "max_body_bytes": 2000000, "max_requests_per_connection": 0, "max_drain_bytes": 1000,
             "idle_timeout_ms": 1500, "request_head_timeout_ms": 2500, "max_connection_age_ms": 60000},
  "listeners": [
    {"name": "public", "address": "[::]:8443", "backlog": 128, "max_connections": 500,
     "tcp_nodelay": false, "ipv6_dual_stack": false,
     "limits": {"max_headers": 20, "idle_timeout_ms": 700}},
    {"address": "127.0.0.1:0"}
  ],
  "routes": [
    {"name": "api",
     "match": {"host": "*.example.com", "path_prefix": "/v1/", "methods": ["GET", "POST"]},
     "max_body_bytes": 4096,
     "respond": {"status": 201, "body": "{}", "content_type": "application/json",
                 "headers": {"X-A": "1", "Cache-Control": "no-store"}},
     "filters": [{"type": "headers",
                  "request": {"add": {"X-Req": "r"}, "set": {"X-Set": "s"}, "remove": ["Cookie"]},
                  "response": {"add": {"X-Res": "q"}, "remove": ["Server"]}}]},
    {"match": {"path": "/healthz"}, "respond": {"status": 200, "body": "ok\n"}}
  ]
})";

}  // namespace

TEST_CASE("config::parse_config reads every key of a complete config", "[config]") {
    const blitz::Config c = parse_ok(kComplete);

    CHECK(c.server.workers == 4);
    CHECK(c.server.pin_cpus);
    CHECK(c.server.backend == blitz::Backend::Epoll);
    CHECK(c.server.recv_buffer_bytes == 4096);
    CHECK(c.server.max_recv_buffers == 256);
    CHECK(c.log_level == blitz::LogLevel::Debug);

    REQUIRE(c.listeners.size() == 2);
    const blitz::ListenerOptions& pub = c.listeners[0];
    CHECK(pub.name == "public");
    CHECK(pub.address == "[::]:8443");
    CHECK(pub.backlog == 128);
    CHECK(pub.max_connections == 500);
    CHECK_FALSE(pub.tcp_nodelay);
    CHECK_FALSE(pub.ipv6_dual_stack);
    // Listener limits override the top-level ones key by key.
    CHECK(pub.limits.max_headers == 20);
    CHECK(pub.limits.idle_timeout == 700ms);
    CHECK(pub.limits.max_request_head_bytes == 8192);
    CHECK(pub.limits.max_path_bytes == 2048);
    CHECK(pub.limits.max_body_bytes == 2000000);
    CHECK(pub.limits.max_requests_per_connection == 0);
    CHECK(pub.limits.max_drain_bytes == 1000);
    CHECK(pub.limits.request_head_timeout == 2500ms);
    CHECK(pub.limits.max_connection_age == 60000ms);

    const blitz::ListenerOptions& second = c.listeners[1];
    CHECK(second.name == "listener1");
    CHECK(second.address == "127.0.0.1:0");
    CHECK(second.limits.max_headers == 50);
    CHECK(second.limits.idle_timeout == 1500ms);

    const auto& routes = c.router.routes();
    REQUIRE(routes.size() == 2);
    const blitz::Route& api = routes[0];
    CHECK(api.name == "api");
    CHECK(api.host == "*.example.com");
    CHECK(api.path == "/v1/");
    CHECK(api.prefix);
    CHECK(api.methods == blitz::MethodSet().add(blitz::Method::Get).add(blitz::Method::Post));
    CHECK(api.max_body_bytes == 4096);
    CHECK(api.direct.status == 201);
    CHECK(api.direct.body == "{}");
    CHECK(api.direct.content_type == "application/json");
    using Fields = std::vector<std::pair<std::string, std::string>>;
    CHECK(api.direct.headers == Fields{{"X-A", "1"}, {"Cache-Control", "no-store"}});
    REQUIRE(api.filters.size() == 1);
    CHECK(dynamic_cast<blitz::filters::Headers*>(api.filters[0].get()) != nullptr);

    const blitz::Route& health = routes[1];
    CHECK(health.name == "route1");
    CHECK(health.path == "/healthz");
    CHECK_FALSE(health.prefix);
    CHECK(health.methods.empty());
    CHECK(health.direct.body == "ok\n");
    CHECK(health.direct.content_type == "text/plain; charset=utf-8");
    CHECK(health.filters.empty());

    auto table = c.router.freeze();
    REQUIRE(table.has_value());
    const blitz::RouteMatch m =
        (*table)->match("tenant.example.com", "/v1/users", blitz::Method::Post);
    REQUIRE(m.route != nullptr);
    CHECK(m.route->name == "api");
}

TEST_CASE("config::parse_config uses the documented defaults for omitted keys", "[config]") {
    const blitz::Config c =
        parse_ok(R"({"listeners": [{"address": "127.0.0.1:8080"}], "routes": []})");
    const blitz::ServerOptions so;
    CHECK(c.server.workers == 0);
    CHECK(c.server.pin_cpus == so.pin_cpus);
    CHECK(c.server.backend == blitz::Backend::Auto);
    CHECK(c.server.recv_buffer_bytes == so.recv_buffer_bytes);
    CHECK(c.server.max_recv_buffers == so.max_recv_buffers);
    CHECK(c.log_level == blitz::LogLevel::Info);
    CHECK(c.router.routes().empty());

    REQUIRE(c.listeners.size() == 1);
    const blitz::ListenerOptions lo;
    const blitz::ListenerOptions& l = c.listeners[0];
    CHECK(l.name == "listener0");
    CHECK(l.backlog == lo.backlog);
    CHECK(l.max_connections == lo.max_connections);
    CHECK(l.tcp_nodelay == lo.tcp_nodelay);
    CHECK(l.ipv6_dual_stack == lo.ipv6_dual_stack);
    const blitz::HttpLimits hl;
    CHECK(l.limits.max_request_head_bytes == hl.max_request_head_bytes);
    CHECK(l.limits.max_headers == hl.max_headers);
    CHECK(l.limits.max_path_bytes == hl.max_path_bytes);
    CHECK(l.limits.max_body_bytes == hl.max_body_bytes);
    CHECK(l.limits.max_requests_per_connection == hl.max_requests_per_connection);
    CHECK(l.limits.max_drain_bytes == hl.max_drain_bytes);
    CHECK(l.limits.idle_timeout == hl.idle_timeout);
    CHECK(l.limits.request_head_timeout == hl.request_head_timeout);
    CHECK(l.limits.max_connection_age == hl.max_connection_age);

    const blitz::Config r =
        parse_ok(with_routes(R"({"match": {"path": "/"}, "respond": {"status": 204}})"));
    REQUIRE(r.router.routes().size() == 1);
    const blitz::Route& route = r.router.routes()[0];
    CHECK(route.name == "route0");
    CHECK(route.host.empty());
    CHECK(route.methods.empty());
    CHECK(route.max_body_bytes == 0);
    CHECK(route.direct.body.empty());
    CHECK(route.direct.headers.empty());
}

TEST_CASE("config::parse_config accepts every value form of the scalar keys", "[config]") {
    CHECK(parse_ok(with_top(R"("workers": "auto")")).server.workers == 0);
    CHECK(parse_ok(with_top(R"("workers": 1024)")).server.workers == 1024);
    CHECK(parse_ok(with_top(R"("backend": "io_uring")")).server.backend == blitz::Backend::IoUring);
    CHECK(parse_ok(with_top(R"("backend": "auto")")).server.backend == blitz::Backend::Auto);
    CHECK(parse_ok(with_top(R"("log": {"level": "warn"})")).log_level == blitz::LogLevel::Warn);
    CHECK(parse_ok(with_top(R"("log": {"level": "error"})")).log_level == blitz::LogLevel::Error);
    CHECK(parse_ok(with_top(R"("buffers": {"max_recv_buffers": 65536})")).server.max_recv_buffers ==
          65536);
    const blitz::Config v6 =
        parse_ok(R"({"listeners": [{"address": "[2001:db8::1]:65535"}], "routes": []})");
    CHECK(v6.listeners[0].address == "[2001:db8::1]:65535");
    const blitz::Config any =
        parse_ok(R"({"listeners": [{"address": "0.0.0.0:80"}], "routes": []})");
    CHECK(any.listeners[0].address == "0.0.0.0:80");
    // JSON escapes are decoded before use.
    const blitz::Config esc = parse_ok(with_routes(
        R"({"match": {"path": "/caf%C3%A9"}, "respond": {"status": 200, "body": "\ud83d\ude00\t\"x\"\\"}})"));
    CHECK(esc.router.routes()[0].path == "/caf%C3%A9");
    CHECK(esc.router.routes()[0].direct.body == "\xF0\x9F\x98\x80\t\"x\"\\");
}

TEST_CASE("config::parse_config reports a type error inside nested arrays at the value",
          "[config]") {
    require_error(R"({
  "listeners": [{"address": "127.0.0.1:8080"}],
  "routes": [
    {"match": {"path": "/a"}, "respond": {"status": 200}},
    {"match": {"path": "/b", "methods": ["GET", 42]}, "respond": {"status": 200}}
  ]
}
)",
                  {"$.routes[1].match.methods[1]", 5, 49,
                   "expected a standard method (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, "
                   "TRACE, PATCH), "
                   "found 42"});
    require_error(with_routes(R"({"match": "/a", "respond": {"status": 200}})"),
                  {"$.routes[0].match", 1, 69, "expected an object, found \"/a\""});
    require_error(R"({"listeners": {"address": "127.0.0.1:8080"}, "routes": []})",
                  {"$.listeners", 1, 15, "expected an array of listener objects, found an object"});
    require_error(
        with_routes(R"({"match": {"path": 42}, "respond": {"status": 200}})"),
        {"$.routes[0].match.path", 1, 78, "expected a string starting with '/', found 42"});
    require_error(
        with_routes(R"({"match": {"path": "a"}, "respond": {"status": 200}})"),
        {"$.routes[0].match.path", 1, 78, "expected a string starting with '/', found \"a\""});
    require_error(
        with_top(R"("limits": {"idle_timeout_ms": 1.5})"),
        {"$.limits.idle_timeout_ms", 1, 92, "expected an integer from 1 to 86400000, found 1.5"});
    require_error(with_top(R"("pin_cpus": "yes")"),
                  {"$.pin_cpus", 1, 74, "expected true or false, found \"yes\""});
    require_error(with_top(R"("pin_cpus": null)"),
                  {"$.pin_cpus", 1, 74, "expected true or false, found null"});
    require_error(with_top(R"("log": {"level": 3})"),
                  {"$.log.level", 1, 79,
                   "expected one of \"debug\", \"info\", \"warn\", \"error\", found 3"});
    require_error(
        with_top(R"("backend": "uring")"),
        {"$.backend", 1, 73, "expected one of \"auto\", \"io_uring\", \"epoll\", found \"uring\""});
    require_error(with_top(R"("workers": 0)"),
                  {"$.workers", 1, 73, "expected \"auto\" or an integer from 1 to 1024, found 0"});
    require_error(
        with_top(R"("workers": 99999999999999999999999)"),
        {"$.workers", 1, 73,
         "expected \"auto\" or an integer from 1 to 1024, found 99999999999999999999999"});
    require_error(with_top(R"("buffers": {"max_recv_buffers": 100})"),
                  {"$.buffers.max_recv_buffers", 1, 94,
                   "expected a power of two from 16 to 65536, found 100"});
    require_error(with_top(R"("buffers": {"recv_buffer_bytes": 1023})"),
                  {"$.buffers.recv_buffer_bytes", 1, 95,
                   "expected an integer from 1024 to 1048576, found 1023"});
    // Long values are shortened in messages.
    const std::string long_value(100, 'x');
    const blitz::ConfigError e = error_of(with_top("\"backend\": \"" + long_value + "\""));
    CHECK(e.message ==
          "expected one of \"auto\", \"io_uring\", \"epoll\", found \"" + long_value + "\"");
    const blitz::ConfigError e2 = error_of(with_top("\"workers\": [\"" + long_value + "\"]"));
    CHECK(e2.message == "expected \"auto\" or an integer from 1 to 1024, found an array");
    const blitz::ConfigError e3 = error_of(with_top("\"workers\": \"" + long_value + "\""));
    CHECK(e3.message == "expected \"auto\" or an integer from 1 to 1024, found \"" +
                            std::string(55, 'x') + "...");
}

TEST_CASE("config::parse_config rejects an unknown key and lists the allowed ones", "[config]") {
    require_error(R"({"listeners": [{"address": "127.0.0.1:8080", "adress": "x"}], "routes": []})",
                  {"$.listeners[0].adress", 1, 46,
                   "unknown key \"adress\"; allowed keys: name, address, backlog, max_connections, "
                   "tcp_nodelay, ipv6_dual_stack, trusted_proxies, limits, http2, tls, access_log, request_id"});
    require_error(with_top(R"("wrkers": 2)"), {"$.wrkers", 1, 62,
                                               "unknown key \"wrkers\"; allowed keys: $schema, "
                                               "workers, pin_cpus, backend, log, buffers, limits, "
                                               "shutdown, reload, admin, metrics, tracing, listeners, upstreams, routes"});
    require_error(
        with_routes(R"({"match": {"path": "/", "header": "x"}, "respond": {"status": 200}})"),
        {"$.routes[0].match.header", 1, 83,
         "unknown key \"header\"; allowed keys: host, path, path_prefix, path_regex, methods, "
         "headers, query, client_cert"});
    require_error(
        with_routes(R"({"match": {"path": "/"}, "respond": {"status": 200, "X-Header": "x"}})"),
        {"$.routes[0].respond[\"X-Header\"]", 1, 111,
         "unknown key \"X-Header\"; allowed keys: status, body, content_type, headers"});
}

TEST_CASE("config::parse_config names a missing required key at its object", "[config]") {
    require_error(R"({"listeners": [{"name": "a"}], "routes": []})",
                  {"$.listeners[0]", 1, 16, "missing required key \"address\""});
    require_error(R"({"routes": []})", {"$", 1, 1, "missing required key \"listeners\""});
    require_error("\n  {" + std::string(kListener) + "}",
                  {"$", 2, 3, "missing required key \"routes\""});
    require_error(R"({"listeners": [], "routes": []})",
                  {"$.listeners", 1, 15, "expected at least one listener, found an empty array"});
    require_error(with_routes(R"({"respond": {"status": 200}})"),
                  {"$.routes[0]", 1, 59, "missing required key \"match\""});
    require_error(with_routes(R"({"match": {"path": "/"}})"),
                  {"$.routes[0]", 1, 59,
                   "missing required key \"respond\", \"upstream\", \"proxy\" or \"redirect\" "
                   "(the route's action)"});
    require_error(with_routes(R"({"match": {"path": "/"}, "respond": {"body": "x"}})"),
                  {"$.routes[0].respond", 1, 95, "missing required key \"status\""});
    require_error(with_routes(R"({"match": {"methods": ["GET"]}, "respond": {"status": 200}})"),
                  {"$.routes[0].match", 1, 69,
                   "missing required key \"path\", \"path_prefix\" or \"path_regex\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200}, "filters": [{"request": {}}]})"),
        {"$.routes[0].filters[0]", 1, 124, "missing required key \"type\""});
}

TEST_CASE("config::parse_config validates listener addresses", "[config]") {
    const std::string expected =
        "expected \"IPv4:port\" or \"[IPv6]:port\" with a numeric address and a port from 0 to "
        "65535 (e.g. \"127.0.0.1:8080\", \"[::]:8080\"), found ";
    require_error(R"({"listeners": [{"address": "localhost:8080"}], "routes": []})",
                  {"$.listeners[0].address", 1, 28, expected + "\"localhost:8080\""});
    for (const char* bad :
         {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:+80", "::1:8080",
          "[::1]8080", "[::1:8080", "[localhost]:80", "1.2.3:80", "01.2.3.4:80", "256.1.1.1:80",
          "127.0.0.1:808080", ":80", "[fe80::1%eth0]:80"}) {
        INFO(bad);
        const blitz::ConfigError e = error_of(std::string(R"({"listeners": [{"address": ")") + bad +
                                              R"("}], "routes": []})");
        CHECK(e.path == "$.listeners[0].address");
        CHECK(e.message == expected + "\"" + bad + "\"");
    }
    // A "\u0000" escape must not cut the address short.
    const blitz::ConfigError nul =
        error_of(R"({"listeners": [{"address": "127.0.0.1\u0000x:80"}], "routes": []})");
    CHECK(nul.message == expected + R"("127.0.0.1\u0000x:80")");
    for (const char* good : {"127.0.0.1:0", "[::]:80", "[::ffff:1.2.3.4]:443", "10.0.0.1:65535"}) {
        INFO(good);
        CHECK(parse_ok(std::string(R"({"listeners": [{"address": ")") + good +
                       R"("}], "routes": []})")
                  .listeners[0]
                  .address == good);
    }
}

TEST_CASE("config::parse_config validates a listener's trusted proxies", "[config]") {
    const auto listener = [](std::string_view proxies) {
        return R"({"listeners": [{"address": "127.0.0.1:1", "trusted_proxies": )" +
               std::string(proxies) + R"(}], "routes": []})";
    };
    const blitz::Config c =
        parse_ok(listener(R"(["10.0.0.0/8", "192.0.2.7", "::1", "2001:db8::/32"])"));
    CHECK(c.listeners[0].trusted_proxies ==
          std::vector<std::string>{"10.0.0.0/8", "192.0.2.7", "::1", "2001:db8::/32"});
    CHECK(parse_ok(listener("[]")).listeners[0].trusted_proxies.empty());
    const std::string expected =
        "expected an IPv4 or IPv6 address with an optional prefix length (\"10.0.0.0/8\", "
        "\"192.0.2.7\", \"2001:db8::/32\", \"::1\"), found ";
    require_error(listener(R"(["10.0.0.0/8", "10.0.0.0/33"])"),
                  {"$.listeners[0].trusted_proxies[1]", 1, 77, expected + "\"10.0.0.0/33\""});
    require_error(listener(R"(["[::1]"])"),
                  {"$.listeners[0].trusted_proxies[0]", 1, 63, expected + "\"[::1]\""});
    require_error(listener(R"(["localhost"])"),
                  {"$.listeners[0].trusted_proxies[0]", 1, 63, expected + "\"localhost\""});
    require_error(listener(R"(["10.1.2.3/8"])"),
                  {"$.listeners[0].trusted_proxies[0]", 1, 63,
                   "expected a CIDR block without host bits, found \"10.1.2.3/8\" (write "
                   "\"10.0.0.0/8\")"});
    require_error(listener(R"("10.0.0.0/8")"),
                  {"$.listeners[0].trusted_proxies", 1, 62,
                   "expected an array of addresses and CIDR blocks, found \"10.0.0.0/8\""});
}

TEST_CASE("config::parse_config rejects duplicate listener names", "[config]") {
    require_error(
        R"({"listeners": [{"address": "127.0.0.1:1", "name": "a"}, {"address": "127.0.0.1:2", "name": "a"}], "routes": []})",
        {"$.listeners[1].name", 1, 92, "duplicate listener name \"a\" (also $.listeners[0])"});
    // A default name counts too; the error then points at the unnamed listener.
    require_error(
        R"({"listeners": [{"address": "127.0.0.1:1", "name": "listener1"}, {"address": "127.0.0.1:2"}], "routes": []})",
        {"$.listeners[1].name", 1, 65,
         "duplicate listener name \"listener1\" (also $.listeners[0])"});
    require_error(R"({"listeners": [{"address": "127.0.0.1:1", "name": ""}], "routes": []})",
                  {"$.listeners[0].name", 1, 51, "expected a non-empty string, found \"\""});
}

TEST_CASE("config::parse_config validates route methods", "[config]") {
    const std::string expected =
        "expected a standard method (GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, "
        "PATCH), found ";
    require_error(
        with_routes(R"({"match": {"path": "/", "methods": ["get"]}, "respond": {"status": 200}})"),
        {"$.routes[0].match.methods[0]", 1, 95, expected + "\"get\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/", "methods": ["PURGE"]}, "respond": {"status": 200}})"),
        {"$.routes[0].match.methods[0]", 1, 95, expected + "\"PURGE\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/", "methods": ["GET", "GET"]}, "respond": {"status": 200}})"),
        {"$.routes[0].match.methods[1]", 1, 102, "duplicate method \"GET\""});
    require_error(
        with_routes(R"({"match": {"path": "/", "methods": []}, "respond": {"status": 200}})"),
        {"$.routes[0].match.methods", 1, 94,
         "expected at least one method, found an empty array (omit \"methods\" to match every "
         "method)"});
    require_error(
        with_routes(R"({"match": {"path": "/", "methods": "GET"}, "respond": {"status": 200}})"),
        {"$.routes[0].match.methods", 1, 94, "expected an array of methods, found \"GET\""});
    const blitz::Config all = parse_ok(with_routes(
        R"({"match": {"path": "/", "methods": ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]}, "respond": {"status": 200}})"));
    const blitz::MethodSet m = all.router.routes()[0].methods;
    for (blitz::Method x : {blitz::Method::Get, blitz::Method::Head, blitz::Method::Post,
                            blitz::Method::Put, blitz::Method::Delete, blitz::Method::Connect,
                            blitz::Method::Options, blitz::Method::Trace, blitz::Method::Patch}) {
        CHECK(m.contains(x));
    }
    CHECK_FALSE(m.contains(blitz::Method::Other));
}

TEST_CASE("config::parse_config validates the direct response", "[config]") {
    require_error(
        with_routes(R"({"match": {"path": "/"}, "respond": {"status": 99}})"),
        {"$.routes[0].respond.status", 1, 106, "expected an integer from 200 to 599, found 99"});
    require_error(
        with_routes(R"({"match": {"path": "/"}, "respond": {"status": 600}})"),
        {"$.routes[0].respond.status", 1, 106, "expected an integer from 200 to 599, found 600"});
    require_error(
        with_routes(R"({"match": {"path": "/"}, "respond": {"status": 101}})"),
        {"$.routes[0].respond.status", 1, 106, "expected an integer from 200 to 599, found 101"});
    require_error(with_routes(R"({"match": {"path": "/"}, "respond": {"status": "200"}})"),
                  {"$.routes[0].respond.status", 1, 106,
                   "expected an integer from 200 to 599, found \"200\""});
    require_error(
        with_routes(R"({"match": {"path": "/"}, "respond": {"status": 204, "body": "x"}})"),
        {"$.routes[0].respond", 1, 95, "a 204 response cannot have a body"});
    require_error(
        with_routes(R"({"match": {"path": "/"}, "respond": {"status": 200, "content_type": ""}})"),
        {"$.routes[0].respond.content_type", 1, 127,
         "expected a non-empty media type string (\"application/json\"), found \"\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200, "headers": {"Content-Length": "1"}}})"),
        {"$.routes[0].respond.headers[\"Content-Length\"]", 1, 123,
         "\"Content-Length\" cannot be configured: the HTTP codec writes the message framing"});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200, "headers": {"connection": "close"}}})"),
        {"$.routes[0].respond.headers.connection", 1, 123,
         "\"connection\" cannot be configured: the HTTP codec writes the message framing"});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200, "headers": {"content-type": "a/b"}}})"),
        {"$.routes[0].respond.headers[\"content-type\"]", 1, 123,
         "set the content type with \"content_type\", not in \"headers\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200, "headers": {"X A": "1"}}})"),
        {"$.routes[0].respond.headers[\"X A\"]", 1, 123,
         "expected a header name (an RFC 9110 token), found \"X A\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200, "headers": {"X-A": "a\r\nb"}}})"),
        {"$.routes[0].respond.headers[\"X-A\"]", 1, 130,
         "expected a header value without control characters (RFC 9110 §5.5), found \"a\\r\\nb\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200, "headers": {"X-A": "a\u0000"}}})"),
        {"$.routes[0].respond.headers[\"X-A\"]", 1, 130,
         "expected a header value without control characters (RFC 9110 §5.5), found \"a\\u0000\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200, "headers": {"X-A": 1}}})"),
        {"$.routes[0].respond.headers[\"X-A\"]", 1, 130,
         "expected a header value string, found 1"});
}

TEST_CASE("config::parse_config validates header filters", "[config]") {
    const std::string route =
        R"({"match": {"path": "/"}, "respond": {"status": 200}, "filters": [)";
    require_error(with_routes(route + R"({"type": "rate_limit"}]})"),
                  {"$.routes[0].filters[0].type", 1, 133,
                   "expected one of \"headers\", found \"rate_limit\""});
    require_error(
        with_routes(
            route +
            R"({"type": "headers", "response": {"set": {"Transfer-Encoding": "chunked"}}}]})"),
        {"$.routes[0].filters[0].response.set[\"Transfer-Encoding\"]", 1, 165,
         "\"Transfer-Encoding\" cannot be configured: the HTTP codec writes the message framing"});
    require_error(
        with_routes(route + R"({"type": "headers", "request": {"remove": ["Content-Length"]}}]})"),
        {"$.routes[0].filters[0].request.remove[0]", 1, 167,
         "\"Content-Length\" cannot be configured: the HTTP codec writes the message framing"});
    require_error(with_routes(route + R"({"type": "headers", "request": {"remove": "X-A"}}]})"),
                  {"$.routes[0].filters[0].request.remove", 1, 166,
                   "expected an array of header names, found \"X-A\""});
    require_error(
        with_routes(route + R"({"type": "headers", "request": {"add": {"X-A": "1\n"}}}]})"),
        {"$.routes[0].filters[0].request.add[\"X-A\"]", 1, 171,
         "expected a header value without control characters (RFC 9110 §5.5), found \"1\\n\""});
    require_error(with_routes(route + R"({"type": "headers", "request": {"append": {}}}]})"),
                  {"$.routes[0].filters[0].request.append", 1, 156,
                   "unknown key \"append\"; allowed keys: add, set, remove"});
    require_error(with_routes(route + R"(42]})"),
                  {"$.routes[0].filters[0]", 1, 124, "expected an object, found 42"});
}

TEST_CASE("config::parse_config validates route hosts and paths", "[config]") {
    const std::string host_expected =
        "expected a host name (\"api.example.com\"), a wildcard (\"*.example.com\") or a bracketed "
        "IPv6 address, "
        "without a port, found ";
    for (const char* bad :
         {"a..b", "example.com:8080", "*", "*.", "-a.com", "a b", "", "[::1", "[zz]", "*.*.a"}) {
        INFO(bad);
        const blitz::ConfigError e =
            error_of(with_routes(std::string(R"({"match": {"host": ")") + bad +
                                 R"(", "path": "/"}, "respond": {"status": 200}})"));
        CHECK(e.path == "$.routes[0].match.host");
        CHECK(e.message == host_expected + "\"" + std::string(bad) + "\"");
    }
    for (const char* good :
         {"example.com", "*.example.com", "EXAMPLE.com.", "[::1]", "svc_1.local", "10.0.0.1"}) {
        INFO(good);
        CHECK(parse_ok(with_routes(std::string(R"({"match": {"host": ")") + good +
                                   R"(", "path": "/"}, "respond": {"status": 200}})"))
                  .router.routes()[0]
                  .host == good);
    }
    require_error(with_routes(R"({"match": {"path": "/a/../b"}, "respond": {"status": 200}})"),
                  {"$.routes[0].match.path", 1, 78,
                   "expected a normalised path, found \"/a/../b\" (requests are matched after "
                   "normalisation; write "
                   "\"/b\")"});
    require_error(
        with_routes(R"({"match": {"path_prefix": "/%7euser/"}, "respond": {"status": 200}})"),
        {"$.routes[0].match.path_prefix", 1, 85,
         "expected a normalised path, found \"/%7euser/\" (requests are matched after "
         "normalisation; write "
         "\"/~user/\")"});
    require_error(
        with_routes(R"({"match": {"path": "/a?b=1"}, "respond": {"status": 200}})"),
        {"$.routes[0].match.path", 1, 78, "expected a path without '?' or '#', found \"/a?b=1\""});
    require_error(with_routes(R"({"match": {"path": "/a\\b"}, "respond": {"status": 200}})"),
                  {"$.routes[0].match.path", 1, 78,
                   "expected a valid URI path (RFC 3986 §3.3), found \"/a\\\\b\""});
    require_error(
        with_routes(
            R"({"match": {"path": "/a", "path_prefix": "/b"}, "respond": {"status": 200}})"),
        {"$.routes[0].match.path_prefix", 1, 99,
         "use only one of \"path\", \"path_prefix\" and \"path_regex\" (found \"path\" already)"});
}

TEST_CASE("config::parse_config rejects duplicate keys", "[config]") {
    require_error(
        R"({
  "listeners": [{"address": "127.0.0.1:8080"}],
  "routes": [
    {"match": {"path": "/a",
               "path": "/b"},
     "respond": {"status": 200}}
  ]
}
)",
        {"$.routes[0].match.path", 5, 16, "duplicate key \"path\" (first at line 4, column 16)"});
    // Keys are compared after unescaping.
    require_error(R"({"workers": 1, "w\u006frkers": 2})",
                  {"$.workers", 1, 16, "duplicate key \"workers\" (first at line 1, column 2)"});
    require_error(
        with_routes(
            R"({"match": {"path": "/"}, "respond": {"status": 200, "headers": {"X-A": "1", "X-A": "2"}}})"),
        {"$.routes[0].respond.headers[\"X-A\"]", 1, 135,
         "duplicate key \"X-A\" (first at line 1, column 123)"});
}

TEST_CASE("config::parse_config locates syntax errors", "[config]") {
    require_error(
        "", {"$", 1, 1, "expected a JSON object, found end of input (the document is empty)"});
    require_error(
        " \n\t\n",
        {"$", 1, 1, "expected a JSON object, found end of input (the document is empty)"});
    // Missing comma between members.
    require_error("{\n  \"listeners\": [{\"address\": \"127.0.0.1:8080\"}]\n  \"routes\": []\n}\n",
                  {"$", 3, 3, "expected ',' or '}' after the value of \"listeners\", found '\"'"});
    // Unclosed brace: reported at the end, naming where the object opened.
    require_error("{\n  \"listeners\": [{\"address\": \"127.0.0.1:8080\"}],\n  \"routes\": [\n",
                  {"$.routes[0]", 4, 1,
                   "expected a JSON value, found end of input (the array opened at line 3, column "
                   "13 is not closed)"});
    require_error("{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}], \"routes\": []",
                  {"$", 1, 60,
                   "expected ',' or '}' after the value of \"routes\", found end of input (the "
                   "object opened at "
                   "line 1, column 1 is not closed)"});
    // Trailing commas.
    require_error(
        "{\n  \"listeners\": [{\"address\": \"127.0.0.1:8080\"}],\n  \"routes\": [],\n}\n",
        {"$", 4, 1,
         "expected a quoted key after ',', found '}' (JSON does not allow a trailing comma)"});
    require_error(R"({"listeners": [{"address": "127.0.0.1:8080"},], "routes": []})",
                  {"$.listeners[1]", 1, 46,
                   "expected a value after ',', found ']' (JSON does not allow a trailing comma)"});
    // Trailing garbage after the document.
    require_error("{\"listeners\": [{\"address\": \"127.0.0.1:8080\"}], \"routes\": []}\n}\n",
                  {"$", 2, 1, "expected end of input after the top-level value, found '}'"});
    // Invalid UTF-8 (a lone continuation byte, then an overlong encoding of '/').
    require_error(
        "{\"listeners\": [{\"address\": \"127.0.0.1:8080\", \"name\": \"caf\xC3\xA9\x80\"}], "
        "\"routes\": []}",
        {"$.listeners[0].name", 1, 59, "invalid UTF-8 byte 0x80 in a string"});
    require_error("{\"a\": \"\xC0\xAF\"}", {"$.a", 1, 8, "invalid UTF-8 byte 0xC0 in a string"});
    require_error("{\"a\": \"\xED\xA0\x80\"}",
                  {"$.a", 1, 8, "invalid UTF-8 byte 0xED in a string"});
    require_error("{\"a\": 1\xFF}",
                  {"$", 1, 8, "expected ',' or '}' after the value of \"a\", found byte 0xFF"});
    // Strings.
    require_error("{\"a\": \"x\ny\"}", {"$.a", 1, 9,
                                        "expected '\"' before the end of the line (a string cannot "
                                        "span lines; write \\n for a line break)"});
    require_error(std::string("{\"a\": \"x\x01\"}"),
                  {"$.a", 1, 9, "control character U+0001 must be escaped in a string"});
    require_error(R"({"a": "\x"})",
                  {"$.a", 1, 8,
                   R"(invalid escape '\x' in a string (valid: \" \\ \/ \b \f \n \r \t \uXXXX))"});
    require_error(R"({"a": "\u12"})",
                  {"$.a", 1, 8, R"(expected 4 hex digits after '\u' in a string)"});
    require_error(R"({"a": "\ud800"})",
                  {"$.a", 1, 8, R"(unpaired UTF-16 surrogate in a \u escape)"});
    require_error(R"({"a": "\udc00\ud800"})",
                  {"$.a", 1, 8, R"(unpaired UTF-16 surrogate in a \u escape)"});
    require_error(R"({"a": "\ud800\u0041"})",
                  {"$.a", 1, 8, R"(unpaired UTF-16 surrogate in a \u escape)"});
    require_error(R"({"a": "abc)", {"$.a", 1, 11,
                                    "expected '\"' to close the string, found end of input (the "
                                    "string opened at line 1, column 7 "
                                    "is not closed)"});
    // Values that are not JSON.
    require_error(
        R"({'a': 1})",
        {"$", 1, 2,
         "expected a quoted key or '}', found a single quote (JSON strings use double quotes)"});
    require_error("{\n  // comment\n}",
                  {"$", 2, 3, "expected a quoted key or '}', found '/' (JSON has no comments)"});
    require_error(R"({"a": True})", {"$.a", 1, 7, "expected a JSON value, found 'True'"});
    require_error(R"({"a": tru})", {"$.a", 1, 7, "expected a JSON value, found 'tru'"});
    require_error(R"({"a": 01})", {"$.a", 1, 7, "leading zeros are not allowed in JSON numbers"});
    require_error(R"({"a": -})", {"$.a", 1, 8, "expected a digit after '-', found '}'"});
    require_error(R"({"a": 1.})", {"$.a", 1, 9, "expected a digit after '.', found '}'"});
    require_error(R"({"a": 1e+})", {"$.a", 1, 10, "expected a digit in the exponent, found '}'"});
    require_error(R"({"a" 1})", {"$.a", 1, 6, "expected ':' after the key \"a\", found '1'"});
    require_error(R"({"a": [1 2]})",
                  {"$.a", 1, 10, "expected ',' or ']' after an array element, found '2'"});
    require_error(R"({a: 1})", {"$", 1, 2, "expected a quoted key or '}', found 'a'"});
    require_error("[1]", {"$", 1, 1, "expected an object at the top level, found an array"});
    require_error(" \"x\" ", {"$", 1, 2, "expected an object at the top level, found \"x\""});
}

TEST_CASE("config::parse_config limits nesting to 64 levels", "[config]") {
    std::string path = "$";
    for (int i = 0; i < 64; ++i) {
        path += "[0]";
    }
    require_error(std::string(65, '[') + std::string(65, ']'),
                  {path, 1, 65, "nesting deeper than 64 levels"});
    // 64 levels pass the syntax check (and then fail for not being an object).
    CHECK(error_of(std::string(64, '[') + std::string(64, ']')).message ==
          "expected an object at the top level, found an array");
}

TEST_CASE("config::parse_config fails with a located error for every truncation of a valid config",
          "[config]") {
    // Cut anywhere, a valid document must fail as a syntax error placed within the text that
    // was read; never succeed, never point past the end.
    const std::string full(kComplete);
    const int lines = static_cast<int>(std::count(full.begin(), full.end(), '\n')) + 1;
    for (std::size_t len = 0; len < full.size(); ++len) {
        const std::string_view cut(full.data(), len);
        auto r = blitz::parse_config(cut, "cut.json");
        INFO("length " << len);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().line >= 1);
        CHECK(r.error().line <= lines);
        CHECK(r.error().column >= 1);
        CHECK_THAT(r.error().path, StartsWith("$"));
    }
    // And the whole of it parses.
    CHECK(blitz::parse_config(full).has_value());
}

TEST_CASE("config::parse_config counts columns in code points and skips a byte order mark",
          "[config]") {
    // "é" and "€" are one column each; the BOM takes no column.
    require_error("\xEF\xBB\xBF{\"$schema\": \"\xC3\xA9\xE2\x82\xAC\", \"bad\": 1}",
                  {"$.bad", 1, 20,
                   "unknown key \"bad\"; allowed keys: $schema, workers, pin_cpus, backend, log, "
                   "buffers, limits, shutdown, reload, admin, "
                   "metrics, tracing, listeners, upstreams, routes"});
    // CRLF line ends.
    require_error("{\r\n  \"workers\": 0,\r\n  \"x\": 1\r\n}",
                  {"$.workers", 2, 14, "expected \"auto\" or an integer from 1 to 1024, found 0"});
    CHECK(
        parse_ok("\xEF\xBB\xBF{" + std::string(kListener) + ", \"routes\": []}").listeners.size() ==
        1);
}

TEST_CASE("config::parse_config substitutes environment variables in strings", "[config]") {
    ScopedEnv port("BLITZ_TEST_PORT", "9000");
    ScopedEnv empty("BLITZ_TEST_EMPTY", "");
    ScopedEnv unset("BLITZ_TEST_UNSET", nullptr);
    const blitz::Config c = parse_ok(R"({
  "listeners": [{"name": "l-${BLITZ_TEST_PORT}", "address": "127.0.0.1:${BLITZ_TEST_PORT}"}],
  "routes": [
    {"match": {"path": "/${BLITZ_TEST_UNSET:-v1}/x"},
     "respond": {"status": 200,
                 "body": "[${BLITZ_TEST_EMPTY}|${BLITZ_TEST_EMPTY:-dflt}|${BLITZ_TEST_UNSET:-}|$$|$5|a$|$${X}]",
                 "headers": {"X-Port": "${BLITZ_TEST_PORT:-1}"}}}
  ]
})");
    CHECK(c.listeners[0].name == "l-9000");
    CHECK(c.listeners[0].address == "127.0.0.1:9000");
    CHECK(c.router.routes()[0].path == "/v1/x");
    CHECK(c.router.routes()[0].direct.body == "[|dflt||$|$5|a$|${X}]");
    CHECK(c.router.routes()[0].direct.headers[0].second == "9000");
}

TEST_CASE("config::parse_config reads numbers and booleans from a single environment expression",
          "[config]") {
    ScopedEnv workers("BLITZ_TEST_WORKERS", "8");
    ScopedEnv unset("BLITZ_TEST_UNSET", nullptr);
    ScopedEnv word("BLITZ_TEST_WORD", "lots");
    const blitz::Config c = parse_ok(R"({
  "workers": "${BLITZ_TEST_WORKERS}",
  "pin_cpus": "${BLITZ_TEST_UNSET:-true}",
  "listeners": [{"address": "127.0.0.1:1", "backlog": "${BLITZ_TEST_UNSET:-77}",
                 "tcp_nodelay": "${BLITZ_TEST_UNSET:-false}",
                 "limits": {"idle_timeout_ms": "${BLITZ_TEST_UNSET:-1234}"}}],
  "routes": []
})");
    CHECK(c.server.workers == 8);
    CHECK(c.server.pin_cpus);
    CHECK(c.listeners[0].backlog == 77);
    CHECK_FALSE(c.listeners[0].tcp_nodelay);
    CHECK(c.listeners[0].limits.idle_timeout == 1234ms);
    CHECK(parse_ok(with_top(R"("workers": "${BLITZ_TEST_UNSET:-auto}")")).server.workers == 0);

    require_error(with_top(R"("workers": "${BLITZ_TEST_WORD}")"),
                  {"$.workers", 1, 73,
                   "expected \"auto\" or an integer from 1 to 1024, found \"lots\" (from "
                   "\"${BLITZ_TEST_WORD}\")"});
    require_error(
        R"({"listeners": [{"address": "127.0.0.1:1", "backlog": "${BLITZ_TEST_UNSET:-0}"}], "routes": []})",
        {"$.listeners[0].backlog", 1, 54,
         "expected an integer from 1 to 65535, found \"0\" (from \"${BLITZ_TEST_UNSET:-0}\")"});
    require_error(with_top(R"("pin_cpus": "${BLITZ_TEST_WORKERS}")"),
                  {"$.pin_cpus", 1, 74,
                   "expected true or false, found \"8\" (from \"${BLITZ_TEST_WORKERS}\")"});
    // Only a string that is exactly one expression stands for a number.
    require_error(
        with_top(R"("workers": "1${BLITZ_TEST_WORKERS}")"),
        {"$.workers", 1, 73,
         "expected \"auto\" or an integer from 1 to 1024, found \"1${BLITZ_TEST_WORKERS}\""});
    require_error(
        with_top(R"("workers": " 8")"),
        {"$.workers", 1, 73, "expected \"auto\" or an integer from 1 to 1024, found \" 8\""});
    require_error(R"({"listeners": [{"address": "127.0.0.1:${BLITZ_TEST_WORD}"}], "routes": []})",
                  {"$.listeners[0].address", 1, 28,
                   "expected \"IPv4:port\" or \"[IPv6]:port\" with a numeric address and a port "
                   "from 0 to 65535 "
                   "(e.g. \"127.0.0.1:8080\", \"[::]:8080\"), found \"127.0.0.1:lots\" (from "
                   "\"127.0.0.1:${BLITZ_TEST_WORD}\")"});
}

TEST_CASE("config::parse_config reports a missing environment variable with its path", "[config]") {
    ScopedEnv unset("BLITZ_TEST_UNSET", nullptr);
    ScopedEnv empty("BLITZ_TEST_EMPTY", "");
    require_error(
        "{\n  \"listeners\": [{\"address\": \"127.0.0.1:${BLITZ_TEST_UNSET}\"}],\n  \"routes\": "
        "[]\n}",
        {"$.listeners[0].address", 2, 29,
         "environment variable BLITZ_TEST_UNSET is not set (write ${BLITZ_TEST_UNSET:-default} to "
         "give a "
         "default)"});
    require_error(with_top(R"("workers": "${BLITZ_TEST_UNSET}")"),
                  {"$.workers", 1, 73,
                   "environment variable BLITZ_TEST_UNSET is not set (write "
                   "${BLITZ_TEST_UNSET:-default} to give a "
                   "default)"});
    // Set but empty without a default expands to "", which is not a number.
    require_error(with_top(R"("workers": "${BLITZ_TEST_EMPTY}")"),
                  {"$.workers", 1, 73,
                   "expected \"auto\" or an integer from 1 to 1024, found \"\" (from "
                   "\"${BLITZ_TEST_EMPTY}\")"});
    require_error(
        with_top(R"("$schema": "x${1A}")"),
        {"$[\"$schema\"]", 1, 73,
         "expected ${NAME} or ${NAME:-default} (NAME: letters, digits, '_'), found \"${1A}\""});
    require_error(
        with_top(R"("$schema": "${A-b}")"),
        {"$[\"$schema\"]", 1, 73,
         "expected ${NAME} or ${NAME:-default} (NAME: letters, digits, '_'), found \"${A-b}\""});
    require_error(
        with_top(R"("$schema": "${A")"),
        {"$[\"$schema\"]", 1, 73, "unterminated \"${\" in \"${A\" (write $$ for a literal $)"});
}

TEST_CASE("config::ConfigError::to_string formats source, position, path and message", "[config]") {
    const blitz::ConfigError located{"blitz.json", "$.routes[2].match.path", 12, 7,
                                     "expected a string starting with '/'"};
    CHECK(located.to_string() ==
          "blitz.json:12:7: $.routes[2].match.path: expected a string starting with '/'");
    const blitz::ConfigError unlocated{"gone.json", "$", 0, 0,
                                       "cannot open the file: No such file or directory"};
    CHECK(unlocated.to_string() == "gone.json: $: cannot open the file: No such file or directory");
    CHECK(error_of(with_top(R"("workers": 0)")).to_string() ==
          "test.json:1:73: $.workers: expected \"auto\" or an integer from 1 to 1024, found 0");
    CHECK(blitz::parse_config("").error().source == "<config>");
}

TEST_CASE("config::load_config reports a file that cannot be read", "[config]") {
    const std::string missing = "/nonexistent/blitz-config-test.json";
    auto r = blitz::load_config(missing);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().source == missing);
    CHECK(r.error().path == "$");
    CHECK(r.error().line == 0);
    CHECK(r.error().message == "cannot open the file: No such file or directory");

    auto dir = blitz::load_config(BLITZ_SOURCE_DIR "/config");
    REQUIRE_FALSE(dir.has_value());
    CHECK(dir.error().message == "cannot read the file: Is a directory");

    auto syntax = blitz::load_config(BLITZ_SOURCE_DIR "/docs/config.md");
    REQUIRE_FALSE(syntax.has_value());
    CHECK(syntax.error().source == BLITZ_SOURCE_DIR "/docs/config.md");
    CHECK(syntax.error().line == 1);
    CHECK(syntax.error().column == 1);
}

TEST_CASE("config::load_config loads the bundled default config", "[config]") {
    auto r = blitz::load_config(BLITZ_SOURCE_DIR "/config/blitzd.json");
    if (!r) {
        FAIL(r.error().to_string());
    }
    const blitz::Config& c = *r;
    CHECK(c.server.workers == 0);
    REQUIRE(c.listeners.size() == 1);
    CHECK(c.listeners[0].name == "default");
    CHECK(c.listeners[0].address == "127.0.0.1:8080");
    auto table = c.router.freeze();
    REQUIRE(table.has_value());
    const auto find = [&](std::string_view path) {
        return (*table)->match("localhost:8080", path, blitz::Method::Get).route;
    };
    REQUIRE(find("/healthz") != nullptr);
    CHECK(find("/healthz")->direct.status == 200);
    CHECK(find("/healthz")->direct.body == "ok\n");
    REQUIRE(find("/") != nullptr);
    CHECK_THAT(find("/")->direct.body, Catch::Matchers::ContainsSubstring("/healthz"));
    CHECK(find("/")->filters.size() == 1);
    REQUIRE(find("/hello") != nullptr);
    CHECK(find("/hello")->direct.body == "{\"message\":\"Hello from Blitz\"}\n");
    CHECK(find("/hello")->direct.content_type == "application/json");
    CHECK(find("/nothing-here") == nullptr);
}

TEST_CASE("config::load loads every example config without opening the files it names",
          "[config]") {
    // tls.json names certificates in /etc/blitz, which this machine need not have: every key is
    // still read and checked, only the files are not opened.
    std::size_t count = 0;
    for (const auto& entry :
         std::filesystem::directory_iterator(BLITZ_SOURCE_DIR "/config/examples")) {
        if (entry.path().extension() != ".json") {
            continue;
        }
        ++count;
        INFO(entry.path().string());
        auto r = blitz::config::load(entry.path().string(), false);
        if (!r) {
            FAIL(r.error().to_string());
        }
        CHECK_FALSE(r->listeners.empty());
        CHECK(r->router.freeze().has_value());
    }
    CHECK(count >= 4);
}

TEST_CASE("config::load_config loads the gRPC example with an HTTP/2 upstream", "[config]") {
    ScopedEnv port("BLITZ_PORT", nullptr);
    ScopedEnv greeter("BLITZ_GREETER", nullptr);
    auto r = blitz::load_config(BLITZ_SOURCE_DIR "/config/examples/grpc.json");
    if (!r) {
        FAIL(r.error().to_string());
    }
    const blitz::Config& c = *r;
    REQUIRE(c.upstreams.size() == 1);
    CHECK(c.upstreams[0]->options().protocol == blitz::UpstreamProtocol::Http2);
    CHECK(c.upstreams[0]->options().endpoints[0].address == "127.0.0.1:50051");
    auto table = c.router.freeze();
    REQUIRE(table.has_value());
    std::vector<blitz::Header> fields = {{"content-type", "application/grpc"}};
    blitz::Request call;
    call.method = blitz::Method::Post;
    call.authority = "localhost";
    call.path = "/helloworld.Greeter/SayHello";
    call.headers = blitz::Headers(fields);
    const blitz::Route* route = (*table)->match(call).route;
    REQUIRE(route != nullptr);
    CHECK(route->proxy.upstream == c.upstreams[0]);
    // Not a gRPC call (no content-type): no route.
    CHECK((*table)->match("localhost", "/helloworld.Greeter/SayHello", blitz::Method::Post).route == nullptr);
}

TEST_CASE("config::load_config loads the proxy example with its upstreams", "[config]") {
    ScopedEnv port("BLITZ_PORT", nullptr);
    auto r = blitz::load_config(BLITZ_SOURCE_DIR "/config/examples/proxy.json");
    if (!r) {
        FAIL(r.error().to_string());
    }
    const blitz::Config& c = *r;
    REQUIRE(c.upstreams.size() == 2);
    CHECK(c.upstreams[0]->options().name == "api");
    CHECK(c.upstreams[1]->options().balance == blitz::Balance::Maglev);
    CHECK(c.listeners[0].trusted_proxies.size() == 2);
    auto table = c.router.freeze();
    REQUIRE(table.has_value());
    const auto find = [&](std::string_view path) {
        return (*table)->match("example.com", path, blitz::Method::Get).route;
    };
    REQUIRE(find("/api/v1/users") != nullptr);
    CHECK(find("/api/v1/users")->proxy.upstream == c.upstreams[0]);
    // The priority puts the regex route above the longer prefix route.
    REQUIRE(find("/api/v1/admin/x") != nullptr);
    CHECK(find("/api/v1/admin/x")->name == "admin-blocked");
    REQUIRE(find("/docs/v1/intro") != nullptr);
    CHECK(find("/docs/v1/intro")->redirect.has_value());
    REQUIRE(find("/login") != nullptr);
    CHECK(find("/login")->proxy.upstream == c.upstreams[1]);
}

TEST_CASE("config::parse accepts the full example in docs/config.md (its files unopened)",
          "[config]") {
    std::FILE* f = std::fopen(BLITZ_SOURCE_DIR "/docs/config.md", "rb");
    REQUIRE(f != nullptr);
    std::string doc;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) {
        doc.append(buf, n);
    }
    std::fclose(f);
    const std::size_t section = doc.find("## Full example");
    REQUIRE(section != std::string::npos);
    const std::size_t start = doc.find("```json\n", section);
    REQUIRE(start != std::string::npos);
    const std::size_t end = doc.find("\n```", start + 8);
    REQUIRE(end != std::string::npos);
    ScopedEnv workers("BLITZ_WORKERS", nullptr);
    ScopedEnv port("PORT", nullptr);
    auto r = blitz::config::parse(std::string_view(doc).substr(start + 8, end - start - 8),
                                  "config.md", blitz::config::FileRules{"", false});
    if (!r) {
        FAIL(r.error().to_string());
    }
    const blitz::Config& c = *r;
    CHECK(c.listeners.size() == 3);
    CHECK(c.listeners[0].address == "[::]:8080");
    CHECK_FALSE(c.listeners[0].tls.has_value());
    REQUIRE(c.listeners[2].tls.has_value());
    CHECK(c.listeners[2].tls->certificates.size() == 2);
    CHECK(c.listeners[2].tls->alpn == std::vector<std::string>{"h2", "http/1.1"});
    CHECK(c.listeners[2].http2.enabled);
    CHECK(c.listeners[2].http2.zero_window_timeout == 30'000ms);
    CHECK(c.upstreams.size() == 2);
    CHECK(c.upstreams[0]->options().tls.enabled);
    CHECK(c.router.routes().size() == 7);
}

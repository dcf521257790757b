#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <blitz/config.hpp>
#include <blitz/router.hpp>

#include "helpers.hpp"

namespace {

using namespace std::chrono_literals;
using blitz::MatchKind;
using blitz::Route;
using blitz::config::test::error_of;
using blitz::config::test::kListener;
using blitz::config::test::parse_ok;
using blitz::config::test::require_error_at;
using blitz::config::test::ScopedEnv;

constexpr std::string_view kUpstreams =
    R"("upstreams": [{"name": "api", "endpoints": ["127.0.0.1:9001"]}, {"name": "web", "endpoints": ["127.0.0.1:9002"]}])";

/// A document with the standard listener, the upstreams "api" and "web", and `routes`.
std::string proxied(std::string_view routes) {
    return "{" + std::string(kListener) + ", " + std::string(kUpstreams) + ", \"routes\": [" +
           std::string(routes) + "]}";
}

/// A document with one proxy route to "api" whose "proxy" object also has `members`.
std::string proxy_with(std::string_view members) {
    return proxied(R"({"match": {"path_prefix": "/"}, "proxy": {"upstream": "api", )" +
                   std::string(members) + "}}");
}

/// A document with one redirect route on `match` whose "redirect" object is `redirect`.
std::string redirect_with(std::string_view redirect,
                          std::string_view match = R"({"path_prefix": "/old/"})") {
    return proxied(R"({"match": )" + std::string(match) + R"(, "redirect": )" +
                   std::string(redirect) + "}");
}

/// A document with one route matching `matchers` (members of "match" besides the path).
std::string matching(std::string_view matchers) {
    return proxied(R"({"match": {"path": "/", )" + std::string(matchers) +
                   R"(}, "respond": {"status": 200}})");
}

constexpr std::string_view kProxyRoutes = R"json({
  "listeners": [{"address": "127.0.0.1:8080"}],
  "routes": [
    {"name": "api", "priority": 7,
     "match": {"host": "api.example.com", "path_prefix": "/v1/", "methods": ["GET"],
               "headers": [{"name": "X-Env", "exact": "prod"}, {"name": "X-Canary", "present": true},
                           {"name": "X-Debug", "absent": true}, {"name": "User-Agent", "prefix": "curl/"},
                           {"name": "X-Id", "regex": "[0-9]+"}],
               "query": [{"name": "v", "exact": "2"}, {"name": "debug mode", "absent": true}]},
     "request_headers": {"add": {"X-A": "1"}, "set": {"X-B": "2"}, "remove": ["X-C"]},
     "response_headers": {"remove": ["Server"]},
     "proxy": {"upstream": "api", "timeout_ms": 30000, "per_try_timeout_ms": 2000, "idle_timeout_ms": 0,
               "retry": {"max_retries": 3, "on": ["connect_failure", "per_try_timeout", 429, "gateway_error", 503],
                         "non_idempotent": true, "backoff_base_ms": 0, "backoff_max_ms": 100},
               "prefix_rewrite": "/", "host_rewrite": "api.internal:8080",
               "forwarded_headers": false, "via": false}},
    {"name": "users", "match": {"path_regex": "/u/[0-9]+"}, "upstream": "web"},
    {"name": "rewrite", "match": {"path": "/r/x"},
     "proxy": {"upstream": "web", "regex_rewrite": {"pattern": "/r/(.*)", "substitution": "/s/\\1"}}},
    {"name": "moved", "match": {"path_prefix": "/old/"},
     "redirect": {"status": 308, "scheme": "https", "host": "new.example.com", "prefix_rewrite": "/new/",
                  "strip_query": true}},
    {"name": "one", "match": {"path": "/x"}, "redirect": {"path": "/y"}}
  ],
  "upstreams": [{"name": "api", "endpoints": ["127.0.0.1:9001"]},
                {"name": "web", "endpoints": ["127.0.0.1:9002"]}]
})json";

}  // namespace

TEST_CASE("config::parse_config reads proxy routes, matchers, header edits and redirects",
          "[config]") {
    const blitz::Config c = parse_ok(kProxyRoutes);
    REQUIRE(c.upstreams.size() == 2);
    const auto& routes = c.router.routes();
    REQUIRE(routes.size() == 5);

    const blitz::Route& api = routes[0];
    CHECK(api.priority == 7);
    REQUIRE(api.headers.size() == 5);
    CHECK(api.headers[0].name == "X-Env");
    CHECK(api.headers[0].kind == MatchKind::Exact);
    CHECK(api.headers[0].value == "prod");
    CHECK(api.headers[1].kind == MatchKind::Present);
    CHECK(api.headers[2].kind == MatchKind::Absent);
    CHECK(api.headers[3].kind == MatchKind::Prefix);
    CHECK(api.headers[3].value == "curl/");
    CHECK(api.headers[4].kind == MatchKind::Regex);
    CHECK(api.headers[4].value == "[0-9]+");
    REQUIRE(api.query.size() == 2);
    CHECK(api.query[0].name == "v");
    CHECK(api.query[0].kind == MatchKind::Exact);
    CHECK(api.query[0].value == "2");
    CHECK(api.query[1].name == "debug mode");
    CHECK(api.query[1].kind == MatchKind::Absent);
    using Fields = std::vector<std::pair<std::string, std::string>>;
    CHECK(api.request_headers.add == Fields{{"X-A", "1"}});
    CHECK(api.request_headers.set == Fields{{"X-B", "2"}});
    CHECK(api.request_headers.remove == std::vector<std::string>{"X-C"});
    CHECK(api.response_headers.remove == std::vector<std::string>{"Server"});
    CHECK(api.response_headers.add.empty());
    // Upstreams may be defined after the routes that use them.
    CHECK(api.proxy.upstream == c.upstreams[0]);
    CHECK(api.proxy.timeout == 30000ms);
    CHECK(api.proxy.per_try_timeout == 2000ms);
    CHECK(api.proxy.idle_timeout == 0ms);
    CHECK(api.proxy.retry.max_retries == 3);
    CHECK(api.proxy.retry.on_connect_failure);
    CHECK_FALSE(api.proxy.retry.on_reset);
    CHECK(api.proxy.retry.on_per_try_timeout);
    CHECK(api.proxy.retry.on_statuses == std::vector<int>{429, 502, 503, 504});
    CHECK(api.proxy.retry.non_idempotent);
    CHECK(api.proxy.retry.backoff_base == 0ms);
    CHECK(api.proxy.retry.backoff_max == 100ms);
    CHECK(api.proxy.prefix_rewrite == "/");
    CHECK(api.proxy.regex_rewrite.empty());
    CHECK(api.proxy.host_rewrite == "api.internal:8080");
    CHECK_FALSE(api.proxy.forwarded_headers);
    CHECK_FALSE(api.proxy.via);
    CHECK_FALSE(api.redirect.has_value());

    const blitz::Route& users = routes[1];
    CHECK(users.path_regex == "/u/[0-9]+");
    CHECK_FALSE(users.prefix);
    CHECK(users.priority == 0);
    CHECK(users.proxy.upstream == c.upstreams[1]);
    // The shorthand takes every ProxyAction default: no total timeout, streaming-friendly.
    const blitz::ProxyAction defaults;
    CHECK(users.proxy.timeout == 0ms);
    CHECK(users.proxy.per_try_timeout == 15000ms);
    CHECK(users.proxy.idle_timeout == 60000ms);
    CHECK(users.proxy.retry.max_retries == defaults.retry.max_retries);
    CHECK(users.proxy.retry.on_statuses == std::vector<int>{502, 503, 504});
    CHECK(users.proxy.retry.on_reset);
    CHECK_FALSE(users.proxy.retry.non_idempotent);
    CHECK(users.proxy.forwarded_headers);
    CHECK(users.proxy.via);

    const blitz::Route& rewrite = routes[2];
    CHECK(rewrite.proxy.upstream == c.upstreams[1]);
    CHECK(rewrite.proxy.regex_rewrite == "/r/(.*)");
    CHECK(rewrite.proxy.regex_substitution == "/s/\\1");

    const blitz::Route& moved = routes[3];
    CHECK(moved.proxy.upstream == nullptr);
    REQUIRE(moved.redirect.has_value());
    CHECK(moved.redirect->status == 308);
    CHECK(moved.redirect->scheme == "https");
    CHECK(moved.redirect->host == "new.example.com");
    CHECK(moved.redirect->path.empty());
    CHECK(moved.redirect->prefix_rewrite == "/new/");
    CHECK(moved.redirect->strip_query);

    const blitz::Route& one = routes[4];
    REQUIRE(one.redirect.has_value());
    CHECK(one.redirect->status == 302);
    CHECK(one.redirect->path == "/y");
    CHECK(one.redirect->scheme.empty());
    CHECK_FALSE(one.redirect->strip_query);

    auto table = c.router.freeze();
    REQUIRE(table.has_value());
}

TEST_CASE("config::parse_config expands retry conditions", "[config]") {
    ScopedEnv status("BLITZ_TEST_STATUS", "504");
    const auto on = [](std::string_view list) {
        return parse_ok(proxy_with(R"("retry": {"on": )" + std::string(list) + "}"))
            .router.routes()[0]
            .proxy.retry;
    };
    const blitz::RetryPolicy all = on(R"(["5xx", "reset", 502])");
    CHECK(all.on_statuses.size() == 100);
    CHECK(all.on_statuses.front() == 500);
    CHECK(all.on_statuses.back() == 599);
    CHECK(all.on_reset);
    CHECK_FALSE(all.on_connect_failure);
    CHECK_FALSE(all.on_per_try_timeout);
    const blitz::RetryPolicy none = on("[]");
    CHECK(none.on_statuses.empty());
    CHECK_FALSE(none.on_reset);
    CHECK_FALSE(none.on_connect_failure);
    CHECK(on(R"(["${BLITZ_TEST_STATUS}"])").on_statuses == std::vector<int>{504});
}

TEST_CASE("config::parse_config validates path_regex and the match keys beside it", "[config]") {
    std::string j = matching(R"("path_regex": "/a")");
    require_error_at(j, "\"/a\"", "$.routes[0].match.path_regex",
                     "use only one of \"path\", \"path_prefix\" and \"path_regex\" (found "
                     "\"path\" already)");
    j = proxied(R"({"match": {"path_regex": ""}, "respond": {"status": 200}})");
    require_error_at(j, "\"\"", "$.routes[0].match.path_regex",
                     "expected a non-empty string, found \"\"");
    j = proxied(R"({"match": {"path_regex": 5}, "respond": {"status": 200}})");
    require_error_at(j, "5}", "$.routes[0].match.path_regex",
                     "expected a non-empty string, found 5");
}

TEST_CASE("config::parse_config reports a regex the router refuses at its route", "[config]") {
    // Router::freeze() compiles the patterns; its error is placed at the route it names.
    const std::string j = proxied(
        R"({"match": {"path": "/"}, "respond": {"status": 200}}, {"name": "bad", "match": {"path_regex": "/(a"}, "respond": {"status": 200}})");
    const blitz::ConfigError e = error_of(j);
    CHECK(e.path == "$.routes[1]");
    CHECK(e.line == 1);
    CHECK(static_cast<std::size_t>(e.column) == j.find("{\"name\": \"bad\"") + 1);
    CHECK_THAT(e.message, Catch::Matchers::StartsWith("route \"bad\" (#1)"));

    const std::string h = matching(R"("headers": [{"name": "X-A", "regex": "[z-a]"}])");
    const blitz::ConfigError eh = error_of(h);
    CHECK(eh.path == "$.routes[0]");
    CHECK_THAT(eh.message, Catch::Matchers::StartsWith("route \"route0\" (#0)"));
}

TEST_CASE("config::parse_config validates header and query matchers", "[config]") {
    std::string j = matching(R"("headers": {"name": "X-A"})");
    require_error_at(j, "{\"name\": \"X-A\"}", "$.routes[0].match.headers",
                     "expected an array of matcher objects, found an object");
    j = matching(R"("headers": [])");
    require_error_at(j, "[]", "$.routes[0].match.headers",
                     "expected at least one matcher, found an empty array (omit \"headers\" to "
                     "match any)");
    j = matching(R"("query": [])");
    require_error_at(j, "[]", "$.routes[0].match.query",
                     "expected at least one matcher, found an empty array (omit \"query\" to match "
                     "any)");
    j = matching(R"("headers": [{"exact": "x"}])");
    require_error_at(j, "{\"exact\"", "$.routes[0].match.headers[0]",
                     "missing required key \"name\"");
    j = matching(R"("headers": [{"name": "X-A"}])");
    require_error_at(j, "{\"name\": \"X-A\"", "$.routes[0].match.headers[0]",
                     "missing required key \"exact\", \"prefix\", \"suffix\", \"regex\", "
                     "\"present\" or \"absent\"");
    j = matching(R"("headers": [{"name": "X-A", "exact": "1", "regex": "1"}])");
    require_error_at(j, "\"1\"}", "$.routes[0].match.headers[0].regex",
                     "use only one of \"exact\", \"prefix\", \"suffix\", \"regex\", "
                     "\"present\" and \"absent\" (found \"exact\" already)");
    j = matching(R"("headers": [{"name": "X A", "present": true}])");
    require_error_at(j, "\"X A\"", "$.routes[0].match.headers[0].name",
                     "expected a header name (an RFC 9110 token), found \"X A\"");
    j = matching(R"("headers": [{"name": "X-A", "present": false}])");
    require_error_at(j, "false", "$.routes[0].match.headers[0].present",
                     "expected true, found false (write \"absent\": true for the opposite)");
    j = matching(R"("headers": [{"name": "X-A", "absent": "yes"}])");
    require_error_at(j, "\"yes\"", "$.routes[0].match.headers[0].absent",
                     "expected true or false, found \"yes\"");
    j = matching(R"("headers": [{"name": "X-A", "prefix": ""}])");
    require_error_at(j, "\"\"", "$.routes[0].match.headers[0].prefix",
                     "expected a non-empty string, found \"\"");
    j = matching(R"("headers": [{"name": "X-A", "regex": ""}])");
    require_error_at(j, "\"\"", "$.routes[0].match.headers[0].regex",
                     "expected a non-empty RE2 pattern, found \"\"");
    j = matching(R"("headers": [{"name": "X-A", "exact": "a\nb"}])");
    require_error_at(j, "\"a\\nb\"", "$.routes[0].match.headers[0].exact",
                     "expected a header value without control characters (RFC 9110 §5.5), found "
                     "\"a\\nb\"");
    j = matching(R"("headers": [{"name": "X-A", "equals": "1"}])");
    require_error_at(j, "\"equals\"", "$.routes[0].match.headers[0].equals",
                     "unknown key \"equals\"; allowed keys: name, exact, prefix, suffix, regex, "
                     "present, absent");
    j = matching(R"("query": [{"name": "", "present": true}])");
    require_error_at(j, "\"\"", "$.routes[0].match.query[0].name",
                     "expected a non-empty string, found \"\"");
    // A query value is compared after percent-decoding, so any characters may be matched.
    const blitz::Config c = parse_ok(matching(R"("query": [{"name": "q", "exact": "a\tb"}])"));
    CHECK(c.router.routes()[0].query[0].value == "a\tb");
}

TEST_CASE("config::parse_config reads suffix header and query matchers", "[config]") {
    const blitz::Config c = parse_ok(matching(
        R"("headers": [{"name": "X-A", "suffix": ".internal"}], "query": [{"name": "f", "suffix": ".gz"}])"));
    const Route& r = c.router.routes()[0];
    REQUIRE(r.headers.size() == 1);
    CHECK(r.headers[0].kind == MatchKind::Suffix);
    CHECK(r.headers[0].value == ".internal");
    REQUIRE(r.query.size() == 1);
    CHECK(r.query[0].kind == MatchKind::Suffix);
    CHECK(r.query[0].value == ".gz");
}

TEST_CASE("config::parse_config reads client_cert matchers", "[config]") {
    const blitz::Config c = parse_ok(matching(
        R"("client_cert": {"presented": true, "verified": false, "subject": {"regex": "CN=[a-z]+"}, "san": {"suffix": ".example.com"}})"));
    const Route& r = c.router.routes()[0];
    REQUIRE(r.client_cert.has_value());
    CHECK(r.client_cert->presented == std::optional<bool>(true));
    CHECK(r.client_cert->verified == std::optional<bool>(false));
    REQUIRE(r.client_cert->subject.has_value());
    CHECK(r.client_cert->subject->kind == MatchKind::Regex);
    CHECK(r.client_cert->subject->value == "CN=[a-z]+");
    REQUIRE(r.client_cert->san.has_value());
    CHECK(r.client_cert->san->kind == MatchKind::Suffix);
    CHECK(r.client_cert->san->value == ".example.com");

    const blitz::Config only_absent =
        parse_ok(matching(R"("client_cert": {"san": {"absent": true}})"));
    const Route& a = only_absent.router.routes()[0];
    REQUIRE(a.client_cert.has_value());
    CHECK_FALSE(a.client_cert->presented.has_value());
    CHECK_FALSE(a.client_cert->subject.has_value());
    REQUIRE(a.client_cert->san.has_value());
    CHECK(a.client_cert->san->kind == MatchKind::Absent);
    CHECK(a.client_cert->san->value.empty());

    CHECK_FALSE(parse_ok(matching(R"("headers": [{"name": "X-A", "present": true}])"))
                    .router.routes()[0]
                    .client_cert.has_value());
}

TEST_CASE("config::parse_config validates client_cert matchers", "[config]") {
    std::string j = matching(R"("client_cert": {})");
    require_error_at(j, "{}", "$.routes[0].match.client_cert",
                     "expected at least one of \"presented\", \"verified\", \"subject\" and "
                     "\"san\" (omit \"client_cert\" to match any)");
    j = matching(R"("client_cert": true)");
    require_error_at(j, "true", "$.routes[0].match.client_cert", "expected an object, found true");
    j = matching(R"("client_cert": {"presented": "yes"})");
    require_error_at(j, "\"yes\"", "$.routes[0].match.client_cert.presented",
                     "expected true or false, found \"yes\"");
    j = matching(R"("client_cert": {"subject": {}})");
    require_error_at(j, "{}", "$.routes[0].match.client_cert.subject",
                     "missing required key \"exact\", \"prefix\", \"suffix\", \"regex\", "
                     "\"present\" or \"absent\"");
    j = matching(R"("client_cert": {"san": {"exact": "a", "prefix": "b"}})");
    require_error_at(j, "\"b\"", "$.routes[0].match.client_cert.san.prefix",
                     "use only one of \"exact\", \"prefix\", \"suffix\", \"regex\", "
                     "\"present\" and \"absent\" (found \"exact\" already)");
    j = matching(R"("client_cert": {"san": {"name": "x", "exact": "a"}})");
    require_error_at(j, "\"name\": \"x\"", "$.routes[0].match.client_cert.san.name",
                     "unknown key \"name\"; allowed keys: exact, prefix, suffix, regex, present, "
                     "absent");
    j = matching(R"("client_cert": {"san": {"suffix": ""}})");
    require_error_at(j, "\"\"", "$.routes[0].match.client_cert.san.suffix",
                     "expected a non-empty string, found \"\"");
    j = matching(R"("client_cert": {"subject": {"absent": false}})");
    require_error_at(j, "false", "$.routes[0].match.client_cert.subject.absent",
                     "expected true, found false (write \"present\": true for the opposite)");
    j = matching(R"("client_cert": {"issuer": {"exact": "a"}})");
    require_error_at(j, "\"issuer\"", "$.routes[0].match.client_cert.issuer",
                     "unknown key \"issuer\"; allowed keys: presented, verified, subject, san");
    // The router compiles the regex; its error is placed at the route.
    const blitz::ConfigError e = error_of(matching(R"("client_cert": {"san": {"regex": "(a"}})"));
    CHECK(e.path == "$.routes[0]");
    CHECK_THAT(e.message, Catch::Matchers::ContainsSubstring("client_cert san: regex \"(a\""));
}

TEST_CASE("config::parse_config validates route priority", "[config]") {
    const auto with_priority = [](std::string_view p) {
        return proxied(R"({"priority": )" + std::string(p) +
                       R"(, "match": {"path": "/"}, "respond": {"status": 200}})");
    };
    CHECK(parse_ok(with_priority("-2147483648")).router.routes()[0].priority == INT32_MIN);
    CHECK(parse_ok(with_priority("2147483647")).router.routes()[0].priority == INT32_MAX);
    std::string j = with_priority("2147483648");
    require_error_at(j, "2147483648", "$.routes[0].priority",
                     "expected an integer from -2147483648 to 2147483647, found 2147483648");
    j = with_priority("1.5");
    require_error_at(j, "1.5", "$.routes[0].priority",
                     "expected an integer from -2147483648 to 2147483647, found 1.5");
}

TEST_CASE("config::parse_config requires exactly one action per route", "[config]") {
    std::string j =
        proxied(R"({"match": {"path": "/"}, "respond": {"status": 200}, "upstream": "api"})");
    require_error_at(j, "\"api\"}", "$.routes[0].upstream",
                     "a route has one action: \"upstream\" cannot be combined with \"respond\"");
    j = proxied(R"({"match": {"path": "/"}, "upstream": "api", "redirect": {"path": "/b"}})");
    require_error_at(j, "{\"path\": \"/b\"}", "$.routes[0].redirect",
                     "a route has one action: \"redirect\" cannot be combined with \"upstream\"");
    j = proxied(
        R"({"match": {"path": "/"}, "redirect": {"path": "/b"}, "proxy": {"upstream": "api"}})");
    require_error_at(j, "{\"upstream\"", "$.routes[0].proxy",
                     "a route has one action: \"proxy\" cannot be combined with \"redirect\"");
}

TEST_CASE("config::parse_config resolves upstream names and lists the known ones", "[config]") {
    std::string j = proxied(R"({"match": {"path": "/"}, "upstream": "apl"})");
    require_error_at(j, "\"apl\"", "$.routes[0].upstream",
                     "unknown upstream \"apl\"; known upstreams: \"api\", \"web\"");
    j = proxied(R"({"match": {"path": "/"}, "proxy": {"upstream": "nope"}})");
    require_error_at(j, "\"nope\"", "$.routes[0].proxy.upstream",
                     "unknown upstream \"nope\"; known upstreams: \"api\", \"web\"");
    j = "{" + std::string(kListener) +
        R"(, "routes": [{"match": {"path": "/"}, "upstream": "api"}]})";
    require_error_at(j, "\"api\"", "$.routes[0].upstream",
                     "unknown upstream \"api\"; no upstreams are defined (add them to "
                     "\"upstreams\")");
    j = proxied(R"({"match": {"path": "/"}, "upstream": ""})");
    require_error_at(j, "\"\"", "$.routes[0].upstream", "expected a non-empty string, found \"\"");
    j = proxied(R"({"match": {"path": "/"}, "proxy": {"timeout_ms": 5}})");
    require_error_at(j, "{\"timeout_ms\"", "$.routes[0].proxy",
                     "missing required key \"upstream\"");
    // Two routes may share an upstream.
    const blitz::Config c = parse_ok(proxied(
        R"({"match": {"path": "/a"}, "upstream": "web"}, {"match": {"path": "/b"}, "proxy": {"upstream": "web"}})"));
    CHECK(c.router.routes()[0].proxy.upstream == c.router.routes()[1].proxy.upstream);
    CHECK(c.router.routes()[0].proxy.upstream == c.upstreams[1]);
}

TEST_CASE("config::parse_config validates proxy timeouts and retries", "[config]") {
    std::string j = proxy_with(R"("timeout_ms": -1)");
    require_error_at(j, "-1", "$.routes[0].proxy.timeout_ms",
                     "expected an integer from 0 to 86400000, found -1");
    j = proxy_with(R"("per_try_timeout_ms": 86400001)");
    require_error_at(j, "86400001", "$.routes[0].proxy.per_try_timeout_ms",
                     "expected an integer from 0 to 86400000, found 86400001");
    j = proxy_with(R"("idle_timeout_ms": true)");
    require_error_at(j, "true", "$.routes[0].proxy.idle_timeout_ms",
                     "expected an integer from 0 to 86400000, found true");
    j = proxy_with(R"("retry": {"max_retries": 101})");
    require_error_at(j, "101", "$.routes[0].proxy.retry.max_retries",
                     "expected an integer from 0 to 100, found 101");
    const std::string on_expected =
        "expected \"connect_failure\", \"reset\", \"per_try_timeout\", \"5xx\", \"gateway_error\" "
        "or a status code from 400 to 599, found ";
    j = proxy_with(R"("retry": {"on": ["reset", "timeout"]})");
    require_error_at(j, "\"timeout\"", "$.routes[0].proxy.retry.on[1]",
                     on_expected + "\"timeout\"");
    j = proxy_with(R"("retry": {"on": [399]})");
    require_error_at(j, "399", "$.routes[0].proxy.retry.on[0]", on_expected + "399");
    j = proxy_with(R"("retry": {"on": ["503"]})");
    require_error_at(j, "\"503\"", "$.routes[0].proxy.retry.on[0]", on_expected + "\"503\"");
    j = proxy_with(R"("retry": {"on": ["reset", "reset"]})");
    require_error_at(j, "\"reset\"", "$.routes[0].proxy.retry.on[1]",
                     "duplicate retry condition \"reset\"", 1);
    j = proxy_with(R"("retry": {"on": "reset"})");
    require_error_at(j, "\"reset\"", "$.routes[0].proxy.retry.on",
                     "expected an array of retry conditions, found \"reset\"");
    j = proxy_with(R"("retry": {"backoff_base_ms": 300})");
    require_error_at(j, "{\"backoff_base_ms\"", "$.routes[0].proxy.retry",
                     "backoff_base_ms (300) must not exceed backoff_max_ms (250)");
    j = proxy_with(R"("retry": {"tries": 2})");
    require_error_at(j, "\"tries\"", "$.routes[0].proxy.retry.tries",
                     "unknown key \"tries\"; allowed keys: max_retries, on, non_idempotent, "
                     "backoff_base_ms, backoff_max_ms");
}

TEST_CASE("config::parse_config validates proxy rewrites", "[config]") {
    const std::string path_expected =
        "expected a path starting with '/', of visible ASCII characters, without '?' or '#', "
        "found ";
    std::string j = proxy_with(R"("prefix_rewrite": "v2/")");
    require_error_at(j, "\"v2/\"", "$.routes[0].proxy.prefix_rewrite", path_expected + "\"v2/\"");
    j = proxy_with(R"("prefix_rewrite": "/a b")");
    require_error_at(j, "\"/a b\"", "$.routes[0].proxy.prefix_rewrite", path_expected + "\"/a b\"");
    j = proxy_with(R"("prefix_rewrite": "/a?b")");
    require_error_at(j, "\"/a?b\"", "$.routes[0].proxy.prefix_rewrite", path_expected + "\"/a?b\"");
    j = proxy_with(
        R"("prefix_rewrite": "/", "regex_rewrite": {"pattern": "x", "substitution": "/"})");
    require_error_at(j, "{\"pattern\"", "$.routes[0].proxy.regex_rewrite",
                     "use either \"prefix_rewrite\" or \"regex_rewrite\", not both");
    j = proxy_with(
        R"("regex_rewrite": {"pattern": "x", "substitution": "/"}, "prefix_rewrite": "/p")");
    require_error_at(j, "\"/p\"", "$.routes[0].proxy.prefix_rewrite",
                     "use either \"prefix_rewrite\" or \"regex_rewrite\", not both");
    j = proxy_with(R"("regex_rewrite": {"substitution": "/"})");
    require_error_at(j, "{\"substitution\"", "$.routes[0].proxy.regex_rewrite",
                     "missing required key \"pattern\"");
    j = proxy_with(R"("regex_rewrite": {"pattern": "x"})");
    require_error_at(j, "{\"pattern\"", "$.routes[0].proxy.regex_rewrite",
                     "missing required key \"substitution\"");
    const std::string substitution_expected =
        "expected a non-empty string of visible ASCII characters without '?' or '#' (the new "
        "path; \\1 to \\9 insert the pattern's groups), found ";
    j = proxy_with(R"("regex_rewrite": {"pattern": "x", "substitution": ""})");
    require_error_at(j, "\"\"", "$.routes[0].proxy.regex_rewrite.substitution",
                     substitution_expected + "\"\"");
    j = proxy_with(R"j("regex_rewrite": {"pattern": "/(.*)", "substitution": "/\\1?x=1"})j");
    require_error_at(j, "\"/\\\\1?x=1\"", "$.routes[0].proxy.regex_rewrite.substitution",
                     substitution_expected + "\"/\\\\1?x=1\"");
    j = proxied(
        R"({"match": {"path_regex": "/a.*"}, "proxy": {"upstream": "api", "prefix_rewrite": "/b"}})");
    require_error_at(j, "\"/b\"", "$.routes[0].proxy.prefix_rewrite",
                     "\"prefix_rewrite\" replaces the prefix matched by \"path_prefix\"; this "
                     "route matches with \"path_regex\"");
    j = proxied(
        R"({"proxy": {"upstream": "api", "prefix_rewrite": "/b"}, "match": {"path": "/a"}})");
    require_error_at(j, "\"/b\"", "$.routes[0].proxy.prefix_rewrite",
                     "\"prefix_rewrite\" replaces the prefix matched by \"path_prefix\"; this "
                     "route matches with \"path\"");
    // The router checks that the substitution's groups exist; its error names the route.
    j = proxy_with(R"("regex_rewrite": {"pattern": "/a", "substitution": "/\\2"})");
    const blitz::ConfigError groups = error_of(j);
    CHECK(groups.path == "$.routes[0]");
    CHECK_THAT(groups.message, Catch::Matchers::StartsWith("route \"route0\" (#0)"));

    const std::string host_expected =
        "expected a host with an optional port (\"api.internal\", \"10.0.0.1:8080\", "
        "\"[::1]:8080\"), found ";
    for (const char* bad : {"a b", "host:0", "host:65536", "[::1", "[nope]:80", "-a.com",
                            "host:", "256.0.0.1", "a..b", ""}) {
        INFO(bad);
        const blitz::ConfigError e =
            error_of(proxy_with(R"("host_rewrite": ")" + std::string(bad) + "\""));
        CHECK(e.path == "$.routes[0].proxy.host_rewrite");
        CHECK(e.message == host_expected + "\"" + bad + "\"");
    }
    for (const char* good :
         {"api.internal", "api.internal:8080", "10.0.0.1", "[::1]:8080", "svc_a"}) {
        INFO(good);
        CHECK(parse_ok(proxy_with(R"("host_rewrite": ")" + std::string(good) + "\""))
                  .router.routes()[0]
                  .proxy.host_rewrite == good);
    }
}

TEST_CASE("config::parse_config validates redirects", "[config]") {
    std::string j = redirect_with(R"({"status": 304, "path": "/"})");
    require_error_at(j, "304", "$.routes[0].redirect.status",
                     "expected one of 301, 302, 303, 307, 308, found 304");
    j = redirect_with(R"({"status": 300, "path": "/"})");
    require_error_at(j, "300", "$.routes[0].redirect.status",
                     "expected one of 301, 302, 303, 307, 308, found 300");
    j = redirect_with(R"({"scheme": "ftp"})");
    require_error_at(j, "\"ftp\"", "$.routes[0].redirect.scheme",
                     "expected one of \"http\", \"https\", found \"ftp\"");
    j = redirect_with(R"({"host": "a/b"})");
    require_error_at(j, "\"a/b\"", "$.routes[0].redirect.host",
                     "expected a host with an optional port (\"api.internal\", \"10.0.0.1:8080\", "
                     "\"[::1]:8080\"), found \"a/b\"");
    j = redirect_with(R"({"path": "/a#b"})");
    require_error_at(j, "\"/a#b\"", "$.routes[0].redirect.path",
                     "expected a path starting with '/', of visible ASCII characters, without '?' "
                     "or '#', found \"/a#b\"");
    j = redirect_with(R"({"path": "/a", "prefix_rewrite": "/b"})");
    require_error_at(j, "\"/b\"", "$.routes[0].redirect.prefix_rewrite",
                     "use either \"path\" or \"prefix_rewrite\", not both");
    j = redirect_with(R"({"prefix_rewrite": "/b", "path": "/a"})");
    require_error_at(j, "\"/a\"", "$.routes[0].redirect.path",
                     "use either \"path\" or \"prefix_rewrite\", not both");
    j = redirect_with(R"({"status": 301})");
    require_error_at(j, "{\"status\"", "$.routes[0].redirect",
                     "a redirect must change the URL: set \"scheme\", \"host\", \"path\", "
                     "\"prefix_rewrite\" or \"strip_query\"");
    j = redirect_with(R"({"prefix_rewrite": "/b"})", R"({"path_regex": "/a.*"})");
    require_error_at(j, "\"/b\"", "$.routes[0].redirect.prefix_rewrite",
                     "\"prefix_rewrite\" replaces the prefix matched by \"path_prefix\"; this "
                     "route matches with \"path_regex\"");
    j = redirect_with(R"({"location": "/b"})");
    require_error_at(j, "\"location\"", "$.routes[0].redirect.location",
                     "unknown key \"location\"; allowed keys: status, scheme, host, path, "
                     "prefix_rewrite, strip_query");
    const blitz::Config c = parse_ok(redirect_with(R"({"strip_query": true})"));
    CHECK(c.router.routes()[0].redirect->strip_query);
    CHECK(c.router.routes()[0].redirect->status == 302);
}

TEST_CASE("config::parse_config validates route header edits", "[config]") {
    const auto edit = [](std::string_view key, std::string_view value) {
        return proxied(R"({"match": {"path": "/"}, "upstream": "api", ")" + std::string(key) +
                       "\": " + std::string(value) + "}");
    };
    std::string j = edit("request_headers", R"({"set": {"Transfer-Encoding": "x"}})");
    require_error_at(
        j, "\"Transfer-Encoding\"", "$.routes[0].request_headers.set[\"Transfer-Encoding\"]",
        "\"Transfer-Encoding\" cannot be configured: the HTTP codec writes the message "
        "framing");
    j = edit("response_headers", R"({"remove": ["X A"]})");
    require_error_at(j, "\"X A\"", "$.routes[0].response_headers.remove[0]",
                     "expected a header name (an RFC 9110 token), found \"X A\"");
    j = edit("response_headers", R"({"append": {}})");
    require_error_at(j, "\"append\"", "$.routes[0].response_headers.append",
                     "unknown key \"append\"; allowed keys: add, set, remove");
    j = edit("request_headers", R"(["X-A"])");
    require_error_at(j, "[\"X-A\"]", "$.routes[0].request_headers",
                     "expected an object, found an array");
    const blitz::Config c = parse_ok(edit("response_headers", R"({"add": {"X-A": "1"}})"));
    CHECK(c.router.routes()[0].response_headers.add.size() == 1);
    CHECK(c.router.routes()[0].request_headers.empty());
}

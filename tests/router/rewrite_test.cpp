#include "router/rewrite.hpp"

#include <memory>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

#include <blitz/arena.hpp>
#include <blitz/router.hpp>
#include <blitz/upstream.hpp>

#include "helpers.hpp"

using blitz::Arena;
using blitz::ProxyAction;
using blitz::Redirect;
using blitz::Route;
using blitz::Router;
using blitz::router::redirect_location;
using blitz::router::rewrite_path;
using router_test::TestRequest;

namespace {

/// Route::proxy.upstream only has to be set for these tests; the cluster is never used.
std::shared_ptr<blitz::Upstream> fake_upstream() {
    return std::make_shared<blitz::Upstream>(nullptr);
}

/// The one route of a frozen table (kept alive with it).
struct OneRoute {
    std::shared_ptr<const blitz::RouteTable> table;
    const Route* route = nullptr;
};

OneRoute freeze_one(Route r, std::string_view path) {
    Router router;
    router.add(std::move(r)).name("r");
    OneRoute out;
    out.table = router_test::freeze_ok(router);
    out.route = out.table->match("", path, blitz::Method::Get).route;
    REQUIRE(out.route != nullptr);
    return out;
}

Route proxy_route(std::string path, bool prefix, ProxyAction action) {
    Route r;
    r.path = std::move(path);
    r.prefix = prefix;
    action.upstream = fake_upstream();
    r.proxy = std::move(action);
    return r;
}

Route redirect_route(std::string path, bool prefix, Redirect redirect) {
    Route r;
    r.path = std::move(path);
    r.prefix = prefix;
    r.redirect = std::move(redirect);
    return r;
}

}  // namespace

TEST_CASE("router::rewrite_path replaces the matched prefix", "[router]") {
    const auto one = freeze_one(proxy_route("/api/", true, ProxyAction{.prefix_rewrite = "/v2/"}),
                                "/api/x");
    Arena arena;
    CHECK(rewrite_path(*one.route, "/api/users/7", arena) == "/v2/users/7");
    CHECK(rewrite_path(*one.route, "/api/", arena) == "/v2/");
    // A path the route's prefix does not start is sent as it is.
    CHECK(rewrite_path(*one.route, "/other", arena) == "/other");
}

TEST_CASE("router::rewrite_path keeps a leading slash when the prefix becomes one", "[router]") {
    const auto one =
        freeze_one(proxy_route("/api", true, ProxyAction{.prefix_rewrite = "/"}), "/api");
    Arena arena;
    CHECK(rewrite_path(*one.route, "/api/users", arena) == "//users");
    CHECK(rewrite_path(*one.route, "/api", arena) == "/");
}

TEST_CASE("router::rewrite_path substitutes regex groups over the whole path", "[router]") {
    const auto one = freeze_one(
        proxy_route("/", true,
                    ProxyAction{.regex_rewrite = "/service/([^/]+)(/.*)",
                                .regex_substitution = "\\2/instance/\\1"}),
        "/");
    Arena arena;
    CHECK(rewrite_path(*one.route, "/service/foo/v1/api", arena) == "/v1/api/instance/foo");
    // The pattern must match the whole path; otherwise nothing changes.
    CHECK(rewrite_path(*one.route, "/x/service/foo/v1", arena) == "/x/service/foo/v1");
    CHECK(rewrite_path(*one.route, "/service/foo", arena) == "/service/foo");
}

TEST_CASE("router::rewrite_path roots a substitution and handles \\0 and escaped backslashes",
          "[router]") {
    const auto one = freeze_one(
        proxy_route("/", true,
                    ProxyAction{.regex_rewrite = "/([a-z]+)/?(.*)",
                                .regex_substitution = "\\2-\\1\\\\\\0"}),
        "/");
    Arena arena;
    CHECK(rewrite_path(*one.route, "/abc/def", arena) == "/def-abc\\/abc/def");
    // An empty substitution result becomes "/".
    const auto empty = freeze_one(
        proxy_route("/", true, ProxyAction{.regex_rewrite = "/(x*)", .regex_substitution = "\\1"}),
        "/");
    CHECK(rewrite_path(*empty.route, "/", arena) == "/");
    CHECK(rewrite_path(*empty.route, "/xx", arena) == "/xx");
}

TEST_CASE("router::rewrite_path returns the same view when there is no rewrite", "[router]") {
    const auto one = freeze_one(proxy_route("/a", false, ProxyAction{}), "/a");
    Arena arena;
    const std::string path = "/a";
    const std::string_view out = rewrite_path(*one.route, path, arena);
    CHECK(out.data() == path.data());
    CHECK(out.size() == path.size());
    CHECK(arena.used() == 0);
}

TEST_CASE("router::redirect_location keeps the request's parts the redirect leaves empty",
          "[router]") {
    const auto one = freeze_one(redirect_route("/old", false, Redirect{.status = 301}), "/old");
    Arena arena;
    CHECK(redirect_location(*one.route, *TestRequest("example.com:8080", "/old", "a=1"), arena) ==
          "http://example.com:8080/old?a=1");
    CHECK(redirect_location(*one.route, *TestRequest("example.com", "/old"), arena) ==
          "http://example.com/old");
    TestRequest https("example.com", "/old");
    https.get().scheme = "https";
    CHECK(redirect_location(*one.route, *https, arena) == "https://example.com/old");
}

TEST_CASE("router::redirect_location replaces scheme, host and path", "[router]") {
    Arena arena;
    const auto to_https =
        freeze_one(redirect_route("/", true, Redirect{.status = 308, .scheme = "https"}), "/");
    // The default port of the old scheme does not follow the request to the new one.
    CHECK(redirect_location(*to_https.route, *TestRequest("example.com:80", "/x", "q"), arena) ==
          "https://example.com/x?q");
    CHECK(redirect_location(*to_https.route, *TestRequest("example.com:8080", "/x"), arena) ==
          "https://example.com:8080/x");
    CHECK(redirect_location(*to_https.route, *TestRequest("[::1]:80", "/x"), arena) ==
          "https://[::1]/x");

    const auto moved = freeze_one(
        redirect_route("/", true,
                       Redirect{.status = 302, .host = "new.example:8443", .path = "/landing",
                                .strip_query = true}),
        "/");
    CHECK(redirect_location(*moved.route, *TestRequest("old.example", "/a/b", "x=1"), arena) ==
          "http://new.example:8443/landing");
}

TEST_CASE("router::redirect_location replaces a prefix route's matched prefix", "[router]") {
    const auto one = freeze_one(
        redirect_route("/docs/", true, Redirect{.status = 301, .prefix_rewrite = "/manual/"}),
        "/docs/");
    Arena arena;
    CHECK(redirect_location(*one.route, *TestRequest("h", "/docs/intro/a.html", "v=2"), arena) ==
          "http://h/manual/intro/a.html?v=2");
    CHECK(redirect_location(*one.route, *TestRequest("h", "/docs/"), arena) == "http://h/manual/");
}

TEST_CASE("router::redirect_location is relative without a valid host", "[router]") {
    const auto one = freeze_one(redirect_route("/a", false, Redirect{.status = 307}), "/a");
    Arena arena;
    CHECK(redirect_location(*one.route, *TestRequest("", "/a", "b=1"), arena) == "/a?b=1");
    // Bytes that are no authority (CR/LF above all) never reach the Location header.
    CHECK(redirect_location(*one.route, *TestRequest("evil\r\nSet-Cookie: x", "/a"), arena) ==
          "/a");
}

TEST_CASE("router::redirect_location is empty for a route without a redirect", "[router]") {
    const auto one = freeze_one(Route{}, "/");
    Arena arena;
    CHECK(redirect_location(*one.route, *TestRequest("h", "/"), arena).empty());
}

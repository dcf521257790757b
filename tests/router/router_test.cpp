#include <blitz/router.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <re2/re2.h>

#include "helpers.hpp"
#include "router/compiled_route.hpp"
#include "router/route_table.hpp"

using blitz::HeaderMatcher;
using blitz::MatchKind;
using blitz::Method;
using blitz::MethodSet;
using blitz::QueryMatcher;
using blitz::Route;
using blitz::Router;
using blitz::RouteTable;
using Catch::Matchers::ContainsSubstring;
using Catch::Matchers::Equals;
using router_test::freeze_error;
using router_test::freeze_ok;
using router_test::TestRequest;

template <>
struct Catch::StringMaker<MethodSet> {
    static std::string convert(MethodSet set) {
        std::string out = "{";
        for (std::size_t m = 0; m < blitz::kMethodCount; ++m) {
            if (set.contains(static_cast<Method>(m))) {
                out += (out.size() > 1 ? "," : "") + std::to_string(m);
            }
        }
        return out + "}";
    }
};

namespace {

/// Heap allocations made by this process so far (see the replaced operator new below).
std::size_t g_allocations = 0;

}  // namespace

void* operator new(std::size_t size) {
    ++g_allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}

namespace {

// Out of line: GCC 12 otherwise misreads free() inside operator delete as a mismatched pair.
[[gnu::noinline]] void release(void* p) noexcept {
    std::free(p);
}

}  // namespace

// The array forms of new and delete forward to these by default.
void operator delete(void* p) noexcept {
    release(p);
}

void operator delete(void* p, std::size_t) noexcept {
    release(p);
}

namespace {

/// The name of the route that matches, or "" for none.
std::string matched(const RouteTable& table, std::string_view host, std::string_view path,
                    Method method = Method::Get) {
    const blitz::RouteMatch m = table.match(host, path, method);
    return m.route != nullptr ? m.route->name : std::string();
}

MethodSet methods(std::initializer_list<Method> ms) {
    MethodSet set;
    for (Method m : ms) {
        set.add(m);
    }
    return set;
}

}  // namespace

TEST_CASE("router::RouteTable prefers an exact path to a prefix, whatever the order", "[router]") {
    Router router;
    router.route("/v1/").prefix().name("prefix");
    router.route("/v1/").name("exact");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/v1/") == "exact");
    CHECK(matched(*table, "", "/v1/x") == "prefix");
    CHECK(matched(*table, "", "/v1") == "");
}

TEST_CASE("router::RouteTable prefers the longest prefix, whatever the order", "[router]") {
    Router router;
    router.route("/").prefix().name("root");
    router.route("/api/v1/").prefix().name("v1");
    router.route("/api/").prefix().name("api");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/api/v1/users") == "v1");
    CHECK(matched(*table, "", "/api/v1/") == "v1");
    CHECK(matched(*table, "", "/api/v1") == "api");
    CHECK(matched(*table, "", "/api/v2/users") == "api");
    CHECK(matched(*table, "", "/apix") == "root");
    CHECK(matched(*table, "", "/") == "root");
}

TEST_CASE("router::RouteTable matches prefixes byte by byte", "[router]") {
    Router router;
    router.route("/v1").prefix().name("v1");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/v1") == "v1");
    CHECK(matched(*table, "", "/v10") == "v1");
    CHECK(matched(*table, "", "/v1/x") == "v1");
    CHECK(matched(*table, "", "/v") == "");
    CHECK(matched(*table, "", "/V1") == "");
}

TEST_CASE("router::RouteTable matches prefixes that share and split long edges", "[router]") {
    const std::string huge = "/" + std::string(70'000, 'x');
    Router router;
    router.route("/abcdef/").prefix().name("abcdef");
    router.route("/abc").prefix().name("abc");
    router.route("/abd").prefix().name("abd");
    router.route("/abcdefgh").prefix().name("abcdefgh");
    router.route(huge).prefix().name("huge");
    router.route(huge + "y").prefix().name("huge-y");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/abcdef/1") == "abcdef");
    CHECK(matched(*table, "", "/abcdefg") == "abc");
    CHECK(matched(*table, "", "/abcdefgh/") == "abcdefgh");
    CHECK(matched(*table, "", "/abd") == "abd");
    CHECK(matched(*table, "", "/ab") == "");
    CHECK(matched(*table, "", huge) == "huge");
    CHECK(matched(*table, "", huge + "yz") == "huge-y");
    CHECK(matched(*table, "", huge.substr(0, 69'999)) == "");
}

TEST_CASE("router::RouteTable finds children among many siblings", "[router]") {
    auto usable = [](int c) { return c != '?' && c != '#'; };
    Router router;
    for (int c = 1; c < 256; ++c) {
        if (usable(c)) {
            router.route(std::string("/") + static_cast<char>(c)).prefix().name(std::to_string(c));
        }
    }
    const auto table = freeze_ok(router);
    for (int c = 1; c < 256; ++c) {
        if (!usable(c)) {
            continue;
        }
        INFO(c);
        CHECK(matched(*table, "", std::string("/") + static_cast<char>(c) + "tail") ==
              std::to_string(c));
    }
    CHECK(matched(*table, "", "/") == "");
}

TEST_CASE("router::RouteTable finds children by bytes above 0x7f", "[router]") {
    Router router;
    for (int c = 0xe0; c < 0xf4; ++c) {
        router.route(std::string("/") + static_cast<char>(c)).prefix().name(std::to_string(c));
    }
    const auto table = freeze_ok(router);
    for (int c = 0xe0; c < 0xf4; ++c) {
        INFO(c);
        CHECK(matched(*table, "", std::string("/") + static_cast<char>(c) + "x") ==
              std::to_string(c));
    }
    CHECK(matched(*table, "", "/\xf4") == "");
    CHECK(matched(*table, "", "/\xdf") == "");
    CHECK(matched(*table, "", "/a") == "");
}

TEST_CASE("router::RouteTable breaks ties by config order", "[router]") {
    Router router;
    router.route("/same").name("first");
    router.route("/same").name("second");
    router.route("/p/").prefix().name("first-prefix");
    router.route("/p/").prefix().name("second-prefix");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/same") == "first");
    CHECK(matched(*table, "", "/p/x") == "first-prefix");
}

TEST_CASE("router::RouteTable prefers an exact host, then the longest wildcard, then any host",
          "[router]") {
    Router router;
    router.route("/exact-path").name("any-host-exact-path");
    router.route("/").prefix().host("*.example.com").name("wildcard");
    router.route("/").prefix().host("*.api.example.com").name("longer-wildcard");
    router.route("/").prefix().host("www.example.com").name("exact-host");
    const auto table = freeze_ok(router);
    // The host decides before the path: a host-specific prefix beats an any-host exact path.
    CHECK(matched(*table, "www.example.com", "/exact-path") == "exact-host");
    CHECK(matched(*table, "v1.api.example.com", "/exact-path") == "longer-wildcard");
    CHECK(matched(*table, "mail.example.com", "/exact-path") == "wildcard");
    CHECK(matched(*table, "api.example.com", "/exact-path") == "wildcard");
    CHECK(matched(*table, "example.com", "/exact-path") == "any-host-exact-path");
    CHECK(matched(*table, "other.org", "/exact-path") == "any-host-exact-path");
    CHECK(matched(*table, "other.org", "/else") == "");
}

TEST_CASE("router::RouteTable falls back to less specific hosts when a host has no such path",
          "[router]") {
    Router router;
    router.route("/admin").host("www.example.com").name("exact-host");
    router.route("/static/").prefix().host("*.example.com").name("wildcard");
    router.route("/").prefix().name("fallback");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "www.example.com", "/admin") == "exact-host");
    CHECK(matched(*table, "www.example.com", "/static/a.css") == "wildcard");
    CHECK(matched(*table, "www.example.com", "/other") == "fallback");
}

TEST_CASE("router::RouteTable wildcards need at least one label before the suffix", "[router]") {
    Router router;
    router.route("/").prefix().host("*.example.com").name("wildcard");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "a.example.com", "/") == "wildcard");
    CHECK(matched(*table, "a.b.example.com", "/") == "wildcard");
    CHECK(matched(*table, "A.B.Example.COM:8443", "/") == "wildcard");
    CHECK(matched(*table, "example.com", "/") == "");
    CHECK(matched(*table, ".example.com", "/") == "");
    CHECK(matched(*table, "aexample.com", "/") == "");
    CHECK(matched(*table, "example.com.evil.org", "/") == "");
    CHECK(matched(*table, "com", "/") == "");
    CHECK(matched(*table, "", "/") == "");
}

TEST_CASE("router::RouteTable compares hosts without case, port or trailing dot", "[router]") {
    Router router;
    router.route("/").host("API.Example.com").name("api");
    router.route("/").host("www.example.com.").name("www");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "api.example.com", "/") == "api");
    CHECK(matched(*table, "API.EXAMPLE.COM", "/") == "api");
    CHECK(matched(*table, "api.example.com:8080", "/") == "api");
    CHECK(matched(*table, "api.example.com.", "/") == "api");
    CHECK(matched(*table, "api.example.com.:80", "/") == "api");
    CHECK(matched(*table, "www.example.com", "/") == "www");
    CHECK(matched(*table, "api.example.co", "/") == "");
    CHECK(matched(*table, "api.example.com:", "/") == "api");
    const blitz::RouteMatch m = table->match("api.example.com", "/", Method::Get);
    REQUIRE(m.route != nullptr);
    CHECK(m.route->host == "api.example.com");
    CHECK(table->match("www.example.com", "/", Method::Get).route->host == "www.example.com");
}

TEST_CASE("router::RouteTable matches IPv6 literal hosts with and without a port", "[router]") {
    Router router;
    router.route("/").host("[::1]").name("loopback");
    router.route("/").host("[2001:DB8::1]").name("doc");
    router.route("/").host("127.0.0.1").name("v4");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "[::1]", "/") == "loopback");
    CHECK(matched(*table, "[::1]:8080", "/") == "loopback");
    CHECK(matched(*table, "[2001:db8::1]:443", "/") == "doc");
    CHECK(matched(*table, "[2001:DB8::1]", "/") == "doc");
    CHECK(matched(*table, "[::2]:8080", "/") == "");
    CHECK(matched(*table, "127.0.0.1:80", "/") == "v4");
}

TEST_CASE("router::normalise_host strips the port and lowercases into the buffer", "[router]") {
    std::array<char, blitz::router::kMaxHostBytes> buf;
    using blitz::router::normalise_host;
    CHECK(normalise_host("Example.COM:8080", buf) == "example.com");
    CHECK(normalise_host("[::1]:8080", buf) == "[::1]");
    CHECK(normalise_host("[FE80::1]", buf) == "[fe80::1]");
    CHECK(normalise_host("example.com.", buf) == "example.com");
    CHECK(normalise_host("", buf).empty());
    CHECK(normalise_host(":80", buf).empty());
    CHECK(normalise_host(std::string(255, 'a'), buf) == std::string(255, 'a'));
    CHECK(normalise_host(std::string(256, 'a'), buf).empty());
}

TEST_CASE("router::RouteTable matches hosts over 255 bytes only to any-host routes", "[router]") {
    Router router;
    router.route("/").host("*.example.com").name("wildcard");
    router.route("/").name("any");
    const auto table = freeze_ok(router);
    const std::string suffix = ".example.com";
    const std::string fits = std::string(255 - suffix.size(), 'a') + suffix;
    const std::string too_long = std::string(256 - suffix.size(), 'a') + suffix;
    CHECK(matched(*table, fits, "/") == "wildcard");
    CHECK(matched(*table, fits + ":80", "/") == "wildcard");
    CHECK(matched(*table, too_long, "/") == "any");
}

TEST_CASE("router::RouteTable filters by method and falls through to other routes", "[router]") {
    Router router;
    router.route(Method::Get, "/items").name("list");
    router.route(Method::Post, "/items").name("create");
    router.route("/items").prefix().methods(methods({Method::Delete})).name("delete-any");
    router.route("/").prefix().methods(methods({Method::Put, Method::Patch})).name("write");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/items", Method::Get) == "list");
    CHECK(matched(*table, "", "/items", Method::Post) == "create");
    CHECK(matched(*table, "", "/items", Method::Delete) == "delete-any");
    CHECK(matched(*table, "", "/items", Method::Patch) == "write");
    CHECK(matched(*table, "", "/items/1", Method::Get) == "");
}

TEST_CASE("router::RouteTable reports the allowed methods when only the method differs",
          "[router]") {
    Router router;
    router.route(Method::Get, "/items").name("list");
    router.route(Method::Post, "/items").name("create");
    router.route("/items").prefix().methods(methods({Method::Delete})).name("delete");
    router.route(Method::Put, "/items").host("other.example").name("other-host");
    const auto table = freeze_ok(router);

    const blitz::RouteMatch m = table->match("example.com", "/items", Method::Patch);
    CHECK(m.route == nullptr);
    CHECK(m.allowed == methods({Method::Get, Method::Head, Method::Post, Method::Delete}));

    const blitz::RouteMatch prefix_only = table->match("", "/items/1", Method::Get);
    CHECK(prefix_only.route == nullptr);
    CHECK(prefix_only.allowed == methods({Method::Delete}));

    const blitz::RouteMatch none = table->match("", "/nothing", Method::Get);
    CHECK(none.route == nullptr);
    CHECK(none.allowed.empty());

    const blitz::RouteMatch hit = table->match("", "/items", Method::Get);
    REQUIRE(hit.route != nullptr);
    CHECK(hit.allowed.empty());
}

TEST_CASE("router::RouteTable answers HEAD with a GET route unless HEAD has its own",
          "[router]") {
    Router router;
    router.route(Method::Get, "/page").name("get-page");
    router.route(Method::Get, "/both").name("get-both");
    router.route(Method::Head, "/both").name("head-both");
    router.route(Method::Post, "/post-only").name("post");
    router.route(Method::Get, "/deep/path").name("get-deep");
    router.route("/deep/").prefix().methods(methods({Method::Head})).name("head-prefix");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/page", Method::Head) == "get-page");
    CHECK(matched(*table, "", "/both", Method::Head) == "head-both");
    CHECK(matched(*table, "", "/both", Method::Get) == "get-both");
    // The more specific path decides before whether HEAD was named explicitly.
    CHECK(matched(*table, "", "/deep/path", Method::Head) == "get-deep");
    CHECK(matched(*table, "", "/deep/other", Method::Head) == "head-prefix");
    CHECK(matched(*table, "", "/deep/other", Method::Get) == "");

    const blitz::RouteMatch m = table->match("", "/post-only", Method::Head);
    CHECK(m.route == nullptr);
    CHECK(m.allowed == methods({Method::Post}));
}

TEST_CASE("router::RouteTable lets a route for every method answer HEAD before a later GET",
          "[router]") {
    Router router;
    router.route("/x").name("any-method");
    router.route(Method::Get, "/x").name("get");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/x", Method::Head) == "any-method");
    CHECK(matched(*table, "", "/x", Method::Get) == "any-method");
}

TEST_CASE("router::RouteTable matches extension methods through Method::Other", "[router]") {
    Router router;
    router.route("/dav/").prefix().methods(methods({Method::Other})).name("dav");
    router.route("/dav/").prefix().name("any");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/dav/x", Method::Other) == "dav");
    CHECK(matched(*table, "", "/dav/x", Method::Get) == "any");
}

TEST_CASE("router::Router::freeze sets each route's order and keeps its action", "[router]") {
    Router router;
    router.route("/a").name("a").respond(204);
    router.route(Method::Get, "/b")
        .name("b")
        .max_body_bytes(1024)
        .filter(std::make_shared<blitz::Filter>())
        .handle([](blitz::Exchange&) { return blitz::Flow::Respond; });
    router.route("/c").name("c").handle([](blitz::Exchange&) { return blitz::Flow::Respond; })
        .respond(503, "down", "text/html");
    const auto table = freeze_ok(router);
    CHECK(table->size() == 3);
    const Route* a = table->match("", "/a", Method::Get).route;
    const Route* b = table->match("", "/b", Method::Get).route;
    const Route* c = table->match("", "/c", Method::Get).route;
    REQUIRE(a != nullptr);
    REQUIRE(b != nullptr);
    REQUIRE(c != nullptr);
    CHECK(a->order == 0);
    CHECK(b->order == 1);
    CHECK(c->order == 2);
    CHECK(a->direct.status == 204);
    CHECK_FALSE(a->handler);
    CHECK(b->handler);
    CHECK(b->max_body_bytes == 1024);
    CHECK(b->filters.size() == 1);
    CHECK(b->methods == methods({Method::Get}));
    CHECK_FALSE(c->handler);
    CHECK(c->direct.status == 503);
    CHECK(c->direct.body == "down");
    CHECK(c->direct.content_type == "text/html");
}

TEST_CASE("router::Router::freeze copies the routes", "[router]") {
    Router router;
    router.route("/a").name("before");
    const auto table = freeze_ok(router);
    router.routes()[0].name = "after";
    router.route("/b");
    CHECK(matched(*table, "", "/a") == "before");
    CHECK(table->size() == 1);
}

TEST_CASE("router::Router::freeze names the route in every error", "[router]") {
    SECTION("a path without a leading slash") {
        Router router;
        router.route("/ok");
        router.route("/ok2");
        router.route("/ok3");
        router.route("v1/").name("api");
        CHECK_THAT(freeze_error(router),
                   Equals("route \"api\" (#3): path must start with '/' (got \"v1/\")"));
    }
    SECTION("an unnamed route") {
        Router router;
        router.route("");
        CHECK_THAT(freeze_error(router), Equals("route #0: path must start with '/' (got \"\")"));
    }
    SECTION("a query in the path") {
        Router router;
        router.route("/a?b=1").name("q");
        CHECK_THAT(freeze_error(router), ContainsSubstring("route \"q\" (#0): path must not "
                                                           "contain '?' or '#'"));
    }
    SECTION("Method::Other") {
        Router router;
        router.route("/fine");
        router.route(Method::Other, "/x").name("other");
        CHECK_THAT(freeze_error(router),
                   ContainsSubstring("route \"other\" (#1): Method::Other names no method"));
    }
    SECTION("a null filter") {
        Router router;
        router.route("/x").name("f").filter(std::shared_ptr<blitz::Filter>());
        CHECK_THAT(freeze_error(router), Equals("route \"f\" (#0): filter #0 is null"));
    }
}

TEST_CASE("router::Router::freeze rejects malformed hosts", "[router]") {
    const auto bad = GENERATE(as<std::string>{}, "exa mple.com", "*example.com", "a.*.com",
                              "*", "*.", "example.com:8080", "-a.com", "a-.com", "a..com",
                              ".a.com", "example.com..", "[::1", "[]", "[::g]", "ex/ample.com",
                              std::string(64, 'a') + ".com");
    Router router;
    router.route("/").host(bad).name("h");
    INFO(bad);
    CHECK_THAT(freeze_error(router),
               Equals("route \"h\" (#0): host \"" + bad +
                      "\" is not a hostname, \"*.\" + hostname or [IPv6] literal (ports are "
                      "not matched)"));
}

TEST_CASE("router::Router::freeze accepts well-formed hosts", "[router]") {
    const auto good =
        GENERATE(as<std::string>{}, "example.com", "*.example.com", "*.com", "EXAMPLE.com.",
                 "localhost", "my_service", "127.0.0.1", "[::1]", "[::ffff:192.0.2.1]",
                 std::string(63, 'a') + ".com", "xn--bcher-kva.example");
    Router router;
    router.route("/").host(good);
    INFO(good);
    auto table = router.freeze();
    CHECK(table);
}

TEST_CASE("router::Router::freeze accepts only final direct response statuses", "[router]") {
    const int status = GENERATE(99, 100, 101, 199, 600, -1);
    Router router;
    router.route("/").name("s").respond(status);
    INFO(status);
    CHECK_THAT(freeze_error(router), Equals("route \"s\" (#0): direct response status " +
                                            std::to_string(status) +
                                            " is not a final status (200..599)"));

    Router ok;
    ok.route("/a").respond(200);
    ok.route("/b").respond(599);
    // A handler answers instead of the direct response, so its status is not checked.
    ok.route("/c").respond(status).handle([](blitz::Exchange&) { return blitz::Flow::Respond; });
    CHECK(ok.freeze());
}

TEST_CASE("router::Router::freeze allows duplicate routes and the first one wins", "[router]") {
    Router router;
    router.route(Method::Get, "/dup").host("a.com").name("first");
    router.route(Method::Get, "/dup").host("A.COM").name("second");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "a.com", "/dup") == "first");
}

TEST_CASE("router::Router::add keeps a route described in full", "[router]") {
    Route r;
    r.name = "loaded";
    r.host = "*.example.com";
    r.path = "/v1/";
    r.prefix = true;
    r.methods = methods({Method::Get, Method::Post});
    Router router;
    router.add(r).max_body_bytes(10);
    const auto table = freeze_ok(router);
    const Route* m = table->match("a.example.com", "/v1/x", Method::Post).route;
    REQUIRE(m != nullptr);
    CHECK(m->name == "loaded");
    CHECK(m->max_body_bytes == 10);
}

TEST_CASE("router::RouteTable::match does not allocate", "[router]") {
    Router router;
    router.route(Method::Get, "/exact/path/that/is/long/enough/to/leave/small/strings")
        .host("*.example.com");
    router.route("/prefix/").prefix().host("api.example.com");
    router.route(Method::Post, "/any");
    const auto table = freeze_ok(router);
    const std::string long_host = std::string(300, 'a') + ".example.com";
    const std::size_t before = g_allocations;
    std::size_t found = 0;
    found += table->match("a.b.example.com:8080",
                          "/exact/path/that/is/long/enough/to/leave/small/strings", Method::Head)
                 .route != nullptr;
    found += table->match("API.example.com", "/prefix/x/y", Method::Get).route != nullptr;
    found += table->match(long_host, "/any", Method::Put).allowed.contains(Method::Post);
    found += table->match("[::1]:80", "/nothing", Method::Get).route != nullptr;
    const std::size_t after = g_allocations;
    CHECK(found == 3);
    CHECK(after == before);
}

TEST_CASE("router::RouteTable with no routes matches nothing", "[router]") {
    const auto table = freeze_ok(Router());
    CHECK(table->size() == 0);
    const blitz::RouteMatch m = table->match("example.com", "/", Method::Get);
    CHECK(m.route == nullptr);
    CHECK(m.allowed.empty());
}

TEST_CASE("router::RouteTable stays correct with 10,000 routes", "[router]") {
    constexpr int kRoutes = 10'000;
    Router router;
    for (int i = 0; i < kRoutes; ++i) {
        const std::string n = std::to_string(i);
        router.route(Method::Get, "/static/file" + n + ".css").name("file" + n);
        router.route("/api/v1/resource" + n + "/").prefix().name("resource" + n);
        router.route("/").prefix().host("h" + n + ".example.com").name("host" + n);
        router.route("/").prefix().host("*.w" + n + ".example.com").name("wild" + n);
    }
    router.route("/").prefix().name("fallback");
    const auto table = freeze_ok(router);
    CHECK(table->size() == 4 * kRoutes + 1);
    for (int i = 0; i < kRoutes; ++i) {
        const std::string n = std::to_string(i);
        INFO(i);
        REQUIRE(matched(*table, "", "/static/file" + n + ".css") == "file" + n);
        REQUIRE(matched(*table, "", "/api/v1/resource" + n + "/items/42") == "resource" + n);
        REQUIRE(matched(*table, "", "/api/v1/resource" + n + "/") == "resource" + n);
        REQUIRE(matched(*table, "H" + n + ".example.com:80", "/x") == "host" + n);
        REQUIRE(matched(*table, "a.b.w" + n + ".example.com", "/x") == "wild" + n);
    }
    CHECK(matched(*table, "", "/static/file10000.css") == "fallback");
    CHECK(matched(*table, "", "/api/v1/resource10000/x") == "fallback");
    CHECK(matched(*table, "", "/api/v1/resource1") == "fallback");
    CHECK(matched(*table, "w1.example.com", "/x") == "fallback");
    const blitz::RouteMatch post = table->match("", "/static/file7.css", Method::Post);
    REQUIRE(post.route != nullptr);
    CHECK(post.route->name == "fallback");
}

namespace {

/// The documented precedence, evaluated route by route: the reference the compiled table must
/// agree with. Without a request, routes with header or query matchers never match.
blitz::RouteMatch reference_match(const std::vector<Route>& routes, std::string_view authority,
                                  std::string_view path, Method method,
                                  const blitz::Request* request) {
    std::array<char, blitz::router::kMaxHostBytes> buf;
    const std::string_view host = blitz::router::normalise_host(authority, buf);
    auto allows = [](const Route& r, Method m) {
        return r.methods.empty() || r.methods.contains(m);
    };
    struct Rank {
        long priority = 0;
        long host = 0;
        long path = 0;
        int explicit_method = 0;
        bool operator>(const Rank& o) const {
            return std::tie(priority, host, path, explicit_method) >
                   std::tie(o.priority, o.host, o.path, o.explicit_method);
        }
    };
    blitz::RouteMatch best;
    Rank best_rank;
    for (const Route& r : routes) {
        if (blitz::router::has_matchers(r) &&
            (request == nullptr || !blitz::router::matchers_hold(r, *request))) {
            continue;
        }
        Rank rank;
        rank.priority = r.priority;
        if (r.host.empty()) {
            rank.host = 0;
        } else if (r.host.starts_with("*.")) {
            const std::string_view suffix = std::string_view(r.host).substr(1);
            if (host.size() <= suffix.size() || !host.ends_with(suffix) || host.front() == '[') {
                continue;
            }
            rank.host = static_cast<long>(suffix.size());
        } else if (r.host == host) {
            rank.host = 1'000'000;
        } else {
            continue;
        }
        if (!r.path_regex.empty()) {
            if (!RE2::FullMatch(re2::StringPiece(path.data(), path.size()), RE2(r.path_regex))) {
                continue;
            }
            // Regexes rank below every prefix, in the config order of their first route with
            // the same priority, host and pattern.
            const auto first = std::find_if(routes.begin(), routes.end(), [&r](const Route& o) {
                return o.priority == r.priority && o.host == r.host && o.path_regex == r.path_regex;
            });
            rank.path = -1 - static_cast<long>(first - routes.begin());
        } else if (!r.prefix && path == r.path) {
            rank.path = 1'000'000;
        } else if (r.prefix && path.starts_with(r.path)) {
            rank.path = static_cast<long>(r.path.size());
        } else {
            continue;
        }
        if (allows(r, method)) {
            rank.explicit_method = 1;
        } else if (!(method == Method::Head && allows(r, Method::Get))) {
            for (std::size_t m = 0; m < blitz::kMethodCount; ++m) {
                if (allows(r, static_cast<Method>(m))) {
                    best.allowed.add(static_cast<Method>(m));
                }
            }
            if (allows(r, Method::Get)) {
                best.allowed.add(Method::Head);
            }
            continue;
        }
        // Routes come in config order, so only a strictly better rank replaces the best.
        if (best.route == nullptr || rank > best_rank) {
            best.route = &r;
            best_rank = rank;
        }
    }
    if (best.route != nullptr) {
        best.allowed = MethodSet();
    }
    return best;
}

}  // namespace

TEST_CASE("router::RouteTable agrees with the documented precedence on random route sets",
          "[router]") {
    const std::vector<std::string> route_hosts = {"",       "",        "a.com",     "*.a.com",
                                                  "*.b.a.com", "x.b.a.com", "[::1]"};
    const std::vector<std::string> request_hosts = {
        "",           "A.com:80",  "x.b.a.com", "y.b.a.com", "b.a.com",
        "z.y.b.a.com", "a.com.",   "[::1]:9",   "other.org", "X.B.A.COM."};
    const std::vector<Method> all_methods = {Method::Get,  Method::Head, Method::Post,
                                             Method::Put,  Method::Delete, Method::Other};
    // Patterns whose literal prefixes nest, differ, fold case or are empty.
    const std::vector<std::string> patterns = {"/a.*", "/(a|b)/.*", "/[ab]*b", "(?i)/A/.*",
                                               ".*b",  "/a/b",      "/b(/.*)?", "/a|/b/a"};
    const std::vector<HeaderMatcher> header_matchers = {
        {"x", MatchKind::Exact, "1"},
        {"X", MatchKind::Absent, ""},
        {"y", MatchKind::Present, ""},
        {"x", MatchKind::Prefix, "1"},
    };
    const std::vector<QueryMatcher> query_matchers = {
        {"q", MatchKind::Exact, "a b"},
        {"q", MatchKind::Absent, ""},
        {"q", MatchKind::Prefix, "a"},
    };
    const std::vector<TestRequest::Fields> request_fields = {
        {}, {{"X", "1"}}, {{"x", "12"}}, {{"y", ""}}, {{"x", "2"}, {"Y", "v"}}};
    const std::vector<std::string> request_queries = {"", "q=a%20b", "q=a+b", "r=1&q=a%20b",
                                                      "q"};
    std::mt19937 rng(20240601);
    auto pick = [&rng](std::size_t n) {
        return static_cast<std::size_t>(std::uniform_int_distribution<std::size_t>(0, n - 1)(rng));
    };
    auto random_path = [&](std::size_t max_extra) {
        std::string p = "/";
        const std::size_t extra = pick(max_extra + 1);
        for (std::size_t i = 0; i < extra; ++i) {
            p += "ab/"[pick(3)];
        }
        return p;
    };
    for (int round = 0; round < 400; ++round) {
        Router router;
        const std::size_t count = 1 + pick(25);
        for (std::size_t i = 0; i < count; ++i) {
            auto b = router.route(random_path(4)).name("r" + std::to_string(i));
            b.host(route_hosts[pick(route_hosts.size())]);
            const std::size_t kind = pick(6);
            if (kind == 0) {
                b.path_regex(patterns[pick(patterns.size())]);
            } else if (kind <= 2) {
                b.prefix();
            }
            MethodSet ms;
            if (pick(4) != 0) {
                const std::size_t n = 1 + pick(2);
                for (std::size_t k = 0; k < n; ++k) {
                    ms.add(all_methods[pick(all_methods.size())]);
                }
            }
            b.methods(ms);
            if (round >= 100) {
                // The first rounds keep the original precedence-only sets.
                const std::size_t p = pick(8);
                b.priority(p == 0 ? 1 : p == 1 ? -1 : 0);
                if (pick(4) == 0) {
                    b.header(header_matchers[pick(header_matchers.size())]);
                }
                if (pick(6) == 0) {
                    b.query(query_matchers[pick(query_matchers.size())]);
                }
            }
        }
        const auto table = freeze_ok(router);
        // The route hosts above are already in canonical (lowercase) form.
        const std::vector<Route>& frozen = router.routes();
        for (int q = 0; q < 60; ++q) {
            const std::string host = request_hosts[pick(request_hosts.size())];
            const std::string path = random_path(6);
            const Method method = all_methods[pick(all_methods.size())];
            // Picked one by one: the order of evaluation of arguments is unspecified.
            const std::string& query = request_queries[pick(request_queries.size())];
            const TestRequest::Fields& fields = request_fields[pick(request_fields.size())];
            const TestRequest request(host, path, query, fields, method);
            INFO("round " << round << " host " << host << " path " << path << " method "
                          << static_cast<int>(method) << " query " << (*request).query);
            for (const blitz::Request* with :
                 {&*request, static_cast<const blitz::Request*>(nullptr)}) {
                const blitz::RouteMatch want = reference_match(frozen, host, path, method, with);
                const blitz::RouteMatch got =
                    with != nullptr ? table->match(*with) : table->match(host, path, method);
                INFO((with != nullptr ? "match(request)" : "match(host, path, method)"));
                REQUIRE((got.route == nullptr) == (want.route == nullptr));
                if (want.route != nullptr) {
                    CHECK(got.route->name == want.route->name);
                }
                CHECK(got.allowed == want.allowed);
            }
        }
    }
}

TEST_CASE("router::RouteTable lets a higher priority win before host and path specificity",
          "[router]") {
    Router router;
    router.route("/api/users").host("api.example.com").name("specific");
    router.route("/api/").prefix().priority(-1).name("low");
    router.route("/").prefix().name("root");
    router.route("/maintenance/").prefix().priority(5).name("urgent");
    router.route(Method::Post, "/").prefix().priority(10).name("post-all");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "api.example.com", "/api/users") == "specific");
    // Priority 0 beats -1 whatever the prefix lengths.
    CHECK(matched(*table, "other", "/api/x") == "root");
    CHECK(matched(*table, "other", "/maintenance/x") == "urgent");
    CHECK(matched(*table, "api.example.com", "/api/users", Method::Post) == "post-all");
    CHECK(matched(*table, "api.example.com", "/api/users", Method::Delete) == "specific");
}

TEST_CASE("router::RouteTable collects allowed methods across priorities", "[router]") {
    Router router;
    router.route(Method::Post, "/x").priority(3).name("high");
    router.route(Method::Put, "/x").priority(-3).name("low");
    const auto table = freeze_ok(router);
    const blitz::RouteMatch m = table->match("", "/x", Method::Get);
    CHECK(m.route == nullptr);
    CHECK(m.allowed == methods({Method::Post, Method::Put}));
    CHECK(matched(*table, "", "/x", Method::Put) == "low");
}

TEST_CASE("router::RouteTable tries a regex after exact and prefix routes of the same host",
          "[router]") {
    Router router;
    router.route("/").path_regex("/users/[0-9]+").name("regex");
    router.route("/users/").prefix().name("prefix");
    router.route("/users/42").name("exact");
    router.route("/").path_regex("/orders/[0-9]+").host("shop.example").name("host-regex");
    router.route("/orders/").prefix().name("any-host-prefix");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/users/42") == "exact");
    CHECK(matched(*table, "", "/users/7") == "prefix");
    // The host decides before the kind of path.
    CHECK(matched(*table, "shop.example", "/orders/9") == "host-regex");
    CHECK(matched(*table, "shop.example", "/orders/x") == "any-host-prefix");

    Router only_regex;
    // `path` is not used by a regex route, so it is not checked either.
    only_regex.add(Route{.name = "regex", .path = "", .path_regex = "/users/[0-9]+"});
    const auto regex_table = freeze_ok(only_regex);
    CHECK(matched(*regex_table, "", "/users/7") == "regex");
    // Full match: neither a longer nor a shorter path.
    CHECK(matched(*regex_table, "", "/users/7/x") == "");
    CHECK(matched(*regex_table, "", "/users/") == "");
    CHECK(matched(*regex_table, "", "/x/users/7") == "");
}

TEST_CASE("router::RouteTable tries regexes in config order, whatever their literal prefixes",
          "[router]") {
    Router router;
    router.route("/").path_regex(".*\\.png").name("any-png");
    router.route("/").path_regex("/img/.*").name("img");
    router.route("/").path_regex("/img/[a-z]+\\.png").name("img-png");
    router.route("/").path_regex("/img/thumbs/.*").name("thumbs");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/img/a.png") == "any-png");
    CHECK(matched(*table, "", "/img/a.jpg") == "img");
    CHECK(matched(*table, "", "/img/thumbs/a.jpg") == "img");
    CHECK(matched(*table, "", "/x.png") == "any-png");
    CHECK(matched(*table, "", "/x.jpg") == "");
}

TEST_CASE("router::RouteTable finds regexes through alternations, case folding and anchors",
          "[router]") {
    Router router;
    router.route("/").path_regex("/alpha/.*|/beta").name("alt");
    router.route("/").path_regex("(?i)/API/v[0-9]").name("fold");
    router.route("/").path_regex("^/anchored/[a-z]+$").name("anchored");
    router.route("/").path_regex("/opt(ional)?/x").name("optional");
    router.route("/").path_regex("/dot.css").name("dot");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/alpha/1") == "alt");
    CHECK(matched(*table, "", "/beta") == "alt");
    CHECK(matched(*table, "", "/betax") == "");
    CHECK(matched(*table, "", "/api/v1") == "fold");
    CHECK(matched(*table, "", "/Api/V2") == "fold");
    CHECK(matched(*table, "", "/anchored/abc") == "anchored");
    CHECK(matched(*table, "", "/opt/x") == "optional");
    CHECK(matched(*table, "", "/optional/x") == "optional");
    CHECK(matched(*table, "", "/dotxcss") == "dot");
    CHECK(matched(*table, "", "/dot.css") == "dot");
}

TEST_CASE("router::RouteTable finds regexes whose literal prefix is short, empty or folded",
          "[router]") {
    // Regex routes are only tried for paths that start with their pattern's literal prefix
    // (RE2::PossibleMatchRange): each path below reaches its route only if that prefix is not
    // longer than what every match shares.
    Router router;
    router.route("/").path_regex("/ab|/ac").name("shared");
    router.route("/").path_regex("|/empty-branch").name("empty-branch");
    router.route("/").path_regex("(/opt)?/tail").name("optional-head");
    router.route("/").path_regex("/a(?i:b)c").name("inner-fold");
    router.route("/").path_regex("(?i)/k").name("kelvin");
    router.route("/").path_regex("(?i)/s").name("long-s");
    router.route("/").path_regex("[/]class").name("class");
    router.route("/").path_regex("\\Q/q.t\\E.*").name("quoted");
    router.route("/").path_regex("/caf[\xc3\xa9" "e]").name("utf8");
    router.route("/").path_regex("\\A/start\\z").name("text-anchors");
    router.route("/").path_regex("/" + std::string(300, 'l') + "[0-9]").name("long");
    router.route("/").path_regex("(/r)*").name("repeat");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/ab") == "shared");
    CHECK(matched(*table, "", "/ac") == "shared");
    CHECK(matched(*table, "", "/ad") == "");
    CHECK(matched(*table, "", "") == "empty-branch");
    CHECK(matched(*table, "", "/empty-branch") == "empty-branch");
    CHECK(matched(*table, "", "/tail") == "optional-head");
    CHECK(matched(*table, "", "/opt/tail") == "optional-head");
    CHECK(matched(*table, "", "/aBc") == "inner-fold");
    CHECK(matched(*table, "", "/abc") == "inner-fold");
    CHECK(matched(*table, "", "/Abc") == "");
    // Unicode simple case folding: K folds with U+212A KELVIN SIGN, s with U+017F LONG S.
    CHECK(matched(*table, "", "/K") == "kelvin");
    CHECK(matched(*table, "", "/\xe2\x84\xaa") == "kelvin");
    CHECK(matched(*table, "", "/S") == "long-s");
    CHECK(matched(*table, "", "/\xc5\xbf") == "long-s");
    CHECK(matched(*table, "", "/class") == "class");
    CHECK(matched(*table, "", "/q.t/x") == "quoted");
    CHECK(matched(*table, "", "/qxt/x") == "");
    CHECK(matched(*table, "", "/caf\xc3\xa9") == "utf8");
    CHECK(matched(*table, "", "/cafe") == "utf8");
    CHECK(matched(*table, "", "/start") == "text-anchors");
    CHECK(matched(*table, "", "/" + std::string(300, 'l') + "7") == "long");
    CHECK(matched(*table, "", "/" + std::string(299, 'l') + "7") == "");
    CHECK(matched(*table, "", "/r/r/r") == "repeat");
}

TEST_CASE("router::RouteTable picks the first regex in config order that a scan would pick",
          "[router]") {
    // The literal-prefix index must never hide a matching regex nor reorder them: compare
    // with a scan of the patterns in order, on paths built from the patterns' own pieces.
    const std::vector<std::string> patterns = {
        "/img/.*\\.png",  "(?i)/IMG/[a-z]+", "/im(g|age)/x",   ".*\\.png",  "/i.*",
        "(?i)/legacy/.*", "/[a-c]pi/v[0-9]", "/api/v1|/api/v2", "(/api)?/v3", "/API/.*",
        "(?i)/api",       "^/img$",          "/imgx?",          "/",         "[/]+",
    };
    const std::vector<std::string> pieces = {"/", "img", "IMG", "Img", "image", "api", "API",
                                             "bpi", "v1", "v2", "v3", "legacy", "LEGACY",
                                             "x", "a.png", ".png", "g", ""};
    Router router;
    std::vector<std::unique_ptr<RE2>> compiled;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
        router.route("/").path_regex(patterns[i]).name(std::to_string(i));
        compiled.push_back(std::make_unique<RE2>(patterns[i]));
        REQUIRE(compiled.back()->ok());
    }
    const auto table = freeze_ok(router);
    std::mt19937 rng(7);
    for (int n = 0; n < 5000; ++n) {
        std::string path;
        const std::size_t parts = 1 + rng() % 5;
        for (std::size_t k = 0; k < parts; ++k) {
            path += pieces[rng() % pieces.size()];
        }
        std::string want;
        for (std::size_t i = 0; i < compiled.size(); ++i) {
            if (RE2::FullMatch(path, *compiled[i])) {
                want = std::to_string(i);
                break;
            }
        }
        INFO(path);
        CHECK(matched(*table, "", path) == want);
    }
}

TEST_CASE("router::RouteTable::match does not allocate for regexes RE2 has matched before",
          "[router]") {
    // RE2 builds its DFA states lazily and allocates then; once a regex has seen paths like
    // these, matching them again allocates nothing. Paths over 16 bytes and a pattern that is
    // not one-pass take RE2's DFA; the shorter ones its one-pass matcher.
    Router router;
    router.route("/").path_regex("/orders/[0-9]+").name("orders");
    router.route("/").path_regex(".*\\.php").name("php");
    router.route("/").path_regex("(?i)/legacy/.*").name("legacy");
    const auto table = freeze_ok(router);
    const std::vector<std::string> paths = {"/orders/12345", "/orders/1234567890123456789",
                                            "/wp/index.php", "/a/long/path/to/wp/index.php",
                                            "/Legacy/page",  "/legacy/a/much/longer/page",
                                            "/nothing",      "/nothing/at/all/matches/this"};
    std::size_t found = 0;
    for (const std::string& p : paths) {
        found += table->match("", p, Method::Get).route != nullptr;
    }
    CHECK(found == 6);
    const std::size_t before = g_allocations;
    for (int round = 0; round < 3; ++round) {
        for (const std::string& p : paths) {
            found += table->match("", p, Method::Get).route != nullptr;
        }
    }
    const std::size_t after = g_allocations;
    CHECK(found == 24);
    CHECK(after == before);
}

TEST_CASE("router::RouteTable prefers a HEAD regex route to a GET one with the same pattern",
          "[router]") {
    Router router;
    router.route(Method::Get, "/").path_regex("/r/.*").name("get");
    router.route(Method::Head, "/").path_regex("/r/.*").name("head");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/r/1", Method::Head) == "head");
    CHECK(matched(*table, "", "/r/1", Method::Get) == "get");
    const blitz::RouteMatch m = table->match("", "/r/1", Method::Post);
    CHECK(m.allowed == methods({Method::Get, Method::Head}));
}

TEST_CASE("router::RouteTable passes over routes whose header matchers fail", "[router]") {
    Router router;
    router.route("/api/users").header({"x-canary", MatchKind::Exact, "1"}).name("canary");
    router.route("/api/").prefix().name("prefix");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, TestRequest("", "/api/users", "", {{"X-Canary", "1"}})) == "canary");
    CHECK(matched(*table, TestRequest("", "/api/users", "", {{"X-Canary", "0"}})) == "prefix");
    CHECK(matched(*table, TestRequest("", "/api/users")) == "prefix");

    Router same_path;
    same_path.route("/api/users").header({"x-canary", MatchKind::Exact, "1"}).name("canary");
    same_path.route("/api/users").name("stable");
    same_path.route("/api/").prefix().name("prefix");
    const auto table2 = freeze_ok(same_path);
    CHECK(matched(*table2, TestRequest("", "/api/users", "", {{"x-canary", "1"}})) == "canary");
    CHECK(matched(*table2, TestRequest("", "/api/users")) == "stable");
}

TEST_CASE("router::RouteTable passes over routes whose query matchers fail", "[router]") {
    Router router;
    router.route("/search").prefix().query({"debug", MatchKind::Present, ""}).priority(1).name(
        "debug");
    router.route("/search").query({"q", MatchKind::Exact, "blitz gateway"}).name("exact-q");
    router.route("/").prefix().name("root");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, TestRequest("", "/search", "debug&q=x")) == "debug");
    CHECK(matched(*table, TestRequest("", "/search/more", "debug=1")) == "debug");
    CHECK(matched(*table, TestRequest("", "/search", "q=blitz%20gateway")) == "exact-q");
    CHECK(matched(*table, TestRequest("", "/search", "q=blitz+gateway")) == "root");
    CHECK(matched(*table, TestRequest("", "/search")) == "root");
}

TEST_CASE("router::RouteTable passes over a regex route whose matchers fail", "[router]") {
    Router router;
    router.route("/").path_regex("/v[0-9]+/.*").header({"x-beta", MatchKind::Present, ""}).name(
        "beta");
    router.route("/").path_regex("/v1/.*").name("v1");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, TestRequest("", "/v1/a", "", {{"x-beta", ""}})) == "beta");
    CHECK(matched(*table, TestRequest("", "/v1/a")) == "v1");
    CHECK(matched(*table, TestRequest("", "/v2/a")) == "");
}

TEST_CASE("router::RouteTable counts only routes whose matchers hold in the allowed methods",
          "[router]") {
    Router router;
    router.route(Method::Post, "/items").header({"x-admin", MatchKind::Present, ""}).name("admin");
    router.route(Method::Get, "/items").name("list");
    router.route(Method::Delete, "/only-admin").header({"x-admin", MatchKind::Present, ""});
    const auto table = freeze_ok(router);
    CHECK(matched(*table, TestRequest("", "/items", "", {}, Method::Get)) == "list");

    blitz::RouteMatch m = table->match(*TestRequest("", "/items", "", {}, Method::Put));
    CHECK(m.route == nullptr);
    CHECK(m.allowed == methods({Method::Get, Method::Head}));

    m = table->match(*TestRequest("", "/items", "", {{"X-Admin", "yes"}}, Method::Put));
    CHECK(m.route == nullptr);
    CHECK(m.allowed == methods({Method::Get, Method::Head, Method::Post}));

    // Only a route whose matchers fail has the path: 404, not 405.
    m = table->match(*TestRequest("", "/only-admin", "", {}, Method::Get));
    CHECK(m.route == nullptr);
    CHECK(m.allowed.empty());
    m = table->match(*TestRequest("", "/only-admin", "", {{"x-admin", ""}}, Method::Get));
    CHECK(m.allowed == methods({Method::Delete}));
}

TEST_CASE("router::RouteTable answers HEAD through a GET route whose matchers hold",
          "[router]") {
    Router router;
    router.route(Method::Get, "/x").header({"y", MatchKind::Present, ""}).name("get-y");
    router.route(Method::Head, "/x").header({"z", MatchKind::Present, ""}).name("head-z");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, TestRequest("", "/x", "", {{"y", ""}}, Method::Head)) == "get-y");
    CHECK(matched(*table, TestRequest("", "/x", "", {{"y", ""}, {"z", ""}}, Method::Head)) ==
          "head-z");
    CHECK(matched(*table, TestRequest("", "/x", "", {}, Method::Head)) == "");
}

TEST_CASE("router::RouteTable::match without a request never matches routes with matchers",
          "[router]") {
    Router router;
    router.route("/a").header({"cookie", MatchKind::Absent, ""}).name("no-cookie");
    router.route("/a").query({"q", MatchKind::Absent, ""}).name("no-query");
    router.route(Method::Put, "/a").name("put");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, "", "/a") == "");
    CHECK(table->match("", "/a", Method::Get).allowed == methods({Method::Put}));
    CHECK(matched(*table, TestRequest("", "/a")) == "no-cookie");
    CHECK(matched(*table, TestRequest("", "/a", "", {{"Cookie", "c"}})) == "no-query");
}

TEST_CASE("router::RouteTable::match(Request) takes the host from the authority", "[router]") {
    Router router;
    router.route("/").prefix().host("*.example.com").name("wild");
    router.route("/").prefix().name("any");
    const auto table = freeze_ok(router);
    CHECK(matched(*table, TestRequest("A.Example.COM:8443", "/x")) == "wild");
    CHECK(matched(*table, TestRequest("example.com", "/x")) == "any");
    CHECK(matched(*table, TestRequest("", "/x")) == "any");
}

TEST_CASE("router::RouteTable::match(Request) does not allocate for exact, prefix and matchers",
          "[router]") {
    Router router;
    router.route(Method::Get, "/exact/path/that/is/long/enough/to/leave/small/strings")
        .host("*.example.com")
        .header({"x-tenant", MatchKind::Exact, "acme"});
    router.route("/prefix/").prefix().host("api.example.com").query({"v", MatchKind::Prefix, "2"});
    router.route("/prefix/").prefix().query({"id", MatchKind::Exact, "a b"});
    router.route(Method::Post, "/any").header({"authorization", MatchKind::Absent, ""});
    const auto table = freeze_ok(router);
    const TestRequest exact("a.b.example.com:8080",
                            "/exact/path/that/is/long/enough/to/leave/small/strings", "",
                            {{"accept", "*/*"}, {"X-Tenant", "acme"}}, Method::Head);
    const TestRequest prefix("API.example.com", "/prefix/x/y", "a=1&v=2.1");
    const TestRequest fallthrough("api.example.com", "/prefix/x", "v=1&id=a%20b");
    const TestRequest put("h", "/any", "", {}, Method::Put);
    const std::size_t before = g_allocations;
    std::size_t found = 0;
    found += table->match(*exact).route != nullptr;
    found += table->match(*prefix).route != nullptr;
    found += table->match(*fallthrough).route != nullptr;
    found += table->match(*put).allowed.contains(Method::Post);
    const std::size_t after = g_allocations;
    CHECK(found == 4);
    CHECK(after == before);
}

TEST_CASE("router::Router::freeze rejects invalid regexes and matchers, naming the route",
          "[router]") {
    SECTION("a path regex RE2 cannot compile") {
        Router router;
        router.route("/").path_regex("/users/(").name("bad");
        CHECK_THAT(freeze_error(router),
                   ContainsSubstring("route \"bad\" (#0): path_regex \"/users/(\" is invalid: "
                                     "missing )"));
    }
    SECTION("a regex route that is also a prefix route") {
        Router router;
        router.route("/").prefix().path_regex("/x").name("both");
        CHECK_THAT(freeze_error(router),
                   Equals("route \"both\" (#0): a path_regex route cannot also be a prefix route"));
    }
    SECTION("a header name that is not a token") {
        Router router;
        router.route("/").header({"x env", MatchKind::Exact, "1"}).name("h");
        CHECK_THAT(freeze_error(router),
                   Equals("route \"h\" (#0): header matcher #0 (\"x env\"): name is not a token"));
    }
    SECTION("a header regex RE2 cannot compile") {
        Router router;
        router.route("/").header({"a", MatchKind::Present, ""}).header(
            {"x", MatchKind::Regex, "a**"});
        CHECK_THAT(freeze_error(router),
                   ContainsSubstring("route #0: header matcher #1 (\"x\"): regex \"a**\" is "
                                     "invalid: bad repetition operator"));
    }
    SECTION("a Present matcher with a value") {
        Router router;
        router.route("/").header({"x", MatchKind::Present, "1"});
        CHECK_THAT(freeze_error(router),
                   Equals("route #0: header matcher #0 (\"x\"): Present and Absent matchers take "
                          "no value"));
    }
    SECTION("a query matcher without a name") {
        Router router;
        router.route("/").query({"", MatchKind::Exact, "1"});
        CHECK_THAT(freeze_error(router),
                   Equals("route #0: query matcher #0 (\"\"): name is empty"));
    }
    SECTION("a query regex RE2 cannot compile") {
        Router router;
        router.route("/").query({"q", MatchKind::Regex, "[z-a]"});
        CHECK_THAT(freeze_error(router),
                   ContainsSubstring("route #0: query matcher #0 (\"q\"): regex \"[z-a]\" is "
                                     "invalid: invalid character class range: z-a"));
    }
    SECTION("a client_cert regex RE2 cannot compile") {
        Router router;
        router.route("/").client_cert({.san = blitz::CertTextMatcher{MatchKind::Regex, "(a"}});
        CHECK_THAT(freeze_error(router),
                   ContainsSubstring("route #0: client_cert san: regex \"(a\" is invalid: "
                                     "missing )"));
    }
    SECTION("a client_cert Absent matcher with a value") {
        Router router;
        router.route("/").client_cert(
            {.subject = blitz::CertTextMatcher{MatchKind::Absent, "CN=x"}});
        CHECK_THAT(freeze_error(router),
                   Equals("route #0: client_cert subject: Present and Absent matchers take no "
                          "value"));
    }
}

TEST_CASE("router::RouteTable passes over routes whose client_cert matcher fails", "[router]") {
    Router router;
    router.route("/api/").prefix().name("partner").client_cert(
        {.verified = true, .san = blitz::CertTextMatcher{MatchKind::Suffix, ".partner.example"}});
    router.route("/api/").prefix().name("anonymous").client_cert({.presented = false});
    router.route("/").prefix().name("fallback");
    const auto table = freeze_ok(router);
    CHECK(table->uses_client_cert());

    blitz::TlsInfo partner;
    partner.client_presented = true;
    partner.client_verified = true;
    partner.client_subject = "CN=a";
    partner.client_san = "a.partner.example";
    const std::string_view partner_sans[] = {"a.partner.example"};
    partner.client_sans = partner_sans;
    blitz::TlsInfo other = partner;
    other.client_san = "a.elsewhere.example";
    const std::string_view other_sans[] = {"a.elsewhere.example"};
    other.client_sans = other_sans;
    const blitz::TlsInfo no_cert;
    const TestRequest request("", "/api/x");
    auto name = [&](const blitz::TlsInfo* tls) {
        const blitz::RouteMatch m = table->match(*request, tls);
        return m.route != nullptr ? m.route->name : std::string();
    };
    CHECK(name(&partner) == "partner");
    CHECK(name(&other) == "fallback");
    CHECK(name(&no_cert) == "anonymous");
    CHECK(name(nullptr) == "anonymous");
    // Without a request no matcher can be evaluated: such routes never match.
    CHECK(matched(*table, "", "/api/x") == "fallback");
}

TEST_CASE("router::RouteTable checks client_cert matchers only after the method and headers",
          "[router]") {
    Router router;
    router.route(Method::Post, "/pay")
        .name("mtls")
        .header({"x-pay", MatchKind::Present, ""})
        .client_cert({.presented = true});
    router.route(Method::Get, "/pay").name("get");
    const auto table = freeze_ok(router);
    blitz::TlsInfo client;
    client.client_presented = true;
    const TestRequest post("", "/pay", "", {{"x-pay", "1"}}, Method::Post);
    const blitz::RouteMatch hit = table->match(*post, &client);
    REQUIRE(hit.route != nullptr);
    CHECK(hit.route->name == "mtls");
    // A POST without a certificate matches no route; GET and HEAD remain allowed.
    const blitz::RouteMatch m = table->match(*post, nullptr);
    CHECK(m.route == nullptr);
    CHECK(m.allowed == methods({Method::Get, Method::Head}));
}

TEST_CASE("router::RouteTable reports whether any route matches on client certificates",
          "[router]") {
    Router router;
    router.route("/").prefix().header({"x", MatchKind::Present, ""});
    CHECK_FALSE(freeze_ok(router)->uses_client_cert());
    router.route("/a").client_cert({.verified = false});
    CHECK(freeze_ok(router)->uses_client_cert());
}

namespace {

std::shared_ptr<blitz::Upstream> fake_upstream() {
    return std::make_shared<blitz::Upstream>(nullptr);
}

std::string freeze_error_of(Route r) {
    Router router;
    router.add(std::move(r)).name("r");
    return freeze_error(router);
}

}  // namespace

TEST_CASE("router::Router::freeze rejects more than one action", "[router]") {
    Route handler_and_proxy;
    handler_and_proxy.handler = [](blitz::Exchange&) { return blitz::Flow::Respond; };
    handler_and_proxy.proxy.upstream = fake_upstream();
    const std::string message =
        "route \"r\" (#0): more than one action: a handler, a proxy upstream and a redirect "
        "exclude each other";
    CHECK_THAT(freeze_error_of(handler_and_proxy), Equals(message));

    Route proxy_and_redirect;
    proxy_and_redirect.proxy.upstream = fake_upstream();
    proxy_and_redirect.redirect = blitz::Redirect{};
    CHECK_THAT(freeze_error_of(proxy_and_redirect), Equals(message));
}

TEST_CASE("router::Router::freeze checks redirects", "[router]") {
    auto with = [](blitz::Redirect d, bool prefix = false) {
        Route r;
        r.prefix = prefix;
        r.redirect = std::move(d);
        return freeze_error_of(std::move(r));
    };
    for (const int status : {300, 304, 305, 200, 399}) {
        INFO(status);
        CHECK_THAT(with({.status = status}),
                   Equals("route \"r\" (#0): redirect status " + std::to_string(status) +
                          " is not one of 301, 302, 303, 307, 308"));
    }
    CHECK_THAT(with({.scheme = "ht tp"}), ContainsSubstring("redirect scheme \"ht tp\" is not a "
                                                            "URI scheme"));
    CHECK_THAT(with({.host = "a.com\r\nX: y"}), ContainsSubstring("redirect host"));
    CHECK_THAT(with({.path = "relative"}), ContainsSubstring("redirect path \"relative\" is not an "
                                                             "absolute path"));
    CHECK_THAT(with({.path = "/a?b"}), ContainsSubstring("is not an absolute path"));
    CHECK_THAT(with({.prefix_rewrite = "/new/"}),
               Equals("route \"r\" (#0): redirect prefix_rewrite needs a prefix route"));
    CHECK_THAT(with({.path = "/a", .prefix_rewrite = "/b"}, true),
               ContainsSubstring("redirect sets both path and prefix_rewrite"));
    CHECK_THAT(with({.prefix_rewrite = "x"}, true), ContainsSubstring("redirect prefix_rewrite "
                                                                      "\"x\" is not an absolute"));

    for (const int status : {301, 302, 303, 307, 308}) {
        Router ok;
        ok.route("/").prefix().redirect(
            {.status = status, .scheme = "https", .host = "[::1]:8443", .prefix_rewrite = "/n/"});
        CHECK(ok.freeze());
    }
}

TEST_CASE("router::Router::freeze checks proxy rewrites", "[router]") {
    auto with = [](blitz::ProxyAction p, bool prefix = false, bool upstream = true) {
        Route r;
        r.prefix = prefix;
        r.proxy = std::move(p);
        if (upstream) {
            r.proxy.upstream = fake_upstream();
        }
        return freeze_error_of(std::move(r));
    };
    CHECK_THAT(with({.prefix_rewrite = "/v2/"}),
               Equals("route \"r\" (#0): proxy prefix_rewrite needs a prefix route"));
    CHECK_THAT(with({.prefix_rewrite = "/v2/", .regex_rewrite = "/(.*)"}, true),
               Equals("route \"r\" (#0): proxy sets both prefix_rewrite and regex_rewrite"));
    CHECK_THAT(with({.regex_rewrite = "/(.*"}),
               ContainsSubstring("proxy regex_rewrite \"/(.*\" is invalid: missing )"));
    CHECK_THAT(with({.regex_rewrite = "/(.*)", .regex_substitution = "/\\2"}),
               ContainsSubstring("proxy regex_substitution \"/\\2\": "));
    CHECK_THAT(with({.regex_substitution = "/x"}),
               ContainsSubstring("proxy regex_substitution needs a regex_rewrite"));
    CHECK_THAT(with({.regex_rewrite = "/(.*)", .regex_substitution = "/\\1?x"}),
               ContainsSubstring("is not path bytes"));
    CHECK_THAT(with({.host_rewrite = "bad host"}),
               ContainsSubstring("proxy host_rewrite \"bad host\" is not a host[:port]"));
    CHECK_THAT(with({.prefix_rewrite = "/x"}, true, false),
               ContainsSubstring("proxy rewrites are set but proxy.upstream is not"));

    Router ok;
    ok.route("/api/").prefix().proxy(blitz::ProxyAction{
        .upstream = fake_upstream(), .prefix_rewrite = "/", .host_rewrite = "b:81"});
    ok.route("/")
        .path_regex("/s/([^/]+)(/.*)")
        .proxy(blitz::ProxyAction{.upstream = fake_upstream(),
                                  .regex_rewrite = "/s/([^/]+)(/.*)",
                                  .regex_substitution = "\\2/\\1"});
    CHECK(ok.freeze());
}

TEST_CASE("router::Router::freeze checks header edits", "[router]") {
    auto with = [](blitz::filters::HeaderEdits request, blitz::filters::HeaderEdits response = {}) {
        Route r;
        r.request_headers = std::move(request);
        r.response_headers = std::move(response);
        return freeze_error_of(std::move(r));
    };
    CHECK_THAT(
        with({.add = {{"bad name", "v"}}}),
        Equals("route \"r\" (#0): request_headers: header name \"bad name\" is not a token"));
    CHECK_THAT(with({.set = {{"x", "a\r\nb"}}}),
               ContainsSubstring("request_headers: the value of \"x\" is not a field value"));
    CHECK_THAT(with({}, {.remove = {"Content-Length"}}),
               ContainsSubstring("response_headers: \"Content-Length\" frames the message"));
    CHECK_THAT(with({.set = {{"Transfer-Encoding", "chunked"}}}), ContainsSubstring("frames"));
}

TEST_CASE("router::Router::freeze puts one Headers filter first for header edits", "[router]") {
    auto user_filter = std::make_shared<blitz::Filter>();
    Router router;
    router.route("/edits").name("edits").filter(user_filter).spec().request_headers.set = {
        {"x-from", "blitz"}};
    router.route("/plain").name("plain").filter(user_filter);
    const auto table = freeze_ok(router);
    const Route* edits = table->match("", "/edits", Method::Get).route;
    const Route* plain = table->match("", "/plain", Method::Get).route;
    REQUIRE(edits != nullptr);
    REQUIRE(plain != nullptr);
    REQUIRE(edits->filters.size() == 2);
    CHECK(dynamic_cast<const blitz::filters::Headers*>(edits->filters[0].get()) != nullptr);
    CHECK(edits->filters[1] == user_filter);
    CHECK(plain->filters.size() == 1);
    CHECK(edits->compiled != nullptr);
    CHECK(plain->compiled != nullptr);

    // A route read back from a table and frozen again still gets the edits once.
    Router again;
    again.add(*edits);
    Route cleared = *edits;
    cleared.name = "cleared";
    cleared.path = "/cleared";
    cleared.request_headers = {};
    again.add(cleared);
    const auto table2 = freeze_ok(again);
    const Route* edits2 = table2->match("", "/edits", Method::Get).route;
    REQUIRE(edits2 != nullptr);
    REQUIRE(edits2->filters.size() == 2);
    CHECK(edits2->filters[0] != edits->filters[0]);
    CHECK(edits2->filters[1] == user_filter);
    const Route* cleared2 = table2->match("", "/cleared", Method::Get).route;
    REQUIRE(cleared2 != nullptr);
    REQUIRE(cleared2->filters.size() == 1);
    CHECK(cleared2->filters[0] == user_filter);
}

TEST_CASE("router::RouteBuilder action setters replace the action set before", "[router]") {
    auto handler = [](blitz::Exchange&) { return blitz::Flow::Respond; };
    Router router;
    blitz::RouteBuilder b = router.route("/").handle(handler);
    // Stays valid: no route is added below.
    Route& r = b.spec();
    CHECK(r.handler);
    b.proxy(fake_upstream());
    CHECK_FALSE(r.handler);
    CHECK(r.proxy.upstream);
    b.redirect({.status = 301});
    CHECK_FALSE(r.proxy.upstream);
    CHECK(r.redirect);
    b.proxy(blitz::ProxyAction{.upstream = fake_upstream(), .host_rewrite = "h"});
    CHECK_FALSE(r.redirect);
    CHECK(r.proxy.host_rewrite == "h");
    b.handle(handler);
    CHECK_FALSE(r.proxy.upstream);
    b.redirect({});
    b.respond(204);
    CHECK_FALSE(r.redirect);
    CHECK(r.direct.status == 204);
    b.priority(-7).path_regex("/r").header({"a", MatchKind::Present, ""}).query(
        {"q", MatchKind::Absent, ""});
    CHECK(r.priority == -7);
    CHECK(r.path_regex == "/r");
    CHECK(r.headers.size() == 1);
    CHECK(r.query.size() == 1);
}

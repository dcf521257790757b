// libFuzzer target for route matching and the route actions' request-time helpers. A fixed
// table (exact, prefix, host and wildcard-host, regex and priority routes, header and query
// matchers, rewrites and redirects) is built once; each input becomes a request:
//
//   byte 0: the method (mod kMethodCount); then '\n'-separated lines: authority, path, query,
//   and header fields "name:value".
//
// Besides "does not crash" (ASan, UBSan), it checks on every input: the route found agrees
// with a route-by-route evaluation of the documented precedence (so the hash and prefix
// indexes never lose or invent a match); match(host, path, method) agrees with it for a request
// without matchers; rewrite_path() returns a rooted path; a redirect's Location carries no
// control bytes when the request's path and query carry none.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <re2/re2.h>

#include <blitz/arena.hpp>
#include <blitz/router.hpp>

#include "router/compiled_route.hpp"
#include "router/rewrite.hpp"
#include "router/route_table.hpp"

namespace {

using blitz::HeaderMatcher;
using blitz::MatchKind;
using blitz::Method;
using blitz::MethodSet;
using blitz::QueryMatcher;
using blitz::Route;

void check(bool ok, const char* invariant) {
    if (!ok) {
        std::fprintf(stderr, "route_fuzz: invariant violated: %s\n", invariant);
        std::abort();
    }
}

MethodSet only(Method m) {
    return MethodSet().add(m);
}

std::vector<Route> make_routes() {
    // Route::proxy.upstream only has to be set; the cluster is never used here.
    const auto upstream = std::make_shared<blitz::Upstream>(nullptr);
    std::vector<Route> routes;
    auto add = [&routes](Route r) { routes.push_back(std::move(r)); };
    add({.name = "root", .path = "/"});
    add({.name = "users", .path = "/api/users", .methods = only(Method::Get)});
    add({.name = "users-acme",
         .path = "/api/users",
         .headers = {{"x-tenant", MatchKind::Exact, "acme"}}});
    add({.name = "api",
         .path = "/api/",
         .prefix = true,
         .proxy = {.upstream = upstream, .prefix_rewrite = "/v2/"}});
    add({.name = "api-short", .path = "/api", .prefix = true, .methods = only(Method::Post)});
    add({.name = "static-wild", .host = "*.example.com", .path = "/static/", .prefix = true});
    add({.name = "api-host", .host = "api.example.com", .path = "/", .prefix = true});
    add({.name = "v6", .host = "[::1]", .path = "/", .prefix = true, .methods = only(Method::Put)});
    add({.name = "orders",
         .path_regex = "/users/([0-9]+)/orders/([0-9]+)",
         .proxy = {.upstream = upstream,
                   .regex_rewrite = "/users/([0-9]+)/orders/([0-9]+)",
                   .regex_substitution = "\\2/by-user/\\1"}});
    add({.name = "legacy",
         .path_regex = "(?i)/legacy/.*",
         .redirect = blitz::Redirect{.status = 301, .scheme = "https", .path = "/new"}});
    add({.name = "php", .path_regex = ".*\\.php", .methods = only(Method::Get)});
    add({.name = "alt", .path_regex = "/a|/b/.*", .priority = -1});
    add({.name = "old",
         .path = "/old/",
         .prefix = true,
         .redirect = blitz::Redirect{.status = 308, .prefix_rewrite = "/new/"}});
    add({.name = "moved",
         .path = "/moved",
         .redirect =
             blitz::Redirect{.status = 302, .host = "new.example:8443", .strip_query = true}});
    add({.name = "search",
         .path = "/search",
         .query = {{"q", MatchKind::Regex, "[a-z ]+"}, {"debug", MatchKind::Absent, ""}}});
    add({.name = "search-prefix",
         .path = "/search",
         .prefix = true,
         .query = {{"page", MatchKind::Prefix, "1"}, {"id", MatchKind::Exact, "a b"}}});
    add({.name = "versioned",
         .path = "/versioned/",
         .prefix = true,
         .headers = {{"x-version", MatchKind::Regex, "v[0-9]+"},
                     {"accept", MatchKind::Prefix, "application/"}}});
    add({.name = "admin",
         .path = "/admin/",
         .prefix = true,
         .methods = only(Method::Post),
         .headers = {{"authorization", MatchKind::Present, ""}},
         .priority = 5});
    add({.name = "no-cookie",
         .path = "/",
         .prefix = true,
         .headers = {{"cookie", MatchKind::Absent, ""}}});
    // A prefix longer than 64 bytes, so lookups cross words of the prefix length bitmap.
    add({.name = "long", .path = "/" + std::string(100, 'a') + "/", .prefix = true});
    add({.name = "long-byte", .path = "/" + std::string(70, 'a'), .prefix = true});
    return routes;
}

struct Fixture {
    std::vector<Route> routes;
    std::shared_ptr<const blitz::RouteTable> table;
    /// `routes` as freeze() makes them (hosts canonical), each with its compiled patterns, for
    /// the reference evaluation and the helpers.
    std::vector<Route> reference;

    Fixture() : routes(make_routes()) {
        blitz::Router router;
        for (const Route& r : routes) {
            router.add(r);
        }
        auto frozen = router.freeze();
        if (!frozen) {
            std::fprintf(stderr, "route_fuzz: %s\n", frozen.error().c_str());
            std::abort();
        }
        table = *frozen;
        for (const Route& r : routes) {
            Route copy = r;
            auto compiled = std::make_shared<blitz::router::CompiledRoute>();
            const RE2::Options options = blitz::router::regex_options();
            if (!r.path_regex.empty()) {
                compiled->path_regex = std::make_unique<const RE2>(r.path_regex, options);
            }
            for (const HeaderMatcher& h : r.headers) {
                compiled->header_regexes.push_back(
                    h.kind == MatchKind::Regex ? std::make_unique<const RE2>(h.value, options)
                                               : nullptr);
            }
            for (const QueryMatcher& q : r.query) {
                compiled->query_regexes.push_back(
                    q.kind == MatchKind::Regex ? std::make_unique<const RE2>(q.value, options)
                                               : nullptr);
            }
            if (!r.proxy.regex_rewrite.empty()) {
                compiled->rewrite = std::make_unique<const RE2>(r.proxy.regex_rewrite, options);
                compiled->rewrite_groups = RE2::MaxSubmatch(r.proxy.regex_substitution);
            }
            copy.compiled = std::move(compiled);
            reference.push_back(std::move(copy));
        }
    }
};

const Fixture& fixture() {
    static const Fixture f;
    return f;
}

bool allows(MethodSet set, Method m) {
    return set.empty() || set.contains(m);
}

/// The documented precedence, route by route (the table's answer must equal it).
blitz::RouteMatch reference_match(const std::vector<Route>& routes, const blitz::Request* request,
                                  std::string_view authority, std::string_view path,
                                  Method method) {
    std::array<char, blitz::router::kMaxHostBytes> buf;
    const std::string_view host = blitz::router::normalise_host(authority, buf);
    blitz::RouteMatch best;
    std::tuple<long, long, long, int> best_rank{};
    for (std::size_t i = 0; i < routes.size(); ++i) {
        const Route& r = routes[i];
        if (blitz::router::has_matchers(r) &&
            (request == nullptr || !blitz::router::matchers_hold(r, *request))) {
            continue;
        }
        long host_rank = 0;
        if (r.host.starts_with("*.")) {
            const std::string_view suffix = std::string_view(r.host).substr(1);
            if (host.size() <= suffix.size() || !host.ends_with(suffix)) {
                continue;
            }
            host_rank = static_cast<long>(suffix.size());
        } else if (!r.host.empty()) {
            if (r.host != host) {
                continue;
            }
            host_rank = 1'000'000;
        }
        long path_rank = 0;
        if (r.compiled->path_regex) {
            if (!blitz::router::full_match(*r.compiled->path_regex, path)) {
                continue;
            }
            // Every regex here has its own pattern and host, so its rank is its position.
            path_rank = -1 - static_cast<long>(i);
        } else if (!r.prefix && path == r.path) {
            path_rank = 1'000'000;
        } else if (r.prefix && path.starts_with(r.path)) {
            path_rank = static_cast<long>(r.path.size());
        } else {
            continue;
        }
        int explicit_method = 1;
        if (!allows(r.methods, method)) {
            if (!(method == Method::Head && allows(r.methods, Method::Get))) {
                for (std::size_t m = 0; m < blitz::kMethodCount; ++m) {
                    if (allows(r.methods, static_cast<Method>(m))) {
                        best.allowed.add(static_cast<Method>(m));
                    }
                }
                if (allows(r.methods, Method::Get)) {
                    best.allowed.add(Method::Head);
                }
                continue;
            }
            explicit_method = 0;
        }
        const std::tuple<long, long, long, int> rank{r.priority, host_rank, path_rank,
                                                     explicit_method};
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

/// The same match: the same route (by name) and allowed methods.
bool same(const blitz::RouteMatch& a, const blitz::RouteMatch& b) {
    if ((a.route == nullptr) != (b.route == nullptr)) {
        return false;
    }
    return (a.route == nullptr || a.route->name == b.route->name) && a.allowed == b.allowed;
}

bool has_controls(std::string_view s) {
    for (const char c : s) {
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            return true;
        }
    }
    return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return 0;
    }
    const Fixture& f = fixture();
    const auto method = static_cast<Method>(data[0] % blitz::kMethodCount);
    const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);

    std::vector<std::string_view> lines;
    for (std::size_t start = 0;;) {
        const std::size_t nl = input.find('\n', start);
        lines.push_back(std::string_view(input).substr(start, nl - start));
        if (nl == std::string::npos) {
            break;
        }
        start = nl + 1;
    }
    auto line = [&lines](std::size_t i) {
        return i < lines.size() ? lines[i] : std::string_view();
    };
    std::vector<blitz::Header> fields;
    for (std::size_t i = 3; i < lines.size(); ++i) {
        const std::size_t colon = lines[i].find(':');
        fields.push_back({lines[i].substr(0, colon),
                          colon == std::string_view::npos ? std::string_view()
                                                          : lines[i].substr(colon + 1)});
    }
    blitz::Request request;
    request.method = method;
    request.authority = line(0);
    request.path = line(1);
    request.query = line(2);
    request.headers = blitz::Headers(fields);

    const blitz::RouteMatch got = f.table->match(request);
    check(same(got, reference_match(f.reference, &request, request.authority, request.path,
                                    method)),
          "match(request) agrees with the documented precedence");
    const blitz::RouteMatch plain = f.table->match(request.authority, request.path, method);
    check(same(plain, reference_match(f.reference, nullptr, request.authority, request.path,
                                      method)),
          "match(host, path, method) agrees with the documented precedence");
    check(plain.route == nullptr || !blitz::router::has_matchers(*plain.route),
          "match(host, path, method) never returns a route with matchers");

    blitz::Arena arena;
    const bool clean = !has_controls(request.path) && !has_controls(request.query);
    // Every route's helpers, not only the matched one's: paths a route does not match must be
    // handled too.
    for (const Route& r : f.reference) {
        const std::string_view rewritten = blitz::router::rewrite_path(r, request.path, arena);
        check(rewritten.data() == request.path.data() || rewritten.starts_with('/'),
              "a rewritten path starts with '/'");
        check(!clean || !has_controls(rewritten), "a rewrite of a clean path stays clean");
        const std::string_view location = blitz::router::redirect_location(r, request, arena);
        check(r.redirect.has_value() || location.empty(), "only a redirect route has a Location");
        check(!clean || !has_controls(location), "a Location for a clean request is clean");
    }
    return 0;
}

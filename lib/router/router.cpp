#include <blitz/router.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "router/route_table.hpp"

namespace blitz {
namespace {

bool is_hostname_char(char c) noexcept {
    // RFC 1123 §2.1 letters, digits and hyphens; underscores too, which real service names
    // (container and SRV-style names) carry in Host headers.
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_';
}

/// Dot-separated labels of 1..63 characters that neither start nor end with '-', at most 253
/// characters in all (RFC 1035 §2.3.4). Dotted IPv4 literals are hostnames by this syntax.
bool valid_hostname(std::string_view h) noexcept {
    if (h.empty() || h.size() > 253) {
        return false;
    }
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = std::min(h.find('.', start), h.size());
        const std::string_view label = h.substr(start, dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
            !std::all_of(label.begin(), label.end(), is_hostname_char)) {
            return false;
        }
        if (dot == h.size()) {
            return true;
        }
        start = dot + 1;
    }
}

/// RFC 3986 §3.2.2 IP-literal, checked loosely: hex digits, colons and dots (for an embedded
/// IPv4 address) between brackets, with at least one colon.
bool valid_ipv6_literal(std::string_view h) noexcept {
    if (h.size() < 4 || h.front() != '[' || h.back() != ']') {
        return false;
    }
    const std::string_view inner = h.substr(1, h.size() - 2);
    return inner.find(':') != std::string_view::npos &&
           std::all_of(inner.begin(), inner.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
                      c == ':' || c == '.';
           });
}

/// Lowercases the host and drops one trailing dot, as normalise_host() does for requests.
std::string canonical_host(std::string_view h) {
    if (h.ends_with('.')) {
        h.remove_suffix(1);
    }
    std::string out(h);
    std::transform(out.begin(), out.end(), out.begin(), [](char c) {
        return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    });
    return out;
}

std::string describe_route(const Route& r, std::size_t index) {
    std::string out = "route ";
    if (!r.name.empty()) {
        out += '"';
        out += r.name;
        out += "\" (#";
        out += std::to_string(index);
        out += ')';
    } else {
        out += '#';
        out += std::to_string(index);
    }
    return out;
}

/// What is wrong with the route, or nothing. Normalises the host it checked.
std::optional<std::string> check(Route& r) {
    if (!r.path.starts_with('/')) {
        return "path must start with '/' (got \"" + r.path + "\")";
    }
    if (r.path.find_first_of("?#") != std::string::npos) {
        // The matched path excludes the query (RFC 3986 §3.4) and the fragment is never sent,
        // so such a route could never match.
        return "path must not contain '?' or '#' (got \"" + r.path + "\")";
    }
    if (!router::valid_route_host(r.host)) {
        return "host \"" + r.host +
               "\" is not a hostname, \"*.\" + hostname or [IPv6] literal (ports are not "
               "matched)";
    }
    r.host = canonical_host(r.host);
    for (std::size_t i = 0; i < r.filters.size(); ++i) {
        if (!r.filters[i]) {
            return "filter #" + std::to_string(i) + " is null";
        }
    }
    // RFC 9110 §15.2: a 1xx response is interim; the client would keep waiting for a final one.
    if (!r.handler && (r.direct.status < 200 || r.direct.status > 599)) {
        return "direct response status " + std::to_string(r.direct.status) +
               " is not a final status (200..599)";
    }
    return std::nullopt;
}

}  // namespace

RouteBuilder& RouteBuilder::name(std::string_view n) {
    spec().name = n;
    return *this;
}

RouteBuilder& RouteBuilder::host(std::string_view h) {
    spec().host = h;
    return *this;
}

RouteBuilder& RouteBuilder::prefix() {
    spec().prefix = true;
    return *this;
}

RouteBuilder& RouteBuilder::methods(MethodSet m) {
    spec().methods = m;
    return *this;
}

RouteBuilder& RouteBuilder::max_body_bytes(std::uint64_t n) {
    spec().max_body_bytes = n;
    return *this;
}

RouteBuilder& RouteBuilder::filter(std::shared_ptr<Filter> f) {
    spec().filters.push_back(std::move(f));
    return *this;
}

RouteBuilder& RouteBuilder::respond(int status, std::string_view body,
                                    std::string_view content_type) {
    return respond(DirectResponse{status, std::string(body), std::string(content_type), {}});
}

RouteBuilder& RouteBuilder::respond(DirectResponse r) {
    Route& route = spec();
    route.direct = std::move(r);
    // The last action configured is the one that answers.
    route.handler = nullptr;
    return *this;
}

RouteBuilder& RouteBuilder::handle(Handler h) {
    spec().handler = std::move(h);
    return *this;
}

Route& RouteBuilder::spec() {
    return router_->routes()[index_];
}

RouteBuilder Router::route(Method method, std::string_view path) {
    RouteBuilder b = route(path);
    b.spec().methods.add(method);
    if (method == Method::Other) {
        other_method_routes_.push_back(routes_.size() - 1);
    }
    return b;
}

RouteBuilder Router::route(std::string_view path) {
    Route r;
    r.path = path;
    return add(std::move(r));
}

RouteBuilder Router::add(Route r) {
    routes_.push_back(std::move(r));
    return RouteBuilder(*this, routes_.size() - 1);
}

Result<std::shared_ptr<const RouteTable>, std::string> Router::freeze() const {
    std::vector<Route> routes = routes_;
    for (std::size_t i = 0; i < routes.size(); ++i) {
        Route& r = routes[i];
        r.order = static_cast<std::uint32_t>(i);
        if (std::find(other_method_routes_.begin(), other_method_routes_.end(), i) !=
            other_method_routes_.end()) {
            return fail(describe_route(r, i) +
                        ": Method::Other names no method; match extension methods with "
                        "route(path).methods(MethodSet().add(Method::Other))");
        }
        if (auto error = check(r)) {
            return fail(describe_route(r, i) + ": " + *error);
        }
    }
    return router::compile(std::move(routes));
}

}  // namespace blitz

namespace blitz::router {

bool valid_route_host(std::string_view h) noexcept {
    // One trailing dot is dropped first, so "example.com.." stays invalid.
    if (h.ends_with('.')) {
        h.remove_suffix(1);
    }
    if (h.empty()) {
        return true;
    }
    if (valid_ipv6_literal(h)) {
        return true;
    }
    if (h.starts_with("*.")) {
        h.remove_prefix(2);
    }
    return valid_hostname(h);
}

}  // namespace blitz::router

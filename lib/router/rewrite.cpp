#include "router/rewrite.hpp"

#include <array>
#include <cstddef>
#include <cstring>
#include <initializer_list>

#include "http/uri.hpp"
#include "router/compiled_route.hpp"

namespace blitz::router {
namespace {

/// RE2 rewrite strings name groups \0 to \9.
constexpr int kMaxRewriteGroups = 10;

/// The pieces, concatenated into the arena.
std::string_view join(Arena& arena, std::initializer_list<std::string_view> parts) {
    std::size_t n = 0;
    for (const std::string_view part : parts) {
        n += part.size();
    }
    char* out = static_cast<char*>(arena.allocate(n == 0 ? 1 : n, 1));
    char* p = out;
    for (const std::string_view part : parts) {
        if (!part.empty()) {
            std::memcpy(p, part.data(), part.size());
            p += part.size();
        }
    }
    return {out, n};
}

/// `path` with a leading '/' when it has none.
std::string_view rooted(std::string_view path, Arena& arena) {
    return path.starts_with('/') ? path : join(arena, {"/", path});
}

std::string_view regex_rewrite(const CompiledRoute& compiled, std::string_view substitution,
                               std::string_view path, Arena& arena) {
    std::array<re2::StringPiece, kMaxRewriteGroups> groups;
    const int n = compiled.rewrite_groups + 1;
    if (n > kMaxRewriteGroups ||
        !compiled.rewrite->Match(re2::StringPiece(path.data(), path.size()), 0, path.size(),
                                 RE2::ANCHOR_BOTH, groups.data(), n)) {
        return path;
    }
    // Two passes over the substitution: the length, then the bytes. RE2::Rewrite would build a
    // std::string; this writes once into the arena. freeze() checked the string with
    // RE2::CheckRewriteString, so every '\' is followed by a digit below n or by '\'.
    auto expand = [&](char* out) {
        std::size_t length = 0;
        for (std::size_t i = 0; i < substitution.size(); ++i) {
            std::string_view piece = substitution.substr(i, 1);
            if (substitution[i] == '\\' && i + 1 < substitution.size()) {
                const char next = substitution[++i];
                if (next >= '0' && next <= '9' && next - '0' < n) {
                    const re2::StringPiece& g = groups[static_cast<std::size_t>(next - '0')];
                    piece = std::string_view(g.data(), g.size());
                } else {
                    piece = substitution.substr(i, 1);
                }
            }
            if (out != nullptr && !piece.empty()) {
                std::memcpy(out + length, piece.data(), piece.size());
            }
            length += piece.size();
        }
        return length;
    };
    const std::size_t length = expand(nullptr);
    char* out = static_cast<char*>(arena.allocate(length == 0 ? 1 : length, 1));
    expand(out);
    return rooted(std::string_view(out, length), arena);
}

/// The default port of a scheme, or empty.
std::string_view default_port(std::string_view scheme) noexcept {
    if (iequals(scheme, "http")) {
        return "80";
    }
    if (iequals(scheme, "https")) {
        return "443";
    }
    return {};
}

/// `authority` without a ":port" equal to `port`.
std::string_view without_port(std::string_view authority, std::string_view port) noexcept {
    const std::string_view host = http::authority_host(authority);
    if (!port.empty() && authority.size() == host.size() + 1 + port.size() &&
        authority.ends_with(port)) {
        return host;
    }
    return authority;
}

}  // namespace

std::string_view rewrite_path(const Route& route, std::string_view path, Arena& arena) {
    const ProxyAction& p = route.proxy;
    if (!p.prefix_rewrite.empty()) {
        if (!route.prefix || !path.starts_with(route.path)) {
            return path;
        }
        return rooted(join(arena, {p.prefix_rewrite, path.substr(route.path.size())}), arena);
    }
    if (!p.regex_rewrite.empty() && route.compiled && route.compiled->rewrite) {
        return regex_rewrite(*route.compiled, p.regex_substitution, path, arena);
    }
    return path;
}

std::string_view redirect_location(const Route& route, const Request& request, Arena& arena) {
    if (!route.redirect) {
        return {};
    }
    const Redirect& d = *route.redirect;
    std::string_view path = request.path;
    std::string_view rest;
    if (!d.path.empty()) {
        path = d.path;
    } else if (!d.prefix_rewrite.empty() && route.prefix && request.path.starts_with(route.path)) {
        path = d.prefix_rewrite;
        rest = request.path.substr(route.path.size());
    }
    const std::string_view query = d.strip_query ? std::string_view() : request.query;
    const std::string_view question = query.empty() ? std::string_view() : "?";

    const std::string_view request_scheme = request.scheme.empty() ? "http" : request.scheme;
    const std::string_view scheme = d.scheme.empty() ? request_scheme : d.scheme;
    std::string_view host = d.host;
    if (host.empty() && http::valid_authority(request.authority)) {
        // "http://a:80" redirected to https must not become "https://a:80".
        host = iequals(scheme, request_scheme)
                   ? request.authority
                   : without_port(request.authority, default_port(request_scheme));
    }
    if (host.empty()) {
        return join(arena, {path, rest, question, query});
    }
    return join(arena, {scheme, "://", host, path, rest, question, query});
}

}  // namespace blitz::router

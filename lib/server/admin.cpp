#include "server/admin.hpp"

#include <memory>
#include <utility>

#include <openssl/crypto.h>

#include <blitz/exchange.hpp>
#include <blitz/reactor.hpp>

#include "server/engine_report.hpp"

namespace blitz::server {

namespace {

constexpr std::string_view kJson = "application/json";

// Compared in constant time (the TLS library's comparison, as for ticket key names), so the
// time taken says nothing about how much of a guess was right.
bool same_secret(std::string_view a, std::string_view b) noexcept {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// RFC 6750 §2.1: `Authorization: Bearer <token>`; the scheme is case-insensitive.
bool authorized(const Exchange& ex, std::string_view token) {
    if (token.empty()) {
        return true;
    }
    std::string_view value = ex.request().headers.get("authorization");
    constexpr std::string_view kScheme = "bearer ";
    if (value.size() <= kScheme.size()) {
        return false;
    }
    for (std::size_t i = 0; i < kScheme.size(); ++i) {
        const char c = value[i];
        if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) != kScheme[i]) {
            return false;
        }
    }
    return same_secret(value.substr(kScheme.size()), token);
}

Flow unauthorized(Exchange& ex) {
    const Flow f = ex.respond_static(401, "{\"error\":\"admin token required\"}\n", kJson);
    ex.response().set_header("WWW-Authenticate", "Bearer realm=\"blitz admin\"");
    return f;
}

}  // namespace

Router admin_router(AdminSource& source, std::string token) {
    auto secret = std::make_shared<const std::string>(std::move(token));
    Router router;
    router.route(Method::Get, "/live").name("admin-live").handle([secret](Exchange& ex) {
        if (!authorized(ex, *secret)) {
            return unauthorized(ex);
        }
        return ex.respond_static(200, "live\n");
    });
    router.route(Method::Get, "/ready").name("admin-ready").handle([&source, secret](Exchange& ex) {
        if (!authorized(ex, *secret)) {
            return unauthorized(ex);
        }
        return source.admin_ready() ? ex.respond_static(200, "ready\n") : ex.respond_static(503, "draining\n");
    });
    router.route(Method::Get, "/metrics").name("admin-metrics").handle([&source, secret](Exchange& ex) {
        if (!authorized(ex, *secret)) {
            return unauthorized(ex);
        }
        std::string text;
        source.admin_metrics(text);
        // The text exposition format, version 0.0.4 (what Prometheus asks for by default).
        return ex.respond(200, text, "text/plain; version=0.0.4; charset=utf-8");
    });
    const auto json_view = [&router, &source, secret](std::string_view path, std::string_view name,
                                                     bool (*fill)(AdminSource&, std::string&)) {
        router.route(Method::Get, path).name(name).handle([&source, secret, fill](Exchange& ex) {
            if (!authorized(ex, *secret)) {
                return unauthorized(ex);
            }
            std::string json;
            if (!fill(source, json)) {
                return ex.respond_static(404, "{\"error\":\"this server has no configuration document\"}\n", kJson);
            }
            json += '\n';
            return ex.respond(200, json, kJson);
        });
    };
    json_view("/stats", "admin-stats", [](AdminSource& s, std::string& out) {
        s.admin_stats(out);
        return true;
    });
    json_view("/routes", "admin-routes", [](AdminSource& s, std::string& out) {
        s.admin_routes(out);
        return true;
    });
    json_view("/upstreams", "admin-upstreams", [](AdminSource& s, std::string& out) {
        s.admin_upstreams(out);
        return true;
    });
    json_view("/config", "admin-config", [](AdminSource& s, std::string& out) { return s.admin_config(out); });
    router.route(Method::Post, "/reload").name("admin-reload").handle([&source, secret](Exchange& ex) {
        if (!authorized(ex, *secret)) {
            return unauthorized(ex);
        }
        // The reload runs on the control thread; its outcome comes back to this reactor.
        const unsigned reactor = ex.reactor().index();
        const bool started = source.admin_reload([&source, &ex, reactor](Result<void, std::string> outcome) {
            source.admin_post(reactor, [&ex, outcome = std::move(outcome)] {
                if (!ex.aborted()) {
                    if (outcome) {
                        ex.respond_static(200, "{\"reloaded\":true}\n", kJson);
                    } else {
                        std::string body = "{\"reloaded\":false,\"error\":";
                        append_json_string(body, outcome.error());
                        body += "}\n";
                        ex.respond(400, body, kJson);
                    }
                }
                ex.resume();
            });
        });
        if (!started) {
            return ex.respond_static(501, "{\"error\":\"this server has no reload\"}\n", kJson);
        }
        return Flow::Pause;
    });
    return router;
}

}  // namespace blitz::server

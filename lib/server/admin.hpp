#pragma once

#include <functional>
#include <string>

#include <blitz/result.hpp>
#include <blitz/router.hpp>

namespace blitz::server {

/// What the admin endpoints ask of the server they report on.
///
/// Thread: every call comes from a reactor thread (the one serving the admin request) and must
/// be thread-safe. Lifetime: outlives the admin listener.
class AdminSource {
public:
    /// False while the server drains (GET /ready answers 503, so load balancers move away).
    virtual bool admin_ready() const noexcept = 0;
    /// Appends the server's counters as one JSON object (GET /stats).
    virtual void admin_stats(std::string& out) const = 0;
    /// Appends the server's metrics in the Prometheus text format (GET /metrics).
    virtual void admin_metrics(std::string& out) const = 0;
    /// Appends GET /routes: every listener's routes, as JSON.
    virtual void admin_routes(std::string& out) const = 0;
    /// Appends GET /upstreams: every upstream's endpoints with health and pools, as JSON.
    virtual void admin_upstreams(std::string& out) const = 0;
    /// Appends GET /config: the running configuration (secrets redacted) as the embedder gave
    /// it (Server::set_config_document). False: none was given.
    virtual bool admin_config(std::string& out) const = 0;
    /// Runs a reload on the control thread and calls `done` with its outcome there (POST
    /// /reload). False: no reload is possible (no control loop or no reload hook).
    virtual bool admin_reload(std::function<void(Result<void, std::string>)> done) = 0;
    /// Runs `task` on reactor `index` if it still runs (a stopped reactor drops it, with the
    /// exchanges it held). Any thread.
    virtual void admin_post(unsigned index, std::function<void()> task) = 0;

protected:
    ~AdminSource() = default;
};

/// The admin listener's routes: GET /live, /ready, /stats, /metrics, /routes, /upstreams, /config,
/// POST /reload; with a
/// non-empty `token`, each one first requires `Authorization: Bearer <token>` (401 otherwise).
///
/// Thread: config-time. Lifetime: the routes refer to `source`.
Router admin_router(AdminSource& source, std::string token);

}  // namespace blitz::server

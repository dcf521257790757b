#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <blitz/listener.hpp>
#include <blitz/reactor.hpp>
#include <blitz/result.hpp>
#include <blitz/router.hpp>

namespace blitz {

/// The admin listener: probes, counters and reloads on an address of its own, never reachable
/// through the public listeners (docs/operations.md#admin-listener).
struct AdminOptions {
    std::string address = "127.0.0.1:9901";
    /// Non-empty: every admin request needs `Authorization: Bearer <token>` (else 401).
    std::string token;
};

/// Engine-wide settings.
/// How many label values the per-route and per-endpoint metrics keep; later values share the
/// series labelled "other", so a scrape stays bounded however many routes or endpoints there are.
struct MetricsOptions {
    std::uint32_t max_route_labels = 200;
    std::uint32_t max_endpoint_labels = 200;  ///< per upstream

    bool operator==(const MetricsOptions&) const = default;
};

struct ServerOptions {
    /// Reactor threads; 0 = one per online CPU.
    unsigned workers = 0;
    /// Pin reactor i to the i-th CPU the process may run on.
    bool pin_cpus = false;
    Backend backend = Backend::Auto;
    /// Size of each receive buffer in the per-reactor buffer ring.
    std::uint32_t recv_buffer_bytes = 16 * 1024;
    /// Upper bound on receive buffers per reactor (they are allocated as connections need
    /// them, in batches, never all up front). A power of two.
    std::uint32_t max_recv_buffers = 4096;
    /// Graceful shutdown (drain(), SIGTERM) and listeners removed by reload(): how long
    /// requests in flight may take to finish before what is left is closed.
    std::chrono::milliseconds drain_timeout{30'000};
    /// The admin listener; none when empty.
    std::optional<AdminOptions> admin;
    MetricsOptions metrics;
    /// Span export; none when empty (traceparent is still propagated).
    std::optional<TracingOptions> tracing;
};

/// What Server::run_until_signal() does besides stopping.
struct ServerHooks {
    /// SIGHUP, POST /reload on the admin listener, or a change to a file of `watched_files`:
    /// called on the control thread (never a reactor), typically to re-read the configuration
    /// and call Server::reload(). The error (a bad file) is what POST /reload answers.
    std::function<Result<void, std::string>()> reload;
    /// Files whose change calls `reload`; asked again after each reload. Their directories are
    /// watched (inotify), so atomic renames and symlink swaps are seen; changes within 200 ms
    /// make one call.
    std::function<std::vector<std::string>()> watched_files;
};

namespace detail {
class ServerCore;
}

/// Ties listeners, routes and reactors together: the whole engine.
///
/// ```cpp
/// blitz::Router router;
/// router.route(blitz::Method::Get, "/healthz").respond(200, "ok\n");
/// blitz::Server server({.workers = 1});
/// if (auto r = server.listen({.address = "127.0.0.1:8080"}, router); !r) { ... }
/// return server.run_until_signal();
/// ```
///
/// Thread: configure and start from one thread; stop() may be called from any thread.
/// Lifetime: stops and joins its reactors in the destructor.
class Server {
public:
    explicit Server(ServerOptions options = {});
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Binds the listener's sockets now (one per reactor, SO_REUSEPORT), so address errors
    /// surface here. The router is frozen; later changes to it do not affect this listener.
    Result<void, std::string> listen(ListenerOptions options, const Router& router);

    /// The port listener `index` (in listen() order) is bound to, useful with port 0.
    std::uint16_t bound_port(std::size_t index = 0) const;
    /// The listener's URL, e.g. "http://127.0.0.1:8080/".
    std::string url(std::size_t index = 0) const;

    /// Starts the reactors on their own threads and returns. SIGPIPE is ignored from then on
    /// (the process-wide disposition), so a peer that went away is an error, not a signal.
    Result<void, std::string> start();
    /// Starts the reactors on their own threads and runs the control loop on the calling thread
    /// (signals are blocked in every thread and read through a signalfd) until the server has
    /// stopped; returns the process exit status (0, or 1 when it could not start).
    ///
    /// - SIGTERM/SIGINT: drain(); a second one: stop().
    /// - SIGHUP: hooks.reload.
    /// - SIGUSR2: upgrade(); when the new process is serving, drain().
    /// - SIGUSR1: every access log file is opened again (log rotation).
    /// Under systemd (NOTIFY_SOCKET) it reports READY, RELOADING and STOPPING.
    int run_until_signal(ServerHooks hooks = {});
    /// Replaces every listener and its routes while running, atomically: everything new is
    /// built and bound first, and an error changes nothing. Listeners are matched by
    /// `address` (port 0 never matches): a kept one keeps its sockets and connections and
    /// serves its next requests with the new options, TLS certificates and routes; requests in
    /// flight finish with the old ones. New listeners start accepting; removed ones stop, and
    /// their connections drain (ServerOptions::drain_timeout). Thread-safe; not from a reactor
    /// thread. Before start() it is listen() for each listener.
    Result<void, std::string> reload(std::vector<ListenerOptions> listeners, const Router& router);
    /// Graceful stop: accepting stops, requests in flight finish (HTTP/1.1 answers say
    /// `Connection: close`, HTTP/2 connections get GOAWAY), idle connections close after a
    /// short grace, and at ServerOptions::drain_timeout whatever is left is closed. Thread-safe.
    void drain() noexcept;
    /// Zero-downtime binary upgrade: starts the executable this process was started from (as
    /// it is on disk now) with the same arguments, handing it the listening sockets (systemd's
    /// LISTEN_FDS protocol), and waits until it serves. Returns its pid; the caller then
    /// drain()s. Thread-safe; not from a reactor thread.
    Result<pid_t, std::string> upgrade();
    /// What the admin listener's GET /config answers: the running configuration as a JSON
    /// document, secrets already redacted (blitzd passes its config file through
    /// config::redacted_json). Until it is set, GET /config answers 404. Thread-safe.
    void set_config_document(std::string json);
    /// Asks every reactor to stop (thread-safe, idempotent); open connections are closed.
    void stop() noexcept;
    /// Waits for the reactors started by start() to finish.
    void wait();

    /// The backend the reactors run (after start).
    Backend backend() const noexcept;
    unsigned workers() const noexcept;

private:
    std::unique_ptr<detail::ServerCore> core_;
};

}  // namespace blitz

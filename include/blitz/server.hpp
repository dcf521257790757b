#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <blitz/listener.hpp>
#include <blitz/reactor.hpp>
#include <blitz/result.hpp>
#include <blitz/router.hpp>

namespace blitz {

/// Engine-wide settings.
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
    /// Runs reactor 0 on the calling thread (the others on their own) until SIGTERM or SIGINT
    /// arrives (read through a signalfd; the signals are blocked in every thread), then
    /// stops cleanly and returns the process exit status (0). Blocks signals itself.
    int run_until_signal();
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

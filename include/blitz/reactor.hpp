#pragma once

#include <chrono>
#include <functional>

namespace blitz {

/// The event-loop backend a reactor runs on.
enum class Backend : unsigned char {
    Auto,     ///< io_uring when the kernel allows it, else epoll
    IoUring,  ///< io_uring only (fails to start without it)
    Epoll,    ///< epoll, same semantics, for hosts that block io_uring
};

/// "io_uring", "epoll" or "auto".
const char* backend_name(Backend b) noexcept;

/// One event loop on one thread: it owns its connections, timers and buffers, and everything on
/// it runs without locks. Embedders meet it through Exchange::reactor() and Reactor::current().
///
/// Thread: post() is thread-safe; everything else runs on the reactor's own thread.
/// Lifetime: owned by the Server; alive from Server::start() until the server stopped.
class Reactor {
public:
    virtual ~Reactor() = default;
    /// The reactor running on the calling thread, or nullptr.
    static Reactor* current() noexcept;
    /// 0-based index among the server's reactors.
    virtual unsigned index() const noexcept = 0;
    /// The backend this reactor runs (never Auto).
    virtual Backend backend() const noexcept = 0;
    /// Time cached at the start of the current loop turn.
    virtual std::chrono::steady_clock::time_point now() const noexcept = 0;
    /// Runs `task` on this reactor's thread, soon (from any thread).
    virtual void post(std::function<void()> task) = 0;
    /// Runs `task` on this reactor's thread after `delay`.
    virtual void post_after(std::chrono::milliseconds delay, std::function<void()> task) = 0;
};

}  // namespace blitz

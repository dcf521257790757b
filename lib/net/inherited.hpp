#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

#include <blitz/result.hpp>

#include "net/address.hpp"

/// Listening sockets handed over at exec(): the systemd socket-activation protocol
/// (sd_listen_fds(3): LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, descriptors from fd 3), written
/// without libsystemd. blitzd receives sockets this way from systemd and from the blitzd it
/// replaces in a binary upgrade, and passes its own sockets the same way (ChildExec).
namespace blitz::net {

/// The first descriptor of the protocol (SD_LISTEN_FDS_START).
inline constexpr int kListenFdsStart = 3;

/// The three variables as found in an environment; nullopt = not set.
struct ListenEnvironment {
    std::optional<std::string_view> listen_fds;
    std::optional<std::string_view> listen_pid;
    std::optional<std::string_view> listen_fdnames;
};

/// One inherited listening socket.
struct InheritedSocket {
    int fd = -1;
    /// Its LISTEN_FDNAMES entry; "unknown" when the variable is absent (as systemd names it).
    std::string name;
    /// getsockname().
    SocketAddress address;

    /// `"web" 127.0.0.1:8080 (fd 3)`, for log lines.
    std::string describe() const;
};

/// The listening sockets this process was started with, until listeners take them.
///
/// ```cpp
/// auto inherited = net::InheritedSockets::take_from_environment();  // before any thread starts
/// if (!inherited) { log(Error, "%s", inherited.error().c_str()); return 1; }
/// for (...each listener...) { auto mine = inherited->take(listener_address); ... }
/// for (const auto& s : inherited->close_leftovers()) { log(Warn, "... %s", s.c_str()); }
/// ```
///
/// Thread: one thread. take_from_environment() changes the process environment, so call it
/// before starting threads. Lifetime: owns the descriptors not yet taken and closes them in the
/// destructor; take() hands ownership to the caller.
class InheritedSockets {
public:
    InheritedSockets() = default;
    ~InheritedSockets();
    InheritedSockets(InheritedSockets&& other) noexcept;
    InheritedSockets& operator=(InheritedSockets&& other) noexcept;
    InheritedSockets(const InheritedSockets&) = delete;
    InheritedSockets& operator=(const InheritedSockets&) = delete;

    /// Reads LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES, removes them from the environment (so
    /// processes started later do not inherit them, whatever happens next) and adopts the
    /// sockets as adopt() does, with the descriptors starting at fd 3.
    static Result<InheritedSockets, std::string> take_from_environment();

    /// Adopts `count` descriptors from `first_fd` on, as announced by `env`.
    ///
    /// - No LISTEN_FDS (or `0`): an empty set.
    /// - LISTEN_PID set and not equal to `self`: the descriptors belong to another process
    ///   (an ancestor that did not clean its environment); an empty set, nothing is touched.
    ///   Unlike sd_listen_fds(3), an absent LISTEN_PID is accepted.
    /// - LISTEN_FDNAMES, when set, must hold exactly one colon-separated name per descriptor.
    /// - Every descriptor gets FD_CLOEXEC and O_NONBLOCK (the reactors' accept loops expect a
    ///   non-blocking socket) and must be a listening TCP socket: SO_ACCEPTCONN set, SO_DOMAIN
    ///   AF_INET or AF_INET6, SO_TYPE SOCK_STREAM.
    ///
    /// On any error nothing is closed (the caller is expected to exit) and the message names
    /// the variable or the descriptor and its name:
    /// `inherited fd 4 ("web"): not listening (SO_ACCEPTCONN is off)`.
    static Result<InheritedSockets, std::string> adopt(const ListenEnvironment& env, pid_t self,
                                                       int first_fd = kListenFdsStart);

    /// Removes and returns every socket bound to exactly `address` (family, address bytes and
    /// port; 0.0.0.0 and [::] are different addresses). The caller owns the descriptors.
    std::vector<InheritedSocket> take(const SocketAddress& address);

    /// The sockets not taken yet.
    std::span<const InheritedSocket> remaining() const noexcept { return sockets_; }

    /// Closes the sockets not taken and returns their describe() texts, for a warning each.
    std::vector<std::string> close_leftovers();

private:
    std::vector<InheritedSocket> sockets_;
};

/// A listening socket passed to a child process, with its LISTEN_FDNAMES name.
struct PassedSocket {
    int fd = -1;
    /// A name systemd would accept: printable ASCII, no ':', at most 255 bytes; anything else
    /// is replaced by '_' (names are labels for log lines; matching is by address). Empty
    /// becomes "unknown".
    std::string name;
};

/// Another descriptor the child keeps, announced as `env_name=<fd>` (e.g. the upgrade's
/// readiness pipe, BLITZ_UPGRADE_READY_FD).
struct PassedFd {
    int fd = -1;
    std::string env_name;
};

/// Starts a program with listening sockets passed by the socket-activation protocol: the
/// parent side of a binary upgrade.
///
/// Everything that allocates happens in prepare(), before fork(); between fork() and execve()
/// a child of a multi-threaded process may only make async-signal-safe calls, which is all
/// exec_in_child() does.
///
/// ```cpp
/// std::array<net::PassedFd, 1> ready = {{{.fd = ready_w, .env_name = "BLITZ_UPGRADE_READY_FD"}}};
/// auto exec = net::ChildExec::prepare(self_path, args, sockets, ready);
/// if (!exec) { ... }
/// pid_t pid = fork();
/// if (pid == 0) { exec->exec_in_child(); }
/// ```
///
/// The child gets: the sockets at fd 3..3+N-1 in the given order, then the extra descriptors
/// at 3+N.., none of them close-on-exec; `LISTEN_FDS=N`, `LISTEN_PID=<its own pid>`,
/// `LISTEN_FDNAMES=a:b:..`, `NAME=<fd>` for each extra descriptor, and the rest of
/// `environment` (with any earlier values of those variables removed); an empty signal mask
/// and SIGPIPE at its default action, as a service manager would start it. Every other
/// descriptor of the parent must be close-on-exec (all of libblitz's are).
///
/// Thread: prepare() on any thread, exec_in_child() only in the child of fork(). Lifetime:
/// value; the prepared block is heap-allocated, so moving a ChildExec keeps its pointers valid.
class ChildExec {
public:
    ChildExec(ChildExec&&) noexcept;
    ChildExec& operator=(ChildExec&&) noexcept;
    ~ChildExec();

    /// Builds argv (`args[0]` is argv[0]) and envp for executing `path`. `environment` (a
    /// NULL-terminated block; nullptr = this process's `environ`, read now: nothing may change
    /// the environment concurrently) is copied. With no sockets, no LISTEN_* variables are set. Fails on an empty path or args, a negative fd, an extra
    /// variable name that is empty or holds '=', or a NUL inside any string.
    static Result<ChildExec, std::string> prepare(std::string path,
                                                  std::span<const std::string> args,
                                                  std::span<const PassedSocket> sockets,
                                                  std::span<const PassedFd> extra_fds = {},
                                                  char* const* environment = nullptr);

    /// In the child after fork(): writes the child's pid into LISTEN_PID, moves the
    /// descriptors into place, resets the signal mask and SIGPIPE, and execve()s. On failure
    /// writes `blitz: <step> failed (errno N)` to stderr and _exit(127)s. Async-signal-safe.
    [[noreturn]] void exec_in_child() noexcept;

private:
    struct Block;
    explicit ChildExec(std::unique_ptr<Block> block) noexcept;
    std::unique_ptr<Block> block_;
};

}  // namespace blitz::net

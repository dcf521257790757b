#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <blitz/listener.hpp>
#include <blitz/upstream.hpp>

namespace blitz::server {

/// The soft RLIMIT_NOFILE aimed at when the need is unknown (some listener has no
/// max_connections): the hard limit, but at most 2^20. Descriptors cost kernel memory only
/// while open, so a high limit is cheap for blitz itself; the cap is for what scales with the
/// limit rather than with the descriptors in use: code that closes every descriptor up to the
/// limit before exec (a binary upgrade's child, helpers), select(2)-era libraries and child
/// processes that size tables by it. 2^20 is the kernel's default fs.nr_open, the most a
/// hard limit can be unless an administrator raised that sysctl, and twice systemd's default
/// hard limit (524288); containers that set the hard limit to 2^30 gain nothing usable from
/// it.
inline constexpr std::uint64_t kUnknownNeedFdCeiling = std::uint64_t{1} << 20;

/// Descriptors counted for the whole process whatever the configuration: stdio, the
/// signalfd, the upstream services thread's eventfd and c-ares sockets, the inotify
/// descriptor of a watched config, the sd_notify socket, an upgrade's pipe, files read while
/// loading certificates; with room to spare.
inline constexpr std::uint64_t kProcessFds = 64;

/// Descriptors each reactor holds besides its sockets: the io_uring or epoll descriptor and
/// the wake eventfd, with room to spare.
inline constexpr std::uint64_t kReactorFds = 4;

/// What raise_fd_limit() found and did.
///
/// Thread: value type. Lifetime: plain value.
struct FdLimitReport {
    std::uint64_t before = 0;  ///< the soft limit found
    std::uint64_t after = 0;   ///< the soft limit now (== before when nothing changed)
    std::uint64_t hard = 0;    ///< the hard limit (RLIM_INFINITY as UINT64_MAX)
    std::uint64_t needed = 0;  ///< what the caller asked for; 0 = unknown
    /// The soft limit stays below `needed` (the hard limit is lower, or setrlimit failed):
    /// connections may fail with EMFILE under full load. Log it as a warning.
    bool short_of_need = false;
    /// errno of a failed getrlimit/setrlimit, 0 when both worked.
    int error = 0;
};

/// The soft limit raise_fd_limit() sets for a process with limits `soft`/`hard` that needs
/// `needed` descriptors (0 = unknown): max(needed, soft) capped at `hard`, or, when the need
/// is unknown, min(hard, kUnknownNeedFdCeiling). Never below `soft`: a limit someone set
/// higher is kept.
///
/// Thread: any (pure). Lifetime: none.
std::uint64_t fd_limit_target(std::uint64_t soft, std::uint64_t hard,
                              std::uint64_t needed) noexcept;

/// Raises the soft RLIMIT_NOFILE of the process to fd_limit_target() (the hard limit is never
/// touched: raising it needs privileges, and lowering it cannot be undone). Never fails:
/// whatever happens is in the report, for the log. Calling it again (after a reload that adds
/// listeners) raises further and never lowers.
///
/// Thread: any, but the limit is process-wide: call it from the thread that starts the server.
/// Lifetime: none.
FdLimitReport raise_fd_limit(std::uint64_t needed) noexcept;

/// Descriptors a server with `reactors` reactors needs under full load of these listeners and
/// upstreams, or 0 when some listener has no max_connections (the need has no bound).
///
/// Counted: kProcessFds; per reactor kReactorFds and one listening socket per listener
/// (SO_REUSEPORT); every downstream connection (max_connections, summed); upstream connections,
/// which are at most each cluster's circuit_breaker.max_connections (split between reactors
/// and rounded up, idle pooled ones included), and at most what the downstream connections
/// can hold at once (one each over HTTP/1.1, up to http2.max_concurrent_streams over HTTP/2)
/// plus the idle ones the pools keep (max_idle_per_endpoint per configured endpoint and
/// reactor); one health-check socket per configured endpoint. An endpoint given as a host name
/// may resolve to several addresses; the circuit breaker still bounds its connections, and
/// kProcessFds absorbs the extra health checks of a few such names.
///
/// Thread: any. Lifetime: the pointers are read during the call only.
std::uint64_t estimate_fd_need(unsigned reactors, std::span<const ListenerOptions* const> listeners,
                               std::span<const UpstreamOptions* const> upstreams) noexcept;

/// One log line telling what raise_fd_limit() did, e.g. "open files limit (RLIMIT_NOFILE)
/// raised from 1024 to 20560: the connection limits need about 20560 (hard limit 524288)".
///
/// Thread: any. Lifetime: none.
std::string describe(const FdLimitReport& report);

}  // namespace blitz::server

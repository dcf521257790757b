#include "server/fd_limit.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <sys/resource.h>

namespace blitz::server {

namespace {

constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();

// Sizes come from 32-bit limits multiplied together and summed over listeners and
// upstreams: saturate rather than wrap, so an absurd configuration reads as "a lot", not 3.
std::uint64_t add(std::uint64_t a, std::uint64_t b) noexcept { return a > kMax - b ? kMax : a + b; }

std::uint64_t mul(std::uint64_t a, std::uint64_t b) noexcept {
    return a != 0 && b > kMax / a ? kMax : a * b;
}

std::uint64_t from_rlim(rlim_t v) noexcept {
    return v == RLIM_INFINITY ? kMax : static_cast<std::uint64_t>(v);
}

std::string number(std::uint64_t v) {
    return v == kMax ? std::string("unlimited") : std::to_string(v);
}

}  // namespace

std::uint64_t fd_limit_target(std::uint64_t soft, std::uint64_t hard,
                              std::uint64_t needed) noexcept {
    const std::uint64_t want = needed == 0 ? std::min(hard, kUnknownNeedFdCeiling) : needed;
    return std::max(soft, std::min(want, hard));
}

FdLimitReport raise_fd_limit(std::uint64_t needed) noexcept {
    FdLimitReport r;
    r.needed = needed;
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        r.error = errno;
        r.short_of_need = needed != 0;
        return r;
    }
    r.before = from_rlim(lim.rlim_cur);
    r.after = r.before;
    r.hard = from_rlim(lim.rlim_max);
    const std::uint64_t target = fd_limit_target(r.before, r.hard, needed);
    if (target > r.before) {
        // RLIM_INFINITY is the largest rlim_t, so a target below it fits.
        lim.rlim_cur = target == kMax ? RLIM_INFINITY : static_cast<rlim_t>(target);
        if (::setrlimit(RLIMIT_NOFILE, &lim) == 0) {
            r.after = target;
        } else {
            r.error = errno;
        }
    }
    r.short_of_need = needed != 0 && r.after < needed;
    return r;
}

std::uint64_t estimate_fd_need(unsigned reactors, std::span<const ListenerOptions* const> listeners,
                               std::span<const UpstreamOptions* const> upstreams) noexcept {
    const std::uint64_t n = reactors == 0 ? 1 : reactors;
    std::uint64_t downstream = 0;
    // What the downstream connections can hold upstream at once: a proxied HTTP/1.1 exchange
    // (or tunnel) holds one upstream connection, and each concurrent HTTP/2 stream may hold
    // its own.
    std::uint64_t held = 0;
    for (const ListenerOptions* l : listeners) {
        if (l->max_connections == 0) {
            return 0;
        }
        downstream = add(downstream, l->max_connections);
        const std::uint64_t per_connection =
            l->http2.enabled ? std::max<std::uint64_t>(1, l->http2.max_concurrent_streams) : 1;
        held = add(held, mul(l->max_connections, per_connection));
    }
    std::uint64_t breaker = 0;
    std::uint64_t idle = 0;
    std::uint64_t health = 0;
    for (const UpstreamOptions* u : upstreams) {
        // Each reactor may open its share of the breaker's limit, rounded up (LocalCluster).
        const std::uint64_t share = (std::uint64_t{u->circuit_breaker.max_connections} + n - 1) / n;
        breaker = add(breaker, mul(share, n));
        idle = add(idle, mul(mul(u->pool.max_idle_per_endpoint, u->endpoints.size()), n));
        if (u->health_check.enabled) {
            health = add(health, u->endpoints.size());
        }
    }
    const std::uint64_t upstream = std::min(breaker, add(held, idle));
    std::uint64_t need = kProcessFds;
    need = add(need, mul(n, add(kReactorFds, listeners.size())));
    need = add(need, downstream);
    need = add(need, upstream);
    return add(need, health);
}

std::string describe(const FdLimitReport& r) {
    std::string need = "no bound on what is needed (a listener has no max_connections)";
    if (r.needed != 0) {
        need = "the connection limits need about " + number(r.needed);
    }
    const std::string hard = "hard limit " + number(r.hard);
    std::string text = "open files limit (RLIMIT_NOFILE) ";
    if (r.error != 0 && r.after == r.before) {
        text += r.before == 0 ? std::string("unknown") : "stays " + number(r.before);
        text += ": cannot raise it: ";
        text += std::strerror(r.error);
        text += "; " + need;
    } else if (r.after > r.before) {
        text += "raised from " + number(r.before) + " to " + number(r.after) + ": " + need + " (" +
                hard + ")";
    } else {
        text += "is " + number(r.after) + ": " + need + " (" + hard + ")";
    }
    if (r.short_of_need) {
        text +=
            "; connections beyond it fail with EMFILE: raise the hard limit (ulimit -Hn, "
            "LimitNOFILE= of the systemd unit) or lower max_connections";
    }
    return text;
}

}  // namespace blitz::server

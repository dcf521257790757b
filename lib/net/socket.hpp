#pragma once

#include "net/address.hpp"

namespace blitz::net {

struct ListenSocketOptions {
    int backlog = 4096;
    bool reuse_port = true;
    bool ipv6_only = false;
};

/// Creates a non-blocking, close-on-exec listening TCP socket bound to `addr` with
/// SO_REUSEADDR and SO_REUSEPORT. Returns the fd, or -errno.
int listen_socket(const SocketAddress& addr, const ListenSocketOptions& options) noexcept;

/// The address a socket is bound to.
bool local_address(int fd, SocketAddress& out) noexcept;

/// Per-connection options applied after accept.
void set_tcp_nodelay(int fd) noexcept;

}  // namespace blitz::net

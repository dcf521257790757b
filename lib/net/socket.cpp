#include "net/socket.hpp"

#include <cerrno>
#include <netinet/tcp.h>
#include <unistd.h>

namespace blitz::net {

int listen_socket(const SocketAddress& addr, const ListenSocketOptions& options) noexcept {
    int fd = ::socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    int one = 1;
    int err = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        (options.reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0)) {
        err = errno;
    }
    if (err == 0 && addr.family() == AF_INET6) {
        int v6only = options.ipv6_only ? 1 : 0;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only) != 0) {
            err = errno;
        }
    }
    if (err == 0 && ::bind(fd, addr.get(), addr.length) != 0) {
        err = errno;
    }
    if (err == 0 && ::listen(fd, options.backlog) != 0) {
        err = errno;
    }
    if (err != 0) {
        ::close(fd);
        return -err;
    }
    return fd;
}

bool local_address(int fd, SocketAddress& out) noexcept {
    out = SocketAddress{};
    out.length = sizeof out.storage;
    return ::getsockname(fd, out.get(), &out.length) == 0;
}

void set_tcp_nodelay(int fd) noexcept {
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

}  // namespace blitz::net

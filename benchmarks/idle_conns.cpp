// idle_conns: opens N keep-alive connections to an HTTP/1.1 server, sends one GET on each,
// waits for every response, prints "ready N" and then keeps the connections idle until it is
// killed. benchmarks/load.sh reads the server's RSS before and after to get the memory cost of
// an idle connection. With --tls every connection is HTTPS (a full handshake each: no session
// is offered, and certificates are not checked). Standalone (no libblitz): load.sh compiles it
// with c++ -std=c++20 and the system OpenSSL (-lssl -lcrypto), which only this client uses.
//
//   idle_conns [--tls] HOST PORT N [PATH]
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

// Connections being set up at once: more would overflow a listen backlog of 511 (nginx's
// default) and cost 1 s SYN retransmits.
constexpr int kMaxConnecting = 256;

struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;     // --tls only
    bool connected = false;  // the TCP connect completed (--tls waits for it before the handshake)
    std::size_t sent = 0;
    std::string in;
    bool done = false;
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "idle_conns: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

// True once `in` holds a whole response: the head plus Content-Length bytes of body.
bool response_complete(std::string_view in) {
    std::size_t head_end = in.find("\r\n\r\n");
    if (head_end == std::string_view::npos) {
        return false;
    }
    std::string_view head = in.substr(0, head_end);
    std::size_t body_len = 0;
    for (std::size_t pos = 0; pos < head.size();) {
        std::size_t eol = head.find("\r\n", pos);
        std::string_view line = head.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
        constexpr std::string_view kName = "content-length:";
        if (line.size() > kName.size() &&
            strncasecmp(line.data(), kName.data(), kName.size()) == 0) {
            std::string_view v = line.substr(kName.size());
            while (!v.empty() && v.front() == ' ') {
                v.remove_prefix(1);
            }
            std::from_chars(v.data(), v.data() + v.size(), body_len);
        }
        if (eol == std::string_view::npos) {
            break;
        }
        pos = eol + 2;
    }
    return in.size() >= head_end + 4 + body_len;
}

[[noreturn]] void die_tls(const char* what) {
    unsigned long e = ERR_get_error();
    std::fprintf(stderr, "idle_conns: %s: %s\n", what,
                 e != 0 ? ERR_error_string(e, nullptr) : "connection closed");
    std::exit(1);
}

// Drives one TLS connection as far as it goes without blocking: handshake, request, response.
// Returns the epoll events it waits for next, or 0 once the whole response is in.
std::uint32_t step_tls(Conn& c, const std::string& request) {
    char buf[4096];
    for (;;) {
        int rc = 0;
        if (!SSL_is_init_finished(c.ssl)) {
            rc = SSL_connect(c.ssl);
            if (rc == 1) {
                continue;
            }
        } else if (c.sent < request.size()) {
            rc = SSL_write(c.ssl, request.data() + c.sent, static_cast<int>(request.size() - c.sent));
            if (rc > 0) {
                c.sent += static_cast<std::size_t>(rc);
                continue;
            }
        } else {
            rc = SSL_read(c.ssl, buf, sizeof buf);
            if (rc > 0) {
                c.in.append(buf, static_cast<std::size_t>(rc));
                if (response_complete(c.in)) {
                    return 0;
                }
                continue;
            }
        }
        switch (SSL_get_error(c.ssl, rc)) {
            case SSL_ERROR_WANT_READ:
                return EPOLLIN;
            case SSL_ERROR_WANT_WRITE:
                return EPOLLOUT;
            default:
                die_tls(SSL_is_init_finished(c.ssl) ? "TLS read/write" : "TLS handshake");
        }
    }
}

}  // namespace

int main(int argc, char** argv) {
    bool tls = argc > 1 && std::strcmp(argv[1], "--tls") == 0;
    if (tls) {
        --argc;
        ++argv;
    }
    if (argc < 4) {
        std::fprintf(stderr, "usage: idle_conns [--tls] HOST PORT N [PATH]\n");
        return 2;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[2])));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
        std::fprintf(stderr, "idle_conns: %s is not an IPv4 address\n", argv[1]);
        return 2;
    }
    const int total = std::atoi(argv[3]);
    const std::string request = std::string("GET ") + (argc > 4 ? argv[4] : "/") +
                                " HTTP/1.1\r\nHost: " + argv[1] + "\r\n\r\n";

    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }

    SSL_CTX* ctx = nullptr;
    if (tls) {
        ctx = SSL_CTX_new(TLS_client_method());
        if (ctx == nullptr) {
            die_tls("SSL_CTX_new");
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
        // Every connection is a full handshake, as N distinct clients would make.
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1");
    }
    std::vector<Conn> conns(static_cast<std::size_t>(total));
    int opened = 0;
    int in_flight = 0;
    int completed = 0;
    std::vector<epoll_event> events(512);
    char buf[4096];

    while (completed < total) {
        while (opened < total && in_flight < kMaxConnecting) {
            Conn& c = conns[static_cast<std::size_t>(opened)];
            c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (c.fd < 0) {
                die("socket");
            }
            int one = 1;
            setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            if (connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 &&
                errno != EINPROGRESS) {
                die("connect");
            }
            epoll_event ev{};
            ev.events = EPOLLOUT | EPOLLIN;
            ev.data.u32 = static_cast<std::uint32_t>(opened);
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) < 0) {
                die("epoll_ctl");
            }
            ++opened;
            ++in_flight;
        }
        int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 10'000);
        if (n < 0 && errno != EINTR) {
            die("epoll_wait");
        }
        if (n == 0) {
            std::fprintf(stderr, "idle_conns: no progress for 10 s (%d of %d answered)\n",
                         completed, total);
            return 1;
        }
        for (int i = 0; i < n; ++i) {
            const std::uint32_t id = events[static_cast<std::size_t>(i)].data.u32;
            Conn& c = conns[id];
            if (c.done) {
                continue;
            }
            if (tls) {
                if (!c.connected) {
                    int so_error = 0;
                    socklen_t len = sizeof so_error;
                    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
                    if (so_error != 0) {
                        errno = so_error;
                        die("connect");
                    }
                    c.connected = true;
                    c.ssl = SSL_new(ctx);
                    if (c.ssl == nullptr || SSL_set_fd(c.ssl, c.fd) != 1) {
                        die_tls("SSL_new");
                    }
                    SSL_set_tlsext_host_name(c.ssl, "localhost");
                }
                epoll_event ev{};
                ev.events = step_tls(c, request);
                ev.data.u32 = id;
                if (ev.events != 0) {
                    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
                    continue;
                }
                if (c.in.compare(0, 12, "HTTP/1.1 200") != 0) {
                    std::fprintf(stderr, "idle_conns: unexpected response: %.40s\n", c.in.c_str());
                    return 1;
                }
                // Idle from now on: stop watching it, keep it open (and its TLS session).
                epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                c.done = true;
                c.in = std::string();
                ++completed;
                --in_flight;
                continue;
            }
            if (c.sent < request.size()) {
                ssize_t w = send(c.fd, request.data() + c.sent, request.size() - c.sent,
                                 MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) {
                    die("send");
                }
                if (w > 0) {
                    c.sent += static_cast<std::size_t>(w);
                }
                if (c.sent == request.size()) {
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.u32 = id;
                    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
                }
                continue;
            }
            ssize_t r = recv(c.fd, buf, sizeof buf, 0);
            if (r == 0) {
                std::fprintf(stderr, "idle_conns: the server closed a connection\n");
                return 1;
            }
            if (r < 0) {
                if (errno == EAGAIN) {
                    continue;
                }
                die("recv");
            }
            c.in.append(buf, static_cast<std::size_t>(r));
            if (response_complete(c.in)) {
                if (c.in.compare(0, 12, "HTTP/1.1 200") != 0) {
                    std::fprintf(stderr, "idle_conns: unexpected response: %.40s\n", c.in.c_str());
                    return 1;
                }
                // Idle from now on: stop watching it, keep it open.
                epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
                c.done = true;
                c.in = std::string();
                ++completed;
                --in_flight;
            }
        }
    }
    std::printf("ready %d\n", completed);
    std::fflush(stdout);
    for (;;) {
        pause();
    }
}

// idle_conns: opens N connections to a server, brings each to an idle keep-alive state, prints
// "ready N" and then keeps the connections idle until it is killed. benchmarks/load.sh and
// benchmarks/h2.sh read the server's RSS before and after to get the memory cost of an idle
// connection.
//   HTTP/1.1 (the default): one GET on each connection; idle once its response is in.
//   --h2: HTTP/2 (RFC 9113 §3.4): the connection preface with an empty SETTINGS frame; idle once
//       the server's SETTINGS has arrived (and been acknowledged) and the server has
//       acknowledged ours. No request: what the server keeps for a connection as such.
//   --h2-request: --h2, then one GET on stream 1; idle once the response stream has ended. The
//       request's fields are sent as browsers and h2load send them, literals with incremental
//       indexing (RFC 7541 §6.2.1), so the server's HPACK decoder holds a dynamic table, as it
//       does for a real client.
// Without --tls HTTP/2 is cleartext h2c with prior knowledge (RFC 9113 §3.3). With --tls every
// connection is HTTPS (a full handshake each: no session is offered, and certificates are not
// checked), offering ALPN "h2" with --h2/--h2-request (the server must select it) and no ALPN
// otherwise. Standalone (no libblitz): the scripts compile it with c++ -std=c++20 and the
// system OpenSSL (-lssl -lcrypto), which only this client uses.
//
//   idle_conns [--tls] [--h2 | --h2-request] HOST PORT N [PATH]
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
#include <cstdint>
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

enum class Mode { kHttp1, kHttp2Settings, kHttp2Request };

struct Conn {
    int fd = -1;
    SSL* ssl = nullptr;      // --tls only
    bool connected = false;  // the TCP connect completed
    std::string out;         // bytes to send; `sent` of them are sent
    std::size_t sent = 0;
    std::string in;
    bool done = false;
    // HTTP/2 only.
    bool peer_settings = false;  // the server's SETTINGS arrived (and was acknowledged)
    bool settings_acked = false;  // the server acknowledged ours
    bool response_head = false;   // the response head on stream 1 arrived (--h2-request)
    bool stream_ended = false;    // the response on stream 1 ended
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "idle_conns: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "idle_conns: %s\n", what);
    std::exit(1);
}

[[noreturn]] void die_tls(const char* what) {
    unsigned long e = ERR_get_error();
    std::fprintf(stderr, "idle_conns: %s: %s\n", what,
                 e != 0 ? ERR_error_string(e, nullptr) : "connection closed");
    std::exit(1);
}

// True once `in` holds a whole HTTP/1.1 response: the head plus Content-Length bytes of body.
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

// --- HTTP/2 ---------------------------------------------------------------------------------
// Frame types and flags (RFC 9113 §6).
constexpr std::uint8_t kData = 0x0;
constexpr std::uint8_t kHeaders = 0x1;
constexpr std::uint8_t kRstStream = 0x3;
constexpr std::uint8_t kSettings = 0x4;
constexpr std::uint8_t kPing = 0x6;
constexpr std::uint8_t kGoaway = 0x7;
constexpr std::uint8_t kFlagAck = 0x1;
constexpr std::uint8_t kFlagEndStream = 0x1;
constexpr std::uint8_t kFlagEndHeaders = 0x4;
constexpr std::uint8_t kFlagPadded = 0x8;
constexpr std::uint8_t kFlagPriority = 0x20;
constexpr std::size_t kFrameHeader = 9;

void put_frame_header(std::string& out, std::size_t length, std::uint8_t type,
                      std::uint8_t flags, std::uint32_t stream) {
    const char h[kFrameHeader] = {
        static_cast<char>(length >> 16), static_cast<char>(length >> 8),
        static_cast<char>(length),       static_cast<char>(type),
        static_cast<char>(flags),        static_cast<char>(stream >> 24),
        static_cast<char>(stream >> 16), static_cast<char>(stream >> 8),
        static_cast<char>(stream)};
    out.append(h, sizeof h);
}

// An HPACK integer with an N-bit prefix after the pattern bits `first` (RFC 7541 §5.1).
void put_hpack_int(std::string& out, std::uint8_t first, int prefix_bits, std::size_t v) {
    const std::size_t max = (std::size_t{1} << prefix_bits) - 1;
    if (v < max) {
        out.push_back(static_cast<char>(first | v));
        return;
    }
    out.push_back(static_cast<char>(first | max));
    for (v -= max; v >= 128; v /= 128) {
        out.push_back(static_cast<char>(0x80 | (v % 128)));
    }
    out.push_back(static_cast<char>(v));
}

// A literal field with incremental indexing whose name is static-table entry `name_index`
// (RFC 7541 §6.2.1), the value as a plain string (§5.2, no Huffman coding).
void put_hpack_literal(std::string& out, std::size_t name_index, std::string_view value) {
    put_hpack_int(out, 0x40, 6, name_index);
    put_hpack_int(out, 0x00, 7, value.size());
    out.append(value);
}

// What a client sends first: the preface, an empty SETTINGS frame (every setting at its
// default), and with a request a HEADERS frame opening and ending stream 1.
std::string http2_opening(Mode mode, bool tls, std::string_view authority, std::string_view path) {
    std::string out = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    put_frame_header(out, 0, kSettings, 0, 0);
    if (mode != Mode::kHttp2Request) {
        return out;
    }
    // Static-table entries (RFC 7541 Appendix A): 1 :authority, 2 :method GET, 4 :path /,
    // 6 :scheme http, 7 :scheme https, 58 user-agent.
    std::string block;
    block.push_back(static_cast<char>(0x82));
    block.push_back(static_cast<char>(tls ? 0x87 : 0x86));
    if (path == "/") {
        block.push_back(static_cast<char>(0x84));
    } else {
        put_hpack_literal(block, 4, path);
    }
    put_hpack_literal(block, 1, authority);
    put_hpack_literal(block, 58, "idle_conns");
    put_frame_header(out, block.size(), kHeaders, kFlagEndStream | kFlagEndHeaders, 1);
    out += block;
    return out;
}

// Consumes the whole frames in c.in: acknowledges the server's SETTINGS and PINGs (queued in
// c.out), notes its acknowledgement of ours and the end of the response on stream 1. A GOAWAY,
// a reset of stream 1 or a response other than 200 ends the program.
void http2_input(Conn& c) {
    std::size_t pos = 0;
    while (c.in.size() - pos >= kFrameHeader) {
        const auto* h = reinterpret_cast<const unsigned char*>(c.in.data() + pos);
        const std::size_t length = (std::size_t{h[0]} << 16) | (std::size_t{h[1]} << 8) | h[2];
        const std::uint8_t type = h[3];
        const std::uint8_t flags = h[4];
        const std::uint32_t stream =
            ((std::uint32_t{h[5]} << 24) | (std::uint32_t{h[6]} << 16) |
             (std::uint32_t{h[7]} << 8) | h[8]) &
            0x7fffffffU;
        if (c.in.size() - pos < kFrameHeader + length) {
            break;
        }
        const unsigned char* payload = h + kFrameHeader;
        switch (type) {
            case kSettings:
                if ((flags & kFlagAck) != 0) {
                    c.settings_acked = true;
                } else {
                    put_frame_header(c.out, 0, kSettings, kFlagAck, 0);
                    c.peer_settings = true;
                }
                break;
            case kPing:
                if ((flags & kFlagAck) == 0 && length == 8) {
                    put_frame_header(c.out, 8, kPing, kFlagAck, 0);
                    c.out.append(reinterpret_cast<const char*>(payload), 8);
                }
                break;
            case kGoaway: {
                std::uint32_t code = 0;
                if (length >= 8) {
                    code = (std::uint32_t{payload[4]} << 24) | (std::uint32_t{payload[5]} << 16) |
                           (std::uint32_t{payload[6]} << 8) | payload[7];
                }
                std::fprintf(stderr, "idle_conns: the server sent GOAWAY (error code %u)\n", code);
                std::exit(1);
            }
            case kRstStream:
                fail("the server reset the request's stream");
            case kHeaders:
                if (stream == 1 && !c.response_head) {
                    c.response_head = true;
                    // The response head. Its first field is :status; 200 is static-table entry
                    // 8, which any encoder sends as the one byte 0x88 at the start of a
                    // connection, before a dynamic table could hold it.
                    std::size_t skip = 0;
                    if ((flags & kFlagPadded) != 0) {
                        skip += 1;
                    }
                    if ((flags & kFlagPriority) != 0) {
                        skip += 5;
                    }
                    if (length <= skip || payload[skip] != 0x88) {
                        fail("the response is not a 200");
                    }
                }
                [[fallthrough]];
            case kData:
                if (stream == 1 && (flags & kFlagEndStream) != 0) {
                    c.stream_ended = true;
                }
                break;
            default:
                break;
        }
        pos += kFrameHeader + length;
    }
    c.in.erase(0, pos);
}

// --- the exchange, either transport -------------------------------------------------------
// feed: what arrived in c.in is looked at (HTTP/2 frames are consumed and may queue replies).
void feed(Conn& c, Mode mode) {
    if (mode != Mode::kHttp1) {
        http2_input(c);
    }
}

// True once the connection is idle as `mode` defines it and nothing is left to send.
bool exchange_complete(const Conn& c, Mode mode) {
    if (c.sent < c.out.size()) {
        return false;
    }
    switch (mode) {
        case Mode::kHttp1:
            return response_complete(c.in);
        case Mode::kHttp2Settings:
            return c.peer_settings && c.settings_acked;
        case Mode::kHttp2Request:
            return c.peer_settings && c.settings_acked && c.stream_ended;
    }
    return false;
}

// Drives one plain connection as far as it goes without blocking. Returns the epoll events it
// waits for next, or 0 once the exchange is complete.
std::uint32_t step_plain(Conn& c, Mode mode) {
    char buf[4096];
    for (;;) {
        if (c.sent < c.out.size()) {
            ssize_t w = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN) {
                    return EPOLLOUT;
                }
                die("send");
            }
            c.sent += static_cast<std::size_t>(w);
            continue;
        }
        if (exchange_complete(c, mode)) {
            return 0;
        }
        ssize_t r = recv(c.fd, buf, sizeof buf, 0);
        if (r == 0) {
            fail("the server closed a connection");
        }
        if (r < 0) {
            if (errno == EAGAIN) {
                return EPOLLIN;
            }
            die("recv");
        }
        c.in.append(buf, static_cast<std::size_t>(r));
        feed(c, mode);
    }
}

// The same over TLS: handshake first (checking ALPN for HTTP/2), then as step_plain.
std::uint32_t step_tls(Conn& c, Mode mode) {
    char buf[4096];
    for (;;) {
        int rc = 0;
        if (!SSL_is_init_finished(c.ssl)) {
            rc = SSL_connect(c.ssl);
            if (rc == 1) {
                if (mode == Mode::kHttp1) {
                    continue;
                }
                const unsigned char* alpn = nullptr;
                unsigned alpn_len = 0;
                SSL_get0_alpn_selected(c.ssl, &alpn, &alpn_len);
                if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) {
                    fail("the server did not select ALPN h2");
                }
                continue;
            }
        } else if (c.sent < c.out.size()) {
            rc = SSL_write(c.ssl, c.out.data() + c.sent, static_cast<int>(c.out.size() - c.sent));
            if (rc > 0) {
                c.sent += static_cast<std::size_t>(rc);
                continue;
            }
        } else if (exchange_complete(c, mode)) {
            return 0;
        } else {
            rc = SSL_read(c.ssl, buf, sizeof buf);
            if (rc > 0) {
                c.in.append(buf, static_cast<std::size_t>(rc));
                feed(c, mode);
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
    bool tls = false;
    Mode mode = Mode::kHttp1;
    for (; argc > 1 && std::strncmp(argv[1], "--", 2) == 0; --argc, ++argv) {
        if (std::strcmp(argv[1], "--tls") == 0) {
            tls = true;
        } else if (std::strcmp(argv[1], "--h2") == 0) {
            mode = Mode::kHttp2Settings;
        } else if (std::strcmp(argv[1], "--h2-request") == 0) {
            mode = Mode::kHttp2Request;
        } else {
            std::fprintf(stderr, "idle_conns: unknown option %s\n", argv[1]);
            return 2;
        }
    }
    if (argc < 4) {
        std::fprintf(stderr, "usage: idle_conns [--tls] [--h2 | --h2-request] HOST PORT N [PATH]\n");
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
    const std::string path = argc > 4 ? argv[4] : "/";
    const std::string opening =
        mode == Mode::kHttp1
            ? "GET " + path + " HTTP/1.1\r\nHost: " + argv[1] + "\r\n\r\n"
            : http2_opening(mode, tls, std::string(argv[1]) + ":" + argv[2], path);

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
        if (mode != Mode::kHttp1) {
            static constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};
            if (SSL_CTX_set_alpn_protos(ctx, kAlpnH2, sizeof kAlpnH2) != 0) {
                die_tls("SSL_CTX_set_alpn_protos");
            }
        }
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
            c.out = opening;
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
            if (!c.connected) {
                int so_error = 0;
                socklen_t len = sizeof so_error;
                getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
                if (so_error != 0) {
                    errno = so_error;
                    die("connect");
                }
                c.connected = true;
                if (tls) {
                    c.ssl = SSL_new(ctx);
                    if (c.ssl == nullptr || SSL_set_fd(c.ssl, c.fd) != 1) {
                        die_tls("SSL_new");
                    }
                    SSL_set_tlsext_host_name(c.ssl, "localhost");
                }
            }
            epoll_event ev{};
            ev.events = tls ? step_tls(c, mode) : step_plain(c, mode);
            ev.data.u32 = id;
            if (ev.events != 0) {
                epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
                continue;
            }
            if (mode == Mode::kHttp1 && c.in.compare(0, 12, "HTTP/1.1 200") != 0) {
                std::fprintf(stderr, "idle_conns: unexpected response: %.40s\n", c.in.c_str());
                return 1;
            }
            // Idle from now on: stop watching it, keep it open (and its TLS session).
            epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
            c.done = true;
            c.in = std::string();
            c.out = std::string();
            ++completed;
            --in_flight;
        }
    }
    std::printf("ready %d\n", completed);
    std::fflush(stdout);
    for (;;) {
        pause();
    }
}

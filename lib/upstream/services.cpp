// The upstream services thread: host-name resolution with c-ares and active HTTP health
// checks (over TLS for TLS upstreams, HTTP/2 for HTTP/2 upstreams), multiplexed with poll() on one thread so reactors never
// block on either.
//
// One loop turn: start due DNS queries and health checks → publish changed endpoint sets →
// poll (wake eventfd, c-ares sockets, health-check sockets) until the earliest deadline →
// let c-ares and the checks progress → publish again. Nothing runs without a deadline or a
// ready descriptor, so the thread sleeps between checks.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <ares.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <blitz/log.hpp>

#include "http2/client.hpp"
#include "upstream/cluster.hpp"
#include "upstream/hash.hpp"

namespace blitz::upstream {

namespace {

/// Longest status line read from a health-check response; anything longer fails the check.
constexpr std::size_t kStatusLineMax = 512;
/// Longest sleep when nothing is due: an endpoint set published by another thread (not by a
/// DNS answer here) gets its health checks within this. stop() wakes the loop at once.
constexpr std::uint64_t kMaxWaitMs = 1'000;
/// c-ares per-try timeout and tries: a dead server is given up on within seconds, and the
/// endpoint set keeps its last good addresses meanwhile.
constexpr int kDnsTimeoutMs = 2'000;
constexpr int kDnsTries = 2;
/// TLS output buffers of the checks: a ClientHello or a request fits in one (a larger flight
/// spills, see tls::Session). Received ciphertext goes through a buffer of the same size.
constexpr std::size_t kTlsBufferBytes = 4 * 1024;

auto ms(std::chrono::milliseconds d) noexcept { return static_cast<std::uint64_t>(d.count()); }

/// RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ], with
/// HTTP-version = "HTTP/" DIGIT "." DIGIT. Returns the status code, or -1.
int parse_status_line(std::string_view line) noexcept {
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    if (line.size() < 12 || line.substr(0, 5) != "HTTP/" || !digit(line[5]) || line[6] != '.' ||
        !digit(line[7]) || line[8] != ' ' || !digit(line[9]) || !digit(line[10]) ||
        !digit(line[11]) || (line.size() > 12 && line[12] != ' ')) {
        return -1;
    }
    return (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
}

std::string errno_text(const char* what, int err) {
    return std::string(what) + ": " + std::strerror(err);
}

/// TLS output buffers for the checks: plain heap blocks. Checks are few and an interval apart,
/// and an idle session holds no buffer, so a free list would only keep memory between them.
class HeapBuffers final : public tls::BufferSource {
 public:
    char* take_buffer() noexcept override {
        return static_cast<char*>(std::malloc(kTlsBufferBytes));
    }
    void give_buffer(char* buffer) noexcept override { std::free(buffer); }
    std::size_t buffer_bytes() const noexcept override { return kTlsBufferBytes; }
};

struct SessionFree {
    void operator()(SSL_SESSION* s) const noexcept { SSL_SESSION_free(s); }
};

/// The HTTP/2 side of a health check of an upstream with protocol "h2": the client codec writes
/// the connection preface, SETTINGS and the GET; the final response head's :status is the
/// answer (the body is not read).
class H2Probe final : private http2::ClientHandler {
public:
    H2Probe() noexcept : codec_(*this, http2::ClientLimits{}) {}

    /// The bytes to send, or empty when the codec could not be made.
    std::string start(std::string_view scheme, std::string_view authority, std::string_view path) {
        stream_.arena = &arena_;
        const Header agent{"user-agent", "blitz-health-check"};
        if (!codec_.start() || codec_.submit(stream_, "GET", scheme, authority, path, Headers({&agent, 1}), false) == 0 ||
            !codec_.send()) {
            return {};
        }
        return std::move(out_);
    }

    /// Feeds response bytes. Returns whether the check is decided: then `status` is the
    /// response's, or -1 with `reason`.
    bool feed(const char* data, std::size_t len, int& status, std::string& reason) {
        if (!codec_.receive(data, len)) {
            status = -1;
            reason = "HTTP/2 protocol error";
            return true;
        }
        if (status_ != 0) {
            status = status_;
            return true;
        }
        if (closed_) {
            status = -1;
            reason = "HTTP/2 stream reset (error " + std::to_string(error_) + ")";
            return true;
        }
        return false;
    }

private:
    void h2c_head(http2::ClientStream& s, bool /*end_stream*/) override {
        if (s.status >= 200) {
            status_ = s.status;
        }
    }
    void h2c_data(http2::ClientStream&, const char*, std::size_t) override {}
    void h2c_end(http2::ClientStream&) override {}
    void h2c_closed(http2::ClientStream&, std::uint32_t error) override {
        closed_ = true;
        error_ = error;
    }
    void h2c_write(const std::uint8_t* data, std::size_t len) override {
        out_.append(reinterpret_cast<const char*>(data), len);
    }
    std::size_t h2c_body_ready(http2::ClientStream&, std::size_t, bool& last) override {
        last = true;
        return 0;
    }
    void h2c_write_data(http2::ClientStream&, const std::uint8_t*, std::size_t) override {}

    Arena arena_;
    http2::ClientSession codec_;
    http2::ClientStream stream_;
    std::string out_;
    int status_ = 0;
    bool closed_ = false;
    std::uint32_t error_ = 0;
};

}  // namespace

struct Services::Impl {
    struct ClusterState {
        std::shared_ptr<Cluster> cluster;
        bool dirty = false;                 // a name's addresses changed: publish the union
        std::uint64_t checked_version = 0;  // endpoint set the health checks follow
    };

    /// One configured host name and its last good answer.
    struct Name {
        Impl* impl = nullptr;
        std::size_t cluster = 0;
        NamedEndpoint spec;
        std::vector<std::pair<std::string, net::SocketAddress>> addresses;  // sorted by text
        std::uint64_t due_ms = 0;
        bool in_flight = false;
        bool answered = false;
        bool failing = false;
        int status = ARES_SUCCESS;
    };

    /// Active health check of one endpoint, keyed by its health object so the state survives
    /// endpoint-set changes that keep the address.
    ///
    /// Over TLS: Connecting → Handshaking (ClientHello out, the server's flight in) → Sending
    /// (the request through the session) → Reading (the decrypted status line).
    struct Check {
        enum class State : std::uint8_t { Idle, Connecting, Handshaking, Sending, Reading };
        Cluster* cluster = nullptr;
        std::shared_ptr<EndpointHealth> health;
        net::SocketAddress address;
        std::string text;
        std::string request;
        /// Protocol "h2" upstreams: the Host the checks ask for (as :authority), and the probe
        /// of the check in progress (each check is a new connection).
        std::string authority;
        std::unique_ptr<H2Probe> h2;
        /// TLS clusters: SNI and the name the certificate must carry, as on the data path.
        std::string server_name;
        /// TLS clusters: the session, started anew (reset) for each check.
        std::unique_ptr<tls::Session> tls;
        /// The last check's session, offered for resumption (UpstreamTlsOptions::session_reuse).
        std::unique_ptr<SSL_SESSION, SessionFree> resume;
        State state = State::Idle;
        int fd = -1;
        std::size_t sent = 0;  // request bytes written (plaintext bytes over TLS)
        std::size_t received = 0;
        char line[kStatusLineMax];
        std::uint64_t due_ms = 0;  // next start when Idle, else the deadline
        std::uint32_t successes = 0;
        std::uint32_t failures = 0;
        bool seen = false;
    };

    std::vector<ClusterState> clusters;
    std::vector<std::unique_ptr<Name>> names;  // stable addresses: c-ares callbacks hold them
    HeapBuffers tls_buffers;                   // declared before the checks: sessions use it
    std::unordered_map<const EndpointHealth*, std::unique_ptr<Check>> checks;
    /// Ciphertext received for any TLS check. Shared: every span given to a session is consumed
    /// before advance_check() returns (see tls_input()).
    char tls_in[kTlsBufferBytes];
    ares_channel channel = nullptr;
    std::string dns_servers;
    int wake_fd = -1;
    std::atomic<bool> stopping{false};
    std::thread thread;
    bool started = false;
    Rng rng;
    std::vector<pollfd> pfds;
    std::vector<Check*> pfd_checks;  // per pfds entry: the check, or nullptr
    std::vector<int> pfd_ares;       // per pfds entry: c-ares socket bits (1 read, 2 write)

    ~Impl() { cleanup(); }

    Result<void, std::string> init();
    void cleanup() noexcept;
    void query(Name& n);
    static void on_addrinfo(void* arg, int status, int timeouts, ares_addrinfo* res);
    void answer(Name& n, int status, ares_addrinfo* res);
    void publish_dirty();
    void sync_checks(std::uint64_t now);
    void start_check(Check& c, std::uint64_t now);
    /// The connection is up: plain checks go on to Sending, TLS ones start the handshake.
    /// False when the check ended.
    bool connected(Check& c, std::uint64_t now);
    void advance_check(Check& c, short revents, std::uint64_t now);
    void advance_tls(Check& c, std::uint64_t now);
    /// Sends the session's pending ciphertext until done or the socket is full. False when the
    /// check ended.
    bool flush_tls(Check& c, std::uint64_t now);
    /// Feeds received ciphertext to the session: the handshake, then decrypted bytes toward the
    /// status line. Consumes all of it unless the check ends. False when the check ended.
    bool tls_input(Check& c, const char* data, std::size_t len, std::uint64_t now);
    void fail_tls(Check& c, std::uint64_t now);
    /// Looks for the end of the status line after `before` bytes of c.line; ends the check when
    /// found or when the line is too long. True when the check ended.
    bool scan_status_line(Check& c, std::size_t before, std::uint64_t now);
    void finish_check(Check& c, int status, const std::string& reason, std::uint64_t now);
    /// Events a busy check waits for.
    static short poll_events(const Check& c) noexcept;
    /// Starts what is due: DNS queries, health checks (when `health`); fails checks past their
    /// deadline; publishes changed sets.
    void begin_turn(bool health);
    /// Sleeps until a descriptor is ready, something falls due or `deadline`, then lets c-ares
    /// and the checks progress.
    void wait_turn(std::uint64_t deadline);
    bool has_health_checks() const noexcept;
    void run();
};

Result<void, std::string> Services::Impl::init() {
    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd < 0) {
        return fail(errno_text("upstream services: eventfd", errno));
    }
    if (names.empty()) {
        return {};
    }
    // Process-wide and reference-counted; done once, kept for the process's life.
    static const int library = ares_library_init(ARES_LIB_INIT_ALL);
    if (library != ARES_SUCCESS) {
        return fail(std::string("upstream services: c-ares: ") + ares_strerror(library));
    }
    ares_options options{};
    options.timeout = kDnsTimeoutMs;
    options.tries = kDnsTries;
    if (int rc = ares_init_options(&channel, &options, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
        rc != ARES_SUCCESS) {
        channel = nullptr;
        return fail(std::string("upstream services: c-ares: ") + ares_strerror(rc));
    }
    if (!dns_servers.empty()) {
        if (int rc = ares_set_servers_ports_csv(channel, dns_servers.c_str()); rc != ARES_SUCCESS) {
            return fail("upstream services: DNS servers \"" + dns_servers +
                        "\": " + ares_strerror(rc));
        }
    }
    return {};
}

void Services::Impl::cleanup() noexcept {
    for (auto& [health, c] : checks) {
        if (c->fd >= 0) {
            ::close(c->fd);
            c->fd = -1;
        }
    }
    checks.clear();
    if (channel != nullptr) {
        // Pending queries call back with ARES_EDESTRUCTION, which answer() ignores.
        ares_destroy(channel);
        channel = nullptr;
    }
    if (wake_fd >= 0) {
        ::close(wake_fd);
        wake_fd = -1;
    }
}

void Services::Impl::query(Name& n) {
    const std::string& family = clusters[n.cluster].cluster->options().dns.family;
    ares_addrinfo_hints hints{};
    hints.ai_family = family == "v4" ? AF_INET : family == "v6" ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    n.in_flight = true;
    // May call back before returning (an /etc/hosts entry, a cached error).
    ares_getaddrinfo(channel, n.spec.host.c_str(), nullptr, &hints, &Impl::on_addrinfo, &n);
}

void Services::Impl::on_addrinfo(void* arg, int status, int /*timeouts*/, ares_addrinfo* res) {
    auto& n = *static_cast<Name*>(arg);
    n.impl->answer(n, status, res);
    if (res != nullptr) {
        ares_freeaddrinfo(res);
    }
}

void Services::Impl::answer(Name& n, int status, ares_addrinfo* res) {
    n.in_flight = false;
    if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
        return;  // the channel is going away
    }
    const std::uint64_t now = steady_now_ms();
    const Cluster& cluster = *clusters[n.cluster].cluster;
    const DnsOptions& dns = cluster.options().dns;
    std::vector<std::pair<std::string, net::SocketAddress>> found;
    std::uint64_t ttl_ms = ms(dns.max_ttl);
    if (status == ARES_SUCCESS && res != nullptr) {
        for (const ares_addrinfo_node* node = res->nodes; node != nullptr; node = node->ai_next) {
            if ((node->ai_family != AF_INET && node->ai_family != AF_INET6) ||
                node->ai_addr == nullptr || node->ai_addrlen > sizeof(sockaddr_storage)) {
                continue;
            }
            net::SocketAddress a;
            std::memcpy(&a.storage, node->ai_addr, node->ai_addrlen);
            a.length = node->ai_addrlen;
            a.set_port(n.spec.port);
            found.emplace_back(a.to_string(), a);
            ttl_ms = std::min<std::uint64_t>(
                ttl_ms, static_cast<std::uint64_t>(std::max(node->ai_ttl, 0)) * 1000);
        }
    }
    n.answered = true;
    n.status = status;
    if (found.empty()) {
        // Keep serving with the last good answer; ask again soon.
        n.due_ms = now + ms(dns.min_ttl);
        n.failing = true;
        log(LogLevel::Warn,
            "upstream \"%s\": resolving \"%s\" failed (%s); keeping %zu address(es)",
            cluster.options().name.c_str(), n.spec.host.c_str(),
            status == ARES_SUCCESS ? "no address" : ares_strerror(status), n.addresses.size());
        return;
    }
    if (n.failing) {
        log(LogLevel::Info, "upstream \"%s\": \"%s\" resolves again",
            cluster.options().name.c_str(), n.spec.host.c_str());
        n.failing = false;
    }
    std::sort(found.begin(), found.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    found.erase(std::unique(found.begin(), found.end(),
                            [](const auto& a, const auto& b) { return a.first == b.first; }),
                found.end());
    const bool changed =
        found.size() != n.addresses.size() ||
        !std::equal(found.begin(), found.end(), n.addresses.begin(),
                    [](const auto& a, const auto& b) { return a.first == b.first; });
    if (changed) {
        n.addresses = std::move(found);
        clusters[n.cluster].dirty = true;
    }
    n.due_ms = now + std::clamp(ttl_ms, ms(dns.min_ttl), ms(dns.max_ttl));
}

// The published set is the literal endpoints plus every name's current addresses, each with
// its name's weight; published only when it differs from the current set, so an unchanged
// answer does not make every reactor rebuild its balancer.
void Services::Impl::publish_dirty() {
    for (std::size_t ci = 0; ci < clusters.size(); ++ci) {
        ClusterState& cs = clusters[ci];
        if (!cs.dirty) {
            continue;
        }
        cs.dirty = false;
        std::vector<Endpoint> next = cs.cluster->literal_endpoints();
        for (const auto& n : names) {
            if (n->cluster != ci) {
                continue;
            }
            for (const auto& [text, address] : n->addresses) {
                Endpoint e;
                e.address = address;
                e.text = text;
                e.hostname = n->spec.host;
                e.weight = n->spec.weight;
                next.push_back(std::move(e));
            }
        }
        std::unordered_set<std::string_view> seen;
        std::vector<Endpoint> unique;
        unique.reserve(next.size());
        for (auto& e : next) {
            if (seen.insert(e.text).second) {
                unique.push_back(e);
            }
        }
        auto current = cs.cluster->endpoints();
        const bool same = current->endpoints.size() == unique.size() &&
                          std::equal(unique.begin(), unique.end(), current->endpoints.begin(),
                                     [](const Endpoint& a, const Endpoint& b) {
                                         return a.text == b.text && a.hostname == b.hostname &&
                                                a.weight == b.weight;
                                     });
        if (!same) {
            cs.cluster->publish(std::move(unique));
        }
    }
}

bool Services::Impl::has_health_checks() const noexcept {
    return std::any_of(clusters.begin(), clusters.end(), [](const ClusterState& cs) {
        return cs.cluster->options().health_check.enabled;
    });
}

void Services::Impl::sync_checks(std::uint64_t now) {
    for (ClusterState& cs : clusters) {
        const HealthCheckOptions& hc = cs.cluster->options().health_check;
        if (!hc.enabled || cs.cluster->version() == cs.checked_version) {
            continue;
        }
        auto set = cs.cluster->endpoints();
        cs.checked_version = set->version;
        for (auto& [health, c] : checks) {
            if (c->cluster == cs.cluster.get()) {
                c->seen = false;
            }
        }
        for (const Endpoint& e : set->endpoints) {
            auto& slot = checks[e.health.get()];
            if (!slot) {
                slot = std::make_unique<Check>();
                Check& c = *slot;
                c.cluster = cs.cluster.get();
                c.health = e.health;
                c.address = e.address;
                c.text = e.text;
                std::string host = hc.host;
                if (host.empty()) {
                    host = e.hostname.empty() ? e.text
                                              : e.hostname + ":" + std::to_string(e.address.port());
                }
                c.request = "GET " + hc.path + " HTTP/1.1\r\nHost: " + host +
                            "\r\nConnection: close\r\nUser-Agent: blitz-health-check\r\n\r\n";
                c.authority = host;
                if (cs.cluster->tls() != nullptr) {
                    // As on the data path: the configured name, else the endpoint's host name,
                    // else its address (then no SNI, and an IP subjectAltName must match).
                    c.server_name = cs.cluster->options().tls.server_name;
                    if (c.server_name.empty()) {
                        c.server_name = e.hostname;
                    }
                    if (c.server_name.empty()) {
                        char ip[64];
                        c.server_name.assign(ip, e.address.format_ip(ip, sizeof ip));
                    }
                    c.tls = std::make_unique<tls::Session>(tls_buffers);
                }
                // Spread the first checks over the jitter window rather than all at once.
                c.due_ms = now + rng.below64(ms(hc.interval) * hc.jitter_percent / 100 + 1);
            }
            slot->seen = true;
        }
        for (auto it = checks.begin(); it != checks.end();) {
            if (it->second->cluster == cs.cluster.get() && !it->second->seen) {
                if (it->second->fd >= 0) {
                    ::close(it->second->fd);
                }
                it = checks.erase(it);
            } else {
                ++it;
            }
        }
    }
}

void Services::Impl::start_check(Check& c, std::uint64_t now) {
    const HealthCheckOptions& hc = c.cluster->options().health_check;
    c.sent = 0;
    c.received = 0;
    // The timeout covers the whole check: connect, TLS handshake, request and status line.
    c.due_ms = now + ms(hc.timeout);
    if (c.cluster->options().protocol == UpstreamProtocol::Http2) {
        c.h2 = std::make_unique<H2Probe>();
        c.request = c.h2->start(c.tls != nullptr ? "https" : "http", c.authority, hc.path);
        if (c.request.empty()) {
            finish_check(c, -1, "HTTP/2: out of memory", now);
            return;
        }
    }
    c.fd = ::socket(c.address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
        finish_check(c, -1, errno_text("socket", errno), now);
        return;
    }
    if (::connect(c.fd, c.address.get(), c.address.length) == 0) {
        connected(c, now);
    } else if (errno == EINPROGRESS) {
        c.state = Check::State::Connecting;
    } else {
        finish_check(c, -1, errno_text("connect", errno), now);
    }
}

bool Services::Impl::connected(Check& c, std::uint64_t now) {
    if (c.tls == nullptr) {
        c.state = Check::State::Sending;
        return true;
    }
    const Cluster& cluster = *c.cluster;
    SSL_SESSION* reuse = cluster.options().tls.session_reuse ? c.resume.get() : nullptr;
    if (!c.tls->start_client(cluster.tls(), c.server_name, reuse)) {
        const std::string_view why = c.tls->error_reason();
        finish_check(c, -1, "tls: " + std::string(why.empty() ? "out of memory" : why), now);
        return false;
    }
    c.state = Check::State::Handshaking;
    if (c.tls->handshake() == tls::Status::Error) {  // writes the ClientHello
        fail_tls(c, now);
        return false;
    }
    return true;  // the ClientHello goes out when the socket is writable
}

short Services::Impl::poll_events(const Check& c) noexcept {
    if (c.state == Check::State::Connecting) {
        return POLLOUT;
    }
    if (c.tls != nullptr) {
        // Pending ciphertext first; otherwise a TLS check only ever waits for the peer.
        return c.tls->has_output() ? POLLOUT : POLLIN;
    }
    return c.state == Check::State::Reading ? POLLIN : POLLOUT;
}

void Services::Impl::advance_check(Check& c, short revents, std::uint64_t now) {
    if (c.state == Check::State::Connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            err = errno;
        }
        if (err != 0) {
            finish_check(c, -1, errno_text("connect", err), now);
            return;
        }
        if ((revents & (POLLOUT | POLLERR | POLLHUP)) == 0) {
            return;
        }
        if (!connected(c, now)) {
            return;
        }
    }
    if (c.tls != nullptr) {
        advance_tls(c, now);
        return;
    }
    if (c.state == Check::State::Sending) {
        while (c.sent < c.request.size()) {
            ssize_t n =
                ::send(c.fd, c.request.data() + c.sent, c.request.size() - c.sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    return;
                }
                finish_check(c, -1, errno_text("send", errno), now);
                return;
            }
            c.sent += static_cast<std::size_t>(n);
        }
        c.state = Check::State::Reading;
        return;  // the answer comes later: wait for POLLIN
    }
    if (c.state != Check::State::Reading) {
        return;
    }
    for (;;) {
        ssize_t n = ::recv(c.fd, c.line + c.received, sizeof c.line - c.received, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                return;
            }
            finish_check(c, -1, errno_text("recv", errno), now);
            return;
        }
        if (n == 0) {
            finish_check(c, -1, "closed before the status line", now);
            return;
        }
        const std::size_t before = c.received;
        c.received += static_cast<std::size_t>(n);
        if (scan_status_line(c, before, now)) {
            return;
        }
    }
}

// One pass does all it can without blocking: flush, write the request once the handshake is
// done, read and feed ciphertext; it returns when the socket would block or the check ended.
void Services::Impl::advance_tls(Check& c, std::uint64_t now) {
    tls::Session& s = *c.tls;
    for (;;) {
        if (!flush_tls(c, now)) {
            return;
        }
        if (s.has_output()) {
            return;  // the socket is full: wait for POLLOUT
        }
        if (c.state == Check::State::Sending) {
            if (c.sent < c.request.size()) {
                const iovec iov{.iov_base = c.request.data() + c.sent,
                                .iov_len = c.request.size() - c.sent};
                const std::size_t n = s.write(&iov, 1, iov.iov_len);
                if (n == 0 && !s.has_output()) {
                    finish_check(c, -1, "tls: out of memory", now);
                    return;
                }
                c.sent += n;
                continue;  // send what it encrypted
            }
            c.state = Check::State::Reading;
        }
        ssize_t n = ::recv(c.fd, tls_in, sizeof tls_in, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno != EAGAIN) {
                finish_check(c, -1, errno_text("recv", errno), now);
            }
            return;
        }
        if (n == 0) {
            finish_check(c, -1,
                         c.state == Check::State::Handshaking ? "tls: closed during the handshake"
                                                              : "closed before the status line",
                         now);
            return;
        }
        if (!tls_input(c, tls_in, static_cast<std::size_t>(n), now)) {
            return;
        }
    }
}

bool Services::Impl::flush_tls(Check& c, std::uint64_t now) {
    tls::Session& s = *c.tls;
    while (s.has_output()) {
        const std::string_view out = s.pending_output();
        ssize_t n = ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                return true;
            }
            finish_check(c, -1, errno_text("send", errno), now);
            return false;
        }
        s.output_sent(static_cast<std::size_t>(n));  // a partial send leaves the rest pending
    }
    return true;
}

bool Services::Impl::tls_input(Check& c, const char* data, std::size_t len, std::uint64_t now) {
    tls::Session& s = *c.tls;
    s.set_input(data, len);
    if (c.state == Check::State::Handshaking) {
        const tls::Status st = s.handshake();
        if (st == tls::Status::WantRead) {
            return true;
        }
        if (st != tls::Status::Ok) {
            fail_tls(c, now);
            return false;
        }
        c.state = Check::State::Sending;
    }
    // Whatever follows the handshake in this span (session tickets, an early answer) is read
    // now: tls_in is reused by the next receive of any check. Only bytes the completed session
    // decrypted reach the status line.
    for (;;) {
        std::size_t produced = 0;
        const tls::Status st = s.read(c.line + c.received, sizeof c.line - c.received, produced);
        if (st == tls::Status::WantRead) {
            return true;
        }
        if (st == tls::Status::Closed) {
            finish_check(c, -1, "closed before the status line", now);
            return false;
        }
        if (st != tls::Status::Ok) {
            fail_tls(c, now);
            return false;
        }
        const std::size_t before = c.received;
        c.received += produced;
        if (scan_status_line(c, before, now)) {
            return false;
        }
    }
}

void Services::Impl::fail_tls(Check& c, std::uint64_t now) {
    tls::Session& s = *c.tls;
    const bool handshaking = c.state == Check::State::Handshaking;
    std::string reason(s.error_reason());
    if (reason.empty()) {
        reason = handshaking ? "handshake failed" : "bad record";
    }
    if (handshaking) {
        c.resume.reset();  // a session the server refuses or cannot verify is not offered again
    }
    // The alert, best effort: the connection is closed right after.
    if (const std::string_view out = s.pending_output(); !out.empty()) {
        [[maybe_unused]] auto n = ::send(c.fd, out.data(), out.size(), MSG_NOSIGNAL);
    }
    finish_check(c, -1, "tls: " + reason, now);
}

bool Services::Impl::scan_status_line(Check& c, std::size_t before, std::uint64_t now) {
    if (c.h2 != nullptr) {
        int status = 0;
        std::string reason;
        if (c.h2->feed(c.line + before, c.received - before, status, reason)) {
            finish_check(c, status, reason, now);
            return true;
        }
        c.received = 0;  // frames are fed as they come: the buffer is reused
        return false;
    }
    std::string_view got(c.line, c.received);
    if (auto eol = got.find('\n', before); eol != std::string_view::npos) {
        std::string_view line = got.substr(0, eol);
        if (!line.empty() && line.back() == '\r') {
            line.remove_suffix(1);
        }
        const int status = parse_status_line(line);
        finish_check(c, status, status < 0 ? "malformed status line" : "", now);
        return true;
    }
    if (c.received == sizeof c.line) {
        finish_check(c, -1, "status line too long", now);
        return true;
    }
    return false;
}

void Services::Impl::finish_check(Check& c, int status, const std::string& reason,
                                  std::uint64_t now) {
    if (c.tls != nullptr && c.tls->active()) {
        // TLS 1.3 tickets arrive after the handshake, read with the answer: keep the newest.
        if (c.cluster->options().tls.session_reuse && c.tls->handshake_done()) {
            if (SSL_SESSION* fresh = c.tls->take_session(); fresh != nullptr) {
                c.resume.reset(fresh);
            }
        }
        c.tls->reset();  // frees the connection state and its buffers until the next check
    }
    c.h2.reset();
    if (c.fd >= 0) {
        ::close(c.fd);
        c.fd = -1;
    }
    c.state = Check::State::Idle;
    const UpstreamOptions& o = c.cluster->options();
    const HealthCheckOptions& hc = o.health_check;
    bool ok = false;
    if (status >= 0) {
        ok = std::any_of(
            hc.expected_statuses.begin(), hc.expected_statuses.end(),
            [status](const auto& r) { return status >= r.first && status <= r.second; });
    }
    if (ok) {
        c.failures = 0;
        ++c.successes;
        if (!c.health->healthy.load(std::memory_order_relaxed) &&
            c.successes >= hc.healthy_threshold) {
            c.health->healthy.store(true, std::memory_order_relaxed);
            log(LogLevel::Info, "upstream \"%s\": endpoint %s healthy", o.name.c_str(),
                c.text.c_str());
        }
    } else {
        c.successes = 0;
        ++c.failures;
        if (reason.empty()) {
            log(LogLevel::Debug, "upstream \"%s\": health check of %s failed (status %d)",
                o.name.c_str(), c.text.c_str(), status);
        } else {
            log(LogLevel::Debug, "upstream \"%s\": health check of %s failed (%s)", o.name.c_str(),
                c.text.c_str(), reason.c_str());
        }
        if (c.health->healthy.load(std::memory_order_relaxed) &&
            c.failures >= hc.unhealthy_threshold) {
            c.health->healthy.store(false, std::memory_order_relaxed);
            if (reason.empty()) {
                log(LogLevel::Warn, "upstream \"%s\": endpoint %s unhealthy (status %d)",
                    o.name.c_str(), c.text.c_str(), status);
            } else {
                log(LogLevel::Warn, "upstream \"%s\": endpoint %s unhealthy (%s)", o.name.c_str(),
                    c.text.c_str(), reason.c_str());
            }
        }
    }
    // The next check: interval ± jitter, so many gateways do not check a backend in lockstep.
    const std::uint64_t interval = ms(hc.interval);
    const std::uint64_t jitter = interval * hc.jitter_percent / 100;
    c.due_ms = now + std::max<std::uint64_t>(interval - jitter + rng.below64(2 * jitter + 1), 1);
}

void Services::Impl::begin_turn(bool health) {
    const std::uint64_t now = steady_now_ms();
    for (auto& n : names) {
        if (!n->in_flight && n->due_ms <= now) {
            query(*n);
        }
    }
    publish_dirty();
    if (health) {
        sync_checks(now);
        for (auto& [key, c] : checks) {
            if (c->due_ms > now) {
                continue;
            }
            if (c->state == Check::State::Idle) {
                start_check(*c, now);
            } else {
                finish_check(
                    *c, -1,
                    c->state == Check::State::Handshaking ? "tls: handshake timeout" : "timeout",
                    now);
            }
        }
    }
}

void Services::Impl::wait_turn(std::uint64_t deadline) {
    std::uint64_t now = steady_now_ms();
    std::uint64_t wake = std::min(deadline, now + kMaxWaitMs);
    for (const auto& n : names) {
        if (!n->in_flight) {
            wake = std::min(wake, n->due_ms);
        }
    }
    for (const auto& [key, c] : checks) {
        wake = std::min(wake, c->due_ms);
    }
    pfds.clear();
    pfd_checks.clear();
    pfd_ares.clear();
    pfds.push_back(pollfd{.fd = wake_fd, .events = POLLIN, .revents = 0});
    pfd_checks.push_back(nullptr);
    pfd_ares.push_back(0);
    if (channel != nullptr) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        const int bits = ares_getsock(channel, socks, ARES_GETSOCK_MAXNUM);
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
            const bool r = ARES_GETSOCK_READABLE(bits, i);
            const bool w = ARES_GETSOCK_WRITABLE(bits, i);
            if (!r && !w) {
                continue;
            }
            pfds.push_back(
                pollfd{.fd = socks[i],
                       .events = static_cast<short>((r ? POLLIN : 0) | (w ? POLLOUT : 0)),
                       .revents = 0});
            pfd_checks.push_back(nullptr);
            pfd_ares.push_back((r ? 1 : 0) | (w ? 2 : 0));
        }
        timeval max_tv{};
        const std::uint64_t left = wake > now ? wake - now : 0;
        max_tv.tv_sec = static_cast<time_t>(left / 1000);
        max_tv.tv_usec = static_cast<suseconds_t>((left % 1000) * 1000);
        timeval tv{};
        if (const timeval* t = ares_timeout(channel, &max_tv, &tv); t != nullptr) {
            // Rounded up: waking before c-ares's deadline would only poll again.
            const auto t_ms = static_cast<std::uint64_t>(t->tv_sec) * 1000 +
                              (static_cast<std::uint64_t>(t->tv_usec) + 999) / 1000;
            wake = std::min(wake, now + t_ms);
        }
    }
    for (auto& [key, c] : checks) {
        if (c->state == Check::State::Idle) {
            continue;
        }
        pfds.push_back(pollfd{.fd = c->fd, .events = poll_events(*c), .revents = 0});
        pfd_checks.push_back(c.get());
        pfd_ares.push_back(0);
    }

    const int timeout = wake > now ? static_cast<int>(wake - now) : 0;
    const int ready = ::poll(pfds.data(), pfds.size(), timeout);
    now = steady_now_ms();
    if (ready > 0) {
        for (std::size_t i = 0; i < pfds.size(); ++i) {
            const short re = pfds[i].revents;
            if (re == 0) {
                continue;
            }
            if (i == 0) {
                std::uint64_t value = 0;
                [[maybe_unused]] auto r = ::read(wake_fd, &value, sizeof value);
            } else if (pfd_checks[i] != nullptr) {
                advance_check(*pfd_checks[i], re, now);
            } else {
                const bool error = (re & (POLLERR | POLLHUP | POLLNVAL)) != 0;
                const ares_socket_t fd = pfds[i].fd;
                ares_process_fd(
                    channel,
                    (pfd_ares[i] & 1) != 0 && ((re & POLLIN) != 0 || error) ? fd : ARES_SOCKET_BAD,
                    (pfd_ares[i] & 2) != 0 && ((re & POLLOUT) != 0 || error) ? fd
                                                                             : ARES_SOCKET_BAD);
            }
        }
    }
    if (channel != nullptr) {
        // Timeouts and retries of queries whose sockets stayed quiet.
        ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    publish_dirty();
}

void Services::Impl::run() {
    while (!stopping.load(std::memory_order_acquire)) {
        begin_turn(true);
        wait_turn(~std::uint64_t{0});
    }
}

Services::Services() : impl_(std::make_unique<Impl>()) {}

Services::~Services() { stop(); }

void Services::set_dns_servers(std::string servers) { impl_->dns_servers = std::move(servers); }

Result<void, std::string> Services::start(std::vector<std::shared_ptr<Cluster>> clusters,
                                          std::chrono::milliseconds timeout) {
    Impl& s = *impl_;
    if (s.started) {
        return fail(std::string("upstream services already started"));
    }
    s.clusters.clear();
    s.names.clear();
    for (auto& c : clusters) {
        const bool listed =
            std::any_of(s.clusters.begin(), s.clusters.end(),
                        [&c](const Impl::ClusterState& cs) { return cs.cluster == c; });
        if (!c || listed) {
            continue;
        }
        const std::size_t index = s.clusters.size();
        for (const NamedEndpoint& spec : c->named_endpoints()) {
            auto n = std::make_unique<Impl::Name>();
            n->impl = &s;
            n->cluster = index;
            n->spec = spec;
            s.names.push_back(std::move(n));
        }
        s.clusters.push_back(Impl::ClusterState{.cluster = std::move(c)});
    }
    if (auto r = s.init(); !r) {
        s.cleanup();
        return r;
    }
    // The first answers, on the caller's thread: a server starts with endpoints.
    const std::uint64_t deadline = steady_now_ms() + ms(timeout);
    auto all_answered = [&s] {
        return std::all_of(s.names.begin(), s.names.end(),
                           [](const auto& n) { return n->answered; });
    };
    for (;;) {
        s.begin_turn(false);  // an /etc/hosts name is answered right here
        if (all_answered() || steady_now_ms() >= deadline) {
            break;
        }
        s.wait_turn(deadline);
    }
    for (const auto& n : s.names) {
        if (!n->answered || n->addresses.empty()) {
            const Cluster& cluster = *s.clusters[n->cluster].cluster;
            std::string why = !n->answered
                                  ? "no answer within " + std::to_string(timeout.count()) + " ms"
                              : n->status == ARES_SUCCESS ? std::string("no address")
                                                          : std::string(ares_strerror(n->status));
            s.cleanup();
            return fail("upstream \"" + cluster.options().name + "\": endpoint #" +
                        std::to_string(n->spec.index) + " \"" + n->spec.host + ":" +
                        std::to_string(n->spec.port) + "\" did not resolve (" + why + ")");
        }
    }
    s.publish_dirty();
    if (!s.names.empty() || s.has_health_checks()) {
        s.stopping.store(false, std::memory_order_relaxed);
        s.thread = std::thread([&s] { s.run(); });
    }
    s.started = true;
    return {};
}

void Services::stop() noexcept {
    Impl& s = *impl_;
    if (!s.started) {
        return;
    }
    s.stopping.store(true, std::memory_order_release);
    if (s.thread.joinable()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto r = ::write(s.wake_fd, &one, sizeof one);
        s.thread.join();
    }
    s.cleanup();
    s.names.clear();
    s.clusters.clear();
    s.started = false;
}

}  // namespace blitz::upstream

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include <blitz/log.hpp>
#include <blitz/upstream.hpp>

#include "tls/session.hpp"
#include "upstream/cluster.hpp"

using blitz::UpstreamOptions;
using blitz::upstream::Cluster;
using blitz::upstream::EndpointSet;
using blitz::upstream::Services;
using namespace std::chrono_literals;

namespace {

/// Polls `done` every few milliseconds until it holds or `limit` passes.
bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

int bound_socket(int type, std::uint16_t& port) {
    int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port = ntohs(a.sin_port);
    return fd;
}

/// A loopback HTTP server that answers every request with `status` (0: accept and never
/// answer) and records the requests it read. `eager`: answer on the first bytes received,
/// whatever they are.
class TinyHttpServer {
 public:
    std::atomic<int> status{200};
    std::atomic<bool> eager{false};
    std::atomic<int> answered_200{0};
    std::atomic<int> answered_503{0};

    TinyHttpServer() {
        fd_ = bound_socket(SOCK_STREAM, port_);
        REQUIRE(::listen(fd_, 64) == 0);
        thread_ = std::thread([this] { run(); });
    }
    ~TinyHttpServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::uint16_t port() const { return port_; }
    std::string last_request() {
        std::lock_guard lock(mutex_);
        return last_;
    }

 private:
    void run() {
        std::vector<int> silent;
        while (!stop_) {
            pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
            if (::poll(&p, 1, 10) <= 0) {
                continue;
            }
            int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) {
                continue;
            }
            std::string request;
            char buf[1024];
            while (request.find("\r\n\r\n") == std::string::npos) {
                pollfd q{.fd = c, .events = POLLIN, .revents = 0};
                if (::poll(&q, 1, 1000) <= 0) {
                    break;
                }
                ssize_t n = ::recv(c, buf, sizeof buf, 0);
                if (n <= 0) {
                    break;
                }
                request.append(buf, static_cast<std::size_t>(n));
                if (eager) {
                    break;
                }
            }
            {
                std::lock_guard lock(mutex_);
                last_ = request;
            }
            const int s = status.load();
            if (s == 0) {
                silent.push_back(c);  // keep it open, unanswered
                continue;
            }
            std::string response =
                "HTTP/1.1 " + std::to_string(s) + " X\r\nContent-Length: 0\r\n\r\n";
            [[maybe_unused]] auto w = ::send(c, response.data(), response.size(), MSG_NOSIGNAL);
            (s == 200 ? answered_200 : answered_503)++;
            ::close(c);
        }
        for (int c : silent) {
            ::close(c);
        }
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mutex_;
    std::string last_;
};

/// A UDP DNS server on loopback for one test: answers A queries with the configured
/// addresses and TTL (or an error code), AAAA queries with no records.
class FakeDns {
 public:
    std::atomic<int> a_queries{0};

    FakeDns() {
        fd_ = bound_socket(SOCK_DGRAM, port_);
        thread_ = std::thread([this] { run(); });
    }
    ~FakeDns() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::string server() const { return "127.0.0.1:" + std::to_string(port_); }
    void answer(std::vector<std::string> addresses, std::uint32_t ttl, int rcode = 0) {
        std::lock_guard lock(mutex_);
        addresses_ = std::move(addresses);
        ttl_ = ttl;
        rcode_ = rcode;
    }

 private:
    void run() {
        unsigned char q[512];
        while (!stop_) {
            pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
            if (::poll(&p, 1, 10) <= 0) {
                continue;
            }
            sockaddr_storage from{};
            socklen_t from_len = sizeof from;
            ssize_t n =
                ::recvfrom(fd_, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
            if (n < 17) {
                continue;
            }
            // RFC 1035 §4.1: header, then one question: QNAME labels, QTYPE, QCLASS.
            std::size_t end = 12;
            while (end < static_cast<std::size_t>(n) && q[end] != 0) {
                end += q[end] + 1u;
            }
            end += 5;
            if (end > static_cast<std::size_t>(n)) {
                continue;
            }
            const int qtype = (q[end - 4] << 8) | q[end - 3];
            std::vector<unsigned char> r(q, q + end);
            std::vector<std::string> addresses;
            std::uint32_t ttl = 0;
            int rcode = 0;
            {
                std::lock_guard lock(mutex_);
                addresses = addresses_;
                ttl = ttl_;
                rcode = rcode_;
            }
            r[2] = static_cast<unsigned char>(0x80 | (q[2] & 0x01));  // QR, RD as asked
            r[3] = static_cast<unsigned char>(0x80 | rcode);          // RA, RCODE
            r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
            if (qtype == 1 && rcode == 0) {
                a_queries++;
                for (const auto& a : addresses) {
                    in_addr addr{};
                    ::inet_pton(AF_INET, a.c_str(), &addr);  // the tests pass valid ones
                    const unsigned char rr[] = {0xc0,
                                                0x0c,
                                                0,
                                                1,
                                                0,
                                                1,
                                                static_cast<unsigned char>(ttl >> 24),
                                                static_cast<unsigned char>(ttl >> 16),
                                                static_cast<unsigned char>(ttl >> 8),
                                                static_cast<unsigned char>(ttl),
                                                0,
                                                4};
                    r.insert(r.end(), rr, rr + sizeof rr);
                    const auto* bytes = reinterpret_cast<const unsigned char*>(&addr);
                    r.insert(r.end(), bytes, bytes + 4);
                }
                r[7] = static_cast<unsigned char>(addresses.size());
            } else if (qtype == 1) {
                a_queries++;
            }
            ::sendto(fd_, r.data(), r.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
        }
    }

    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mutex_;
    std::vector<std::string> addresses_;
    std::uint32_t ttl_ = 0;
    int rcode_ = 0;
};

std::shared_ptr<Cluster> make(UpstreamOptions o) {
    auto c = Cluster::make(std::move(o));
    REQUIRE(c);
    return c.value();
}

std::vector<std::string> texts(const EndpointSet& set) {
    std::vector<std::string> out;
    for (const auto& e : set.endpoints) {
        out.push_back(e.text);
    }
    return out;
}

}  // namespace

TEST_CASE("Services::start resolves localhost from /etc/hosts", "[upstream]") {
    UpstreamOptions o;
    o.name = "local";
    o.endpoints = {{.address = "127.0.0.1:7001"}, {.address = "localhost:7002", .weight = 4}};
    auto c = make(std::move(o));
    CHECK(c->endpoints()->endpoints.size() == 1);
    Services services;
    auto r = services.start({c}, 5s);
    REQUIRE(r);
    auto set = c->endpoints();
    bool found = false;
    for (const auto& e : set->endpoints) {
        if (e.hostname == "localhost") {
            found = true;
            CHECK((e.text == "127.0.0.1:7002" || e.text == "[::1]:7002"));
            CHECK(e.weight == 4);
            CHECK(e.address.port() == 7002);
        }
    }
    CHECK(found);
    CHECK(set->endpoints[0].text == "127.0.0.1:7001");
    CHECK_FALSE(services.start({c}, 1s));  // once only
    services.stop();
    services.stop();  // idempotent
}

TEST_CASE("Services::start fails naming an endpoint that does not resolve", "[upstream]") {
    FakeDns dns;
    dns.answer({}, 60, 3);  // NXDOMAIN
    UpstreamOptions o;
    o.name = "api";
    o.endpoints = {{.address = "10.0.0.1:80"}, {.address = "nowhere.blitz.test:8080"}};
    o.dns.family = "v4";
    auto c = make(std::move(o));
    Services services;
    services.set_dns_servers(dns.server());
    auto r = services.start({c}, 5s);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(),
               Catch::Matchers::StartsWith(
                   "upstream \"api\": endpoint #1 \"nowhere.blitz.test:8080\" did not resolve ("));
}

TEST_CASE("Services re-resolves by TTL, carries health over and keeps the last good answer",
          "[upstream]") {
    FakeDns dns;
    dns.answer({"127.0.0.2", "127.0.0.3"}, 1);  // 1 s, clamped to max_ttl
    UpstreamOptions o;
    o.name = "svc";
    o.endpoints = {{.address = "svc.blitz.test:8080", .weight = 3}};
    o.dns = {.min_ttl = 20ms, .max_ttl = 100ms, .family = "v4"};
    auto c = make(std::move(o));
    CHECK(c->endpoints()->endpoints.empty());
    Services services;
    services.set_dns_servers(dns.server());
    REQUIRE(services.start({c}, 5s));
    auto first = c->endpoints();
    REQUIRE(texts(*first) == std::vector<std::string>{"127.0.0.2:8080", "127.0.0.3:8080"});
    CHECK(first->endpoints[0].hostname == "svc.blitz.test");
    CHECK(first->endpoints[1].weight == 3);
    auto kept = first->endpoints[1].health;

    // The same answer again publishes nothing.
    const int queries = dns.a_queries;
    REQUIRE(wait_for([&] { return dns.a_queries >= queries + 2; }));
    CHECK(c->version() == first->version);

    dns.answer({"127.0.0.3", "127.0.0.4"}, 1);
    REQUIRE(wait_for([&] { return c->version() != first->version; }));
    auto second = c->endpoints();
    CHECK(texts(*second) == std::vector<std::string>{"127.0.0.3:8080", "127.0.0.4:8080"});
    CHECK(second->endpoints[0].health == kept);

    // Failures keep the last good set and retry after min_ttl.
    dns.answer({}, 1, 2);  // SERVFAIL
    const int before = dns.a_queries;
    REQUIRE(wait_for([&] { return dns.a_queries >= before + 3; }));
    CHECK(c->version() == second->version);
    CHECK(texts(*c->endpoints()) == std::vector<std::string>{"127.0.0.3:8080", "127.0.0.4:8080"});
    services.stop();
}

namespace {

UpstreamOptions checked(std::vector<std::string> addresses) {
    UpstreamOptions o;
    o.name = "api";
    for (auto& a : addresses) {
        o.endpoints.push_back({.address = std::move(a)});
    }
    o.health_check = {.enabled = true,
                      .path = "/healthz",
                      .interval = 30ms,
                      .timeout = 150ms,
                      .jitter_percent = 10,
                      .healthy_threshold = 2,
                      .unhealthy_threshold = 3};
    return o;
}

}  // namespace

TEST_CASE(
    "Services health checks mark an endpoint down after the unhealthy threshold and up after "
    "the healthy threshold",
    "[upstream]") {
    TinyHttpServer server;
    auto c = make(checked({"127.0.0.1:" + std::to_string(server.port())}));
    auto health = c->endpoints()->endpoints[0].health;
    Services services;
    REQUIRE(services.start({c}, 1s));

    REQUIRE(wait_for([&] { return server.answered_200 >= 2; }));
    CHECK(health->healthy);
    const std::string request = server.last_request();
    CHECK_THAT(request, Catch::Matchers::StartsWith("GET /healthz HTTP/1.1\r\n"));
    CHECK_THAT(request, Catch::Matchers::ContainsSubstring(
                            "\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
    CHECK_THAT(request, Catch::Matchers::ContainsSubstring("\r\nConnection: close\r\n"));
    CHECK_THAT(request,
               Catch::Matchers::ContainsSubstring("\r\nUser-Agent: blitz-health-check\r\n"));

    server.status = 503;
    REQUIRE(wait_for([&] { return !health->healthy; }));
    // The checker may read the third 503 before the server thread has counted it.
    CHECK(wait_for([&] { return server.answered_503 >= 3; }));

    const int ok_before = server.answered_200;
    server.status = 200;
    REQUIRE(wait_for([&] { return health->healthy.load(); }));
    CHECK(server.answered_200 - ok_before >= 2);
    services.stop();
}

TEST_CASE("Services health checks fail on refused connections and on silence", "[upstream]") {
    std::uint16_t closed_port = 0;
    ::close(bound_socket(SOCK_STREAM, closed_port));  // bound, never listening: refused
    TinyHttpServer silent;
    silent.status = 0;
    auto c = make(checked({"127.0.0.1:" + std::to_string(closed_port),
                           "127.0.0.1:" + std::to_string(silent.port())}));
    c->publish({});  // no endpoints yet: the checks follow the set as it changes
    Services services;
    REQUIRE(services.start({c}, 1s));
    c->publish(c->literal_endpoints());
    auto set = c->endpoints();
    REQUIRE(set->endpoints.size() == 2);
    REQUIRE(wait_for(
        [&] { return !set->endpoints[0].health->healthy && !set->endpoints[1].health->healthy; }));
    services.stop();
}

TEST_CASE("Services health checks use the configured Host and stop with the endpoint",
          "[upstream]") {
    TinyHttpServer server;
    UpstreamOptions o = checked({"127.0.0.1:" + std::to_string(server.port())});
    o.health_check.host = "api.internal";
    o.health_check.expected_statuses = {{204, 204}};
    auto c = make(std::move(o));
    auto health = c->endpoints()->endpoints[0].health;
    Services services;
    REQUIRE(services.start({c}, 1s));
    REQUIRE(wait_for([&] { return !health->healthy; }));  // 200 is not 204
    CHECK_THAT(server.last_request(),
               Catch::Matchers::ContainsSubstring("\r\nHost: api.internal\r\n"));

    c->publish({});
    // Give the loop time to notice, then no more checks arrive.
    std::this_thread::sleep_for(100ms);
    const int seen = server.answered_200;
    std::this_thread::sleep_for(150ms);
    CHECK(server.answered_200 == seen);
    services.stop();
}

TEST_CASE("Services sleeps between checks and answers", "[upstream]") {
    TinyHttpServer server;
    UpstreamOptions o = checked({"127.0.0.1:" + std::to_string(server.port()), "localhost:1"});
    o.health_check.interval = 200ms;
    o.dns.min_ttl = 200ms;
    auto c = make(std::move(o));
    Services services;
    REQUIRE(services.start({c}, 1s));
    auto cpu = [] {
        timespec t{};
        ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return std::chrono::seconds(t.tv_sec) + std::chrono::nanoseconds(t.tv_nsec);
    };
    const auto before = cpu();
    std::this_thread::sleep_for(1s);
    const auto used = std::chrono::duration_cast<std::chrono::milliseconds>(cpu() - before);
    CAPTURE(used.count());
    CHECK(used < 100ms);  // a spinning loop would use about the whole second
    CHECK(server.answered_200 >= 3);
    services.stop();
}

namespace {

/// A CA, a server certificate for "backend.test", "localhost" and 127.0.0.1 signed by it, and an
/// unrelated CA, made with the openssl CLI in a temporary directory.
class TestPki {
 public:
    TestPki() {
        char dir[] = "/tmp/blitz-services-tls-XXXXXX";
        REQUIRE(::mkdtemp(dir) != nullptr);
        dir_ = dir;
        const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        const std::string ca_ext =
            " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign";
        openssl("req -x509" + ec + " -days 2 -subj /CN=blitz-test-ca -keyout ca.key -out ca.pem" +
                ca_ext);
        openssl("req -x509" + ec + " -days 2 -subj /CN=other-ca -keyout other.key -out other.pem" +
                ca_ext);
        std::ofstream(path("server.ext"))
            << "basicConstraints = critical, CA:FALSE\n"
               "extendedKeyUsage = serverAuth\n"
               "subjectAltName = DNS:backend.test, DNS:localhost, IP:127.0.0.1\n";
        openssl("req" + ec + " -subj /CN=backend.test -keyout server.key -out server.csr");
        openssl(
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 "
            "-extfile server.ext -out server.pem");
    }
    ~TestPki() { std::filesystem::remove_all(dir_); }
    std::string path(const char* file) const { return dir_ + "/" + file; }

 private:
    void openssl(const std::string& args) {
        const std::string command = "cd '" + dir_ + "' && openssl " + args + " >openssl.log 2>&1";
        INFO(command);
        REQUIRE(std::system(command.c_str()) == 0);
    }

    std::string dir_;
};

/// Output buffers for the test server's sessions.
class MallocBuffers final : public blitz::tls::BufferSource {
 public:
    char* take_buffer() noexcept override { return static_cast<char*>(std::malloc(16384)); }
    void give_buffer(char* buffer) noexcept override { std::free(buffer); }
    std::size_t buffer_bytes() const noexcept override { return 16384; }
};

/// A loopback HTTPS server (tls::Session, server side) answering each request with `status`
/// (0: complete the handshake, never answer), one connection at a time; it counts completed
/// handshakes, resumed ones and answers, and keeps the last SNI and request.
class TinyTlsServer {
 public:
    std::atomic<int> status{200};
    std::atomic<int> handshakes{0};
    std::atomic<int> resumed{0};
    std::atomic<int> answered{0};

    explicit TinyTlsServer(const TestPki& pki) {
        blitz::TlsOptions o;
        o.certificates = {{.cert = pki.path("server.pem"), .key = pki.path("server.key")}};
        auto context = blitz::tls::ServerContext::make(o);
        INFO((context ? std::string() : context.error()));
        REQUIRE(context);
        context_ = context.value();
        fd_ = bound_socket(SOCK_STREAM, port_);
        REQUIRE(::listen(fd_, 64) == 0);
        thread_ = std::thread([this] { run(); });
    }
    ~TinyTlsServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    std::uint16_t port() const { return port_; }
    std::string last_sni() {
        std::lock_guard lock(mutex_);
        return sni_;
    }
    std::string last_request() {
        std::lock_guard lock(mutex_);
        return request_;
    }

 private:
    void run() {
        while (!stop_) {
            pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
            if (::poll(&p, 1, 10) <= 0) {
                continue;
            }
            int c = ::accept(fd_, nullptr, nullptr);
            if (c >= 0) {
                serve(c);
                ::close(c);
            }
        }
    }

    static bool flush(int fd, blitz::tls::Session& s) {
        while (s.has_output()) {
            const std::string_view out = s.pending_output();
            const ssize_t n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            s.output_sent(static_cast<std::size_t>(n));
        }
        return true;
    }

    void serve(int fd) {
        blitz::tls::Session s(buffers_);
        if (!s.start_server(context_)) {
            return;  // Catch2 assertions are for the test's thread; the counters tell
        }
        std::string request;
        char in[16384];
        char plain[4096];
        while (!stop_ && flush(fd, s)) {
            pollfd q{.fd = fd, .events = POLLIN, .revents = 0};
            if (::poll(&q, 1, 1000) <= 0) {
                return;
            }
            const ssize_t n = ::recv(fd, in, sizeof in, 0);
            if (n <= 0) {
                return;
            }
            s.set_input(in, static_cast<std::size_t>(n));
            if (!s.handshake_done()) {
                const blitz::tls::Status st = s.handshake();
                if (st == blitz::tls::Status::WantRead) {
                    continue;
                }
                if (st != blitz::tls::Status::Ok) {
                    flush(fd, s);  // the alert
                    return;
                }
                handshakes++;
                if (s.resumed()) {
                    resumed++;
                }
                std::lock_guard lock(mutex_);
                sni_ = s.server_name();
            }
            std::size_t got = 0;
            blitz::tls::Status st;
            while ((st = s.read(plain, sizeof plain, got)) == blitz::tls::Status::Ok) {
                request.append(plain, got);
            }
            if (st != blitz::tls::Status::WantRead) {
                return;
            }
            if (request.find("\r\n\r\n") == std::string::npos) {
                continue;
            }
            {
                std::lock_guard lock(mutex_);
                request_ = request;
            }
            const int code = status.load();
            if (code == 0) {
                flush(fd, s);  // tickets, then silence until the client gives up
                pollfd w{.fd = fd, .events = POLLIN, .revents = 0};
                ::poll(&w, 1, 1000);
                return;
            }
            const std::string response =
                "HTTP/1.1 " + std::to_string(code) + " X\r\nContent-Length: 0\r\n\r\n";
            std::size_t done = 0;
            while (done < response.size()) {
                const iovec iov{.iov_base = const_cast<char*>(response.data() + done),
                                .iov_len = response.size() - done};
                const std::size_t wrote = s.write(&iov, 1, iov.iov_len);
                done += wrote;
                if (!flush(fd, s) || wrote == 0) {
                    return;
                }
            }
            s.shutdown();
            flush(fd, s);
            answered++;
            return;
        }
    }

    std::shared_ptr<blitz::tls::ServerContext> context_;
    MallocBuffers buffers_;
    int fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    std::mutex mutex_;
    std::string sni_;
    std::string request_;
};

/// Sends log lines (stderr) to a file at the given level while alive.
class LogCapture {
 public:
    explicit LogCapture(blitz::LogLevel level) : level_(blitz::log_level()) {
        char file[] = "/tmp/blitz-services-log-XXXXXX";
        fd_ = ::mkstemp(file);
        REQUIRE(fd_ >= 0);
        path_ = file;
        saved_ = ::dup(STDERR_FILENO);
        REQUIRE(saved_ >= 0);
        REQUIRE(::dup2(fd_, STDERR_FILENO) == STDERR_FILENO);
        blitz::set_log_level(level);
    }
    ~LogCapture() {
        blitz::set_log_level(level_);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    std::string text() const {
        std::ifstream f(path_);
        return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }

 private:
    blitz::LogLevel level_;
    int fd_ = -1;
    int saved_ = -1;
    std::string path_;
};

UpstreamOptions checked_tls(std::uint16_t port, const TestPki& pki) {
    UpstreamOptions o = checked({"127.0.0.1:" + std::to_string(port)});
    o.health_check.timeout = 1s;
    o.tls.enabled = true;
    o.tls.ca = pki.path("ca.pem");
    return o;
}

}  // namespace

TEST_CASE("Services health checks of a TLS upstream verify it, send SNI and resume sessions",
          "[upstream][tls]") {
    TestPki pki;
    TinyTlsServer server(pki);
    UpstreamOptions o = checked_tls(server.port(), pki);
    o.tls.server_name = "backend.test";
    auto c = make(std::move(o));
    auto health = c->endpoints()->endpoints[0].health;
    health->healthy = false;  // only passing checks bring it up
    Services services;
    REQUIRE(services.start({c}, 1s));

    REQUIRE(wait_for([&] { return health->healthy.load(); }));
    // The server counts an answer once it is written and flushed: the checker may have read it
    // (and marked the endpoint up) first.
    CHECK(wait_for([&] { return server.answered >= 2; }));
    CHECK(server.last_sni() == "backend.test");
    const std::string request = server.last_request();
    CHECK_THAT(request, Catch::Matchers::StartsWith("GET /healthz HTTP/1.1\r\n"));
    CHECK_THAT(request, Catch::Matchers::ContainsSubstring(
                            "\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"));
    // The next checks offer the ticket the server issued with an earlier answer.
    CHECK(wait_for([&] { return server.resumed >= 2; }));

    server.status = 503;
    REQUIRE(wait_for([&] { return !health->healthy; }));
    services.stop();
}

TEST_CASE(
    "Services health checks of a TLS upstream name the server by the endpoint's host name, else "
    "its address",
    "[upstream][tls]") {
    TestPki pki;
    TinyTlsServer server(pki);
    UpstreamOptions o = checked_tls(server.port(), pki);
    o.tls.session_reuse = false;
    std::string sni;
    SECTION("an address: no SNI, the IP subjectAltName matches") {}
    SECTION("a host name: sent as SNI, a DNS subjectAltName matches") {
        o.endpoints = {{.address = "localhost:" + std::to_string(server.port())}};
        o.dns.family = "v4";  // the server listens on 127.0.0.1 only
        sni = "localhost";
    }
    auto c = make(std::move(o));
    Services services;
    REQUIRE(services.start({c}, 1s));
    auto set = c->endpoints();
    REQUIRE(set->endpoints.size() == 1);
    auto health = set->endpoints[0].health;
    REQUIRE(wait_for([&] { return server.answered >= 3; }));
    CHECK(health->healthy);
    CHECK(server.last_sni() == sni);
    CHECK(server.resumed == 0);  // session_reuse off: a full handshake each time
    services.stop();
}

TEST_CASE("Services health checks fail a TLS upstream whose certificate does not verify",
          "[upstream][tls]") {
    TestPki pki;
    TinyTlsServer server(pki);
    UpstreamOptions o = checked_tls(server.port(), pki);
    std::string why;
    SECTION("signed by another CA") {
        o.tls.ca = pki.path("other.pem");
        o.tls.server_name = "backend.test";
        why = "tls: certificate verify failed: unable to get local issuer certificate";
    }
    SECTION("issued for another name") {
        o.tls.server_name = "other.test";
        why = "tls: certificate verify failed: hostname mismatch";
    }
    auto c = make(std::move(o));
    auto health = c->endpoints()->endpoints[0].health;
    std::string logged;
    {
        LogCapture capture(blitz::LogLevel::Debug);
        Services services;
        REQUIRE(services.start({c}, 1s));
        REQUIRE(wait_for([&] { return !health->healthy; }));
        services.stop();
        logged = capture.text();
    }
    CAPTURE(logged);
    CHECK(server.handshakes == 0);
    CHECK(server.answered == 0);
    CHECK_THAT(logged, Catch::Matchers::ContainsSubstring(
                           "health check of 127.0.0.1:" + std::to_string(server.port()) +
                           " failed (" + why + ")"));
    CHECK_THAT(logged, Catch::Matchers::ContainsSubstring("unhealthy (" + why + ")"));
}

TEST_CASE(
    "Services health checks of a TLS upstream count no plaintext answer and time out "
    "unfinished handshakes",
    "[upstream][tls]") {
    TestPki pki;
    TinyHttpServer plain;  // answers 200 in clear text to the ClientHello
    plain.eager = true;
    TinyHttpServer silent;  // reads the ClientHello, never answers
    silent.status = 0;
    UpstreamOptions o = checked_tls(plain.port(), pki);
    o.endpoints.push_back({.address = "127.0.0.1:" + std::to_string(silent.port())});
    o.health_check.timeout = 150ms;
    auto c = make(std::move(o));
    auto set = c->endpoints();
    REQUIRE(set->endpoints.size() == 2);
    std::string logged;
    {
        LogCapture capture(blitz::LogLevel::Debug);
        Services services;
        REQUIRE(services.start({c}, 1s));
        REQUIRE(wait_for([&] {
            return !set->endpoints[0].health->healthy && !set->endpoints[1].health->healthy;
        }));
        services.stop();
        logged = capture.text();
    }
    CAPTURE(logged);
    CHECK(wait_for([&] { return plain.answered_200 >= 3; }));
    CHECK_THAT(logged,
               Catch::Matchers::ContainsSubstring(
                   "health check of 127.0.0.1:" + std::to_string(plain.port()) + " failed (tls: "));
    CHECK_THAT(logged, Catch::Matchers::ContainsSubstring(
                           "health check of 127.0.0.1:" + std::to_string(silent.port()) +
                           " failed (tls: handshake timeout)"));
}

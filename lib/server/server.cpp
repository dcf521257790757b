#include <blitz/server.hpp>

#include <pthread.h>
#include <sched.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <future>
#include <thread>

#include <blitz/log.hpp>
#include <blitz/version.hpp>

#include "net/socket.hpp"
#include "server/reactor.hpp"
#include "upstream/cluster.hpp"

namespace blitz::detail {

/// The engine behind blitz::Server: shared listeners, reactors and their threads.
class ServerCore final : public server::ReactorOwner {
public:
    explicit ServerCore(ServerOptions options) : options_(std::move(options)) {
        workers_ = options_.workers != 0 ? options_.workers : online_cpus();
    }

    ~ServerCore() {
        stop_all();
        join();
        for (auto& l : listeners_) {
            for (int fd : l->fds) {
                ::close(fd);
            }
        }
    }

    const std::vector<std::unique_ptr<server::ListenerShared>>& listeners() const override {
        return listeners_;
    }

    void stop_all() noexcept override {
        stop_requested_.store(true);
        std::lock_guard lock(reactors_mutex_);
        for (auto* r : reactors_) {
            if (r != nullptr) {
                r->request_stop();
            }
        }
    }

    Result<void, std::string> listen(ListenerOptions options, const Router& router) {
        if (started_) {
            return fail(std::string("listen() after start() is not supported"));
        }
        auto table = router.freeze();
        if (!table) {
            return fail(table.error());
        }
        net::SocketAddress addr;
        if (!net::SocketAddress::parse(options.address, addr)) {
            return fail("listener \"" + options.name + "\": invalid address \"" + options.address +
                        "\" (expected 127.0.0.1:8080 or [::1]:8080)");
        }
        auto shared = std::make_unique<server::ListenerShared>();
        for (const std::string& cidr : options.trusted_proxies) {
            if (auto r = shared->trusted_proxies.add(cidr); !r) {
                return fail("listener \"" + options.name + "\": trusted_proxies: " + r.error());
            }
        }
        if (options.tls) {
            TlsOptions tls = *options.tls;
            if (!options.http2.enabled) {
                // A listener without HTTP/2 never offers it, whatever the ALPN list says.
                tls.alpn.erase(std::remove(tls.alpn.begin(), tls.alpn.end(), "h2"), tls.alpn.end());
            }
            auto context = tls::ServerContext::make(tls);
            if (!context) {
                return fail("listener \"" + options.name + "\": tls: " + context.error());
            }
            shared->tls = std::move(*context);
            if (options.tls->detect && options.tls->plaintext == PlaintextPolicy::Redirect) {
                Router plain;
                plain.route("/").prefix().redirect(Redirect{.status = 308, .scheme = "https"});
                auto plain_table = plain.freeze();
                if (!plain_table) {
                    return fail(plain_table.error());
                }
                shared->plain_routes = std::move(*plain_table);
            }
        }
        net::ListenSocketOptions so{.backlog = options.backlog, .reuse_port = true,
                                    .ipv6_only = !options.ipv6_dual_stack};
        for (unsigned i = 0; i < workers_; ++i) {
            int fd = net::listen_socket(addr, so);
            if (fd < 0) {
                for (int f : shared->fds) {
                    ::close(f);
                }
                return fail("listener \"" + options.name + "\": cannot listen on " + options.address +
                            ": " + std::strerror(-fd));
            }
            if (options.tcp_nodelay) {
                net::set_tcp_nodelay(fd);  // accepted sockets inherit it
            }
            if (i == 0 && addr.port() == 0) {
                // Port 0: the first socket picks the port, every other reactor's socket joins it.
                net::SocketAddress bound;
                net::local_address(fd, bound);
                addr.set_port(bound.port());
            }
            shared->fds.push_back(fd);
        }
        shared->bound = addr;
        shared->url = (options.tls ? "https://" : "http://") + addr.to_string() + "/";
        shared->options = std::move(options);
        shared->routes = std::move(*table);
        for (const Route& route : router.routes()) {
            if (route.proxy.upstream) {
                const auto& cluster = route.proxy.upstream->cluster();
                if (std::find(clusters_.begin(), clusters_.end(), cluster) == clusters_.end()) {
                    clusters_.push_back(cluster);
                }
            }
        }
        listeners_.push_back(std::move(shared));
        return {};
    }

    std::uint16_t bound_port(std::size_t i) const {
        return i < listeners_.size() ? listeners_[i]->bound.port() : 0;
    }
    std::string url(std::size_t i) const { return i < listeners_.size() ? listeners_[i]->url : ""; }

    // Starts reactors [first, workers) on threads and waits until each is initialised.
    Result<void, std::string> start_threads(unsigned first) {
        if (!started_) {
            // Upstreams: limits are shared out between reactors; names are resolved and health
            // checks run on the services thread, never on a reactor.
            for (const auto& c : clusters_) {
                c->set_reactor_count(workers_);
            }
            if (auto r = services_.start(clusters_, std::chrono::milliseconds(5'000)); !r) {
                return fail(r.error());
            }
        }
        started_ = true;
        // A peer that closed must give EPIPE, never kill the process (gathered writes have no
        // MSG_NOSIGNAL).
        std::signal(SIGPIPE, SIG_IGN);
        {
            std::lock_guard lock(reactors_mutex_);
            if (reactors_.empty()) {
                reactors_.assign(workers_, nullptr);
            }
        }
        std::vector<int> cpus = allowed_cpus();
        for (unsigned i = first; i < workers_; ++i) {
            std::promise<std::string> ready;
            auto ready_future = ready.get_future();
            threads_.emplace_back([this, i, &ready, cpus] {
                if (options_.pin_cpus && !cpus.empty()) {
                    pin_to(cpus[i % cpus.size()]);
                }
                server::ReactorImpl reactor(*this, i, -1);
                std::string why;
                auto r = reactor.init(backend_options(), why);
                if (!r) {
                    ready.set_value(r.error());
                    return;
                }
                note_backend(reactor.backend(), why);
                {
                    std::lock_guard lock(reactors_mutex_);
                    reactors_[i] = &reactor;
                }
                ready.set_value("");
                if (stop_requested_.load()) {
                    reactor.request_stop();
                }
                reactor.run();
                std::lock_guard lock(reactors_mutex_);
                reactors_[i] = nullptr;
            });
            std::string err = ready_future.get();
            if (!err.empty()) {
                stop_all();
                join();
                return fail("reactor " + std::to_string(i) + ": " + err);
            }
        }
        return {};
    }

    void announce() {
        log(LogLevel::Info, "blitz %s: %u worker%s, backend %s%s%s", BLITZ_VERSION, workers_,
            workers_ == 1 ? "" : "s", backend_name(backend_), fallback_.empty() ? "" : " (",
            fallback_.empty() ? "" : (fallback_ + ")").c_str());
        for (auto& l : listeners_) {
            log(LogLevel::Info, "listener \"%s\" listening on %s", l->options.name.c_str(), l->url.c_str());
        }
    }

    Result<void, std::string> start() {
        if (auto r = start_threads(0); !r) {
            return r;
        }
        announce();
        return {};
    }

    int run_until_signal() {
        sigset_t set;
        sigemptyset(&set);
        for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) {
            sigaddset(&set, s);
        }
        // Blocked before any thread starts, so every reactor thread inherits the mask and the
        // signals are only ever read from the signalfd.
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
        if (sfd < 0) {
            log(LogLevel::Error, "signalfd: %s", std::strerror(errno));
            return 1;
        }
        int status = 0;
        if (options_.pin_cpus) {
            if (auto cpus = allowed_cpus(); !cpus.empty()) {
                pin_to(cpus[0]);
            }
        }
        {
            server::ReactorImpl reactor(*this, 0, sfd);
            std::string why;
            auto r = reactor.init(backend_options(), why);
            if (!r) {
                log(LogLevel::Error, "reactor 0: %s", r.error().c_str());
                status = 1;
            } else {
                note_backend(reactor.backend(), why);
                {
                    std::lock_guard lock(reactors_mutex_);
                    if (reactors_.empty()) {
                        reactors_.assign(workers_, nullptr);
                    }
                    reactors_[0] = &reactor;
                }
                if (auto t = start_threads(1); !t) {
                    log(LogLevel::Error, "%s", t.error().c_str());
                    status = 1;
                } else {
                    announce();
                    reactor.run();
                }
                std::lock_guard lock(reactors_mutex_);
                reactors_[0] = nullptr;
            }
        }
        stop_all();
        join();
        ::close(sfd);
        if (status == 0) {
            log(LogLevel::Info, "stopped");
        }
        return status;
    }

    void join() {
        for (auto& t : threads_) {
            if (t.joinable()) {
                t.join();
            }
        }
        threads_.clear();
        services_.stop();
    }

    blitz::Backend backend() const noexcept { return backend_; }
    unsigned workers() const noexcept { return workers_; }

private:
    io::BackendOptions backend_options() const {
        io::BackendOptions o;
        o.kind = options_.backend;
        o.recv_buffer_bytes = options_.recv_buffer_bytes;
        o.max_recv_buffers = options_.max_recv_buffers;
        return o;
    }

    void note_backend(blitz::Backend b, const std::string& why) {
        std::lock_guard lock(reactors_mutex_);
        backend_ = b;
        if (!why.empty()) {
            fallback_ = why;
        }
    }

    static unsigned online_cpus() {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? static_cast<unsigned>(n) : 1;
    }

    static std::vector<int> allowed_cpus() {
        std::vector<int> cpus;
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) == 0) {
            for (int c = 0; c < CPU_SETSIZE; ++c) {
                if (CPU_ISSET(c, &set)) {
                    cpus.push_back(c);
                }
            }
        }
        return cpus;
    }

    static void pin_to(int cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    }

    ServerOptions options_;
    unsigned workers_ = 1;
    std::vector<std::unique_ptr<server::ListenerShared>> listeners_;
    std::vector<std::shared_ptr<upstream::Cluster>> clusters_;
    upstream::Services services_;
    std::mutex reactors_mutex_;
    std::vector<server::ReactorImpl*> reactors_;
    std::vector<std::thread> threads_;
    std::atomic<bool> stop_requested_{false};
    bool started_ = false;
    blitz::Backend backend_ = blitz::Backend::Auto;
    std::string fallback_;
};

}  // namespace blitz::detail

namespace blitz {

Server::Server(ServerOptions options) : core_(std::make_unique<detail::ServerCore>(std::move(options))) {}

Server::~Server() = default;

Result<void, std::string> Server::listen(ListenerOptions options, const Router& router) {
    return core_->listen(std::move(options), router);
}

std::uint16_t Server::bound_port(std::size_t index) const { return core_->bound_port(index); }

std::string Server::url(std::size_t index) const { return core_->url(index); }

Result<void, std::string> Server::start() { return core_->start(); }

int Server::run_until_signal() { return core_->run_until_signal(); }

void Server::stop() noexcept { core_->stop_all(); }

void Server::wait() { core_->join(); }

Backend Server::backend() const noexcept { return core_->backend(); }

unsigned Server::workers() const noexcept { return core_->workers(); }

}  // namespace blitz

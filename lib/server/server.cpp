#include <blitz/server.hpp>

#include <pthread.h>
#include <sched.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <thread>

#include <blitz/log.hpp>
#include <blitz/version.hpp>

#include "net/inherited.hpp"
#include "net/socket.hpp"
#include "metrics/exposition.hpp"
#include "metrics/histogram.hpp"
#include "metrics/process.hpp"
#include "server/admin.hpp"
#include "server/engine_report.hpp"
#include "server/fd_limit.hpp"
#include "server/notify.hpp"
#include "server/reactor.hpp"
#include "upstream/cluster.hpp"

namespace blitz::detail {

namespace {

/// The sockets of one listening address, kept across reloads while a listener uses it.
struct Sockets {
    net::SocketAddress address;
    std::vector<int> fds;
    bool ipv6_only = false;
};

std::uint64_t steady_ms() noexcept {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now().time_since_epoch())
                                          .count());
}

}  // namespace

/// The engine behind blitz::Server: listeners (one generation at a time), reactors and their
/// threads, the upstream services.
class ServerCore final : public server::ReactorOwner, private server::AdminSource {
public:
    explicit ServerCore(ServerOptions options) : options_(std::move(options)) {
        workers_ = options_.workers != 0 ? options_.workers : online_cpus();
        // Sockets handed over by systemd or by the process this one upgrades (LISTEN_FDS).
        if (auto inherited = net::InheritedSockets::take_from_environment(); inherited) {
            inherited_ = std::move(*inherited);
        } else {
            inherited_error_ = inherited.error();
        }
        // What upgrade() starts: this executable as the path it was started from names it now,
        // with the same arguments.
        std::error_code ec;
        executable_ = std::filesystem::read_symlink("/proc/self/exe", ec).string();
        if (std::FILE* f = std::fopen("/proc/self/cmdline", "rb")) {
            std::string arg;
            for (int c; (c = std::fgetc(f)) != EOF;) {
                if (c == '\0') {
                    arguments_.push_back(std::move(arg));
                    arg.clear();
                } else {
                    arg.push_back(static_cast<char>(c));
                }
            }
            std::fclose(f);
        }
    }

    ~ServerCore() {
        stop_all();
        join();
        for (auto& [key, sockets] : sockets_) {
            for (int fd : sockets.fds) {
                ::close(fd);
            }
        }
        for (int fd : {exit_fd_, admin_reload_fd_}) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
        for (int fd : admin_sockets_.fds) {
            ::close(fd);
        }
    }

    std::vector<std::shared_ptr<const server::ListenerShared>> listeners() const override {
        std::lock_guard lock(listeners_mutex_);
        auto all = listeners_;
        if (admin_) {
            all.push_back(admin_);  // last: listen() order indexes the others
        }
        return all;
    }

    unsigned reactor_count() const noexcept override { return workers_; }
    trace::Exporter* exporter() const noexcept override { return exporter_.get(); }

    void stop_all() noexcept override {
        stop_requested_.store(true);
        for_each_reactor([](server::ReactorImpl& r) { r.request_stop(); });
    }

    void drain() noexcept {
        if (draining_.exchange(true)) {
            return;
        }
        const std::uint64_t deadline = steady_ms() + static_cast<std::uint64_t>(options_.drain_timeout.count());
        if (!started_) {
            return;
        }
        // Reactors stop accepting first; the sockets close after (an accept armed in io_uring
        // holds its socket open until it is cancelled).
        run_on_reactors([deadline](server::ReactorImpl& r) { r.begin_drain(deadline); });
        std::lock_guard lock(reload_mutex_);
        for (auto& [key, sockets] : sockets_) {
            for (int fd : sockets.fds) {
                ::close(fd);
            }
        }
        sockets_.clear();
        for (int fd : admin_sockets_.fds) {
            ::close(fd);
        }
        admin_sockets_.fds.clear();
    }

    Result<void, std::string> listen(ListenerOptions options, const Router& router) {
        if (started_) {
            return fail(std::string("listen() after start() is not supported; use reload()"));
        }
        if (!inherited_error_.empty()) {
            return fail("inherited sockets (LISTEN_FDS): " + inherited_error_);
        }
        std::lock_guard lock(reload_mutex_);
        auto table = router.freeze();
        if (!table) {
            return fail(table.error());
        }
        std::map<std::string, Sockets> bound;
        auto listener = make_listener(std::move(options), *table, router, bound);
        if (!listener) {
            return fail(listener.error());
        }
        sockets_.merge(bound);
        add_clusters(router, clusters_);
        std::lock_guard l(listeners_mutex_);
        listeners_.push_back(std::move(*listener));
        return {};
    }

    Result<void, std::string> reload(std::vector<ListenerOptions> options, const Router& router) {
        if (!started_) {
            for (auto& o : options) {
                if (auto r = listen(std::move(o), router); !r) {
                    return r;
                }
            }
            return {};
        }
        std::lock_guard lock(reload_mutex_);
        if (draining_.load()) {
            return fail(std::string("the server is stopping"));
        }
        auto table = router.freeze();
        if (!table) {
            return fail(table.error());
        }
        // Everything new is built (and bound) before anything changes.
        std::map<std::string, Sockets> bound;
        std::vector<std::shared_ptr<const server::ListenerShared>> next;
        for (auto& o : options) {
            auto listener = make_listener(std::move(o), *table, router, bound);
            if (!listener) {
                for (auto& [key, sockets] : bound) {
                    if (!sockets_.contains(key)) {
                        for (int fd : sockets.fds) {
                            ::close(fd);
                        }
                    }
                }
                return fail(listener.error());
            }
            next.push_back(std::move(*listener));
        }
        std::vector<std::shared_ptr<upstream::Cluster>> clusters;
        add_clusters(router, clusters);
        auto services = std::make_unique<upstream::Services>();
        for (const auto& c : clusters) {
            if (std::find(clusters_.begin(), clusters_.end(), c) == clusters_.end()) {
                c->set_reactor_count(workers_);
            }
        }
        if (auto r = services->start(clusters, std::chrono::milliseconds(5'000)); !r) {
            return fail(r.error());
        }
        for (const auto& l : next) {
            if (!sockets_.contains(l->bound.to_string())) {
                log(LogLevel::Info, "listener \"%s\" listening on %s", l->options.name.c_str(), l->url.c_str());
            }
        }
        for (const auto& [key, sockets] : sockets_) {
            if (!bound.contains(key)) {
                log(LogLevel::Info, "listener on %s removed: its connections drain", key.c_str());
            }
        }
        {
            std::lock_guard l(listeners_mutex_);
            listeners_ = std::move(next);
        }
        run_on_reactors([](server::ReactorImpl& r) { r.apply_listeners(); });
        // Sockets no listener uses any more: every reactor has cancelled its accept on them.
        for (auto it = sockets_.begin(); it != sockets_.end();) {
            if (!bound.contains(it->first)) {
                for (int fd : it->second.fds) {
                    ::close(fd);
                }
                it = sockets_.erase(it);
            } else {
                ++it;
            }
        }
        sockets_.merge(bound);
        services_->stop();
        services_ = std::move(services);
        clusters_ = std::move(clusters);
        raise_fd_limit(false);
        return {};
    }

    std::uint16_t bound_port(std::size_t i) const {
        auto l = listeners();
        return i < l.size() ? l[i]->bound.port() : 0;
    }
    std::string url(std::size_t i) const {
        auto l = listeners();
        return i < l.size() ? l[i]->url : "";
    }

    // Starts reactors [first, workers) on threads and waits until each is initialised.
    Result<void, std::string> start_threads(unsigned first) {
        if (!started_) {
            // Upstreams: limits are shared out between reactors; names are resolved and health
            // checks run on the services thread, never on a reactor.
            for (const auto& c : clusters_) {
                c->set_reactor_count(workers_);
            }
            if (auto r = services_->start(clusters_, std::chrono::milliseconds(5'000)); !r) {
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
                {
                    server::ReactorImpl reactor(
                        *this, i,
                        {options_.metrics.max_route_labels, options_.metrics.max_endpoint_labels},
                        label_families_);
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
                }
                const std::uint64_t one = 1;
                [[maybe_unused]] auto w = ::write(exit_fd_, &one, sizeof one);
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
        for (auto& l : listeners()) {
            log(LogLevel::Info, "listener \"%s\" listening on %s", l->options.name.c_str(), l->url.c_str());
        }
    }

    /// `tell_parent`: a process started by upgrade() tells its parent it serves (run_until_signal
    /// does that itself, after telling the service manager).
    Result<void, std::string> start(bool tell_parent) {
        if (auto r = start_admin(); !r) {
            return r;
        }
        if (options_.tracing && exporter_ == nullptr) {
            const TracingOptions& t = *options_.tracing;
            auto e = trace::Exporter::start({.collector = t.collector,
                                             .path = t.path,
                                             .service_name = t.service_name,
                                             .batch_spans = t.batch_spans,
                                             .queue_batches = t.queue_batches,
                                             .flush_interval_ms = static_cast<std::uint32_t>(t.flush_interval.count()),
                                             .timeout_ms = static_cast<std::uint32_t>(t.timeout.count()),
                                             .sample_ratio = t.sample_ratio});
            if (!e) {
                char why[256];
                return fail(std::string("tracing: ") + describe(e.error(), why, sizeof why));
            }
            exporter_ = std::move(*e);
        }
        raise_fd_limit(true);
        for (const std::string& unused : inherited_.close_leftovers()) {
            log(LogLevel::Warn, "inherited socket %s: no listener has its address; closed", unused.c_str());
        }
        if (auto r = start_threads(0); !r) {
            return r;
        }
        announce();
        if (tell_parent) {
            tell_upgrading_parent();
        }
        return {};
    }

    Result<void, std::string> start_admin() {
        if (!options_.admin || admin_) {
            return {};
        }
        std::lock_guard lock(reload_mutex_);
        if (net::SocketAddress a; net::SocketAddress::parse(options_.admin->address, a) && a.port() != 0 &&
                                  sockets_.contains(a.to_string())) {
            return fail("admin: address " + options_.admin->address + " is a public listener's");
        }
        Router router = server::admin_router(*this, options_.admin->token);
        auto table = router.freeze();
        if (!table) {
            return fail(table.error());
        }
        ListenerOptions o;
        o.name = "admin";
        o.address = options_.admin->address;
        o.http2.enabled = false;
        std::map<std::string, Sockets> bound;
        auto listener = make_listener(std::move(o), *table, router, bound, true);
        if (!listener) {
            return fail(listener.error());
        }
        admin_sockets_ = std::move(bound.begin()->second);
        std::lock_guard l(listeners_mutex_);
        admin_ = std::move(*listener);
        return {};
    }

    // A process started by upgrade() says it serves: one byte on the pipe it was given.
    static void tell_upgrading_parent() noexcept {
        const char* fd_text = std::getenv(kUpgradeReadyFd);
        if (fd_text == nullptr) {
            return;
        }
        const int fd = std::atoi(fd_text);
        ::unsetenv(kUpgradeReadyFd);
        if (fd > 2) {
            [[maybe_unused]] auto w = ::write(fd, "1", 1);
            ::close(fd);
        }
    }

    Result<pid_t, std::string> upgrade() {
        std::lock_guard lock(reload_mutex_);
        if (!started_ || draining_.load()) {
            return fail(std::string("the server is not running"));
        }
        if (executable_.empty() || arguments_.empty()) {
            return fail(std::string("cannot tell which executable to start (/proc/self/exe)"));
        }
        std::vector<net::PassedSocket> sockets;
        const auto current = listeners();
        for (const auto& [key, s] : sockets_) {
            std::string name = "listener";
            for (const auto& l : current) {
                if (l->bound.to_string() == key) {
                    name = l->options.name;
                }
            }
            for (int fd : s.fds) {
                sockets.push_back(net::PassedSocket{.fd = fd, .name = name});
            }
        }
        for (int fd : admin_sockets_.fds) {
            sockets.push_back(net::PassedSocket{.fd = fd, .name = "admin"});
        }
        int ready[2];
        if (::pipe2(ready, O_CLOEXEC) != 0) {
            return fail(std::string("pipe: ") + std::strerror(errno));
        }
        const net::PassedFd ready_fd{.fd = ready[1], .env_name = kUpgradeReadyFd};
        auto child = net::ChildExec::prepare(executable_, arguments_, sockets, {&ready_fd, 1});
        if (!child) {
            ::close(ready[0]);
            ::close(ready[1]);
            return fail(child.error());
        }
        const pid_t pid = ::fork();
        if (pid == 0) {
            child->exec_in_child();
        }
        ::close(ready[1]);
        if (pid < 0) {
            ::close(ready[0]);
            return fail(std::string("fork: ") + std::strerror(errno));
        }
        // Serving, or gone: the pipe gets a byte, or its last writer (the child) goes away.
        pollfd p{ready[0], POLLIN, 0};
        char byte = 0;
        const int n = ::poll(&p, 1, kUpgradeTimeoutMs);
        const bool ok = n == 1 && ::read(ready[0], &byte, 1) == 1;
        ::close(ready[0]);
        if (!ok) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
            return fail(n == 0 ? "the new process did not serve within " + std::to_string(kUpgradeTimeoutMs) + " ms"
                               : std::string("the new process exited before serving"));
        }
        return pid;
    }

    // Enough descriptors for the connection limits (issue: the default soft limit of 1024
    // fails busy servers with EMFILE); logged either way.
    void raise_fd_limit(bool starting) {
        const auto current = listeners();
        std::vector<const ListenerOptions*> ls;
        for (const auto& l : current) {
            ls.push_back(&l->options);
        }
        std::vector<const UpstreamOptions*> us;
        for (const auto& c : clusters_) {
            us.push_back(&c->options());
        }
        const server::FdLimitReport report = server::raise_fd_limit(server::estimate_fd_need(workers_, ls, us));
        if (starting || report.after != report.before || report.short_of_need || report.error != 0) {
            log(report.short_of_need || report.error != 0 ? LogLevel::Warn : LogLevel::Info, "%s",
                server::describe(report).c_str());
        }
    }

    int run_until_signal(ServerHooks hooks);

    void join() {
        for (auto& t : threads_) {
            if (t.joinable()) {
                t.join();
            }
        }
        threads_.clear();
        services_->stop();
        if (exporter_ != nullptr) {
            exporter_->stop();  // what the reactors handed over on their way out
        }
    }

    // SIGUSR1: every access log file is opened again (after logrotate moved it); reactors take
    // the new file with their next write.
    void reopen_logs() {
        const std::vector<std::string> errors = sinks_.reopen_all();
        for (const std::string& e : errors) {
            log(LogLevel::Error, "%s; still writing to the previous file", e.c_str());
        }
        log(LogLevel::Info, "received SIGUSR1: access logs reopened");
    }

    // The LogTarget for `o`: the running one when a log with the same options exists (so
    // reactors keep their buffers across reloads).
    Result<std::shared_ptr<const server::LogTarget>, std::string> log_target(const AccessLogOptions& o) {
        std::string key = o.enabled ? o.path + '\0' + o.format + '\0' + std::to_string(o.buffer_bytes) + '\0' +
                                          std::to_string(o.flush_interval.count())
                                    : std::string("off");
        std::lock_guard lock(log_targets_mutex_);
        if (auto it = log_targets_.find(key); it != log_targets_.end()) {
            if (auto t = it->second.lock()) {
                return std::shared_ptr<const server::LogTarget>(std::move(t));
            }
        }
        auto t = std::make_shared<server::LogTarget>();
        t->options = o;
        if (o.enabled) {
            if (o.format != "json") {
                auto f = accesslog::Format::compile(o.format);
                if (!f) {
                    return fail("access_log: format: at byte " + std::to_string(f.error().offset) + ": " +
                                f.error().message);
                }
                t->format = std::move(*f);
            }
            auto sink = sinks_.get(o.path);
            if (!sink) {
                return fail(sink.error());
            }
            t->sink = std::move(*sink);
        }
        for (auto it = log_targets_.begin(); it != log_targets_.end();) {
            it = it->second.expired() ? log_targets_.erase(it) : std::next(it);
        }
        log_targets_[key] = t;
        return std::shared_ptr<const server::LogTarget>(std::move(t));
    }

    void set_config_document(std::string json) {
        std::lock_guard lock(config_document_mutex_);
        config_document_ = std::move(json);
    }

    blitz::Backend backend() const noexcept { return backend_; }
    unsigned workers() const noexcept { return workers_; }

private:
    class Control;

    // AdminSource
    bool admin_ready() const noexcept override { return !draining_.load(); }

    // Every running reactor's metrics summed, for a scrape (single-writer counters: reading them
    // from this thread takes no lock on the request path; the list lock only keeps reactors
    // alive).
    server::EngineTotals engine_totals() const {
        server::EngineTotals t;
        std::lock_guard lock(reactors_mutex_);
        std::vector<const server::EngineMetrics*> metrics;
        for (auto* r : reactors_) {
            if (r != nullptr) {
                metrics.push_back(&r->metrics());
            }
        }
        t.add(metrics);
        return t;
    }

    void admin_stats(std::string& out) const override {
        const server::EngineTotals t = engine_totals();
        out += "{\"workers\":" + std::to_string(workers_) + ",\"backend\":\"" + backend_name(backend_) +
               "\",\"draining\":" + (draining_.load() ? "true" : "false") + ",\"listeners\":[";
        bool first = true;
        for (const auto& l : listeners()) {
            out += first ? "{" : ",{";
            first = false;
            out += "\"name\":\"" + l->options.name + "\",\"url\":\"" + l->url + "\"}";
        }
        out += "],";
        server::append_engine_stats(out, t);
        out += '}';
    }

    void admin_metrics(std::string& out) const override {
        const server::EngineTotals t = engine_totals();
        metrics::Writer w(out);
        server::write_engine_metrics(w, t);
        const auto ls = listeners();
        const auto clusters = clusters_of(ls);
        server::write_upstream_health(w, clusters);
        server::write_circuit_breakers(w, clusters, t);
        if (exporter_ != nullptr) {
            w.family("blitz_tracing_spans_exported_total", "Spans the collector accepted.", metrics::MetricType::Counter);
            w.counter({}, exporter_->spans_exported());
            w.family("blitz_tracing_spans_dropped_total",
                     "Spans dropped: the export queue was full, or their export failed.", metrics::MetricType::Counter);
            w.counter({}, exporter_->spans_dropped());
            w.family("blitz_tracing_export_failures_total", "Export requests that failed (a retry counts again).",
                     metrics::MetricType::Counter);
            w.counter({}, exporter_->export_failures());
        }
        if (auto stats = metrics::read_process_stats(); stats) {
            metrics::write_process_metrics(w, *stats);
        }
    }

    // The current generation's upstreams, each once.
    static std::vector<const upstream::Cluster*> clusters_of(const std::vector<std::shared_ptr<const server::ListenerShared>>& ls) {
        std::vector<const upstream::Cluster*> out;
        for (const auto& l : ls) {
            for (const upstream::Cluster* c : l->clusters) {
                if (std::find(out.begin(), out.end(), c) == out.end()) {
                    out.push_back(c);
                }
            }
        }
        return out;
    }

    void admin_routes(std::string& out) const override {
        const server::EngineTotals t = engine_totals();
        out += "{\"listeners\":[";
        const char* sep = "";
        for (const auto& l : listeners()) {
            out += sep;
            sep = ",";
            out += "{\"name\":";
            server::append_json_string(out, l->options.name);
            out += ",\"routes\":[";
            const char* rsep = "";
            for (const Route& r : l->routes->routes()) {
                out += rsep;
                rsep = ",";
                server::append_route_json(out, r, t);
            }
            out += "]}";
        }
        out += "]}";
    }

    void admin_upstreams(std::string& out) const override {
        const auto ls = listeners();  // keeps the clusters alive
        server::append_upstreams_json(out, clusters_of(ls), engine_totals());
    }

    bool admin_config(std::string& out) const override {
        std::lock_guard lock(config_document_mutex_);
        if (!config_document_) {
            return false;
        }
        out += *config_document_;
        return true;
    }

    bool admin_reload(std::function<void(Result<void, std::string>)> done) override {
        std::lock_guard lock(admin_reload_mutex_);
        if (!reload_enabled_) {
            return false;
        }
        admin_reloads_.push_back(std::move(done));
        const std::uint64_t one = 1;
        [[maybe_unused]] auto w = ::write(admin_reload_fd_, &one, sizeof one);
        return true;
    }

    void admin_post(unsigned index, std::function<void()> task) override {
        std::lock_guard lock(reactors_mutex_);
        if (index < reactors_.size() && reactors_[index] != nullptr) {
            reactors_[index]->post(std::move(task));
        }
    }

    std::vector<std::function<void(Result<void, std::string>)>> take_admin_reloads() {
        std::uint64_t count = 0;
        [[maybe_unused]] auto r = ::read(admin_reload_fd_, &count, sizeof count);
        std::lock_guard lock(admin_reload_mutex_);
        std::vector<std::function<void(Result<void, std::string>)>> taken;
        taken.swap(admin_reloads_);
        return taken;
    }

    template <typename F>
    void for_each_reactor(F fn) noexcept {
        std::lock_guard lock(reactors_mutex_);
        for (auto* r : reactors_) {
            if (r != nullptr) {
                fn(*r);
            }
        }
    }

    // Runs `fn` on every running reactor's thread and waits until each has (bounded: a reactor
    // that stops meanwhile never runs it).
    void run_on_reactors(std::function<void(server::ReactorImpl&)> fn) {
        struct Latch {
            std::mutex mutex;
            std::condition_variable done;
            std::size_t left = 0;
        };
        auto latch = std::make_shared<Latch>();
        {
            // Posted under the lock: a reactor leaves the list (under it) before it is destroyed.
            std::lock_guard lock(reactors_mutex_);
            for (auto* r : reactors_) {
                if (r == nullptr) {
                    continue;
                }
                {
                    std::lock_guard l(latch->mutex);
                    ++latch->left;
                }
                r->post([r, fn, latch] {
                    fn(*r);
                    std::lock_guard l(latch->mutex);
                    if (--latch->left == 0) {
                        latch->done.notify_all();
                    }
                });
            }
        }
        std::unique_lock l(latch->mutex);
        latch->done.wait_for(l, std::chrono::seconds(5), [&latch] { return latch->left == 0; });
    }

    // A listener generation: sockets reused from sockets_ (same address) or bound anew (added
    // to `bound`, which also collects the reused ones).
    Result<std::shared_ptr<const server::ListenerShared>, std::string> make_listener(
        ListenerOptions options, const std::shared_ptr<const RouteTable>& table, const Router& router,
        std::map<std::string, Sockets>& bound, bool admin = false) {
        net::SocketAddress addr;
        if (!net::SocketAddress::parse(options.address, addr)) {
            return fail("listener \"" + options.name + "\": invalid address \"" + options.address +
                        "\" (expected 127.0.0.1:8080 or [::1]:8080)");
        }
        auto shared = std::make_shared<server::ListenerShared>();
        shared->admin = admin;
        if (options.access_log) {
            auto t = log_target(*options.access_log);
            if (!t) {
                return fail("listener \"" + options.name + "\": " + t.error());
            }
            shared->access_log = std::move(*t);
            shared->logs = true;
        }
        for (const Route& r : table->routes()) {
            if (r.access_log) {
                auto t = log_target(*r.access_log);
                if (!t) {
                    return fail("route \"" + r.name + "\": " + t.error());
                }
                if (shared->route_logs.size() <= r.order) {
                    shared->route_logs.resize(r.order + 1);
                }
                shared->route_logs[r.order] = std::move(*t);
                shared->logs = true;
            }
        }
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
        const bool ipv6_only = !options.ipv6_dual_stack;
        std::string key = addr.port() != 0 ? addr.to_string() : std::string();
        if (!key.empty() && admin_ && key == admin_sockets_.address.to_string()) {
            return fail("listener \"" + options.name + "\": address " + options.address +
                        " is the admin listener's");
        }
        if (!key.empty() && bound.contains(key)) {
            return fail("listener \"" + options.name + "\": address " + options.address +
                        " is already used by another listener");
        }
        if (auto it = sockets_.find(key); !key.empty() && it != sockets_.end()) {
            if (it->second.ipv6_only != ipv6_only) {
                return fail("listener \"" + options.name + "\": ipv6_dual_stack cannot change on a bound "
                            "socket; restart to change it");
            }
            for (int fd : it->second.fds) {
                ::listen(fd, options.backlog);  // a changed backlog applies from now on
            }
            bound.emplace(key, it->second);
        } else if (std::vector<net::InheritedSocket> given = addr.port() != 0 ? inherited_.take(addr)
                                                                                : std::vector<net::InheritedSocket>{};
                   !given.empty()) {
            // Handed over (socket activation, binary upgrade): used as they are, however many.
            Sockets sockets{.address = addr, .ipv6_only = ipv6_only};
            for (const net::InheritedSocket& g : given) {
                sockets.fds.push_back(g.fd);
            }
            log(LogLevel::Info, "listener \"%s\": using %zu inherited socket%s", options.name.c_str(),
                given.size(), given.size() == 1 ? "" : "s");
            bound.emplace(key, std::move(sockets));
        } else {
            Sockets sockets{.address = addr, .ipv6_only = ipv6_only};
            net::ListenSocketOptions so{.backlog = options.backlog, .reuse_port = true, .ipv6_only = ipv6_only};
            for (unsigned i = 0; i < workers_; ++i) {
                int fd = net::listen_socket(sockets.address, so);
                if (fd < 0) {
                    for (int f : sockets.fds) {
                        ::close(f);
                    }
                    return fail("listener \"" + options.name + "\": cannot listen on " + options.address +
                                ": " + std::strerror(-fd));
                }
                if (i == 0 && sockets.address.port() == 0) {
                    // Port 0: the first socket picks the port, every other reactor's socket joins it.
                    net::SocketAddress local;
                    net::local_address(fd, local);
                    sockets.address.set_port(local.port());
                }
                sockets.fds.push_back(fd);
            }
            key = sockets.address.to_string();
            bound.emplace(key, std::move(sockets));
        }
        const Sockets& sockets = bound.at(key);
        if (options.tcp_nodelay) {
            for (int fd : sockets.fds) {
                net::set_tcp_nodelay(fd);  // accepted sockets inherit it
            }
        }
        shared->fds = sockets.fds;
        shared->bound = sockets.address;
        shared->url = (options.tls ? "https://" : "http://") + sockets.address.to_string() + "/";
        shared->options = std::move(options);
        shared->routes = table;
        for (const Route& route : router.routes()) {
            if (route.proxy.upstream) {
                const upstream::Cluster* c = route.proxy.upstream->cluster().get();
                if (std::find(shared->clusters.begin(), shared->clusters.end(), c) == shared->clusters.end()) {
                    shared->clusters.push_back(c);
                }
            }
        }
        return std::shared_ptr<const server::ListenerShared>(std::move(shared));
    }

    static void add_clusters(const Router& router, std::vector<std::shared_ptr<upstream::Cluster>>& clusters) {
        for (const Route& route : router.routes()) {
            if (route.proxy.upstream) {
                const auto& cluster = route.proxy.upstream->cluster();
                if (std::find(clusters.begin(), clusters.end(), cluster) == clusters.end()) {
                    clusters.push_back(cluster);
                }
            }
        }
    }

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

    static constexpr const char* kUpgradeReadyFd = "BLITZ_UPGRADE_READY_FD";
    static constexpr int kUpgradeTimeoutMs = 30'000;

    ServerOptions options_;
    unsigned workers_ = 1;
    net::InheritedSockets inherited_;
    std::string inherited_error_;
    std::string executable_;
    std::vector<std::string> arguments_;
    // Listener generations and their sockets: changed under reload_mutex_ (the control thread,
    // or the embedder's), read by reactors under listeners_mutex_.
    std::mutex reload_mutex_;
    mutable std::mutex listeners_mutex_;
    accesslog::SinkRegistry sinks_;
    std::mutex log_targets_mutex_;
    std::map<std::string, std::weak_ptr<server::LogTarget>> log_targets_;
    std::unique_ptr<trace::Exporter> exporter_;
    mutable std::mutex config_document_mutex_;
    std::optional<std::string> config_document_;
    std::vector<std::shared_ptr<const server::ListenerShared>> listeners_;
    std::map<std::string, Sockets> sockets_;  // by bound address
    std::vector<std::shared_ptr<upstream::Cluster>> clusters_;
    std::unique_ptr<upstream::Services> services_ = std::make_unique<upstream::Services>();
    mutable std::mutex reactors_mutex_;
    std::vector<server::ReactorImpl*> reactors_;
    // The reactors' label families: a route or endpoint label demoted by one reactor is
    // demoted by all (server::EngineMetrics).
    std::shared_ptr<metrics::LabelFamilies> label_families_ =
        std::make_shared<metrics::LabelFamilies>();
    std::vector<std::thread> threads_;
    // Each reactor thread adds one when it ends (the control loop waits on it).
    int exit_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    // The admin listener: its own generation and sockets, untouched by reload().
    std::shared_ptr<const server::ListenerShared> admin_;
    Sockets admin_sockets_;
    // POST /reload: requests for the control loop, which wakes on the eventfd.
    std::mutex admin_reload_mutex_;
    std::vector<std::function<void(Result<void, std::string>)>> admin_reloads_;
    bool reload_enabled_ = false;  // a control loop with a reload hook runs
    int admin_reload_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    std::atomic<bool> stop_requested_{false};
    std::atomic<bool> draining_{false};
    bool started_ = false;
    blitz::Backend backend_ = blitz::Backend::Auto;
    std::string fallback_;
};

/// The control loop of run_until_signal(): signals, watched files, reactors ending.
///
/// Thread: the caller of run_until_signal(). Lifetime: that call.
class ServerCore::Control {
public:
    Control(ServerCore& core, ServerHooks hooks, int signal_fd)
        : core_(core), hooks_(std::move(hooks)), signal_fd_(signal_fd) {
        if (auto n = server::Notifier::from_environment(); n) {
            notifier_ = std::move(*n);
        } else {
            log(LogLevel::Warn, "%s; not reporting to the service manager", n.error().c_str());
        }
        rewatch({});
    }

    /// The server runs: tell the service manager.
    void serving() { notify(notifier_.ready("serving")); }
    ~Control() {
        if (inotify_fd_ >= 0) {
            ::close(inotify_fd_);
        }
    }
    Control(const Control&) = delete;
    Control& operator=(const Control&) = delete;

    void run() {
        unsigned ended = 0;
        while (ended < core_.workers_) {
            pollfd fds[4] = {{signal_fd_, POLLIN, 0},
                             {core_.exit_fd_, POLLIN, 0},
                             {core_.admin_reload_fd_, POLLIN, 0},
                             {inotify_fd_, POLLIN, 0}};
            int timeout = -1;
            if (reload_due_ms_ != 0) {
                const std::uint64_t now = steady_ms();
                timeout = reload_due_ms_ > now ? static_cast<int>(reload_due_ms_ - now) : 0;
            }
            const int n = ::poll(fds, inotify_fd_ >= 0 ? 4 : 3, timeout);
            if (n < 0 && errno != EINTR) {
                log(LogLevel::Error, "control loop: poll: %s", std::strerror(errno));
                core_.stop_all();
                break;
            }
            if ((fds[1].revents & POLLIN) != 0) {
                std::uint64_t count = 0;
                if (::read(core_.exit_fd_, &count, sizeof count) == static_cast<ssize_t>(sizeof count)) {
                    ended += static_cast<unsigned>(count);
                }
            }
            if ((fds[0].revents & POLLIN) != 0) {
                on_signals();
            }
            if ((fds[2].revents & POLLIN) != 0) {
                // POST /reload, possibly several at once: one reload answers them all.
                auto waiting = core_.take_admin_reloads();
                if (!waiting.empty()) {
                    const Result<void, std::string> outcome = reload();
                    for (auto& done : waiting) {
                        done(outcome);
                    }
                }
            }
            if (inotify_fd_ >= 0 && (fds[3].revents & POLLIN) != 0) {
                on_file_events();
            }
            if (reload_due_ms_ != 0 && steady_ms() >= reload_due_ms_) {
                reload_due_ms_ = 0;
                if (files_changed()) {
                    log(LogLevel::Info, "a watched file changed: reloading");
                    (void)reload();
                }
            }
        }
    }

private:
    /// What identifies a file's content for the watch: where its path leads now and when that
    /// was last written.
    struct FileState {
        std::string path;
        dev_t dev = 0;
        ino_t ino = 0;
        std::int64_t mtime_ns = -1;
        off_t size = -1;
        bool operator==(const FileState&) const = default;
    };

    static FileState state_of(const std::string& path) {
        FileState f{.path = path};
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) {  // follows symlinks: a swapped link is a change
            f.dev = st.st_dev;
            f.ino = st.st_ino;
            f.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
            f.size = st.st_size;
        }
        return f;
    }

    void on_signals() {
        signalfd_siginfo si{};
        while (::read(signal_fd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
            switch (si.ssi_signo) {
                case SIGTERM:
                case SIGINT: {
                    const char* name = si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT";
                    // Counted, not read from the drain state: after an upgrade this process
                    // drains already, and the service manager's SIGTERM (sent to every process
                    // of the service) must not cut its requests short.
                    if (++stop_signals_ == 1) {
                        if (!upgraded_) {
                            notify(notifier_.stopping("draining"));
                        }
                        core_.drain();
                        // Logged once every reactor drains: whoever reads it sees the drain.
                        log(LogLevel::Info, "received %s: draining (up to %lld ms); again to stop at once", name,
                            static_cast<long long>(core_.options_.drain_timeout.count()));
                    } else {
                        log(LogLevel::Info, "received %s again: stopping now", name);
                        core_.stop_all();
                    }
                    break;
                }
                case SIGUSR2:
                    upgrade();
                    break;
                case SIGUSR1:
                    core_.reopen_logs();
                    break;
                case SIGHUP:
                    if (hooks_.reload) {
                        (void)reload();
                    } else {
                        log(LogLevel::Info, "received SIGHUP: nothing to reload");
                    }
                    break;
                default:
                    log(LogLevel::Info, "received signal %u: ignored", si.ssi_signo);
                    break;
            }
        }
    }

    Result<void, std::string> reload() {
        if (core_.draining_.load()) {
            return fail(std::string("the server is draining"));
        }
        notify(notifier_.reloading("reloading the configuration"));
        // What the files are before the hook reads them: a change made while it runs is then
        // seen as a change afterwards (one reload too many rather than one missed).
        std::vector<FileState> before;
        for (const FileState& f : files_) {
            before.push_back(state_of(f.path));
        }
        Result<void, std::string> outcome = hooks_.reload();
        rewatch(before);
        notify(notifier_.ready("serving"));
        return outcome;
    }

    void upgrade() {
        if (core_.draining_.load()) {
            return;
        }
        log(LogLevel::Info, "received SIGUSR2: starting %s on the listening sockets", core_.executable_.c_str());
        auto pid = core_.upgrade();
        if (!pid) {
            log(LogLevel::Error, "upgrade failed: %s; still serving", pid.error().c_str());
            return;
        }
        // The new process told the service manager it is the main one now: no STOPPING from here.
        log(LogLevel::Info, "upgrade: new process %d is serving; draining", static_cast<int>(*pid));
        upgraded_ = true;
        core_.drain();
    }

    void notify(const Result<void, std::string>& sent) {
        if (!sent && !notify_failed_) {
            notify_failed_ = true;  // once: a service manager that went away is not news each time
            log(LogLevel::Warn, "%s", sent.error().c_str());
        }
    }

    // Watches the directories of the hook's files (a file replaced by rename, or a symlink
    // swapped, changes its directory, not the file the old inode was).
    // `known`: states to use for files already watched (see reload()); others are read now.
    void rewatch(const std::vector<FileState>& known) {
        if (!hooks_.watched_files) {
            return;
        }
        if (inotify_fd_ >= 0) {
            ::close(inotify_fd_);
            inotify_fd_ = -1;
        }
        files_.clear();
        inotify_fd_ = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (inotify_fd_ < 0) {
            log(LogLevel::Warn, "inotify: %s; watched files are not reloaded", std::strerror(errno));
            return;
        }
        for (const std::string& path : hooks_.watched_files()) {
            const auto seen = std::find_if(known.begin(), known.end(), [&path](const FileState& f) { return f.path == path; });
            files_.push_back(seen != known.end() ? *seen : state_of(path));
            const auto slash = path.rfind('/');
            const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
            constexpr std::uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB;
            if (inotify_add_watch(inotify_fd_, dir.c_str(), kMask) < 0) {
                log(LogLevel::Warn, "cannot watch %s: %s", dir.c_str(), std::strerror(errno));
            }
        }
        if (files_changed()) {
            reload_due_ms_ = steady_ms() + kWatchSettleMs;  // changed while the watch was down
        }
    }

    void on_file_events() {
        alignas(inotify_event) char buf[4096];
        while (::read(inotify_fd_, buf, sizeof buf) > 0) {
        }
        // Writers touch files in several steps: one reload after things settle.
        reload_due_ms_ = steady_ms() + kWatchSettleMs;
    }

    bool files_changed() const {
        return std::any_of(files_.begin(), files_.end(), [](const FileState& f) { return !(state_of(f.path) == f); });
    }

    static constexpr std::uint64_t kWatchSettleMs = 200;

    ServerCore& core_;
    ServerHooks hooks_;
    int signal_fd_;
    server::Notifier notifier_;
    bool notify_failed_ = false;
    bool upgraded_ = false;
    int stop_signals_ = 0;
    int inotify_fd_ = -1;
    std::vector<FileState> files_;
    std::uint64_t reload_due_ms_ = 0;
};

int ServerCore::run_until_signal(ServerHooks hooks) {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2}) {
        sigaddset(&set, s);
    }
    // Blocked before any thread starts, so every reactor thread inherits the mask and the
    // signals are only ever read from the signalfd, on this (the control) thread.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        log(LogLevel::Error, "signalfd: %s", std::strerror(errno));
        return 1;
    }
    // The watch starts before the listeners announce themselves: a file changed from then on is
    // seen.
    {
        std::lock_guard lock(admin_reload_mutex_);
        reload_enabled_ = static_cast<bool>(hooks.reload);
    }
    Control control(*this, std::move(hooks), sfd);
    if (auto r = start(false); !r) {
        log(LogLevel::Error, "%s", r.error().c_str());
        ::close(sfd);
        return 1;
    }
    // READY (with MAINPID) goes to the service manager before the upgrading parent hears it and
    // exits: systemd must know the new main process before the old one is gone.
    control.serving();
    tell_upgrading_parent();
    control.run();
    {
        std::lock_guard lock(admin_reload_mutex_);
        reload_enabled_ = false;
    }
    take_admin_reloads();  // their reactors are gone, and the exchanges with them
    join();
    ::close(sfd);
    log(LogLevel::Info, "stopped");
    return 0;
}

}  // namespace blitz::detail

namespace blitz {

Server::Server(ServerOptions options) : core_(std::make_unique<detail::ServerCore>(std::move(options))) {}

Server::~Server() = default;

Result<void, std::string> Server::listen(ListenerOptions options, const Router& router) {
    return core_->listen(std::move(options), router);
}

std::uint16_t Server::bound_port(std::size_t index) const { return core_->bound_port(index); }

std::string Server::url(std::size_t index) const { return core_->url(index); }

Result<void, std::string> Server::start() { return core_->start(true); }

int Server::run_until_signal(ServerHooks hooks) { return core_->run_until_signal(std::move(hooks)); }

Result<void, std::string> Server::reload(std::vector<ListenerOptions> listeners, const Router& router) {
    return core_->reload(std::move(listeners), router);
}

void Server::drain() noexcept { core_->drain(); }

void Server::set_config_document(std::string json) { core_->set_config_document(std::move(json)); }

Result<pid_t, std::string> Server::upgrade() { return core_->upgrade(); }

void Server::stop() noexcept { core_->stop_all(); }

void Server::wait() { core_->join(); }

Backend Server::backend() const noexcept { return core_->backend(); }

unsigned Server::workers() const noexcept { return core_->workers(); }

}  // namespace blitz

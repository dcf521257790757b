// blitzd: the reference server. Everything it does goes through the public API, so whatever
// blitzd can do, an embedder can do.
#include <cstdio>
#include <cstring>
#include <string>

#include <blitz/blitz.hpp>

namespace {

constexpr const char* kUsage =
    "usage: blitzd [--config FILE] [--check-config]\n"
    "       blitzd --version | --help\n"
    "\n"
    "  --config FILE    JSON configuration (default: /etc/blitz/blitzd.json)\n"
    "  --check-config   validate the configuration, print \"ok\" or the first error, and exit\n"
    "  --version        print the version and exit\n"
    "  --help           print this help and exit\n"
    "\n"
    "Signals: SIGTERM or SIGINT drain and stop (a second one stops at once), SIGHUP reloads\n"
    "the configuration, SIGUSR2 starts a new binary on the same sockets (upgrade), SIGUSR1\n"
    "reopens the access log files (log rotation).\n"
    "Configuration reference: docs/config.md\n";

// Settings the running engine cannot change: a reload logs them and keeps the running ones.
void warn_restart_only(const blitz::ServerOptions& running, const blitz::ServerOptions& next) {
    const auto warn = [](const char* key, long long now) {
        blitz::log(blitz::LogLevel::Warn, "reload: \"%s\" changed; it needs a restart, keeping %lld", key, now);
    };
    if (next.workers != running.workers) {
        warn("workers", running.workers);
    }
    if (next.pin_cpus != running.pin_cpus) {
        warn("pin_cpus", running.pin_cpus ? 1 : 0);
    }
    if (next.backend != running.backend) {
        warn("backend", static_cast<long long>(running.backend));
    }
    if (next.recv_buffer_bytes != running.recv_buffer_bytes) {
        warn("buffers.recv_buffer_bytes", running.recv_buffer_bytes);
    }
    if (next.max_recv_buffers != running.max_recv_buffers) {
        warn("buffers.max_recv_buffers", running.max_recv_buffers);
    }
    const auto admin_of = [](const blitz::ServerOptions& o) {
        return o.admin ? o.admin->address + " " + o.admin->token : std::string();
    };
    if (admin_of(next) != admin_of(running)) {
        blitz::log(blitz::LogLevel::Warn, "reload: \"admin\" changed; it needs a restart, keeping the running one");
    }
    if (next.metrics != running.metrics) {
        blitz::log(blitz::LogLevel::Warn, "reload: \"metrics\" changed; it needs a restart, keeping the running one");
    }
    if (next.drain_timeout != running.drain_timeout) {
        warn("shutdown.drain_timeout_ms", static_cast<long long>(running.drain_timeout.count()));
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path = "/etc/blitz/blitzd.json";
    bool check_only = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (arg == "--version") {
            std::printf("blitzd %s\n", blitz::version());
            return 0;
        }
        if (arg == "--check-config") {
            check_only = true;
        } else if (arg == "--config" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (arg.rfind("--config=", 0) == 0) {
            config_path = arg.substr(9);
        } else {
            std::fprintf(stderr, "blitzd: unknown argument '%s'\n\n%s", arg.c_str(), kUsage);
            return 2;
        }
    }

    auto config = blitz::load_config(config_path);
    if (!config) {
        std::fprintf(stderr, "%s\n", config.error().to_string().c_str());
        return 1;
    }
    if (check_only) {
        std::puts("ok");
        return 0;
    }
    blitz::set_log_level(config->log_level);

    blitz::Server server(config->server);
    for (auto& listener : config->listeners) {
        if (auto r = server.listen(listener, config->router); !r) {
            blitz::log(blitz::LogLevel::Error, "%s", r.error().c_str());
            return 1;
        }
    }
    server.set_config_document(config->redacted);
    blitz::Config running = std::move(*config);
    blitz::ServerHooks hooks;
    hooks.reload = [&]() -> blitz::Result<void, std::string> {
        auto next = blitz::load_config(config_path, &running);
        if (!next) {
            const std::string why = next.error().to_string();
            blitz::log(blitz::LogLevel::Error, "reload failed: %s; still serving the previous configuration",
                       why.c_str());
            return blitz::fail(why);
        }
        warn_restart_only(running.server, next->server);
        if (auto r = server.reload(next->listeners, next->router); !r) {
            blitz::log(blitz::LogLevel::Error, "reload failed: %s; still serving the previous configuration",
                       r.error().c_str());
            return r;
        }
        blitz::set_log_level(next->log_level);
        server.set_config_document(next->redacted);
        // The engine keeps its own settings (workers, buffers) and the drain time it started with.
        next->server = running.server;
        running = std::move(*next);
        blitz::log(blitz::LogLevel::Info, "configuration reloaded from %s", config_path.c_str());
        return {};
    };
    hooks.watched_files = [&] { return running.watch ? running.files : std::vector<std::string>{}; };
    return server.run_until_signal(std::move(hooks));
}

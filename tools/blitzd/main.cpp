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
    "Signals: SIGTERM or SIGINT stop the server cleanly.\n"
    "Configuration reference: docs/config.md\n";

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
    return server.run_until_signal();
}

// blitzd's command line, its start-up log and its shutdown on signals.

#include <cerrno>
#include <csignal>
#include <optional>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

std::string lower(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return s;
}

/// A loopback port that was free a moment ago (for tests that must name a port up front).
std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), len);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// Line 6 holds the bad value; `42` starts at column 39.
constexpr const char* kBadPathConfig = R"({
  "workers": 1,
  "listeners": [ { "name": "main", "address": "127.0.0.1:PORT" } ],
  "routes": [
    { "name": "a", "match": { "path": "/a" }, "respond": { "status": 200 } },
    { "name": "b", "match": { "path": 42 }, "respond": { "status": 200 } }
  ]
}
)";

std::string bad_path_config(std::uint16_t port) {
    std::string s = kBadPathConfig;
    s.replace(s.find("PORT"), 4, std::to_string(port));
    return s;
}

}  // namespace

TEST_CASE("blitzd --version prints its name and version and exits 0", "[cli]") {
    CommandResult r = run_command({blitzd_path(), "--version"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(0));
    CHECK(r.out.rfind("blitzd 0.", 0) == 0);
}

TEST_CASE("blitzd --help shows the options and exits 0", "[cli]") {
    CommandResult r = run_command({blitzd_path(), "--help"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(0));
    CHECK((r.out + r.err).find("--config") != std::string::npos);
    CHECK((r.out + r.err).find("--check-config") != std::string::npos);
}

TEST_CASE("blitzd rejects an unknown option with status 2 and usage on stderr", "[cli]") {
    CommandResult r = run_command({blitzd_path(), "--no-such-option"});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(2));
    CHECK(lower(r.err).find("usage") != std::string::npos);
    CHECK(r.err.find("--config") != std::string::npos);
}

TEST_CASE("blitzd --check-config prints ok for a valid config and exits 0", "[cli]") {
    TempDir dir;
    std::string path = dir.write("good.json", ConfigSpec{}.render());
    CommandResult r = run_command({blitzd_path(), "--check-config", "--config", path});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(0));
    CHECK(r.out == "ok\n");
}

TEST_CASE("blitzd --check-config names file, line, column and JSON path of an error", "[cli]") {
    TempDir dir;
    std::string path = dir.write("bad.json", bad_path_config(8080));
    CommandResult r = run_command({blitzd_path(), "--check-config", "--config", path});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(1));
    CHECK(r.out.empty());
    CHECK(r.err.find(path + ":6:39: $.routes[1].match.path: ") != std::string::npos);
}

TEST_CASE("blitzd --check-config reports JSON syntax errors with their position", "[cli]") {
    TempDir dir;
    std::string path = dir.write("syntax.json", "{\n  \"workers\": 1,\n  \"routes\": [ }\n");
    CommandResult r = run_command({blitzd_path(), "--check-config", "--config", path});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(1));
    CHECK(r.err.find(path + ":3:") != std::string::npos);
}

TEST_CASE("blitzd --check-config fails for a missing file", "[cli]") {
    TempDir dir;
    std::string path = dir.path() + "/missing.json";
    CommandResult r = run_command({blitzd_path(), "--check-config", "--config", path});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(1));
    CHECK(r.err.find("missing.json") != std::string::npos);
}

TEST_CASE("blitzd with a bad config exits 1 with the error and listens on nothing", "[cli]") {
    TempDir dir;
    std::uint16_t port = free_port();
    std::string path = dir.write("bad.json", with_backend(bad_path_config(port)));
    CommandResult r = run_command({blitzd_path(), "--config", path});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(1));
    CHECK(r.err.find(path + ":6:39: $.routes[1].match.path: ") != std::string::npos);
    CHECK(r.err.find("listening on") == std::string::npos);
    Client c("127.0.0.1", port);
    CHECK(c.connect_error() == ECONNREFUSED);
}

TEST_CASE("blitzd with an unusable listener address exits 1", "[cli]") {
    ConfigSpec spec;
    spec.listeners = R"([{"name": "main", "address": "192.0.2.1:0"}])";
    TempDir dir;
    std::string path = dir.write("unbindable.json", spec.render());
    CommandResult r = run_command({blitzd_path(), "--config", path});
    INFO("stdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status.exited_with(1));
    CHECK(r.err.find("192.0.2.1") != std::string::npos);
}

TEST_CASE("blitzd logs every listener with its real port and the backend it runs", "[cli]") {
    ConfigSpec spec;
    spec.listeners = R"([{"name": "one", "address": "127.0.0.1:0"},
                         {"name": "two", "address": "127.0.0.1:0"}])";
    Blitzd d(spec, 2);
    std::string log = d.process().err();
    INFO("stderr: " << log);
    REQUIRE(parse_listening(log).size() == 2);
    CHECK(d.port(0) != 0);
    CHECK(d.port(1) != 0);
    CHECK(d.port(0) != d.port(1));
    if (test_backend() == "auto") {
        CHECK((log.find("backend io_uring") != std::string::npos ||
               log.find("backend epoll") != std::string::npos));
    } else {
        CHECK(log.find("backend " + test_backend()) != std::string::npos);
    }
    for (std::size_t i = 0; i < 2; ++i) {
        CommandResult r = curl({"-i", d.url("/hello", i)});
        INFO("listener " << i << " curl: " << r.out << r.err);
        auto responses = parse_all_responses(r.out);
        REQUIRE(responses.size() == 1);
        CHECK(responses[0].status == 200);
    }
}

TEST_CASE("blitzd exits 0 promptly on SIGTERM and on SIGINT, open connections or not", "[cli]") {
    int sig = GENERATE(SIGTERM, SIGINT);
    bool with_connection = GENERATE(false, true);
    Blitzd d(ConfigSpec{});
    std::optional<Client> idle;
    if (with_connection) {
        idle.emplace(d.connect());
        REQUIRE(idle->send(request("GET", "/hello")));
        REQUIRE(idle->read_response());
    }
    auto start = Clock::now();
    ExitStatus st = d.stop(sig);
    auto took = std::chrono::duration_cast<Millis>(Clock::now() - start);
    INFO("signal " << sig << ", stderr: " << d.process().err());
    CHECK(st.describe() == "exited with status 0");
    CHECK(took < Millis(1500));
    if (idle) {
        CHECK(idle->wait_closed(Millis(1000)));
    }
}

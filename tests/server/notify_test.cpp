#include "server/notify.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

namespace {

using blitz::server::Notifier;
using Catch::Matchers::ContainsSubstring;
using namespace std::string_view_literals;

// A datagram socket standing in for the service manager's notification socket.
class Receiver {
public:
    // `name` in NOTIFY_SOCKET syntax: "@abstract" or an absolute path.
    explicit Receiver(std::string name) : name_(std::move(name)) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd_ >= 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        REQUIRE(name_.size() < sizeof sun.sun_path);
        std::memcpy(sun.sun_path, name_.data(), name_.size());
        socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size());
        if (name_.front() == '@') {
            sun.sun_path[0] = '\0';
        } else {
            ::unlink(name_.c_str());
            ++len;
        }
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&sun), len) == 0);
    }
    ~Receiver() {
        ::close(fd_);
        if (name_.front() == '/') {
            ::unlink(name_.c_str());
        }
    }
    Receiver(const Receiver&) = delete;
    Receiver& operator=(const Receiver&) = delete;

    const std::string& name() const { return name_; }

    // The next datagram; fails the test after 5 s without one.
    std::string receive() {
        pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
        REQUIRE(::poll(&p, 1, 5000) == 1);
        char buf[8192];
        const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
        REQUIRE(n >= 0);
        return std::string(buf, static_cast<std::size_t>(n));
    }

    bool has_datagram() {
        pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
        return ::poll(&p, 1, 0) == 1;
    }

private:
    std::string name_;
    int fd_ = -1;
};

std::string unique_abstract() {
    static int counter = 0;
    return "@blitz-notify-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

// A socket path in a fresh directory under TMPDIR (or /tmp).
class TempDir {
public:
    TempDir() {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/blitz-notify-XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
    }
    ~TempDir() { ::rmdir(path_.c_str()); }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const char* name) const { return path_ + "/" + name; }

private:
    std::string path_;
};

std::uint64_t monotonic_usec() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<std::uint64_t>(now.tv_sec) * 1000000U +
           static_cast<std::uint64_t>(now.tv_nsec) / 1000U;
}

// The value of `KEY=` in a notification.
std::string value_of(const std::string& message, const std::string& key) {
    const std::string text = "\n" + message;
    const auto at = text.find("\n" + key + "=");
    REQUIRE(at != std::string::npos);
    const auto start = at + key.size() + 2;
    return text.substr(start, text.find('\n', start) - start);
}

TEST_CASE("server::Notifier sends READY, RELOADING, STOPPING and MAINPID to an abstract socket",
          "[notify]") {
    Receiver manager(unique_abstract());
    auto n = Notifier::for_address(manager.name());
    REQUIRE(n);
    CHECK(n->enabled());
    CHECK(n->describe() == manager.name());
    const std::string self = std::to_string(::getpid());

    REQUIRE(n->ready("serving 2 listeners"));
    CHECK(manager.receive() == "READY=1\nMAINPID=" + self + "\nSTATUS=serving 2 listeners");

    const std::uint64_t before = monotonic_usec();
    REQUIRE(n->reloading("reloading /etc/blitz/blitzd.json"));
    const std::uint64_t after = monotonic_usec();
    const std::string reload = manager.receive();
    CHECK(reload.starts_with("RELOADING=1\nMONOTONIC_USEC="));
    const std::uint64_t stamp = std::stoull(value_of(reload, "MONOTONIC_USEC"));
    CHECK(stamp >= before);
    CHECK(stamp <= after);
    CHECK(value_of(reload, "STATUS") == "reloading /etc/blitz/blitzd.json");

    REQUIRE(n->stopping("draining: 3 connections"));
    CHECK(manager.receive() == "STOPPING=1\nSTATUS=draining: 3 connections");

    REQUIRE(n->main_pid(4242, "upgraded"));
    CHECK(manager.receive() == "MAINPID=4242\nSTATUS=upgraded");

    REQUIRE(n->status("idle"));
    CHECK(manager.receive() == "STATUS=idle");

    REQUIRE(n->send("WATCHDOG=1"));
    CHECK(manager.receive() == "WATCHDOG=1");
}

TEST_CASE("server::Notifier sends to a socket path", "[notify]") {
    TempDir dir;
    Receiver manager(dir.file("notify"));
    auto n = Notifier::for_address(manager.name());
    REQUIRE(n);
    CHECK(n->describe() == manager.name());
    REQUIRE(n->ready("up"));
    CHECK(value_of(manager.receive(), "READY") == "1");
}

TEST_CASE("server::Notifier::from_environment reads NOTIFY_SOCKET and leaves it set", "[notify]") {
    Receiver manager(unique_abstract());
    ::setenv("NOTIFY_SOCKET", manager.name().c_str(), 1);
    auto n = Notifier::from_environment();
    REQUIRE(n);
    REQUIRE(n->stopping("bye"));
    CHECK(manager.receive() == "STOPPING=1\nSTATUS=bye");
    // A process started by a binary upgrade inherits the variable and notifies on its own.
    const char* kept = std::getenv("NOTIFY_SOCKET");
    REQUIRE(kept != nullptr);
    CHECK(std::string(kept) == manager.name());
    ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("server::Notifier without NOTIFY_SOCKET is disabled and sends nothing", "[notify]") {
    ::unsetenv("NOTIFY_SOCKET");
    auto unset = Notifier::from_environment();
    REQUIRE(unset);
    CHECK_FALSE(unset->enabled());
    CHECK(unset->ready("x"));
    CHECK(unset->send("READY=1"));
    CHECK(unset->describe() == "(none)");

    ::setenv("NOTIFY_SOCKET", "", 1);
    auto empty = Notifier::from_environment();
    REQUIRE(empty);
    CHECK_FALSE(empty->enabled());
    ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("server::Notifier rejects addresses sd_notify cannot reach", "[notify]") {
    for (std::string_view bad :
         {"relative/notify"sv, "@"sv, "/"sv, "vsock:2:1234"sv, "/run/a\0b"sv}) {
        CAPTURE(bad);
        auto r = Notifier::for_address(bad);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), ContainsSubstring("NOTIFY_SOCKET"));
    }
    const std::string long_path = "/" + std::string(sizeof(sockaddr_un{}.sun_path), 'x');
    CHECK_FALSE(Notifier::for_address(long_path));
    // The abstract namespace has one byte more: no terminator.
    const std::string longest_abstract = "@" + std::string(sizeof(sockaddr_un{}.sun_path) - 1, 'x');
    CHECK(Notifier::for_address(longest_abstract));
    CHECK_FALSE(Notifier::for_address(longest_abstract + "x"));
}

TEST_CASE("server::Notifier keeps STATUS on one line of UTF-8 and bounded", "[notify]") {
    Receiver manager(unique_abstract());
    auto n = Notifier::for_address(manager.name());
    REQUIRE(n);
    REQUIRE(n->status("reload failed: a.json:3:7: $.x: bad\nREADY=1\tnext"));
    CHECK(manager.receive() == "STATUS=reload failed: a.json:3:7: $.x: bad READY=1 next");

    // 1,500 two-byte characters: 3,000 bytes, cut at a character boundary.
    std::string long_status;
    for (int i = 0; i < 1500; ++i) {
        long_status += "\xc3\xa9";
    }
    REQUIRE(n->status(long_status));
    const std::string got = manager.receive();
    const std::string value = got.substr(std::strlen("STATUS="));
    CHECK(value.size() < long_status.size());
    CHECK(value.size() % 2 == 0);
    CHECK(long_status.starts_with(value));
}

TEST_CASE("server::Notifier reports a manager that is gone", "[notify]") {
    TempDir dir;
    std::string path;
    {
        Receiver manager(dir.file("gone"));
        path = manager.name();
    }
    auto n = Notifier::for_address(path);
    REQUIRE(n);
    auto r = n->ready("up");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), ContainsSubstring(path));

    auto abstract = Notifier::for_address(unique_abstract());
    REQUIRE(abstract);
    CHECK_FALSE(abstract->ready("up"));
}

TEST_CASE("server::Notifier fails instead of blocking when the manager's queue is full",
          "[notify]") {
    Receiver manager(unique_abstract());  // never read until the end
    auto n = Notifier::for_address(manager.name());
    REQUIRE(n);
    std::string refused;
    for (int i = 0; i < 100000 && refused.empty(); ++i) {
        if (auto r = n->status("flood"); !r) {
            refused = r.error();
        }
    }
    CHECK_THAT(refused, ContainsSubstring(std::strerror(EAGAIN)));
    CHECK(manager.has_datagram());
}

}  // namespace

#include "net/inherited.hpp"

#include <array>
#include <cerrno>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

namespace {

using blitz::net::ChildExec;
using blitz::net::InheritedSocket;
using blitz::net::InheritedSockets;
using blitz::net::ListenEnvironment;
using blitz::net::PassedFd;
using blitz::net::PassedSocket;
using blitz::net::SocketAddress;
using Catch::Matchers::ContainsSubstring;

// Where adopt() tests put their descriptors: far above anything the test process holds.
constexpr int kBase = 200;

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) >= 0 || errno != EBADF; }

// Moves `fd` to `target` (which must be free) and returns target.
int place(int fd, int target) {
    REQUIRE(fd >= 0);
    if (fd == target) {
        return fd;
    }
    REQUIRE_FALSE(is_open(target));
    REQUIRE(::dup2(fd, target) == target);
    ::close(fd);
    return target;
}

void close_all(std::initializer_list<int> fds) {
    for (int fd : fds) {
        ::close(fd);
    }
}

SocketAddress parse(std::string_view text) {
    SocketAddress a;
    REQUIRE(SocketAddress::parse(text, a));
    return a;
}

SocketAddress bound(int fd) {
    SocketAddress a;
    a.length = sizeof a.storage;
    REQUIRE(::getsockname(fd, a.get(), &a.length) == 0);
    return a;
}

// A plain blocking TCP socket without FD_CLOEXEC (what a service manager hands over), bound to
// `address` (port 0 picks one), listening unless `listen` is false.
int tcp_socket(std::string_view address, bool listen = true, bool v6only = true) {
    SocketAddress a = parse(address);
    int fd = ::socket(a.family(), SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    int one = 1;
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0);
    if (a.family() == AF_INET6) {
        int v6 = v6only ? 1 : 0;
        REQUIRE(::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6, sizeof v6) == 0);
    }
    REQUIRE(::bind(fd, a.get(), a.length) == 0);
    if (listen) {
        REQUIRE(::listen(fd, 16) == 0);
    }
    return fd;
}

// adopt() with LISTEN_PID = our pid (ListenEnvironment holds views: keep the string alive).
auto adopt(std::string_view fds, std::optional<std::string_view> names) {
    const std::string pid = std::to_string(::getpid());
    return InheritedSockets::adopt(
        ListenEnvironment{.listen_fds = fds, .listen_pid = pid, .listen_fdnames = names},
        ::getpid(), kBase);
}

TEST_CASE("net::InheritedSockets adopts listening TCP sockets with names and addresses", "[net]") {
    const int a = place(tcp_socket("127.0.0.1:0"), kBase);
    const SocketAddress web = bound(a);
    // A second socket in the same SO_REUSEPORT group: one per reactor, so a name repeats.
    const int b = place(tcp_socket(web.to_string()), kBase + 1);
    const int c = place(tcp_socket("[::1]:0"), kBase + 2);
    const SocketAddress admin = bound(c);
    {
        auto inherited = adopt("3", "web:web:admin");
        REQUIRE(inherited);
        REQUIRE(inherited->remaining().size() == 3);
        for (const InheritedSocket& s : inherited->remaining()) {
            CHECK((::fcntl(s.fd, F_GETFD) & FD_CLOEXEC) != 0);
            CHECK((::fcntl(s.fd, F_GETFL) & O_NONBLOCK) != 0);
        }
        CHECK(inherited->remaining()[2].name == "admin");
        CHECK(inherited->remaining()[2].address.to_string() == admin.to_string());

        SocketAddress other_family = parse("[::1]:0");
        other_family.set_port(web.port());
        CHECK(inherited->take(other_family).empty());

        auto taken = inherited->take(web);
        REQUIRE(taken.size() == 2);
        CHECK(taken[0].fd == a);
        CHECK(taken[1].fd == b);
        CHECK(taken[0].name == "web");
        CHECK(taken[1].address.to_string() == web.to_string());
        CHECK(inherited->take(web).empty());
        REQUIRE(inherited->remaining().size() == 1);

        auto admin_taken = inherited->take(admin);
        REQUIRE(admin_taken.size() == 1);
        CHECK(admin_taken[0].fd == c);
        CHECK(inherited->remaining().empty());
    }
    // Taken sockets belong to the caller: the set's destructor leaves them open.
    CHECK(is_open(a));
    CHECK(is_open(c));
    close_all({a, b, c});
}

TEST_CASE("net::InheritedSockets::take tells 0.0.0.0 from [::] and [::1] on one port", "[net]") {
    const int v6 = place(tcp_socket("[::]:0"), kBase);
    const std::uint16_t port = bound(v6).port();
    SocketAddress v4_any = parse("0.0.0.0:0");
    v4_any.set_port(port);
    const int v4 = place(tcp_socket(v4_any.to_string()), kBase + 1);

    auto inherited = adopt("2", "any6:any4");
    REQUIRE(inherited);
    SocketAddress v6_any = parse("[::]:0");
    v6_any.set_port(port);
    SocketAddress v6_loopback = parse("[::1]:0");
    v6_loopback.set_port(port);

    CHECK(inherited->take(v6_loopback).empty());
    auto four = inherited->take(v4_any);
    REQUIRE(four.size() == 1);
    CHECK(four[0].fd == v4);
    auto six = inherited->take(v6_any);
    REQUIRE(six.size() == 1);
    CHECK(six[0].fd == v6);
    close_all({v4, v6});
}

TEST_CASE(
    "net::InheritedSockets names sockets \"unknown\" without LISTEN_FDNAMES and accepts "
    "an absent LISTEN_PID",
    "[net]") {
    const int fd = place(tcp_socket("127.0.0.1:0"), kBase);
    auto inherited =
        InheritedSockets::adopt(ListenEnvironment{.listen_fds = "1"}, ::getpid(), kBase);
    REQUIRE(inherited);
    REQUIRE(inherited->remaining().size() == 1);
    CHECK(inherited->remaining()[0].name == "unknown");
    CHECK(inherited->take(bound(fd)).size() == 1);
    ::close(fd);
}

TEST_CASE("net::InheritedSockets leaves descriptors meant for another process alone", "[net]") {
    const int fd = place(tcp_socket("127.0.0.1:0", /*listen=*/false), kBase);
    {
        const std::string other = std::to_string(::getpid() + 1);
        auto inherited = InheritedSockets::adopt(
            ListenEnvironment{.listen_fds = "1", .listen_pid = other, .listen_fdnames = "web"},
            ::getpid(), kBase);
        REQUIRE(inherited);  // not ours, so not validated (the socket is not even listening)
        CHECK(inherited->remaining().empty());
    }
    CHECK(is_open(fd));
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) == 0);
    ::close(fd);
}

TEST_CASE("net::InheritedSockets without LISTEN_FDS or with 0 is empty", "[net]") {
    auto none = InheritedSockets::adopt(ListenEnvironment{}, ::getpid(), kBase);
    REQUIRE(none);
    CHECK(none->remaining().empty());
    auto zero = adopt("0", std::nullopt);
    REQUIRE(zero);
    CHECK(zero->remaining().empty());
    auto zero_named = adopt("0", "");
    REQUIRE(zero_named);
    CHECK(zero_named->remaining().empty());
}

TEST_CASE("net::InheritedSockets rejects malformed LISTEN_FDS and LISTEN_PID", "[net]") {
    for (std::string_view bad :
         {"", "-1", "+1", " 1", "1 ", "1x", "0x2", "65537", "99999999999999999999"}) {
        CAPTURE(bad);
        auto r = adopt(bad, std::nullopt);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), ContainsSubstring("LISTEN_FDS="));
    }
    for (std::string_view bad : {"", "0", "-5", "abc", "12a", "99999999999999999999"}) {
        CAPTURE(bad);
        auto r = InheritedSockets::adopt(ListenEnvironment{.listen_fds = "1", .listen_pid = bad},
                                         ::getpid(), kBase);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), ContainsSubstring("LISTEN_PID="));
    }
}

TEST_CASE("net::InheritedSockets rejects LISTEN_FDNAMES with a different count", "[net]") {
    const int a = place(tcp_socket("127.0.0.1:0"), kBase);
    const int b = place(tcp_socket("127.0.0.1:0"), kBase + 1);
    for (std::string_view names : {"", "::", "web", "web:admin:extra"}) {
        CAPTURE(names);
        auto r = adopt("2", names);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(),
                   ContainsSubstring("LISTEN_FDNAMES=") && ContainsSubstring("LISTEN_FDS=2"));
    }
    // Empty names are names: "web:" is two of them, as ":" would be.
    auto ok = adopt("2", "web:");
    REQUIRE(ok);
    CHECK(ok->remaining()[1].name.empty());
    (void)ok->take(bound(a));
    (void)ok->take(bound(b));
    close_all({a, b});
}

TEST_CASE(
    "net::InheritedSockets rejects a descriptor that is not a listening TCP socket, naming "
    "it",
    "[net]") {
    const int good = place(tcp_socket("127.0.0.1:0"), kBase);
    auto second_fails = [&](std::string_view expected) {
        auto r = adopt("2", "web:bad");
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), ContainsSubstring("inherited fd 201 (\"bad\")") &&
                                  ContainsSubstring(std::string(expected)));
        // The caller exits on this error; nothing was closed behind its back.
        CHECK(is_open(good));
    };
    SECTION("a TCP socket that is not listening") {
        const int fd = place(tcp_socket("127.0.0.1:0", /*listen=*/false), kBase + 1);
        second_fails("not listening");
        ::close(fd);
    }
    SECTION("a UDP socket") {
        const int fd = place(::socket(AF_INET, SOCK_DGRAM, 0), kBase + 1);
        second_fails("SOCK_DGRAM");
        ::close(fd);
    }
    SECTION("a listening AF_UNIX stream socket") {
        const int raw = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        // Linux autobind: an abstract address of the kernel's choosing.
        REQUIRE(::bind(raw, reinterpret_cast<sockaddr*>(&sun), sizeof(sa_family_t)) == 0);
        REQUIRE(::listen(raw, 4) == 0);
        const int fd = place(raw, kBase + 1);
        second_fails("AF_UNIX");
        ::close(fd);
    }
    SECTION("a pipe") {
        int p[2];
        REQUIRE(::pipe(p) == 0);
        const int fd = place(p[0], kBase + 1);
        second_fails("not a socket");
        close_all({fd, p[1]});
    }
    SECTION("a closed descriptor") {
        REQUIRE_FALSE(is_open(kBase + 1));
        second_fails("not an open descriptor");
    }
    ::close(good);
}

TEST_CASE("net::InheritedSockets::close_leftovers closes and describes what nobody took", "[net]") {
    const int a = place(tcp_socket("127.0.0.1:0"), kBase);
    const int b = place(tcp_socket("127.0.0.1:0"), kBase + 1);
    const SocketAddress b_addr = bound(b);
    auto inherited = adopt("2", "web:admin");
    REQUIRE(inherited);
    REQUIRE(inherited->take(bound(a)).size() == 1);
    const auto left = inherited->close_leftovers();
    REQUIRE(left.size() == 1);
    CHECK(left[0] == "\"admin\" " + b_addr.to_string() + " (fd 201)");
    CHECK_FALSE(is_open(b));
    CHECK(is_open(a));
    CHECK(inherited->remaining().empty());
    CHECK(inherited->close_leftovers().empty());
    ::close(a);
}

TEST_CASE("net::InheritedSockets closes untaken sockets when destroyed", "[net]") {
    const int a = place(tcp_socket("127.0.0.1:0"), kBase);
    {
        auto inherited = adopt("1", "web");
        REQUIRE(inherited);
        InheritedSockets moved = std::move(*inherited);
        CHECK(moved.remaining().size() == 1);
    }
    CHECK_FALSE(is_open(a));
}

TEST_CASE("net::InheritedSockets::take_from_environment unsets the variables whatever they hold",
          "[net]") {
    SECTION("descriptors of another process") {
        const std::string other = std::to_string(::getpid() + 1);
        ::setenv("LISTEN_FDS", "2", 1);
        ::setenv("LISTEN_PID", other.c_str(), 1);
        ::setenv("LISTEN_FDNAMES", "a:b", 1);
        auto r = InheritedSockets::take_from_environment();
        REQUIRE(r);
        CHECK(r->remaining().empty());
    }
    SECTION("a malformed count") {
        ::setenv("LISTEN_FDS", "two", 1);
        ::unsetenv("LISTEN_PID");
        ::setenv("LISTEN_FDNAMES", "a:b", 1);
        auto r = InheritedSockets::take_from_environment();
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), ContainsSubstring("LISTEN_FDS=\"two\""));
    }
    CHECK(std::getenv("LISTEN_FDS") == nullptr);
    CHECK(std::getenv("LISTEN_PID") == nullptr);
    CHECK(std::getenv("LISTEN_FDNAMES") == nullptr);
}

TEST_CASE("net::InheritedSockets::take_from_environment adopts a socket at fd 3", "[net]") {
    if (is_open(3)) {
        SKIP("fd 3 is in use in this test process");
    }
    const int fd = place(tcp_socket("127.0.0.1:0"), 3);
    const std::string pid = std::to_string(::getpid());
    ::setenv("LISTEN_FDS", "1", 1);
    ::setenv("LISTEN_PID", pid.c_str(), 1);
    ::setenv("LISTEN_FDNAMES", "web", 1);
    auto r = InheritedSockets::take_from_environment();
    REQUIRE(r);
    auto taken = r->take(bound(fd));
    REQUIRE(taken.size() == 1);
    CHECK(taken[0].fd == 3);
    CHECK(taken[0].name == "web");
    CHECK(std::getenv("LISTEN_FDS") == nullptr);
    ::close(fd);
}

// --- ChildExec -------------------------------------------------------------------------------

struct ChildOutput {
    int status = -1;
    std::string out;
    std::string err;
};

// Reads a pipe to EOF, giving up after 10 s (a hung child fails the test, never the runner).
std::string drain(int fd) {
    std::string text;
    char buf[4096];
    while (true) {
        pollfd p{.fd = fd, .events = POLLIN, .revents = 0};
        if (::poll(&p, 1, 10000) != 1) {
            FAIL("the child produced no EOF within 10 s");
        }
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            return text;
        }
        text.append(buf, static_cast<std::size_t>(n));
    }
}

// Forks, points the child's stdout/stderr at pipes, and calls exec_in_child().
ChildOutput run(ChildExec& exec, pid_t& child) {
    int out[2];
    int err[2];
    REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
    child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::dup2(out[1], STDOUT_FILENO);
        ::dup2(err[1], STDERR_FILENO);
        exec.exec_in_child();
    }
    close_all({out[1], err[1]});
    ChildOutput result;
    result.out = drain(out[0]);
    result.err = drain(err[0]);
    close_all({out[0], err[0]});
    REQUIRE(::waitpid(child, &result.status, 0) == child);
    return result;
}

std::string inode_link(int fd, const char* kind) {
    struct stat st {};
    REQUIRE(::fstat(fd, &st) == 0);
    return std::string(kind) + ":[" + std::to_string(st.st_ino) + "]";
}

// The word after `tag` ("pid=", "SigBlk:\t") in the child's output.
std::string field(const std::string& text, std::string_view tag) {
    auto at = text.find(tag);
    REQUIRE(at != std::string::npos);
    at += tag.size();
    return text.substr(at, text.find_first_of(" \n", at) - at);
}

// The descriptor numbers `ls /proc/$$/fd` printed after "open:".
std::set<int> open_in_child(const std::string& out) {
    std::set<int> fds;
    const auto at = out.find("open:\n");
    REQUIRE(at != std::string::npos);
    std::size_t pos = at + 6;
    while (pos < out.size()) {
        const auto eol = out.find('\n', pos);
        fds.insert(std::stoi(out.substr(pos, eol - pos)));
        pos = eol == std::string::npos ? out.size() : eol + 1;
    }
    return fds;
}

TEST_CASE("net::ChildExec passes sockets at fd 3.. with the child's own LISTEN_PID", "[net]") {
    if (is_open(3) || is_open(4)) {
        SKIP("fd 3 or 4 is in use in this test process");
    }
    // The sockets sit exactly where the other one must go (3 -> 4, 4 -> 3), the case a naive
    // dup2 loop gets wrong.
    const int web = place(tcp_socket("127.0.0.1:0"), 4);
    const int admin = place(tcp_socket("127.0.0.1:0"), 3);
    int ready[2];
    REQUIRE(::pipe2(ready, O_CLOEXEC) == 0);

    const std::string script =
        "echo pid=$$ fds=$LISTEN_FDS lpid=$LISTEN_PID names=$LISTEN_FDNAMES "
        "ready=$BLITZ_UPGRADE_READY_FD keep=$KEEP_ME; "
        "echo fd3=$(readlink /proc/$$/fd/3) fd4=$(readlink /proc/$$/fd/4) "
        "fd5=$(readlink /proc/$$/fd/5); "
        // Read with builtins only: while the shell waits for a child (grep), dash blocks
        // every signal, so a child reading the shell's status could see that passing mask.
        "while IFS= read -r l; do case $l in SigBlk:*|SigIgn:*) echo \"$l\";; esac; done "
        "</proc/$$/status; "
        "echo open:; ls /proc/$$/fd; "
        "echo up >&5";
    const std::vector<std::string> args = {"sh", "-c", script};
    const std::array<PassedSocket, 2> sockets = {PassedSocket{.fd = web, .name = "web"},
                                                 PassedSocket{.fd = admin, .name = "ad:min\n"}};
    const std::array<PassedFd, 1> extra = {
        PassedFd{.fd = ready[1], .env_name = "BLITZ_UPGRADE_READY_FD"}};
    // Stale values from an earlier hand-over must not reach the child.
    std::array<char*, 6> environment = {
        const_cast<char*>("LISTEN_FDS=9"),     const_cast<char*>("LISTEN_PID=1"),
        const_cast<char*>("LISTEN_FDNAMES=x"), const_cast<char*>("BLITZ_UPGRADE_READY_FD=77"),
        const_cast<char*>("KEEP_ME=1"),        nullptr};
    auto exec = ChildExec::prepare("/bin/sh", args, sockets, extra, environment.data());
    REQUIRE(exec);
    // Moved after prepare(): the pointers inside must survive it.
    ChildExec moved = std::move(*exec);

    // What a blitzd parent looks like: control signals blocked, SIGPIPE ignored.
    sigset_t block;
    sigset_t old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR2);
    sigaddset(&block, SIGHUP);
    REQUIRE(::pthread_sigmask(SIG_BLOCK, &block, &old_mask) == 0);
    struct sigaction ignore {};
    struct sigaction old_pipe {};
    ignore.sa_handler = SIG_IGN;
    REQUIRE(::sigaction(SIGPIPE, &ignore, &old_pipe) == 0);

    std::set<int> inheritable = {0, 1, 2, 3, 4, 5};
    for (int fd = 6; fd < 1024; ++fd) {
        const int flags = ::fcntl(fd, F_GETFD);
        if (flags >= 0 && (flags & FD_CLOEXEC) == 0) {
            inheritable.insert(fd);
        }
    }
    pid_t child = -1;
    const ChildOutput r = run(moved, child);

    ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
    ::sigaction(SIGPIPE, &old_pipe, nullptr);
    ::close(ready[1]);

    INFO(r.out << r.err);
    REQUIRE(WIFEXITED(r.status));
    CHECK(WEXITSTATUS(r.status) == 0);
    CHECK(field(r.out, "pid=") == std::to_string(child));
    CHECK(field(r.out, "lpid=") == std::to_string(child));
    CHECK(field(r.out, "fds=") == "2");
    CHECK(field(r.out, "names=") == "web:ad_min_");
    CHECK(field(r.out, "ready=") == "5");
    CHECK(field(r.out, "keep=") == "1");
    CHECK(field(r.out, "fd3=") == inode_link(web, "socket"));
    CHECK(field(r.out, "fd4=") == inode_link(admin, "socket"));
    CHECK(field(r.out, "fd5=") == inode_link(ready[0], "pipe"));
    CHECK(field(r.out, "SigBlk:\t") == "0000000000000000");
    CHECK((std::stoull(field(r.out, "SigIgn:\t"), nullptr, 16) & (1ULL << (SIGPIPE - 1))) == 0);
    // Only stdio, the passed descriptors and whatever this test process itself inherited
    // without FD_CLOEXEC survive execve: the temporary copies were close-on-exec.
    CHECK(open_in_child(r.out) == inheritable);
    CHECK(drain(ready[0]) == "up\n");
    close_all({web, admin, ready[0]});
}

TEST_CASE("net::ChildExec without sockets removes stale LISTEN_ variables", "[net]") {
    const std::vector<std::string> args = {"sh", "-c",
                                           "echo fds=${LISTEN_FDS-unset} pid=${LISTEN_PID-unset} "
                                           "names=${LISTEN_FDNAMES-unset} keep=$KEEP_ME"};
    std::array<char*, 5> environment = {
        const_cast<char*>("LISTEN_FDS=2"), const_cast<char*>("LISTEN_PID=1"),
        const_cast<char*>("LISTEN_FDNAMES=a:b"), const_cast<char*>("KEEP_ME=yes"), nullptr};
    auto exec = ChildExec::prepare("/bin/sh", args, {}, {}, environment.data());
    REQUIRE(exec);
    pid_t child = -1;
    const ChildOutput r = run(*exec, child);
    REQUIRE(WIFEXITED(r.status));
    CHECK(WEXITSTATUS(r.status) == 0);
    CHECK(r.out == "fds=unset pid=unset names=unset keep=yes\n");
}

TEST_CASE("net::ChildExec reports a failed execve and exits 127", "[net]") {
    const std::vector<std::string> args = {"blitzd"};
    auto exec = ChildExec::prepare("/nonexistent/blitzd", args, {}, {});
    REQUIRE(exec);
    pid_t child = -1;
    const ChildOutput r = run(*exec, child);
    REQUIRE(WIFEXITED(r.status));
    CHECK(WEXITSTATUS(r.status) == 127);
    CHECK(r.err == "blitz: execve failed (errno " + std::to_string(ENOENT) + ")\n");
}

TEST_CASE("net::ChildExec::prepare rejects what execve or the protocol cannot carry", "[net]") {
    const std::vector<std::string> args = {"blitzd"};
    CHECK_FALSE(ChildExec::prepare("", args, {}, {}));
    CHECK_FALSE(ChildExec::prepare(std::string("/bin/sh\0x", 9), args, {}, {}));
    CHECK_FALSE(ChildExec::prepare("/bin/sh", {}, {}, {}));
    const std::vector<std::string> nul_arg = {"sh", std::string("a\0b", 3)};
    CHECK_FALSE(ChildExec::prepare("/bin/sh", nul_arg, {}, {}));
    const std::array<PassedSocket, 1> no_fd = {PassedSocket{.fd = -1, .name = "web"}};
    CHECK_FALSE(ChildExec::prepare("/bin/sh", args, no_fd, {}));
    for (std::string_view name : {"", "A=B", "LISTEN_FDS"}) {
        CAPTURE(name);
        const std::array<PassedFd, 1> extra = {PassedFd{.fd = 0, .env_name = std::string(name)}};
        auto r = ChildExec::prepare("/bin/sh", args, {}, extra);
        REQUIRE_FALSE(r);
        CHECK_THAT(r.error(), ContainsSubstring("invalid variable name"));
    }
}

}  // namespace

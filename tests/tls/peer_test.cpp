#include <chrono>
#include <csignal>
#include <cstring>
#include <string>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>

#include "support.hpp"

namespace {

using namespace tls_test;
using Catch::Matchers::ContainsSubstring;
using tls::Status;
using Clock = std::chrono::steady_clock;

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    ~Fd() {
        if (fd >= 0) {
            ::close(fd);
        }
    }
};

int remaining_ms(Clock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

bool flush(tls::Session& s, int fd) {
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

}  // namespace

TEST_CASE("tls::Session serves openssl s_client over a TCP socket", "[tls]") {
    auto server_cx = make_server(server_options());
    Fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener.fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.fd, 1) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    const std::string connect = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    const std::string ca = fixture("ca.pem");

    int to_child[2];
    int from_child[2];
    REQUIRE(::pipe2(to_child, O_CLOEXEC) == 0);
    REQUIRE(::pipe2(from_child, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(to_child[0], 0);
        ::dup2(from_child[1], 1);
        ::dup2(from_child[1], 2);
        ::execl(BLITZ_OPENSSL_TOOL, "openssl", "s_client", "-connect", connect.c_str(),
                "-servername", "a.test", "-verify_hostname", "a.test", "-CAfile", ca.c_str(),
                "-verify_return_error", "-alpn", "http/1.1", "-tls1_3", "-brief",
                static_cast<char*>(nullptr));
        ::_exit(127);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    Fd child_in(to_child[1]);
    Fd child_out(from_child[0]);
    const std::string request = "hello from s_client\n";
    REQUIRE(::write(child_in.fd, request.data(), request.size()) ==
            static_cast<ssize_t>(request.size()));

    const auto deadline = Clock::now() + std::chrono::seconds(10);
    pollfd lp{listener.fd, POLLIN, 0};
    REQUIRE(::poll(&lp, 1, remaining_ms(deadline)) == 1);
    Fd conn(::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(conn.fd >= 0);

    CountingBuffers buffers;
    tls::Session session(buffers);
    REQUIRE(session.start_server(server_cx));
    std::string got;
    bool answered = false;
    Status st = Status::WantRead;
    while (!answered && remaining_ms(deadline) > 0) {
        pollfd p{conn.fd, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) != 1) {
            break;
        }
        char buf[16384];
        const ssize_t n = ::recv(conn.fd, buf, sizeof buf, 0);
        if (n <= 0) {
            break;
        }
        session.set_input(buf, static_cast<std::size_t>(n));
        for (;;) {
            char plain[4096];
            std::size_t produced = 0;
            st = session.read(plain, sizeof plain, produced);
            if (st != Status::Ok) {
                break;
            }
            got.append(plain, produced);
        }
        REQUIRE(flush(session, conn.fd));
        if (st == Status::Error || st == Status::Closed) {
            break;
        }
        if (got.find('\n') != std::string::npos) {
            CHECK(got == request);
            REQUIRE(send(session, "hello from blitz\n") == 17);
            session.shutdown();
            REQUIRE(flush(session, conn.fd));
            answered = true;
        }
    }
    CHECK(st != Status::Error);
    CHECK(answered);
    CHECK(session.alpn() == "http/1.1");
    CHECK(session.server_name() == "a.test");
    ::close(conn.fd);
    conn.fd = -1;
    ::close(child_in.fd);
    child_in.fd = -1;

    std::string output;
    while (remaining_ms(deadline) > 0) {
        pollfd p{child_out.fd, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) != 1) {
            break;
        }
        char buf[4096];
        const ssize_t n = ::read(child_out.fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        output.append(buf, static_cast<std::size_t>(n));
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
    }
    INFO(output);
    CHECK_THAT(output, ContainsSubstring("Protocol version: TLSv1.3") &&
                           ContainsSubstring("Verification: OK") &&
                           ContainsSubstring("hello from blitz"));
    CHECK(buffers.outstanding() == 0);
}

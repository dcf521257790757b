// Both backends must show the same completion semantics; every case runs on each.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include "io/backend.hpp"
#include "net/socket.hpp"

using namespace blitz;

namespace {

struct Recorder final : io::CompletionHandler {
    explicit Recorder(io::Backend* b) : backend(b) {}
    io::Backend* backend;
    std::vector<io::Completion> seen;
    std::string data;
    void on_completion(const io::Completion& c) override {
        seen.push_back(c);
        if (c.buffer >= 0) {
            auto bid = static_cast<std::uint16_t>(c.buffer);
            data.append(backend->buffers().data(bid), static_cast<std::size_t>(c.res));
            backend->buffers().release(bid);
        }
    }
    // Runs the loop until `pred` holds or about two seconds passed.
    template <class Pred>
    bool run_until(Pred pred) {
        for (int i = 0; i < 200 && !pred(); ++i) {
            backend->run(10, *this);
        }
        return pred();
    }
};

/// The backend under test, or a SKIP when this machine cannot run it.
std::unique_ptr<io::Backend> make_or_skip(blitz::Backend kind) {
    io::BackendOptions o;
    o.kind = kind;
    o.recv_buffer_bytes = 4096;
    o.max_recv_buffers = 256;
    o.ring_entries = 64;
    std::string why;
    auto b = io::Backend::create(o, why);
    if (!b) {
        SKIP("backend " << backend_name(kind) << " unavailable here: " << b.error());
    }
    return std::move(*b);
}

}  // namespace

TEST_CASE("io::Backend delivers multishot recv, send, EOF and cancel the same way on both backends",
          "[io]") {
    auto kind = GENERATE(blitz::Backend::IoUring, blitz::Backend::Epoll);
    CAPTURE(backend_name(kind));
    auto backend = make_or_skip(kind);
    Recorder r{backend.get()};
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);

    const auto ud = io::pack(io::Op::Recv, 7, 3);
    backend->recv(sv[0], ud);
    REQUIRE(::write(sv[1], "hello", 5) == 5);
    REQUIRE(r.run_until([&] { return r.data == "hello"; }));
    CHECK(r.seen.back().user_data == ud);
    CHECK(r.seen.back().more);
    REQUIRE(::write(sv[1], " world", 6) == 6);
    REQUIRE(r.run_until([&] { return r.data == "hello world"; }));

    iovec iov[2] = {{const_cast<char*>("po"), 2}, {const_cast<char*>("ng"), 2}};
    const auto sud = io::pack(io::Op::Send, 7, 3);
    backend->send(sv[0], iov, 2, sud);
    REQUIRE(r.run_until([&] { return r.seen.back().user_data == sud; }));
    CHECK(r.seen.back().res == 4);
    char buf[8] = {};
    CHECK(::read(sv[1], buf, sizeof buf) == 4);

    SECTION("EOF ends the multishot recv with 0") {
        ::close(sv[1]);
        REQUIRE(r.run_until([&] { return r.seen.back().user_data == ud && !r.seen.back().more; }));
        CHECK(r.seen.back().res == 0);
        ::close(sv[0]);
    }
    SECTION("cancel ends the multishot recv without more") {
        backend->cancel(sv[0]);
        REQUIRE(r.run_until([&] { return r.seen.back().user_data == ud && !r.seen.back().more; }));
        CHECK(r.seen.back().res < 0);
        ::close(sv[0]);
        ::close(sv[1]);
    }
    SECTION("cancel_recv stops reading but leaves the socket usable") {
        backend->cancel_recv(sv[0], ud);
        REQUIRE(r.run_until([&] { return r.seen.back().user_data == ud && !r.seen.back().more; }));
        const std::size_t before = r.seen.size();
        REQUIRE(::write(sv[1], "later", 5) == 5);
        backend->run(20, r);
        CHECK(r.seen.size() == before);
        backend->recv(sv[0], ud);
        REQUIRE(r.run_until([&] { return r.data == "hello worldlater"; }));
        backend->cancel(sv[0]);
        r.run_until([&] { return !r.seen.back().more; });
        ::close(sv[0]);
        ::close(sv[1]);
    }
}

TEST_CASE("io::Backend accepts connections and polls descriptors on both backends", "[io]") {
    auto kind = GENERATE(blitz::Backend::IoUring, blitz::Backend::Epoll);
    CAPTURE(backend_name(kind));
    auto backend = make_or_skip(kind);
    Recorder r{backend.get()};
    net::SocketAddress addr;
    REQUIRE(net::SocketAddress::parse("127.0.0.1:0", addr));
    int lfd = net::listen_socket(addr, {});
    REQUIRE(lfd >= 0);
    net::SocketAddress bound;
    REQUIRE(net::local_address(lfd, bound));

    const auto aud = io::pack(io::Op::Accept, 0, 0);
    backend->accept(lfd, aud, true);
    std::vector<int> clients;
    for (int i = 0; i < 3; ++i) {
        int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(::connect(c, bound.get(), bound.length) == 0);
        clients.push_back(c);
    }
    REQUIRE(r.run_until([&] { return r.seen.size() == 3; }));
    for (const auto& c : r.seen) {
        CHECK(c.user_data == aud);
        CHECK(c.res >= 0);
        CHECK(c.more);
        ::close(c.res);
    }

    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    const auto pud = io::pack(io::Op::Poll, 0, 1);
    backend->poll_in(efd, pud);
    std::uint64_t one = 1;
    REQUIRE(::write(efd, &one, sizeof one) == sizeof one);
    REQUIRE(r.run_until([&] { return r.seen.back().user_data == pud; }));
    std::uint64_t v;
    REQUIRE(::read(efd, &v, sizeof v) == sizeof v);
    const std::size_t polls = r.seen.size();
    REQUIRE(::write(efd, &one, sizeof one) == sizeof one);
    REQUIRE(r.run_until([&] { return r.seen.size() > polls; }));  // still armed
    CHECK(r.seen.back().user_data == pud);

    const std::size_t before_cancel = r.seen.size();
    backend->cancel(lfd);
    backend->cancel(efd);
    // Both multishot operations end with one final completion each.
    REQUIRE(r.run_until([&] { return r.seen.size() >= before_cancel + 2; }));
    for (std::size_t i = before_cancel; i < r.seen.size(); ++i) {
        CHECK_FALSE(r.seen[i].more);
    }
    for (int c : clients) {
        ::close(c);
    }
    ::close(efd);
    ::close(lfd);
}

TEST_CASE("io::Backend appends iovecs to an O_APPEND file and completes from run() on both backends",
          "[io]") {
    auto kind = GENERATE(blitz::Backend::IoUring, blitz::Backend::Epoll);
    CAPTURE(backend_name(kind));
    auto backend = make_or_skip(kind);
    Recorder r{backend.get()};
    char path[] = "/tmp/blitz_io_write_XXXXXX";
    int tmp = ::mkstemp(path);
    REQUIRE(tmp >= 0);
    ::close(tmp);
    int fd = ::open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    REQUIRE(fd >= 0);
    // Bytes already in the file must survive: an append, not a write at offset 0.
    REQUIRE(::write(fd, "first\n", 6) == 6);

    iovec iov[2] = {{const_cast<char*>("line one\n"), 9}, {const_cast<char*>("line two\n"), 9}};
    const auto ud = io::pack(io::Op::Send, 5, 9);
    backend->write(fd, iov, 2, ud);
    // Completions never run inside the submitting call.
    CHECK(r.seen.empty());
    REQUIRE(r.run_until([&] { return !r.seen.empty(); }));
    CHECK(r.seen.back().user_data == ud);
    CHECK(r.seen.back().res == 18);
    CHECK_FALSE(r.seen.back().more);

    backend->write(fd, iov, 1, ud + 1);
    REQUIRE(r.run_until([&] { return r.seen.size() == 2; }));
    CHECK(r.seen.back().res == 9);

    int rfd = ::open(path, O_RDONLY | O_CLOEXEC);
    REQUIRE(rfd >= 0);
    char buf[64] = {};
    CHECK(std::string(buf, static_cast<std::size_t>(::read(rfd, buf, sizeof buf))) ==
          "first\nline one\nline two\nline one\n");
    ::close(rfd);

    SECTION("a write to a descriptor open read-only completes with -EBADF") {
        int ro = ::open(path, O_RDONLY | O_CLOEXEC);
        REQUIRE(ro >= 0);
        backend->write(ro, iov, 1, ud + 2);
        REQUIRE(r.run_until([&] { return r.seen.size() == 3; }));
        CHECK(r.seen.back().user_data == ud + 2);
        CHECK(r.seen.back().res == -EBADF);
        ::close(ro);
    }
    ::close(fd);
    ::unlink(path);
}

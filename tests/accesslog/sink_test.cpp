#include "accesslog/sink.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

#include "support.hpp"

using namespace blitz;
using accesslog::Sink;
using accesslog::SinkRegistry;

namespace {

/// A fresh directory under /tmp, removed with its files at the end of the test.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/blitz_accesslog_XXXXXX";
        REQUIRE(::mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        for (const char* name : {"/access.log", "/access.log.1", "/other.log"}) {
            ::unlink((path + name).c_str());
        }
        ::rmdir(path.c_str());
    }
};

using blitz::accesslog::test::slurp;

void put(int fd, std::string_view s) {
    REQUIRE(::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
}

bool fd_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST_CASE("accesslog::Sink creates the file with mode 0640 and appends", "[accesslog]") {
    TempDir dir;
    const std::string path = dir.path + "/access.log";
    {
        int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        put(fd, "old\n");
        ::close(fd);
    }
    ::unlink(path.c_str());
    const mode_t old_mask = ::umask(022);
    auto sink = Sink::open(path);
    ::umask(old_mask);
    REQUIRE(sink);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0640);
    const int fd = (*sink)->current()->fd();
    CHECK((::fcntl(fd, F_GETFL) & O_APPEND) != 0);
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    put(fd, "one\n");
    put(fd, "two\n");
    CHECK(slurp(path) == "one\ntwo\n");
}

TEST_CASE("accesslog::Sink reopen after a rename creates a new file and keeps the old handle",
          "[accesslog]") {
    TempDir dir;
    const std::string path = dir.path + "/access.log";
    auto opened = Sink::open(path);
    REQUIRE(opened);
    auto sink = *opened;
    auto held = sink->current();  // a reactor in the middle of a write
    const int old_fd = held->fd();
    put(old_fd, "before\n");

    REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
    REQUIRE(sink->reopen());
    auto fresh = sink->current();
    CHECK(fresh != held);
    CHECK(fresh->fd() != old_fd);
    // The old descriptor stays open for the reactor still using it.
    REQUIRE(fd_open(old_fd));
    put(old_fd, "late\n");
    put(fresh->fd(), "after\n");
    CHECK(slurp(path + ".1") == "before\nlate\n");
    CHECK(slurp(path) == "after\n");

    held.reset();  // the last holder lets go: now it closes
    CHECK_FALSE(fd_open(old_fd));
    CHECK(fd_open(fresh->fd()));
}

TEST_CASE("accesslog::Sink reports the path and the reason when it cannot open", "[accesslog]") {
    TempDir dir;
    auto sink = Sink::open(dir.path + "/no/such/dir/access.log");
    REQUIRE_FALSE(sink);
    CHECK(sink.error().find(dir.path + "/no/such/dir/access.log") != std::string::npos);
    CHECK(sink.error().find("No such file or directory") != std::string::npos);
    CHECK_FALSE(Sink::open(""));

    SECTION("a failed reopen keeps the current handle") {
        const std::string path = dir.path + "/access.log";
        auto ok = Sink::open(path);
        REQUIRE(ok);
        auto before = (*ok)->current();
        // Something that cannot be opened for writing, even by root, now sits at the path.
        ::unlink(path.c_str());
        REQUIRE(::mkdir(path.c_str(), 0700) == 0);
        auto r = (*ok)->reopen();
        ::rmdir(path.c_str());
        REQUIRE_FALSE(r);
        CHECK(r.error().find(path) != std::string::npos);
        CHECK(r.error().find("Is a directory") != std::string::npos);
        CHECK((*ok)->current() == before);
    }
}

TEST_CASE("accesslog::Sink uses descriptor 2 for stderr and never closes it", "[accesslog]") {
    {
        auto sink = Sink::open("stderr");
        REQUIRE(sink);
        CHECK((*sink)->is_stderr());
        CHECK((*sink)->current()->fd() == 2);
        REQUIRE((*sink)->reopen());
        CHECK((*sink)->current()->fd() == 2);
    }
    CHECK(fd_open(2));
}

TEST_CASE("accesslog::SinkRegistry shares one Sink per path and reopens them all", "[accesslog]") {
    TempDir dir;
    SinkRegistry reg;
    const std::string path = dir.path + "/access.log";
    auto a = reg.get(path);
    auto b = reg.get(path);
    auto other = reg.get(dir.path + "/other.log");
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(other);
    CHECK(*a == *b);
    CHECK(*a != *other);
    auto before = (*a)->current();
    REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
    CHECK(reg.reopen_all().empty());
    CHECK((*a)->current() != before);
    struct stat st {};
    CHECK(::stat(path.c_str(), &st) == 0);

    // A path no config uses any more is opened afresh next time.
    std::weak_ptr<Sink> first = *other;
    other = reg.get(path);
    CHECK(first.expired());
    auto again = reg.get(dir.path + "/other.log");
    REQUIRE(again);
    CHECK((*again)->path() == dir.path + "/other.log");
    CHECK(fd_open((*again)->current()->fd()));
}

// The path the engine wires: Writer batches → Sink handle → io::Backend::write → write_done,
// with a log rotation (rename + reopen) in the middle, on both backends.
#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include <catch2/catch_test_macros.hpp>
#include <catch2/generators/catch_generators.hpp>

#include "accesslog/format.hpp"
#include "accesslog/sink.hpp"
#include "accesslog/writer.hpp"
#include "io/backend.hpp"
#include "support.hpp"

using namespace blitz;

namespace {

using blitz::accesslog::test::slurp;

/// What a reactor keeps per writer: the handle of the write in flight and its iovec.
struct Flusher final : io::CompletionHandler {
    io::Backend* backend = nullptr;
    accesslog::Writer* writer = nullptr;
    std::shared_ptr<accesslog::Sink> sink;
    std::shared_ptr<accesslog::FileHandle> handle;
    iovec iov{};
    int completions = 0;

    void flush() {
        if (!writer->partial()) {
            handle = sink->current();
        }
        auto bytes = writer->start_write();
        if (bytes.empty()) {
            return;
        }
        iov = {const_cast<char*>(bytes.data()), bytes.size()};
        backend->write(handle->fd(), &iov, 1, io::pack(io::Op::Send, 1, 1));
    }
    void on_completion(const io::Completion& c) override {
        ++completions;
        writer->write_done(c.res);
    }
    bool run_until_idle() {
        for (int i = 0; i < 200 && (writer->write_in_flight() || writer->buffered_bytes() != 0);
             ++i) {
            if (!writer->write_in_flight()) {
                flush();
            }
            backend->run(10, *this);
        }
        return !writer->write_in_flight() && writer->buffered_bytes() == 0;
    }
};

}  // namespace

TEST_CASE("accesslog lines reach the file through io::Backend::write across a reopen",
          "[accesslog]") {
    auto kind = GENERATE(blitz::Backend::IoUring, blitz::Backend::Epoll);
    CAPTURE(backend_name(kind));
    io::BackendOptions o;
    o.kind = kind;
    o.max_recv_buffers = 16;
    o.ring_entries = 16;
    std::string why;
    auto backend = io::Backend::create(o, why);
    if (!backend) {
        SKIP("backend " << backend_name(kind) << " unavailable here: " << backend.error());
    }
    char dir_tmpl[] = "/tmp/blitz_accesslog_pipe_XXXXXX";
    REQUIRE(::mkdtemp(dir_tmpl) != nullptr);
    const std::string dir = dir_tmpl;
    const std::string path = dir + "/access.log";

    auto sink = accesslog::Sink::open(path);
    REQUIRE(sink);
    auto format = accesslog::Format::compile("$method $path $status");
    REQUIRE(format);
    accesslog::Writer writer(4096, 0);
    Flusher f;
    f.backend = backend->get();
    f.writer = &writer;
    f.sink = *sink;

    accesslog::Record r;
    r.method = "GET";
    r.status = 200;
    r.path = "/one";
    REQUIRE(writer.append(*format, r));
    r.path = "/two";
    REQUIRE(writer.append(*format, r));
    REQUIRE(f.run_until_idle());
    CHECK(f.completions == 1);

    REQUIRE(::rename(path.c_str(), (path + ".1").c_str()) == 0);
    REQUIRE(f.sink->reopen());
    r.path = "/three";
    REQUIRE(writer.append(*format, r));
    REQUIRE(f.run_until_idle());

    CHECK(slurp(path + ".1") == "GET /one 200\nGET /two 200\n");
    CHECK(slurp(path) == "GET /three 200\n");
    CHECK(writer.lines().value() == 3);
    CHECK(writer.write_errors().value() == 0);
    ::unlink(path.c_str());
    ::unlink((path + ".1").c_str());
    ::rmdir(dir.c_str());
}

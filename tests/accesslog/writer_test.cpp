#include "accesslog/writer.hpp"

#include <cerrno>
#include <string>
#include <string_view>

#include <catch2/catch_test_macros.hpp>

using namespace blitz;
using accesslog::Format;
using accesslog::Record;
using accesslog::Writer;

namespace {

/// A template whose line is exactly `path` plus "\n", so sizes are easy to reason about.
Format path_only() {
    auto f = Format::compile("$path");
    REQUIRE(f);
    return *f;
}

Record with_path(std::string_view path) {
    Record r;
    r.path = path;
    return r;
}

std::string as_string(std::span<const char> s) { return std::string(s.data(), s.size()); }

/// Writes everything buffered, as a kernel that takes all bytes would.
std::string drain(Writer& w) {
    std::string all;
    for (auto s = w.start_write(); !s.empty(); s = w.start_write()) {
        all += as_string(s);
        w.write_done(static_cast<long>(s.size()));
    }
    return all;
}

}  // namespace

TEST_CASE("accesslog::Writer batches lines and hands them out once", "[accesslog]") {
    const Format f = path_only();
    Writer w(256);
    CHECK(w.start_write().empty());
    REQUIRE(w.append(f, with_path("/a")));
    REQUIRE(w.append(f, with_path("/b")));
    CHECK(w.buffered_bytes() == 6);
    auto s = w.start_write();
    CHECK(as_string(s) == "/a\n/b\n");
    CHECK(w.write_in_flight());
    // While the write is in flight there is nothing more to start.
    REQUIRE(w.append(f, with_path("/c")));
    CHECK(w.start_write().empty());
    w.write_done(6);
    CHECK_FALSE(w.write_in_flight());
    CHECK(drain(w) == "/c\n");
    CHECK(w.lines().value() == 3);
    CHECK(w.dropped().value() == 0);
    CHECK(w.buffered_bytes() == 0);
}

TEST_CASE("accesslog::Writer drops and counts lines when both buffers are taken", "[accesslog]") {
    const Format f = path_only();
    Writer w(64);
    const std::string line30(29, 'x');  // 30 bytes with "\n"
    REQUIRE(w.append(f, with_path(line30)));
    REQUIRE(w.append(f, with_path(line30)));
    auto s = w.start_write();
    REQUIRE(s.size() == 60);
    // Fill the second buffer while the first is being written.
    REQUIRE(w.append(f, with_path(line30)));
    REQUIRE(w.append(f, with_path(line30)));
    CHECK_FALSE(w.append(f, with_path(line30)));
    CHECK_FALSE(w.append(f, with_path("/short-but-no-room-left")));
    CHECK(w.dropped().value() == 2);
    CHECK(w.lines().value() == 4);
    CHECK(w.buffered_bytes() <= 2 * w.buffer_bytes());
    w.write_done(60);
    // Room again: the filled buffer moves to the write side and the line goes in.
    REQUIRE(w.append(f, with_path(line30)));
    CHECK(drain(w) == line30 + "\n" + line30 + "\n" + line30 + "\n");
    CHECK(w.lines().value() == 5);
}

TEST_CASE("accesslog::Writer moves a full buffer aside without a write in flight", "[accesslog]") {
    const Format f = path_only();
    Writer w(64);
    const std::string line40(39, 'y');
    REQUIRE(w.append(f, with_path(line40)));
    REQUIRE(w.append(f, with_path(line40)));  // does not fit: first batch set aside
    CHECK(w.buffered_bytes() == 80);
    CHECK(w.wants_flush(0));  // a batch waits
    // A third line finds both buffers taken (nothing written yet).
    CHECK_FALSE(w.append(f, with_path(line40)));
    CHECK(as_string(w.start_write()) == line40 + "\n");
    w.write_done(40);
    CHECK(as_string(w.start_write()) == line40 + "\n");
    w.write_done(40);
    CHECK(w.dropped().value() == 1);
}

TEST_CASE("accesslog::Writer truncates a line longer than the buffer and ends it with a newline",
          "[accesslog]") {
    const Format f = path_only();
    Writer w(64);
    REQUIRE(w.append(f, with_path("/before")));
    const std::string huge(1000, 'z');
    REQUIRE(w.append(f, with_path(huge)));
    CHECK(as_string(w.start_write()) == "/before\n");
    w.write_done(8);
    const std::string cut = as_string(w.start_write());
    CHECK(cut.size() == 64);
    CHECK(cut == std::string(63, 'z') + "\n");
    w.write_done(64);
    CHECK(w.lines().value() == 2);
    CHECK(w.dropped().value() == 0);
}

TEST_CASE("accesslog::Writer continues a partial write with the remaining bytes", "[accesslog]") {
    const Format f = path_only();
    Writer w(256);
    REQUIRE(w.append(f, with_path("/one")));
    REQUIRE(w.append(f, with_path("/two")));
    auto s = w.start_write();
    REQUIRE(as_string(s) == "/one\n/two\n");
    w.write_done(3);
    CHECK(w.partial());
    REQUIRE(w.append(f, with_path("/three")));  // goes after the remainder, not into it
    CHECK(w.wants_flush(0));
    CHECK(as_string(w.start_write()) == "e\n/two\n");
    w.write_done(2);
    CHECK(as_string(w.start_write()) == "/two\n");
    w.write_done(5);
    CHECK_FALSE(w.partial());
    CHECK(drain(w) == "/three\n");
    CHECK(w.write_errors().value() == 0);
}

TEST_CASE("accesslog::Writer counts a failed write and drops its lines", "[accesslog]") {
    const Format f = path_only();
    Writer w(256);
    REQUIRE(w.append(f, with_path("/one")));
    REQUIRE(w.append(f, with_path("/two")));
    REQUIRE(w.append(f, with_path("/three")));
    (void)w.start_write();
    w.write_done(7);  // "/one\n/t" written
    (void)w.start_write();
    w.write_done(-ENOSPC);
    CHECK(w.write_errors().value() == 1);
    CHECK(w.dropped().value() == 2);  // "/two" (cut) and "/three"
    CHECK(w.buffered_bytes() == 0);
    CHECK(w.start_write().empty());

    SECTION("a write of zero bytes counts as an error rather than repeating forever") {
        REQUIRE(w.append(f, with_path("/four")));
        (void)w.start_write();
        w.write_done(0);
        CHECK(w.write_errors().value() == 2);
        CHECK(w.dropped().value() == 3);
        CHECK(w.start_write().empty());
    }
    SECTION("a completion without a write in flight is ignored") {
        w.write_done(100);
        CHECK(w.write_errors().value() == 1);
        REQUIRE(w.append(f, with_path("/four")));
        CHECK(drain(w) == "/four\n");
    }
}

TEST_CASE("accesslog::Writer wants a flush per interval or when half full", "[accesslog]") {
    const Format f = path_only();
    Writer w(128, 1000);
    CHECK_FALSE(w.wants_flush(5000));  // nothing buffered
    REQUIRE(w.append(f, with_path("/a")));
    CHECK(w.wants_flush(5000));  // the first interval has long passed
    drain(w);
    REQUIRE(w.append(f, with_path("/b")));
    CHECK_FALSE(w.wants_flush(5500));
    CHECK_FALSE(w.wants_flush(5999));
    CHECK(w.wants_flush(6000));
    (void)w.start_write();
    CHECK_FALSE(w.wants_flush(9000));  // a write is in flight
    w.write_done(3);
    REQUIRE(w.append(f, with_path(std::string(70, 'h'))));  // now more than half full
    CHECK(w.wants_flush(6001));
}

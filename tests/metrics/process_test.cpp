#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch_test_macros.hpp>

#include "metrics/exposition.hpp"
#include "metrics/process.hpp"

using blitz::metrics::parse_boot_time;
using blitz::metrics::parse_proc_pid_stat;

namespace {

// /proc/<pid>/stat of a process whose command name holds spaces and parentheses; fields 14,
// 15, 22, 23 and 24 are 111, 222, 333, 444 and 555.
constexpr std::string_view kStat =
    "4242 (evil) name (x) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 111 222 0 0 20 0 4 0 333 "
    "444 555 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

}  // namespace

TEST_CASE("metrics::parse_proc_pid_stat counts fields from the last parenthesis", "[metrics]") {
    const auto st = parse_proc_pid_stat(kStat);
    REQUIRE(st);
    CHECK(st->utime_ticks == 111);
    CHECK(st->stime_ticks == 222);
    CHECK(st->start_ticks == 333);
    CHECK(st->vsize_bytes == 444);
    CHECK(st->rss_pages == 555);
}

TEST_CASE("metrics::parse_proc_pid_stat rejects truncated and malformed text", "[metrics]") {
    CHECK_FALSE(parse_proc_pid_stat(""));
    CHECK_FALSE(parse_proc_pid_stat("4242 no parenthesis 1 2 3"));
    CHECK_FALSE(parse_proc_pid_stat(kStat.substr(0, kStat.find(" 444"))));
    CHECK_FALSE(parse_proc_pid_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 1x 2 0 0 20 0 1 0 3 4 5\n"));
    CHECK(parse_proc_pid_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 2 0 0 20 0 1 0 3 4 5"));
}

TEST_CASE("metrics::parse_boot_time finds the btime line", "[metrics]") {
    CHECK(*parse_boot_time("cpu  1 2 3\nintr 5 6\nbtime 1700000000\nprocesses 9\n") == 1700000000);
    CHECK(*parse_boot_time("btime 12\n") == 12);
    CHECK(*parse_boot_time("cpu 1\nbtime 13") == 13);
    CHECK_FALSE(parse_boot_time("cpu 1\nxbtime 5\n"));
    CHECK_FALSE(parse_boot_time("cpu 1\nbtime\n"));
    CHECK_FALSE(parse_boot_time("cpu 1\nbtime 12x\n"));
    CHECK_FALSE(parse_boot_time(""));
}

TEST_CASE("metrics::read_process_stats reports this process sanely", "[metrics]") {
    const auto before = blitz::metrics::read_process_stats();
    REQUIRE(before);
    CHECK(before->open_fds >= 3);
    CHECK(before->max_fds >= before->open_fds);
    CHECK(before->resident_bytes > 0);
    CHECK(before->virtual_bytes >= before->resident_bytes);
    CHECK(before->cpu_seconds >= 0);
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    // Started within the last hour (clock ticks and btime are whole seconds: allow 2 s).
    CHECK(before->start_time_seconds <= now + 2);
    CHECK(before->start_time_seconds > now - 3600);

    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    const auto after = blitz::metrics::read_process_stats();
    ::close(fd);
    REQUIRE(after);
    CHECK(after->open_fds == before->open_fds + 1);
}

TEST_CASE("metrics::write_process_metrics writes the six standard families", "[metrics]") {
    std::string out;
    blitz::metrics::Writer w(out);
    blitz::metrics::write_process_metrics(w, {.cpu_seconds = 1.25,
                                              .resident_bytes = 4096,
                                              .virtual_bytes = 1 << 20,
                                              .open_fds = 12,
                                              .max_fds = 1024,
                                              .start_time_seconds = 1700000000.5});
    REQUIRE(w.status());
    CHECK(out ==
          "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
          "# TYPE process_cpu_seconds_total counter\n"
          "process_cpu_seconds_total 1.25\n"
          "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
          "# TYPE process_resident_memory_bytes gauge\n"
          "process_resident_memory_bytes 4096\n"
          "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
          "# TYPE process_virtual_memory_bytes gauge\n"
          "process_virtual_memory_bytes 1048576\n"
          "# HELP process_open_fds Number of open file descriptors.\n"
          "# TYPE process_open_fds gauge\n"
          "process_open_fds 12\n"
          "# HELP process_max_fds Maximum number of open file descriptors.\n"
          "# TYPE process_max_fds gauge\n"
          "process_max_fds 1024\n"
          "# HELP process_start_time_seconds Start time of the process since unix epoch in "
          "seconds.\n"
          "# TYPE process_start_time_seconds gauge\n"
          "process_start_time_seconds 1700000000.5\n");
}

#pragma once

#include <cstdint>
#include <string_view>

#include <blitz/result.hpp>

#include "metrics/exposition.hpp"

namespace blitz::metrics {

/// The standard Prometheus `process_*` values of this process.
///
/// Thread: value type. Lifetime: a plain copy.
struct ProcessStats {
    double cpu_seconds = 0;            ///< user + system CPU time
    std::uint64_t resident_bytes = 0;  ///< resident set size
    std::uint64_t virtual_bytes = 0;   ///< virtual memory size
    std::uint64_t open_fds = 0;        ///< open file descriptors
    std::uint64_t max_fds = 0;         ///< soft RLIMIT_NOFILE (UINT64_MAX when unlimited)
    double start_time_seconds = 0;     ///< process start, seconds since the Unix epoch
};

/// The fields of /proc/<pid>/stat the process metrics need (proc(5)).
///
/// Thread: value type. Lifetime: a plain copy.
struct ProcPidStat {
    std::uint64_t utime_ticks = 0;  ///< field 14, clock ticks
    std::uint64_t stime_ticks = 0;  ///< field 15, clock ticks
    std::uint64_t start_ticks = 0;  ///< field 22, clock ticks after boot
    std::uint64_t vsize_bytes = 0;  ///< field 23
    std::uint64_t rss_pages = 0;    ///< field 24
};

/// Parses the text of /proc/<pid>/stat. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last ')'.
///
/// Thread: any. Lifetime: nothing kept.
Result<ProcPidStat> parse_proc_pid_stat(std::string_view text) noexcept;

/// The boot time (the `btime` line, seconds since the epoch) from the text of /proc/stat.
///
/// Thread: any. Lifetime: nothing kept.
Result<std::uint64_t> parse_boot_time(std::string_view proc_stat) noexcept;

/// Reads /proc/self/stat, /proc/stat, /proc/self/fd and RLIMIT_NOFILE. Blocking file reads
/// of procfs (no disk I/O), a few tens of microseconds plus one directory entry per open
/// descriptor; meant for the scrape, not for a reactor's hot path.
///
/// Thread: any. Lifetime: nothing kept.
Result<ProcessStats> read_process_stats();

/// Writes the six `process_*` families (process_cpu_seconds_total,
/// process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
/// process_max_fds, process_start_time_seconds) with the names and help texts the Prometheus
/// client libraries use.
///
/// Thread: the writer's. Lifetime: nothing kept.
void write_process_metrics(Writer& writer, const ProcessStats& stats);

}  // namespace blitz::metrics

#include "metrics/process.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <string>

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

namespace blitz::metrics {

namespace {

Error parse_error(const char* context) noexcept {
    return Error{.code = Errc::Protocol, .source = ErrorSource::System, .context = context};
}

Error system_error(const char* context) noexcept {
    return Error{.code = Errc::System,
                 .source = ErrorSource::System,
                 .sys_errno = errno,
                 .context = context};
}

bool parse_u64(std::string_view s, std::uint64_t& out) noexcept {
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

// Procfs files report a size of 0, so read until end of file.
Result<std::string> read_whole(const char* path) {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return fail(system_error("metrics: open procfs file"));
    }
    std::string text(4096, '\0');
    std::size_t used = 0;
    for (;;) {
        if (used == text.size()) {
            text.resize(text.size() * 2);
        }
        const ssize_t n = ::read(fd, text.data() + used, text.size() - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            const Error e = system_error("metrics: read procfs file");
            ::close(fd);
            return fail(e);
        }
        if (n == 0) {
            break;
        }
        used += static_cast<std::size_t>(n);
    }
    ::close(fd);
    text.resize(used);
    return text;
}

Result<std::uint64_t> count_open_fds() {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
        return fail(system_error("metrics: open /proc/self/fd"));
    }
    const std::string self = std::to_string(::dirfd(dir));
    std::uint64_t n = 0;
    while (const dirent* e = ::readdir(dir)) {
        const std::string_view name = e->d_name;
        // The directory's own descriptor is listed too, but exists only for this count.
        if (name != "." && name != ".." && name != self) {
            ++n;
        }
    }
    ::closedir(dir);
    return n;
}

}  // namespace

Result<ProcPidStat> parse_proc_pid_stat(std::string_view text) noexcept {
    const std::size_t close = text.rfind(')');
    if (close == std::string_view::npos) {
        return fail(parse_error("metrics: /proc/self/stat has no command name"));
    }
    ProcPidStat st;
    std::string_view rest = text.substr(close + 1);
    // The first field after ')' is field 3 (state).
    for (int field = 3; field <= 24; ++field) {
        const std::size_t start = rest.find_first_not_of(" \n");
        if (start == std::string_view::npos) {
            return fail(parse_error("metrics: /proc/self/stat is truncated"));
        }
        rest.remove_prefix(start);
        const std::size_t end = std::min(rest.find_first_of(" \n"), rest.size());
        const std::string_view token = rest.substr(0, end);
        rest.remove_prefix(end);
        std::uint64_t* target = field == 14   ? &st.utime_ticks
                                : field == 15 ? &st.stime_ticks
                                : field == 22 ? &st.start_ticks
                                : field == 23 ? &st.vsize_bytes
                                : field == 24 ? &st.rss_pages
                                              : nullptr;
        if (target != nullptr && !parse_u64(token, *target)) {
            return fail(parse_error("metrics: /proc/self/stat has a malformed field"));
        }
    }
    return st;
}

Result<std::uint64_t> parse_boot_time(std::string_view proc_stat) noexcept {
    constexpr std::string_view kKey = "btime ";
    std::size_t at = 0;
    if (!proc_stat.starts_with(kKey)) {
        at = proc_stat.find("\nbtime ");
        if (at == std::string_view::npos) {
            return fail(parse_error("metrics: /proc/stat has no btime line"));
        }
        ++at;
    }
    at += kKey.size();
    std::string_view value = proc_stat.substr(at);
    value = value.substr(0, value.find('\n'));
    std::uint64_t btime = 0;
    if (!parse_u64(value, btime)) {
        return fail(parse_error("metrics: /proc/stat has a malformed btime line"));
    }
    return btime;
}

Result<ProcessStats> read_process_stats() {
    const auto self = read_whole("/proc/self/stat");
    if (!self) {
        return fail(self.error());
    }
    const auto stat = parse_proc_pid_stat(*self);
    if (!stat) {
        return fail(stat.error());
    }
    const auto system = read_whole("/proc/stat");
    if (!system) {
        return fail(system.error());
    }
    const auto btime = parse_boot_time(*system);
    if (!btime) {
        return fail(btime.error());
    }
    const auto fds = count_open_fds();
    if (!fds) {
        return fail(fds.error());
    }
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        return fail(system_error("metrics: getrlimit(RLIMIT_NOFILE)"));
    }
    const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
    const long page_size = ::sysconf(_SC_PAGESIZE);
    if (ticks_per_second <= 0 || page_size <= 0) {
        return fail(system_error("metrics: sysconf(_SC_CLK_TCK, _SC_PAGESIZE)"));
    }
    const auto ticks = static_cast<double>(ticks_per_second);
    const auto page = static_cast<std::uint64_t>(page_size);
    return ProcessStats{
        .cpu_seconds = static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks,
        .resident_bytes = stat->rss_pages * page,
        .virtual_bytes = stat->vsize_bytes,
        .open_fds = *fds,
        .max_fds = limit.rlim_cur == RLIM_INFINITY ? UINT64_MAX : limit.rlim_cur,
        .start_time_seconds =
            static_cast<double>(*btime) + static_cast<double>(stat->start_ticks) / ticks,
    };
}

void write_process_metrics(Writer& writer, const ProcessStats& stats) {
    writer.family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                  MetricType::Counter);
    writer.sample({}, stats.cpu_seconds);
    writer.family("process_resident_memory_bytes", "Resident memory size in bytes.",
                  MetricType::Gauge);
    writer.sample({}, static_cast<double>(stats.resident_bytes));
    writer.family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                  MetricType::Gauge);
    writer.sample({}, static_cast<double>(stats.virtual_bytes));
    writer.family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge);
    writer.sample({}, static_cast<double>(stats.open_fds));
    writer.family("process_max_fds", "Maximum number of open file descriptors.", MetricType::Gauge);
    writer.sample({}, static_cast<double>(stats.max_fds));
    writer.family("process_start_time_seconds",
                  "Start time of the process since unix epoch in seconds.", MetricType::Gauge);
    writer.sample({}, stats.start_time_seconds);
}

}  // namespace blitz::metrics

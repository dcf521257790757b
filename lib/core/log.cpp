#include <blitz/log.hpp>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace blitz {

namespace {
std::atomic<LogLevel> g_level{LogLevel::Info};

const char* level_name(LogLevel l) {
    switch (l) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info ";
        case LogLevel::Warn: return "warn ";
        case LogLevel::Error: return "error";
        case LogLevel::Off: break;
    }
    return "";
}
}  // namespace

void set_log_level(LogLevel level) noexcept { g_level.store(level, std::memory_order_relaxed); }

LogLevel log_level() noexcept { return g_level.load(std::memory_order_relaxed); }

void log(LogLevel level, const char* fmt, ...) noexcept {
    if (level < log_level() || level == LogLevel::Off) {
        return;
    }
    char line[2048];
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    gmtime_r(&ts.tv_sec, &t);
    int n = std::snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                          t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
                          t.tm_sec, ts.tv_nsec / 1'000'000, level_name(level));
    va_list ap;
    va_start(ap, fmt);
    int m = std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, fmt, ap);
    va_end(ap);
    size_t len = static_cast<size_t>(n) +
                 (m < 0 ? 0 : std::min<size_t>(static_cast<size_t>(m), sizeof line - n - 2));
    line[len++] = '\n';
    // One write(2) per line keeps lines from different reactors whole.
    ssize_t w = ::write(STDERR_FILENO, line, len);
    (void)w;
}

}  // namespace blitz

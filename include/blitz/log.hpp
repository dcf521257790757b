#pragma once

/// Logging: one line per event on stderr, "2026-11-25T10:00:00.123Z info  message".
namespace blitz {

enum class LogLevel : unsigned char { Debug, Info, Warn, Error, Off };

/// Sets the process-wide threshold (Info by default).
void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;

/// Formats and writes one line if `level` passes the threshold. Thread-safe: each line is a
/// single write(2).
void log(LogLevel level, const char* fmt, ...) noexcept __attribute__((format(printf, 2, 3)));

}  // namespace blitz

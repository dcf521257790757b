#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "accesslog/format.hpp"
#include "accesslog/record.hpp"
#include "metrics/instruments.hpp"

namespace blitz::accesslog {

/// Buffers formatted lines for one reactor and one Sink and hands them out in batches to write;
/// it does no I/O itself (the reactor submits io::Backend::write and reports the result).
///
/// Two buffers of `buffer_bytes` each: one fills while the other is written, so memory never
/// exceeds 2 × buffer_bytes and append() never blocks. A line that does not fit in the filling
/// buffer moves that buffer to the write side when the write side is idle and empty; otherwise
/// (a write in flight, or not yet started) the line is dropped and counted. Writes carry whole
/// lines only, except after a partial write (the remainder follows) and for a line longer than
/// buffer_bytes on its own: that line is cut to its first buffer_bytes - 1 bytes plus "\n" (a
/// cut JSON line is not valid JSON; size buffer_bytes above the longest line the listener's
/// header limits allow).
///
/// Use: append() per exchange; on the flush timer `if (w.wants_flush(now)) { auto b =
/// w.start_write(); ... }`; submit the bytes with io::Backend::write to the handle taken from
/// Sink::current() (keep the same handle while partial() is true, so a reopen never splits a
/// line between two files), and report the completion with write_done().
///
/// Thread: reactor-local; the counters may be read from any thread. Lifetime: owned by the
/// reactor; must outlive the write in flight (its bytes point into this object). Not copyable
/// or movable.
class Writer {
 public:
    /// Smallest buffer accepted; smaller requests are raised to it.
    static constexpr std::size_t kMinBufferBytes = 64;

    /// `flush_interval_ms`: the longest a line waits in a buffer that is less than half full.
    explicit Writer(std::size_t buffer_bytes, std::uint32_t flush_interval_ms = 1000);
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    /// Formats one line into the buffer. Returns false (and counts it dropped) when both
    /// buffers are taken: the previous batch is still being written.
    bool append(const Format& format, const Record& record) noexcept;

    /// The bytes to write now: the rest of a partially written batch, else the filled buffer.
    /// Empty when nothing is buffered or a write is in flight. The span stays valid until
    /// write_done().
    std::span<const char> start_write() noexcept;

    /// Reports the write of the last start_write(): bytes written (fewer than asked leaves the
    /// rest for the next start_write()), or -errno. An error, or 0 bytes for a non-empty write
    /// (which would repeat forever), drops the batch: counted in write_errors, its lines in
    /// dropped.
    void write_done(long result) noexcept;

    /// True when start_write() should be called now: no write in flight and something to
    /// write, and the filling buffer is at least half full, or a batch waits, or
    /// flush_interval_ms passed since the last true answer (which starts a new interval).
    /// `now_ms` is a monotonic clock in milliseconds.
    bool wants_flush(std::int64_t now_ms) noexcept;

    /// A write is submitted and not yet reported.
    bool write_in_flight() const noexcept { return in_flight_; }
    /// A batch was partially written and its remainder is pending or in flight: keep writing to
    /// the same file handle.
    bool partial() const noexcept { return out_done_ != 0; }
    /// Bytes buffered and not yet written (both buffers).
    std::size_t buffered_bytes() const noexcept { return fill_used_ + (out_used_ - out_done_); }
    /// The size of each of the two buffers.
    std::size_t buffer_bytes() const noexcept { return capacity_; }

    /// Lines accepted into the buffer (blitz_access_log_lines_total).
    const metrics::Counter& lines() const noexcept { return lines_; }
    /// Lines dropped for lack of buffer space or lost to a failed write
    /// (blitz_access_log_dropped_lines_total).
    const metrics::Counter& dropped() const noexcept { return dropped_; }
    /// Writes that failed.
    const metrics::Counter& write_errors() const noexcept { return write_errors_; }

 private:
    std::size_t capacity_;
    std::uint32_t flush_interval_ms_;
    std::unique_ptr<char[]> fill_;  // lines being appended
    std::unique_ptr<char[]> out_;   // the batch being (or about to be) written
    std::size_t fill_used_ = 0;
    std::size_t out_used_ = 0;
    std::size_t out_done_ = 0;  // bytes of out_ already written
    bool in_flight_ = false;
    std::int64_t last_flush_ms_ = INT64_MIN / 2;
    TimeCache time_;
    metrics::Counter lines_;
    metrics::Counter dropped_;
    metrics::Counter write_errors_;
};

}  // namespace blitz::accesslog

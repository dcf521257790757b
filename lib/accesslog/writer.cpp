#include "accesslog/writer.hpp"

#include <algorithm>
#include <utility>

namespace blitz::accesslog {

Writer::Writer(std::size_t buffer_bytes, std::uint32_t flush_interval_ms)
    : capacity_(std::max(buffer_bytes, kMinBufferBytes)),
      flush_interval_ms_(flush_interval_ms),
      fill_(new char[capacity_]),
      out_(new char[capacity_]) {}

bool Writer::append(const Format& format, const Record& record) noexcept {
    const std::size_t room = capacity_ - fill_used_;
    std::size_t n = format.format_to(record, time_, {fill_.get() + fill_used_, room});
    if (n <= room) {
        fill_used_ += n;
        lines_.add();
        return true;
    }
    if (fill_used_ != 0) {
        if (out_used_ != 0) {
            // Both buffers are taken until the write in flight (or about to start) finishes:
            // drop rather than block or grow.
            dropped_.add();
            return false;
        }
        std::swap(fill_, out_);
        out_used_ = fill_used_;
        out_done_ = 0;
        fill_used_ = 0;
        n = format.format_to(record, time_, {fill_.get(), capacity_});
        if (n <= capacity_) {
            fill_used_ = n;
            lines_.add();
            return true;
        }
    }
    // The line alone exceeds the buffer and now fills it: keep its start, end it with "\n".
    fill_[capacity_ - 1] = '\n';
    fill_used_ = capacity_;
    lines_.add();
    return true;
}

std::span<const char> Writer::start_write() noexcept {
    if (in_flight_) {
        return {};
    }
    if (out_used_ == 0) {
        if (fill_used_ == 0) {
            return {};
        }
        std::swap(fill_, out_);
        out_used_ = fill_used_;
        out_done_ = 0;
        fill_used_ = 0;
    }
    in_flight_ = true;
    return {out_.get() + out_done_, out_used_ - out_done_};
}

void Writer::write_done(long result) noexcept {
    if (!in_flight_) {
        return;
    }
    in_flight_ = false;
    const std::size_t remaining = out_used_ - out_done_;
    if (result <= 0) {
        write_errors_.add();
        // Every line still in the batch is lost, including one cut by an earlier partial write.
        dropped_.add(static_cast<std::uint64_t>(
            std::count(out_.get() + out_done_, out_.get() + out_used_, '\n')));
        out_used_ = 0;
        out_done_ = 0;
        return;
    }
    out_done_ += std::min(static_cast<std::size_t>(result), remaining);
    if (out_done_ == out_used_) {
        out_used_ = 0;
        out_done_ = 0;
    }
}

bool Writer::wants_flush(std::int64_t now_ms) noexcept {
    if (in_flight_ || (out_used_ == 0 && fill_used_ == 0)) {
        return false;
    }
    if (out_used_ != 0 || fill_used_ >= capacity_ / 2 ||
        now_ms - last_flush_ms_ >= static_cast<std::int64_t>(flush_interval_ms_)) {
        last_flush_ms_ = now_ms;
        return true;
    }
    return false;
}

}  // namespace blitz::accesslog

#pragma once

#include <array>
#include <cstdint>

namespace blitz::detail {

/// A hashed timing wheel for connection timeouts: O(1) arm/cancel, one pass over due slots per
/// loop turn, no syscall or SQE per timer. Timers are intrusive (embedded in their owner).
/// Resolution is kTickMs; a timer fires at or after its deadline, within one tick.
///
/// Thread: reactor-local. Lifetime: owned by the reactor; an owner cancels its timer before it
/// is destroyed.
class TimerWheel {
public:
    static constexpr std::uint64_t kTickMs = 8;
    static constexpr std::size_t kSlots = 1024;

    struct Timer {
        Timer* prev = nullptr;
        Timer* next = nullptr;
        std::uint64_t deadline_ms = 0;
        void (*fire)(Timer*) = nullptr;
        void* owner = nullptr;  ///< for the callback
        bool armed() const noexcept { return prev != nullptr; }
    };

    explicit TimerWheel(std::uint64_t now_ms) noexcept;
    TimerWheel(const TimerWheel&) = delete;
    TimerWheel& operator=(const TimerWheel&) = delete;

    /// (Re)arms `t` for `deadline_ms` (absolute, same clock as advance()).
    void arm(Timer& t, std::uint64_t deadline_ms) noexcept;
    void cancel(Timer& t) noexcept;
    /// Fires every timer whose deadline is <= now_ms. A fired timer is disarmed before its
    /// callback runs; the callback may re-arm it or arm/cancel others.
    void advance(std::uint64_t now_ms) noexcept;
    /// Milliseconds until the next slot holding a timer is due (0 if one is due now), or -1
    /// when no timer is armed.
    std::int64_t next_timeout_ms(std::uint64_t now_ms) const noexcept;
    std::size_t size() const noexcept { return count_; }

private:
    std::size_t slot_of(std::uint64_t tick) const noexcept { return tick & (kSlots - 1); }
    void link(Timer& t, std::size_t slot) noexcept;
    void unlink(Timer& t) noexcept;

    std::array<Timer, kSlots> heads_;  // sentinels of circular lists
    std::array<std::uint64_t, kSlots / 64> occupied_{};
    std::uint64_t current_tick_;  // every tick < current_tick_ has been processed
    std::size_t count_ = 0;
};

}  // namespace blitz::detail

#include "core/timer_wheel.hpp"

#include <algorithm>

namespace blitz::detail {

TimerWheel::TimerWheel(std::uint64_t now_ms) noexcept : current_tick_(now_ms / kTickMs) {
    for (auto& h : heads_) {
        h.prev = &h;
        h.next = &h;
    }
}

void TimerWheel::link(Timer& t, std::size_t slot) noexcept {
    Timer& h = heads_[slot];
    t.prev = h.prev;
    t.next = &h;
    h.prev->next = &t;
    h.prev = &t;
    occupied_[slot / 64] |= std::uint64_t{1} << (slot % 64);
    ++count_;
}

void TimerWheel::unlink(Timer& t) noexcept {
    t.prev->next = t.next;
    t.next->prev = t.prev;
    // A list whose sentinel points at itself is empty: clear the slot's occupancy bit.
    if (t.next == t.prev && t.next >= heads_.data() && t.next < heads_.data() + kSlots) {
        auto slot = static_cast<std::size_t>(t.next - heads_.data());
        occupied_[slot / 64] &= ~(std::uint64_t{1} << (slot % 64));
    }
    t.prev = nullptr;
    t.next = nullptr;
    --count_;
}

void TimerWheel::arm(Timer& t, std::uint64_t deadline_ms) noexcept {
    if (t.armed()) {
        unlink(t);
    }
    t.deadline_ms = deadline_ms;
    link(t, slot_of(std::max(deadline_ms / kTickMs, current_tick_)));
}

void TimerWheel::cancel(Timer& t) noexcept {
    if (t.armed()) {
        unlink(t);
    }
}

void TimerWheel::advance(std::uint64_t now_ms) noexcept {
    const std::uint64_t now_tick = now_ms / kTickMs;
    if (count_ == 0) {
        current_tick_ = std::max(current_tick_, now_tick);
        return;
    }
    // Slots of past ticks are visited once; the slot of the current tick is visited again on
    // the next call, since timers later in this tick are not due yet. One revolution covers
    // every slot, however long the loop was blocked.
    std::uint64_t first = current_tick_;
    if (now_tick > first + kSlots) {
        first = now_tick - kSlots;
    }
    for (std::uint64_t tick = first; tick <= now_tick && count_ > 0; ++tick) {
        const std::size_t slot = slot_of(tick);
        Timer& head = heads_[slot];
        if (head.next == &head) {
            continue;
        }
        // Detach the slot so callbacks may arm or cancel anything, this slot included.
        Timer pending;
        pending.next = head.next;
        pending.prev = head.prev;
        pending.next->prev = &pending;
        pending.prev->next = &pending;
        head.next = &head;
        head.prev = &head;
        occupied_[slot / 64] &= ~(std::uint64_t{1} << (slot % 64));
        while (pending.next != &pending) {
            Timer* t = pending.next;
            unlink(*t);
            if (t->deadline_ms <= now_ms) {
                t->fire(t);
            } else {
                link(*t, slot);  // a later revolution (or later in the current tick)
            }
        }
    }
    current_tick_ = std::max(current_tick_, now_tick);
}

std::int64_t TimerWheel::next_timeout_ms(std::uint64_t now_ms) const noexcept {
    if (count_ == 0) {
        return -1;
    }
    // Scan the occupancy bitmap a word at a time, starting at the current tick's slot.
    constexpr std::size_t kWords = kSlots / 64;
    const std::size_t start = slot_of(current_tick_);
    for (std::size_t i = 0; i <= kWords; ++i) {
        const std::size_t word = (start / 64 + i) % kWords;
        std::uint64_t bits = occupied_[word];
        if (i == 0) {
            bits &= ~std::uint64_t{0} << (start % 64);  // slots before `start` are a revolution away
        } else if (i == kWords) {
            bits &= (std::uint64_t{1} << (start % 64)) - 1;
        }
        if (bits != 0) {
            const std::size_t slot = word * 64 + static_cast<std::size_t>(__builtin_ctzll(bits));
            const std::size_t distance = (slot + kSlots - start) % kSlots;
            const std::uint64_t due = (current_tick_ + distance + 1) * kTickMs;
            return due > now_ms ? static_cast<std::int64_t>(due - now_ms) : 0;
        }
    }
    return 0;
}

}  // namespace blitz::detail

#include <cstdint>
#include <memory>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "core/timer_wheel.hpp"

using blitz::detail::TimerWheel;

namespace {

struct Probe {
    TimerWheel::Timer timer;
    std::vector<std::uint64_t>* log = nullptr;
    std::uint64_t* now = nullptr;
    TimerWheel* wheel = nullptr;
    std::uint64_t rearm_after = 0;

    Probe(std::vector<std::uint64_t>& fired, std::uint64_t& clock, TimerWheel* w = nullptr)
        : log(&fired), now(&clock), wheel(w) {
        timer.owner = this;
        timer.fire = [](TimerWheel::Timer* t) {
            auto* self = static_cast<Probe*>(t->owner);
            self->log->push_back(*self->now);
            if (self->rearm_after != 0) {
                self->wheel->arm(self->timer, *self->now + self->rearm_after);
                self->rearm_after = 0;
            }
        };
    }
};

}  // namespace

TEST_CASE("TimerWheel fires a timer at or after its deadline, within one tick", "[core]") {
    std::uint64_t now = 1000;
    TimerWheel wheel(now);
    std::vector<std::uint64_t> fired;
    Probe p(fired, now);
    wheel.arm(p.timer, now + 100);
    for (; now < 1300; ++now) {
        wheel.advance(now);
    }
    REQUIRE(fired.size() == 1);
    CHECK(fired[0] >= 1100);
    CHECK(fired[0] < 1100 + TimerWheel::kTickMs);
    CHECK(wheel.size() == 0);
}

TEST_CASE("TimerWheel keeps timers beyond one revolution until they are due", "[core]") {
    std::uint64_t now = 0;
    TimerWheel wheel(now);
    std::vector<std::uint64_t> fired;
    Probe p(fired, now);
    const std::uint64_t far = TimerWheel::kTickMs * TimerWheel::kSlots * 3 + 5;
    wheel.arm(p.timer, far);
    for (now = 0; now <= far + 20; now += 3) {
        wheel.advance(now);
    }
    REQUIRE(fired.size() == 1);
    CHECK(fired[0] >= far);
}

TEST_CASE("TimerWheel cancel and re-arm move a timer", "[core]") {
    std::uint64_t now = 0;
    TimerWheel wheel(now);
    std::vector<std::uint64_t> fired;
    Probe a(fired, now);
    Probe b(fired, now);
    wheel.arm(a.timer, 50);
    wheel.arm(b.timer, 60);
    wheel.cancel(a.timer);
    wheel.arm(b.timer, 500);  // re-arm later
    CHECK(wheel.size() == 1);
    for (now = 0; now < 400; now += 7) {
        wheel.advance(now);
    }
    CHECK(fired.empty());
    for (; now < 600; now += 7) {
        wheel.advance(now);
    }
    CHECK(fired.size() == 1);
}

TEST_CASE("TimerWheel lets a callback re-arm its own timer", "[core]") {
    std::uint64_t now = 0;
    TimerWheel wheel(now);
    std::vector<std::uint64_t> fired;
    Probe p(fired, now, &wheel);
    p.rearm_after = 30;
    wheel.arm(p.timer, 10);
    for (now = 0; now < 200; ++now) {
        wheel.advance(now);
    }
    REQUIRE(fired.size() == 2);
    CHECK(fired[1] >= fired[0] + 30);
}

TEST_CASE("TimerWheel reports how long the loop may sleep", "[core]") {
    std::uint64_t now = 0;
    TimerWheel wheel(now);
    CHECK(wheel.next_timeout_ms(now) == -1);
    std::vector<std::uint64_t> fired;
    Probe p(fired, now);
    wheel.arm(p.timer, 200);
    const auto t = wheel.next_timeout_ms(now);
    CHECK(t > 0);
    CHECK(t <= 200 + static_cast<std::int64_t>(TimerWheel::kTickMs));
    wheel.advance(now + static_cast<std::uint64_t>(t));
    now += static_cast<std::uint64_t>(t);
    CHECK(fired.size() == 1);
}

TEST_CASE("TimerWheel fires many timers after a long stall", "[core]") {
    std::uint64_t now = 0;
    TimerWheel wheel(now);
    std::vector<std::uint64_t> fired;
    std::vector<std::unique_ptr<Probe>> probes;
    for (std::size_t i = 0; i < 500; ++i) {
        probes.push_back(std::make_unique<Probe>(fired, now));
        wheel.arm(probes.back()->timer, 10 + i * 37);
    }
    now = 10 + 500 * 37;
    wheel.advance(now);
    CHECK(fired.size() == 500);
    CHECK(wheel.size() == 0);
}

#include <atomic>
#include <cstdint>
#include <thread>

#include <catch2/catch_test_macros.hpp>

#include "metrics/instruments.hpp"

using blitz::metrics::Counter;
using blitz::metrics::Gauge;

TEST_CASE("metrics::Counter adds and reads back", "[metrics]") {
    Counter c;
    CHECK(c.value() == 0);
    c.add();
    c.add(41);
    c.add(0);
    CHECK(c.value() == 42);
}

TEST_CASE("metrics::Counter moves its count into another and starts from zero", "[metrics]") {
    Counter from;
    Counter to;
    from.add(5);
    to.add(7);
    from.move_into(to);
    CHECK(from.value() == 0);
    CHECK(to.value() == 12);
    from.add();
    CHECK(from.value() == 1);
}

TEST_CASE("metrics::Gauge goes up, down, below zero and can be set", "[metrics]") {
    Gauge g;
    g.add();
    g.add(4);
    g.sub(2);
    CHECK(g.value() == 3);
    g.sub(5);
    CHECK(g.value() == -2);
    g.add(-1);
    CHECK(g.value() == -3);
    g.set(17);
    CHECK(g.value() == 17);
}

TEST_CASE("metrics::Counter read by another thread never goes backwards and ends exact",
          "[metrics]") {
    // One writer (the reactor), one reader (the scrape), as in the engine. Run under
    // -fsanitize=thread this also shows the reads are not data races.
    Counter c;
    constexpr std::uint64_t kAdds = 2'000'000;
    std::atomic<bool> done{false};
    std::uint64_t backwards = 0;
    std::uint64_t last = 0;
    std::thread scraper([&] {
        while (!done.load(std::memory_order_acquire)) {
            const std::uint64_t v = c.value();
            backwards += v < last ? 1 : 0;
            last = v;
        }
    });
    for (std::uint64_t i = 0; i < kAdds; ++i) {
        c.add(3);
    }
    done.store(true, std::memory_order_release);
    scraper.join();
    CHECK(backwards == 0);
    CHECK(last <= 3 * kAdds);
    CHECK(c.value() == 3 * kAdds);
}

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "metrics/instruments.hpp"
#include "metrics/label_cap.hpp"

using blitz::metrics::Counter;
using blitz::metrics::LabelCap;
using blitz::metrics::LabelFamily;

TEST_CASE("metrics::LabelCap keeps the first values seen and sends later ones to other",
          "[metrics]") {
    LabelCap cap(3);
    CHECK(cap.slots() == 4);
    CHECK(cap.overflow_slot() == 3);
    CHECK(cap.size() == 0);
    CHECK(cap.slot("a.example") == 0);
    CHECK(cap.slot("b.example") == 1);
    CHECK(cap.slot("a.example") == 0);
    CHECK(cap.slot("") == 2);
    CHECK(cap.size() == 3);
    CHECK(cap.slot("c.example") == 3);
    CHECK(cap.slot("d.example") == 3);
    CHECK(cap.slot("b.example") == 1);
    CHECK(cap.size() == 3);
    CHECK(cap.value(0) == "a.example");
    CHECK(cap.value(1) == "b.example");
    CHECK(cap.value(2) == "");
    CHECK(cap.value(3) == "other");
}

TEST_CASE("metrics::LabelCap never gives the value other or an overlong value its own slot",
          "[metrics]") {
    LabelCap cap(4, 8);
    // A request for host "other" must not become a second series labelled "other".
    CHECK(cap.slot("other") == cap.overflow_slot());
    CHECK(cap.slot("123456789") == cap.overflow_slot());
    CHECK(cap.slot("12345678") == 0);
    CHECK(cap.slot("others") == 1);
    CHECK(cap.size() == 2);
}

TEST_CASE("metrics::LabelCap with no kept values maps everything to other", "[metrics]") {
    LabelCap cap(0);
    CHECK(cap.slot("x") == 0);
    CHECK(cap.overflow_slot() == 0);
    CHECK(cap.value(0) == "other");
    CHECK(cap.size() == 0);
}

TEST_CASE("metrics::LabelCap gives many values distinct, stable slots", "[metrics]") {
    constexpr std::size_t kMax = 1000;
    LabelCap cap(kMax);
    for (std::size_t i = 0; i < kMax; ++i) {
        REQUIRE(cap.slot("host-" + std::to_string(i)) == i);
    }
    for (std::size_t i = 0; i < kMax; ++i) {
        REQUIRE(cap.slot("host-" + std::to_string(i)) == i);
        REQUIRE(cap.value(i) == "host-" + std::to_string(i));
    }
    CHECK(cap.slot("host-" + std::to_string(kMax)) == kMax);
}

TEST_CASE("metrics::LabelCap values published by the reactor are readable by a scraper",
          "[metrics]") {
    constexpr std::size_t kMax = 2000;
    LabelCap cap(kMax);
    std::atomic<bool> done{false};
    std::size_t mismatches = 0;
    std::size_t reads = 0;
    std::thread scraper([&] {
        while (!done.load(std::memory_order_acquire)) {
            const std::size_t n = cap.size();
            for (std::size_t i = 0; i < n; ++i) {
                mismatches += cap.value(i) != "value-" + std::to_string(i) ? 1 : 0;
                ++reads;
            }
        }
    });
    for (std::size_t i = 0; i < kMax; ++i) {
        cap.slot("value-" + std::to_string(i));
    }
    done.store(true, std::memory_order_release);
    scraper.join();
    CHECK(mismatches == 0);
    CHECK(cap.size() == kMax);
    INFO("values read concurrently: " << reads);
}

namespace {

// The instruments of one slot in the tests below: plain counts moved as the engine moves a
// series (LabelCap::rank()'s `move`).
struct Slots {
    explicit Slots(LabelCap& cap) : cap(cap), counts(cap.slots()) {}

    std::size_t observe(std::string_view value) {
        const std::size_t s = cap.slot(value);
        ++counts[s];
        return s;
    }
    std::size_t rank() {
        return cap.rank([](std::size_t) { return true; },
                        [this](std::size_t s) {
                            counts[cap.overflow_slot()] += counts[s];
                            counts[s] = 0;
                        });
    }
    std::size_t rank_in(LabelFamily& family, std::size_t member) {
        return cap.rank_shared(
            family, member, [](std::size_t) { return true; },
            [this](std::size_t s) {
                counts[cap.overflow_slot()] += counts[s];
                counts[s] = 0;
            });
    }
    std::uint64_t total() const {
        std::uint64_t n = 0;
        for (const std::uint64_t c : counts) {
            n += c;
        }
        return n;
    }
    bool kept(std::string_view value) const {
        for (std::size_t s = 0; s < cap.size(); ++s) {
            if (cap.value(s) == value) {
                return true;
            }
        }
        return false;
    }

    LabelCap& cap;
    std::vector<std::uint64_t> counts;
};

}  // namespace

TEST_CASE("metrics::LabelCap gives a late but busy value the slot of an idle early one",
          "[metrics]") {
    LabelCap cap(2);
    Slots slots(cap);
    slots.observe("early-a");
    slots.observe("early-b");
    slots.observe("early-b");
    CHECK(slots.rank() == 0);  // the slots just filled: candidates are counted from now on
    CHECK(cap.candidate_capacity() > 0);
    for (int i = 0; i < 50; ++i) {
        CHECK(slots.observe("late") == cap.overflow_slot());
    }
    const std::uint64_t before = cap.generation();
    CHECK(slots.rank() == 1);
    CHECK(cap.generation() == before + 2);
    // The least busy kept value made room; its count went to "other", and the late value's
    // series starts from zero.
    CHECK(cap.value(0) == "late");
    CHECK(cap.value(1) == "early-b");
    CHECK(slots.counts[0] == 0);
    CHECK(slots.counts[cap.overflow_slot()] == 51);
    CHECK(slots.observe("late") == 0);
    CHECK(slots.observe("early-a") == cap.overflow_slot());
    CHECK(slots.observe("early-b") == 1);
    CHECK(slots.total() == 56);
    CHECK(slots.rank() == 0);
}

TEST_CASE("metrics::LabelCap does not swap values of equal traffic back and forth", "[metrics]") {
    LabelCap cap(1);
    Slots slots(cap);
    slots.observe("x");
    slots.rank();
    std::size_t moves = 0;
    for (int round = 0; round < 40; ++round) {
        // Equal traffic, and the outsider a little ahead: within the margin, nothing moves.
        for (int i = 0; i < 100; ++i) {
            slots.observe("x");
            slots.observe("y");
        }
        for (int i = 0; i < 10; ++i) {
            slots.observe("y");
        }
        moves += slots.rank();
        if (round % 4 == 3) {
            cap.decay();
        }
    }
    CHECK(moves == 0);
    CHECK(cap.value(0) == "x");
    // Clearly busier: y takes the slot once, and equal traffic afterwards does not take it back.
    for (int i = 0; i < 1000; ++i) {
        slots.observe("y");
    }
    CHECK(slots.rank() == 1);
    CHECK(cap.value(0) == "y");
    for (int round = 0; round < 40; ++round) {
        for (int i = 0; i < 100; ++i) {
            slots.observe("x");
            slots.observe("y");
        }
        moves += slots.rank();
        cap.decay();
    }
    CHECK(moves == 0);
    CHECK(cap.value(0) == "y");
}

TEST_CASE("metrics::LabelCap memory does not grow with the number of distinct values",
          "[metrics]") {
    constexpr std::size_t kMax = 8;
    LabelCap cap(kMax);
    Slots slots(cap);
    for (std::size_t i = 0; i < kMax; ++i) {
        slots.observe("kept-" + std::to_string(i));
    }
    slots.rank();
    const std::size_t capacity = cap.candidate_capacity();
    CHECK(capacity >= 4 * kMax);
    CHECK(capacity <= 8 * kMax);
    // 200,000 one-off values, and among them a busy one (every tenth observation).
    std::uint64_t observations = kMax;
    for (std::size_t i = 0; i < 200'000; ++i) {
        slots.observe(i % 10 == 0 ? std::string("hot") : "once-" + std::to_string(i));
        ++observations;
        if (i % 20'000 == 19'999) {
            slots.rank();
            CHECK(cap.candidate_capacity() == capacity);
        }
    }
    CHECK(cap.size() == kMax);
    CHECK(cap.candidate_capacity() == capacity);
    // The busy value got a slot; no one-off did.
    CHECK(slots.kept("hot"));
    for (std::size_t s = 0; s < kMax; ++s) {
        CHECK(cap.value(s).rfind("once-", 0) == std::string::npos);
    }
    CHECK(slots.total() == observations);
}

TEST_CASE("metrics::LabelCap conserves every observation across re-ranks", "[metrics]") {
    constexpr std::size_t kMax = 5;
    LabelCap cap(kMax);
    Slots slots(cap);
    std::map<std::string, std::uint64_t>
        since_promoted;  // observations of a kept value in its series
    std::uint64_t observations = 0;
    std::uint64_t moves = 0;
    std::uint32_t rng = 12345;
    for (int round = 0; round < 200; ++round) {
        // Popularity drifts: each round favours a window of 8 values out of 40.
        for (int i = 0; i < 500; ++i) {
            rng = rng * 1664525u + 1013904223u;
            const std::size_t pick =
                (rng >> 8) % 100 < 80
                    ? (static_cast<std::size_t>(round) / 10 + (rng >> 20) % 8) % 40
                    : (rng >> 16) % 40;
            const std::string value = "v" + std::to_string(pick);
            if (slots.observe(value) != cap.overflow_slot()) {
                ++since_promoted[value];
            }
            ++observations;
        }
        std::vector<std::string> before;
        for (std::size_t s = 0; s < cap.size(); ++s) {
            before.push_back(cap.value(s));
        }
        moves += slots.rank();
        for (std::size_t s = 0; s < cap.size(); ++s) {
            if (s < before.size() && cap.value(s) != before[s]) {
                since_promoted[before[s]] = 0;     // demoted: its count is in "other" now
                since_promoted[cap.value(s)] = 0;  // promoted: a new series
            }
        }
        if (round % 5 == 4) {
            cap.decay();
        }
        REQUIRE(slots.total() == observations);
    }
    CHECK(moves > 10);
    for (std::size_t s = 0; s < kMax; ++s) {
        INFO("slot " << s << " holds " << cap.value(s));
        CHECK(slots.counts[s] == since_promoted[cap.value(s)]);
    }
}

TEST_CASE("metrics::LabelCap scrapes concurrent with re-ranks see consistent, growing counts",
          "[metrics]") {
    constexpr std::size_t kMax = 4;
    LabelCap cap(kMax);
    std::vector<std::unique_ptr<Counter>> counters;
    for (std::size_t i = 0; i < cap.slots(); ++i) {
        counters.push_back(std::make_unique<Counter>());
    }
    std::atomic<std::uint64_t> observed{0};  // published after each increment
    std::atomic<bool> done{false};
    std::atomic<std::size_t> scrapes{0};
    std::size_t inconsistent = 0;
    std::size_t other_decreased = 0;
    std::size_t retries = 0;
    std::thread scraper([&] {
        std::uint64_t last_total = 0;
        std::uint64_t last_other = 0;
        while (!done.load(std::memory_order_acquire)) {
            const std::uint64_t low = observed.load(std::memory_order_acquire);
            std::uint64_t total = 0;
            std::uint64_t other = 0;
            for (;;) {
                const std::uint64_t begin = cap.read_begin();
                total = 0;
                const std::size_t n = cap.size();
                for (std::size_t s = 0; s < n; ++s) {
                    total += counters[s]->value();
                }
                // A real scrape formats text as it goes: give moves time to happen mid-read.
                std::this_thread::yield();
                other = counters[cap.overflow_slot()]->value();
                total += other;
                if (cap.read_valid(begin)) {
                    break;
                }
                ++retries;
            }
            const std::uint64_t high = observed.load(std::memory_order_acquire);
            // A torn read of a move counts the moved counts twice or not at all; the counter
            // increment under way when the scrape began may or may not be seen.
            inconsistent += total + 1 < low || total > high + 1 ? 1 : 0;
            inconsistent += total < last_total ? 1 : 0;
            other_decreased += other < last_other ? 1 : 0;
            last_total = total;
            last_other = other;
            scrapes.fetch_add(1, std::memory_order_relaxed);
        }
    });
    const auto move = [&](std::size_t s) {
        counters[s]->move_into(*counters[cap.overflow_slot()]);
    };
    std::size_t moves = 0;
    // Until the scraper read a few hundred times (bounded, should the machine be very busy).
    for (int round = 0;
         round < 3000 || (scrapes.load(std::memory_order_relaxed) < 300 && round < 3'000'000);
         ++round) {
        for (int i = 0; i < 40; ++i) {
            // Each round a different group of values is the busiest.
            const std::string value = "v" + std::to_string((round + i % 6) % 12);
            counters[cap.slot(value)]->add();
            observed.fetch_add(1, std::memory_order_release);
        }
        moves += cap.rank([](std::size_t) { return true; }, move);
        cap.decay();
    }
    done.store(true, std::memory_order_release);
    scraper.join();
    INFO(scrapes.load() << " scrapes, " << retries << " retried, " << moves << " moves");
    CHECK(moves > 100);
    CHECK(inconsistent == 0);
    CHECK(other_decreased == 0);
}

TEST_CASE("metrics::LabelCap applies a demotion another member published and blocks the value",
          "[metrics]") {
    LabelFamily family;
    LabelCap c1(2);
    LabelCap c2(2);
    std::size_t m1 = 0;
    std::size_t m2 = 0;
    {
        std::lock_guard lock(family.mutex);
        m1 = family.attach();
        m2 = family.attach();
    }
    Slots s1(c1);
    Slots s2(c2);
    s1.observe("x");
    for (int i = 0; i < 5; ++i) {
        s1.observe("a");
    }
    for (int i = 0; i < 10; ++i) {
        s2.observe("x");
    }
    s2.observe("b");
    CHECK(s1.rank_in(family, m1) == 0);  // the slots just filled
    CHECK(s2.rank_in(family, m2) == 0);
    for (int i = 0; i < 40; ++i) {
        s1.observe("late");
    }
    CHECK(s1.rank_in(family, m1) == 1);  // x (1) makes room for late, on c1 and everywhere
    const auto pending = [&](std::string_view value) {
        std::lock_guard lock(family.mutex);
        return family.pending(value);
    };
    CHECK(pending("x"));
    // c2 keeps x until its next round.
    const std::size_t x = s2.observe("x");
    REQUIRE(x < c2.overflow_slot());
    CHECK(s2.rank_in(family, m2) == 1);
    CHECK(c2.vacant(x));
    CHECK(s2.counts[x] == 0);
    CHECK(s2.counts[c2.overflow_slot()] == 11);
    CHECK_FALSE(pending("x"));
    {
        std::lock_guard lock(family.mutex);
        CHECK(family.log_size() == 0);
    }
    // x is blocked (cooling down): it does not take the vacant slot; a new value does.
    CHECK(s2.observe("x") == c2.overflow_slot());
    CHECK(s2.observe("y") == x);
    CHECK_FALSE(c2.vacant(x));
    CHECK(c2.value(x) == "y");
    CHECK(s2.total() == 10 + 1 + 1 + 1 + 1);
    // c1 demoted x itself: it is blocked there too.
    CHECK(s1.observe("x") == c1.overflow_slot());
}

TEST_CASE("metrics::LabelFamily keeps an entry until every attached member applied it",
          "[metrics]") {
    LabelFamily family;
    std::lock_guard lock(family.mutex);
    const std::size_t a = family.attach();
    const std::size_t b = family.attach();
    family.publish(a, "x");
    CHECK(family.pending("x"));
    // A member attaching now starts at the oldest entry: it must apply x too.
    const std::size_t c = family.attach();
    std::vector<std::string> seen;
    family.apply(b, [&](std::string_view v) { seen.emplace_back(v); });
    CHECK(seen == std::vector<std::string>{"x"});
    CHECK(family.pending("x"));
    family.detach(c);  // a reactor that stopped keeps nothing back
    CHECK_FALSE(family.pending("x"));
    CHECK(family.log_size() == 0);
}

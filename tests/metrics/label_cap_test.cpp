#include <atomic>
#include <cstddef>
#include <string>
#include <thread>

#include <catch2/catch_test_macros.hpp>

#include "metrics/label_cap.hpp"

using blitz::metrics::LabelCap;

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

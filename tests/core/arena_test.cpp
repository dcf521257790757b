#include <blitz/arena.hpp>

#include <cstdint>
#include <cstring>
#include <string>

#include <catch2/catch_test_macros.hpp>

#include "core/block_pool.hpp"

TEST_CASE("Arena hands out aligned, non-overlapping memory", "[core]") {
    blitz::detail::BlockPool pool;
    blitz::Arena arena(&pool);
    char* prev_end = nullptr;
    for (int i = 0; i < 1000; ++i) {
        auto* p = static_cast<char*>(arena.allocate(24, 16));
        CHECK(reinterpret_cast<std::uintptr_t>(p) % 16 == 0);
        std::memset(p, i & 0xff, 24);
        if (prev_end != nullptr && p > prev_end - 24 && p < prev_end) {
            FAIL("overlap");
        }
        prev_end = p + 24;
    }
    CHECK(arena.used() == 24000);
}

TEST_CASE("Arena copies strings and serves oversized requests", "[core]") {
    blitz::detail::BlockPool pool;
    blitz::Arena arena(&pool);
    std::string big(10000, 'b');
    auto small = arena.copy("hello");
    auto large = arena.copy(big);
    auto after = arena.copy("world");
    CHECK(small == "hello");
    CHECK(large == big);
    CHECK(after == "world");
    CHECK(arena.copy("").empty());
}

TEST_CASE("Arena returns its blocks to the pool on reset, so reuse does not allocate", "[core]") {
    blitz::detail::BlockPool pool;
    {
        blitz::Arena arena(&pool);
        for (int i = 0; i < 3; ++i) {
            arena.allocate(3000, 8);
        }
        CHECK(pool.cached() == 0);
        arena.reset();
        CHECK(pool.cached() == 3);
        arena.allocate(100, 8);
        CHECK(pool.cached() == 2);
    }
    CHECK(pool.cached() == 3);
}

TEST_CASE("Arena works without a pool", "[core]") {
    blitz::Arena arena;
    CHECK(arena.copy("x") == "x");
    arena.allocate(100000, 16);
    arena.reset();
    CHECK(arena.used() == 0);
}

#include "router/prefix_index.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "router/string_map.hpp"

using blitz::router::hash_string;
using blitz::router::PrefixHasher;
using blitz::router::PrefixIndex;

namespace {

/// The keys of the chain from the longest prefix of `s`, longest first, as their values.
std::vector<std::uint32_t> chain(const PrefixIndex& index, std::string_view s) {
    std::vector<std::uint32_t> out;
    for (const PrefixIndex::Entry* e = index.longest_prefix_of(s); e != nullptr;
         e = index.shorter(*e)) {
        out.push_back(e->value);
    }
    return out;
}

}  // namespace

TEST_CASE("router::PrefixHasher gives every prefix the hash of the prefix on its own",
          "[router]") {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t size = 0; size < 80; ++size) {
        // A string of exactly `size` bytes on the heap, so a read past its end is caught by
        // sanitizers; the hasher's masked and overlapping loads must stay inside it.
        std::vector<char> bytes(size);
        for (char& c : bytes) {
            c = static_cast<char>(byte(rng));
        }
        const std::string_view s(bytes.data(), bytes.size());
        PrefixHasher ascending(s);
        for (std::size_t n = 0; n <= size; ++n) {
            INFO("size " << size << " prefix " << n);
            REQUIRE(ascending.hash(n) == hash_string(std::string(s.substr(0, n))));
        }
        // Going back to a shorter length starts over and still agrees.
        PrefixHasher back(s);
        REQUIRE(back.hash(size) == hash_string(std::string(s)));
        REQUIRE(back.hash(size / 2) == hash_string(std::string(s.substr(0, size / 2))));
    }
}

TEST_CASE("router::PrefixHasher tells apart strings that differ only in trailing zero bytes",
          "[router]") {
    using namespace std::string_literals;
    CHECK(hash_string("ab") != hash_string("ab\0"s));
    CHECK(hash_string("") != hash_string("\0"s));
    CHECK(hash_string(std::string(16, 'x')) != hash_string(std::string(16, 'x') + '\0'));
}

TEST_CASE("router::PrefixIndex finds the longest key that is a prefix, then each shorter one",
          "[router]") {
    PrefixIndex index;
    index.insert("/", 1);
    index.insert("/api", 2);
    index.insert("/api/", 3);
    index.insert("/api/v1/", 4);
    index.insert("/apix", 5);
    index.finish();
    CHECK(chain(index, "/api/v1/users") == std::vector<std::uint32_t>{4, 3, 2, 1});
    CHECK(chain(index, "/api/v1") == std::vector<std::uint32_t>{3, 2, 1});
    CHECK(chain(index, "/api") == std::vector<std::uint32_t>{2, 1});
    CHECK(chain(index, "/apixyz") == std::vector<std::uint32_t>{5, 2, 1});
    CHECK(chain(index, "/ap") == std::vector<std::uint32_t>{1});
    CHECK(chain(index, "").empty());
    CHECK(chain(index, "x/api/").empty());
}

TEST_CASE("router::PrefixIndex tries keys ending in '/' only where the path has one",
          "[router]") {
    PrefixIndex index;
    index.insert("/a/", 1);
    index.insert("/a/b", 2);
    index.finish();
    CHECK(chain(index, "/a/b/c") == std::vector<std::uint32_t>{2, 1});
    CHECK(chain(index, "/a/bc") == std::vector<std::uint32_t>{2, 1});
    CHECK(chain(index, "/a/") == std::vector<std::uint32_t>{1});
    CHECK(chain(index, "/a").empty());
    CHECK(chain(index, "/ab/").empty());
}

TEST_CASE("router::PrefixIndex keeps the first value of a key inserted twice", "[router]") {
    PrefixIndex index;
    CHECK(index.insert("/x", 10) == 0);
    CHECK(index.insert("/y", 20) == 1);
    CHECK(index.insert("/x", 30) == 0);
    index.finish();
    CHECK(index.size() == 2);
    CHECK(index.value(0) == 10);
    CHECK(chain(index, "/x/1") == std::vector<std::uint32_t>{10});
}

TEST_CASE("router::PrefixIndex matches the empty key everywhere", "[router]") {
    PrefixIndex index;
    index.insert("", 1);
    index.insert("/users/", 2);
    index.finish();
    CHECK(chain(index, "") == std::vector<std::uint32_t>{1});
    CHECK(chain(index, "/users/7") == std::vector<std::uint32_t>{2, 1});
    CHECK(chain(index, "/other") == std::vector<std::uint32_t>{1});
}

TEST_CASE("router::PrefixIndex agrees with a scan of the keys on random sets", "[router]") {
    std::mt19937 rng(99);
    auto pick = [&rng](std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    };
    auto random_string = [&](std::size_t max) {
        std::string s;
        const std::size_t n = pick(max + 1);
        for (std::size_t i = 0; i < n; ++i) {
            s += "ab/"[pick(3)];
        }
        return s;
    };
    // Long strings too, so that lengths span several 64-bit words of the length bitmap.
    auto long_string = [&](std::size_t min, std::size_t spread, std::size_t max_tail) {
        std::string s(min + pick(spread), 'a');
        s += random_string(max_tail);
        return s;
    };
    for (int round = 0; round < 200; ++round) {
        PrefixIndex index;
        std::vector<std::string> keys;
        const std::size_t count = 1 + pick(30);
        for (std::size_t i = 0; i < count; ++i) {
            const std::string key = pick(5) == 0 ? long_string(60, 80, 4) : random_string(8);
            if (index.insert(key, static_cast<std::uint32_t>(keys.size())) == keys.size()) {
                keys.push_back(key);
            }
        }
        index.finish();
        for (int q = 0; q < 50; ++q) {
            const std::string s = pick(4) == 0 ? long_string(60, 90, 6) : random_string(10);
            std::vector<std::uint32_t> want;
            for (std::size_t k = 0; k < keys.size(); ++k) {
                if (std::string_view(s).starts_with(keys[k])) {
                    want.push_back(static_cast<std::uint32_t>(k));
                }
            }
            std::sort(want.begin(), want.end(), [&keys](std::uint32_t a, std::uint32_t b) {
                return keys[a].size() > keys[b].size();
            });
            INFO("round " << round << " path " << s);
            REQUIRE(chain(index, s) == want);
        }
    }
}

namespace {

// Two keys of one length with the same hash_string(), found by brute force (12 bytes, 16
// letters each after the first: about 2^32 tries). If the hash function changes, search again:
// these tests need a real collision to check what happens on one.
constexpr std::string_view kCollidesA = "anehmhkndbaa";
constexpr std::string_view kCollidesB = "bnehmhkndbaa";

}  // namespace

TEST_CASE("router::StringMap tells apart keys whose hashes collide", "[router]") {
    REQUIRE(hash_string(kCollidesA) == hash_string(kCollidesB));
    blitz::router::StringMap<int> map;
    map.try_emplace(kCollidesA, 1);
    map.try_emplace(kCollidesB, 2);
    REQUIRE(map.find(kCollidesA) != nullptr);
    REQUIRE(map.find(kCollidesB) != nullptr);
    CHECK(*map.find(kCollidesA) == 1);
    CHECK(*map.find(kCollidesB) == 2);
    CHECK(map.size() == 2);
}

TEST_CASE("router::same_bytes finds a difference at any position of any length", "[router]") {
    // Heap copies of exactly n bytes, so that a sanitizer catches a word read past either end.
    for (std::size_t n = 0; n <= 40; ++n) {
        const std::vector<char> a(n, 'x');
        CHECK(blitz::router::same_bytes(a.data(), std::vector<char>(a).data(), n));
        for (std::size_t at = 0; at < n; ++at) {
            INFO("length " << n << " difference at " << at);
            std::vector<char> b = a;
            b[at] = 'y';
            CHECK_FALSE(blitz::router::same_bytes(a.data(), b.data(), n));
        }
    }
}

TEST_CASE("router::StringMap keeps short keys in their slots and long ones pooled", "[router]") {
    // Keys of every length up to well past a cache line, so both kinds of slot are used, and
    // enough of them for the map to grow (and move its slots) several times.
    blitz::router::StringMap<std::uint32_t> map;
    std::vector<std::string> keys;
    for (std::uint32_t n = 0; n < 600; ++n) {
        keys.push_back("/" + std::string(n % 150, static_cast<char>('a' + n % 26)) +
                       std::to_string(n));
        CHECK(map.try_emplace(keys.back(), n) == n);
    }
    CHECK(map.size() == keys.size());
    for (std::uint32_t n = 0; n < keys.size(); ++n) {
        INFO(keys[n]);
        REQUIRE(map.find(keys[n]) != nullptr);
        CHECK(*map.find(keys[n]) == n);
        CHECK(map.find(keys[n] + "x") == nullptr);
        CHECK(map.find(std::string_view(keys[n]).substr(0, keys[n].size() - 1)) == nullptr);
    }
    std::size_t seen = 0;
    map.for_each([&](std::string_view key, std::uint32_t value) {
        CHECK(key == keys[value]);
        ++seen;
    });
    CHECK(seen == keys.size());
}

TEST_CASE("router::PrefixIndex accepts a colliding key only through its prefix link",
          "[router]") {
    REQUIRE(hash_string(kCollidesA) == hash_string(kCollidesB));
    // "a" is a prefix of the path and the colliding key's bytes after it equal the path's: only
    // the link (the colliding key has none) tells that the key is not a prefix of the path.
    PrefixIndex index;
    index.insert("a", 1);
    index.insert(kCollidesB, 2);
    index.finish();
    CHECK(chain(index, std::string(kCollidesA) + "/x") == std::vector<std::uint32_t>{1});
    CHECK(chain(index, std::string(kCollidesB) + "/x") == std::vector<std::uint32_t>{2});

    PrefixIndex both;
    both.insert(kCollidesA, 1);
    both.insert(kCollidesB, 2);
    both.finish();
    CHECK(chain(both, kCollidesA) == std::vector<std::uint32_t>{1});
    CHECK(chain(both, kCollidesB) == std::vector<std::uint32_t>{2});
}

#include <chrono>
#include <cstring>

#include <catch2/catch_test_macros.hpp>

#include "tls/ticket_keys.hpp"

namespace {

using blitz::tls::TicketKeys;
using blitz::tls::compat::TicketKey;
using namespace std::chrono_literals;

bool same(const TicketKey& a, const TicketKey& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

}  // namespace

TEST_CASE("tls::TicketKeys derives different keys for each host", "[tls]") {
    TicketKeys keys;
    TicketKeys::Binding a{};
    TicketKeys::Binding b{};
    b[0] = 1;
    REQUIRE(keys.init(60s, {a, b}));
    TicketKey ka{};
    TicketKey kb{};
    REQUIRE(keys.encrypt_key(0, ka));
    REQUIRE(keys.encrypt_key(1, kb));
    CHECK(std::memcmp(ka.name, kb.name, sizeof ka.name) != 0);
    CHECK(std::memcmp(ka.aes, kb.aes, sizeof ka.aes) != 0);
    CHECK(std::memcmp(ka.mac, kb.mac, sizeof ka.mac) != 0);
    TicketKey found{};
    CHECK(keys.decrypt_key(0, ka.name, found) == 1);
    CHECK(same(found, ka));
    // Host 1 does not know host 0's name.
    CHECK(keys.decrypt_key(1, ka.name, found) == 0);
    CHECK_FALSE(keys.encrypt_key(2, found));
}

TEST_CASE("tls::TicketKeys accepts the previous period's key and renews it", "[tls]") {
    TicketKeys keys;
    REQUIRE(keys.init(60s, {TicketKeys::Binding{}}));
    TicketKey k0{};
    REQUIRE(keys.encrypt_key(0, k0));
    keys.advance_clock(59s);
    TicketKey k{};
    CHECK(keys.decrypt_key(0, k0.name, k) == 1);

    keys.advance_clock(1s);  // next period
    TicketKey k1{};
    REQUIRE(keys.encrypt_key(0, k1));
    CHECK_FALSE(same(k0, k1));
    CHECK(keys.decrypt_key(0, k0.name, k) == 2);
    CHECK(same(k, k0));
    CHECK(keys.decrypt_key(0, k1.name, k) == 1);

    keys.advance_clock(60s);
    CHECK(keys.decrypt_key(0, k0.name, k) == 0);
    CHECK(keys.decrypt_key(0, k1.name, k) == 2);

    // Two idle periods: nothing older survives.
    keys.advance_clock(120s);
    CHECK(keys.decrypt_key(0, k1.name, k) == 0);
}

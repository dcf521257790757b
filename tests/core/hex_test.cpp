#include "core/hex.hpp"

#include <cstdint>
#include <cstring>
#include <string>

#include <catch2/catch_test_macros.hpp>

namespace {

std::string hex(const std::uint8_t* in, std::size_t n) {
    std::string out(2 * n, '?');
    blitz::detail::encode_hex(in, n, out.data());
    return out;
}

}  // namespace

TEST_CASE("core::encode_hex writes every byte value as two lower-case digits", "[core]") {
    // Each byte value at each position of a four-byte group, and in the byte-wise tail.
    static constexpr char kDigits[] = "0123456789abcdef";
    for (unsigned v = 0; v < 256; ++v) {
        std::uint8_t in[6] = {0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};
        for (std::size_t pos = 0; pos < 6; ++pos) {
            in[pos] = static_cast<std::uint8_t>(v);
            std::string expect;
            for (std::uint8_t b : in) {
                expect += kDigits[b >> 4];
                expect += kDigits[b & 0x0f];
            }
            INFO("byte " << v << " at " << pos);
            CHECK(hex(in, 6) == expect);
            in[pos] = 0x5a;
        }
    }
}

TEST_CASE("core::encode_hex keeps byte order and writes nothing past 2n", "[core]") {
    const std::uint8_t id[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                                 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    CHECK(hex(id, 16) == "4bf92f3577b34da6a3ce929d0e0e4736");
    char out[12];
    std::memset(out, '#', sizeof out);
    blitz::detail::encode_hex(id, 5, out);
    CHECK(std::string(out, sizeof out) == "4bf92f3577##");
    CHECK(hex(id, 0).empty());
}

TEST_CASE("core::encode_hex128 writes every byte value at every position as encode_hex does",
          "[core]") {
    // The sixteen bytes go through one vector: each byte value in each of the sixteen positions
    // (most significant first, hi then lo) must come out as the byte-wise encoder writes it.
    for (unsigned v = 0; v < 256; ++v) {
        for (std::size_t pos = 0; pos < 16; ++pos) {
            std::uint8_t bytes[16];
            for (std::size_t i = 0; i < 16; ++i) {
                bytes[i] = static_cast<std::uint8_t>(i == pos ? v : 0x37 * (i + 1));
            }
            std::uint64_t hi = 0;
            std::uint64_t lo = 0;
            for (std::size_t i = 0; i < 8; ++i) {
                hi = hi << 8 | bytes[i];
                lo = lo << 8 | bytes[8 + i];
            }
            char out[34];
            std::memset(out, '#', sizeof out);
            blitz::detail::encode_hex128(hi, lo, out);
            INFO("byte " << v << " at " << pos);
            CHECK(std::string(out, 32) == hex(bytes, 16));
            CHECK(std::string(out + 32, 2) == "##");
        }
    }
}

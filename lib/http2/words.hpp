#pragma once

#include <cstdint>
#include <cstring>

/// Unaligned word loads for the codec's word-at-a-time checks and compares.
namespace blitz::http2 {

inline std::uint64_t load64(const char* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
}

inline std::uint32_t load32(const char* p) noexcept {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    return w;
}

}  // namespace blitz::http2

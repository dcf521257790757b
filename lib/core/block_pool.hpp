#pragma once

#include <cstddef>

namespace blitz::detail {

/// A free list of fixed-size blocks for arenas, so steady-state requests reuse memory instead
/// of calling malloc.
///
/// Thread: reactor-local. Lifetime: owned by a reactor; outlives every arena using it.
class BlockPool {
public:
    static constexpr std::size_t kBlockBytes = 4096;

    explicit BlockPool(std::size_t max_cached = 256) noexcept : max_cached_(max_cached) {}
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;
    ~BlockPool();

    /// A block of kBlockBytes (aligned for max_align_t).
    void* get();
    void put(void* block) noexcept;
    std::size_t cached() const noexcept { return cached_; }

private:
    struct Free {
        Free* next;
    };
    Free* free_ = nullptr;
    std::size_t cached_ = 0;
    std::size_t max_cached_;
};

}  // namespace blitz::detail

#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace blitz {

namespace detail {
class BlockPool;
}

/// A bump allocator for per-request data: copies of header values that must outlive the
/// receive buffer, response headers built by filters, small bodies. Blocks come from a
/// per-reactor pool and go back to it on reset(), so steady-state requests never call malloc.
///
/// Thread: reactor-local. Lifetime: reset when the exchange that owns it completes; every
/// pointer it returned dies then.
class Arena {
public:
    explicit Arena(detail::BlockPool* pool = nullptr) noexcept : pool_(pool) {}
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    ~Arena() { reset(); }

    /// `n` bytes aligned to `align` (a power of two, at most 16). Never fails: oversized
    /// requests get a block of their own.
    void* allocate(std::size_t n, std::size_t align = alignof(std::max_align_t)) {
        // Inline while the current block has room (nearly every call), else a new block.
        const auto aligned = (reinterpret_cast<std::uintptr_t>(cur_) + align - 1) & ~(align - 1);
        if (cur_ != nullptr && aligned + n <= reinterpret_cast<std::uintptr_t>(end_)) {
            cur_ = reinterpret_cast<char*>(aligned + n);
            used_ += n;
            return reinterpret_cast<void*>(aligned);
        }
        return allocate_block(n, align);
    }
    /// A copy of `s` owned by the arena.
    std::string_view copy(std::string_view s);
    /// Gives every block back to the pool.
    void reset() noexcept;
    /// Bytes handed out since the last reset (for tests and limits).
    std::size_t used() const noexcept { return used_; }

private:
    struct Block;

    void* allocate_block(std::size_t n, std::size_t align);
    detail::BlockPool* pool_;
    Block* head_ = nullptr;
    char* cur_ = nullptr;
    char* end_ = nullptr;
    std::size_t used_ = 0;
};

}  // namespace blitz

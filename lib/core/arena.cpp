#include <blitz/arena.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/block_pool.hpp"

namespace blitz {

namespace detail {

BlockPool::~BlockPool() {
    while (free_ != nullptr) {
        Free* next = free_->next;
        std::free(free_);
        free_ = next;
    }
}

void* BlockPool::get() {
    if (free_ != nullptr) {
        Free* f = free_;
        free_ = f->next;
        --cached_;
        return f;
    }
    void* p = std::malloc(kBlockBytes);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    return p;
}

void BlockPool::put(void* block) noexcept {
    if (cached_ >= max_cached_) {
        std::free(block);
        return;
    }
    auto* f = static_cast<Free*>(block);
    f->next = free_;
    free_ = f;
    ++cached_;
}

}  // namespace detail

// A block starts with this header; pooled blocks are exactly BlockPool::kBlockBytes long,
// oversized ones are malloc'ed for one allocation and freed on reset.
struct Arena::Block {
    Block* next;
    std::size_t bytes;
};

namespace {
constexpr std::size_t kHeader = (sizeof(void*) * 2 + 15) & ~std::size_t{15};
}

void* Arena::allocate_block(std::size_t n, std::size_t align) {
    const std::size_t pooled = detail::BlockPool::kBlockBytes;
    std::size_t want = kHeader + n + align;
    Block* b;
    if (want <= pooled) {
        void* mem = pool_ != nullptr ? pool_->get() : std::malloc(pooled);
        if (mem == nullptr) {
            throw std::bad_alloc();
        }
        b = static_cast<Block*>(mem);
        b->bytes = pooled;
    } else {
        void* mem = std::malloc(want);
        if (mem == nullptr) {
            throw std::bad_alloc();
        }
        b = static_cast<Block*>(mem);
        b->bytes = want;
    }
    b->next = head_;
    head_ = b;
    char* start = reinterpret_cast<char*>(b) + kHeader;
    char* end = reinterpret_cast<char*>(b) + b->bytes;
    auto a = (reinterpret_cast<std::uintptr_t>(start) + align - 1) & ~(align - 1);
    // Only switch the bump pointer to the new block when it has more room left than the old.
    if (want <= pooled || cur_ == nullptr) {
        cur_ = reinterpret_cast<char*>(a + n);
        end_ = end;
    }
    used_ += n;
    return reinterpret_cast<void*>(a);
}

std::string_view Arena::copy(std::string_view s) {
    if (s.empty()) {
        return {};
    }
    auto* p = static_cast<char*>(allocate(s.size(), 1));
    std::memcpy(p, s.data(), s.size());
    return {p, s.size()};
}

void Arena::reset() noexcept {
    while (head_ != nullptr) {
        Block* next = head_->next;
        if (head_->bytes == detail::BlockPool::kBlockBytes) {
            if (pool_ != nullptr) {
                pool_->put(head_);
            } else {
                std::free(head_);
            }
        } else {
            std::free(head_);
        }
        head_ = next;
    }
    cur_ = nullptr;
    end_ = nullptr;
    used_ = 0;
}

}  // namespace blitz

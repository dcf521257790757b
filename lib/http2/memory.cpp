#include "http2/memory.hpp"

#include <nghttp2/nghttp2.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace blitz::http2 {

namespace {

// nghttp2 allocates and frees small objects per stream and per header (stream state, outbound
// items, header buffers). Blocks of up to 512 bytes come from per-thread free lists by
// power-of-two class, so steady-state requests reuse memory instead of calling malloc; larger
// ones (the session, its HPACK tables and frame buffer: kept for the connection's life) go to
// malloc at their exact size, so an idle connection does not pay for rounding. Each block starts
// with a 16-byte header naming its class, so free and realloc know its size.
constexpr std::size_t kHeader = 16;
constexpr unsigned kClasses = 5;            // 32 B .. 512 B including the header
constexpr std::size_t kMinBlock = 32;
constexpr std::size_t kMaxCached = 256;     // blocks kept per class and thread
constexpr std::uint32_t kLarge = 0xffffffff;

struct Free {
    Free* next;
};

struct Cache {
    std::array<Free*, kClasses> lists{};
    std::array<std::size_t, kClasses> counts{};

    ~Cache() {
        for (Free*& head : lists) {
            while (head != nullptr) {
                Free* next = head->next;
                std::free(head);
                head = next;
            }
        }
    }
};

// initial-exec: libblitz is linked, not dlopen()ed, so the lists are reached without a call to
// __tls_get_addr on every allocation.
[[gnu::tls_model("initial-exec")]] thread_local Cache cache;

unsigned class_of(std::size_t total) noexcept {
    unsigned c = 0;
    std::size_t block = kMinBlock;
    while (block < total) {
        block <<= 1;
        ++c;
    }
    return c;
}

std::size_t block_bytes(unsigned c) noexcept { return kMinBlock << c; }

void* allocate(std::size_t size, void*) {
    const std::size_t total = size + kHeader;
    const unsigned c = class_of(total);
    char* base;
    if (c >= kClasses) {
        base = static_cast<char*>(std::malloc(total));
        if (base == nullptr) {
            return nullptr;
        }
        std::memcpy(base, &kLarge, sizeof kLarge);
        return base + kHeader;
    }
    if (Free* f = cache.lists[c]) {
        cache.lists[c] = f->next;
        --cache.counts[c];
        base = reinterpret_cast<char*>(f);
    } else {
        base = static_cast<char*>(std::malloc(block_bytes(c)));
        if (base == nullptr) {
            return nullptr;
        }
    }
    const std::uint32_t tag = c;
    std::memcpy(base, &tag, sizeof tag);
    return base + kHeader;
}

void release(void* p, void*) {
    if (p == nullptr) {
        return;
    }
    char* base = static_cast<char*>(p) - kHeader;
    std::uint32_t tag;
    std::memcpy(&tag, base, sizeof tag);
    if (tag == kLarge || cache.counts[tag] >= kMaxCached) {
        std::free(base);
        return;
    }
    auto* f = reinterpret_cast<Free*>(base);
    f->next = cache.lists[tag];
    cache.lists[tag] = f;
    ++cache.counts[tag];
}

void* allocate_zeroed(std::size_t n, std::size_t size, void* user) {
    if (size != 0 && n > ~std::size_t{0} / 2 / size) {
        return nullptr;
    }
    void* p = allocate(n * size, user);
    if (p != nullptr) {
        std::memset(p, 0, n * size);
    }
    return p;
}

void* reallocate(void* p, std::size_t size, void* user) {
    if (p == nullptr) {
        return allocate(size, user);
    }
    if (size == 0) {
        release(p, user);
        return nullptr;
    }
    char* base = static_cast<char*>(p) - kHeader;
    std::uint32_t tag;
    std::memcpy(&tag, base, sizeof tag);
    if (tag == kLarge) {
        auto* grown = static_cast<char*>(std::realloc(base, size + kHeader));
        return grown == nullptr ? nullptr : grown + kHeader;
    }
    const std::size_t usable = block_bytes(tag) - kHeader;
    if (size <= usable) {
        return p;
    }
    void* moved = allocate(size, user);
    if (moved != nullptr) {
        std::memcpy(moved, p, usable);
        release(p, user);
    }
    return moved;
}

nghttp2_mem memory{nullptr, &allocate, &release, &allocate_zeroed, &reallocate};

}  // namespace

nghttp2_mem* session_memory() noexcept { return &memory; }

}  // namespace blitz::http2

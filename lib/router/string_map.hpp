#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace blitz::router {

/// An open-addressing hash map from strings to small values, looked up by string_view without
/// allocating (the route table's lookups run on the request path).
///
/// Keys live in one pooled string and 16-byte slots hold only (hash, offset, length, value)
/// for a 4-byte value, so a lookup touches one slot and one run of key bytes and a table of
/// 10,000 keys stays within a few hundred kilobytes; linear probing at a load factor of at
/// most 3/4 keeps probe sequences short.
///
/// Thread: built single-threaded; once built, find() is safe from any number of threads.
/// Lifetime: value type; find() results are valid until the next try_emplace().
template <class V>
class StringMap {
public:
    /// The value for `key`, inserting `init` first when the key is absent.
    V& try_emplace(std::string_view key, V init) {
        if ((size_ + 1) * 4 > slots_.size() * 3) {
            grow();
        }
        const std::uint32_t hash = hash_of(key);
        std::size_t i = hash & mask_;
        while (slots_[i].offset != kEmpty) {
            if (equal(slots_[i], hash, key)) {
                return slots_[i].value;
            }
            i = (i + 1) & mask_;
        }
        Slot& slot = slots_[i];
        slot.hash = hash;
        slot.offset = static_cast<std::uint32_t>(pool_.size());
        slot.length = static_cast<std::uint32_t>(key.size());
        slot.value = std::move(init);
        pool_.append(key);
        ++size_;
        return slot.value;
    }

    /// The value for `key`, or nullptr.
    const V* find(std::string_view key) const noexcept {
        if (size_ == 0) {
            return nullptr;
        }
        const std::uint32_t hash = hash_of(key);
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            const Slot& slot = slots_[i];
            if (slot.offset == kEmpty) {
                return nullptr;
            }
            if (equal(slot, hash, key)) {
                return &slot.value;
            }
        }
    }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    /// Calls f(key, value) for every entry, in no particular order.
    template <class F>
    void for_each(F&& f) const {
        for (const Slot& slot : slots_) {
            if (slot.offset != kEmpty) {
                f(std::string_view(pool_).substr(slot.offset, slot.length), slot.value);
            }
        }
    }

private:
    static constexpr std::uint32_t kEmpty = ~std::uint32_t{0};

    struct Slot {
        std::uint32_t hash = 0;  ///< the low bits of the key's hash: enough to index and filter
        std::uint32_t offset = kEmpty;
        std::uint32_t length = 0;
        V value{};
    };

    /// Eight bytes per multiply, then MurmurHash3's 64-bit finaliser so the low bits used for
    /// indexing depend on every input bit. Keys come from the config, so an attacker choosing
    /// request paths can only probe, never build, collision chains.
    static std::uint32_t hash_of(std::string_view key) noexcept {
        constexpr std::uint64_t kMul = 0x9e3779b97f4a7c15;
        std::uint64_t h = key.size() * kMul;
        const char* p = key.data();
        std::size_t n = key.size();
        for (; n >= 8; p += 8, n -= 8) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            h = std::rotl(h ^ (w * kMul), 29) * kMul;
        }
        if (n != 0) {
            std::uint64_t w = 0;
            std::memcpy(&w, p, n);
            h = std::rotl(h ^ (w * kMul), 29) * kMul;
        }
        h ^= h >> 33;
        h *= 0xff51afd7ed558ccd;
        h ^= h >> 33;
        h *= 0xc4ceb9fe1a85ec53;
        h ^= h >> 33;
        return static_cast<std::uint32_t>(h);
    }

    bool equal(const Slot& slot, std::uint32_t hash, std::string_view key) const noexcept {
        return slot.hash == hash && slot.length == key.size() &&
               std::memcmp(pool_.data() + slot.offset, key.data(), key.size()) == 0;
    }

    void grow() {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
        mask_ = slots_.size() - 1;
        for (Slot& slot : old) {
            if (slot.offset == kEmpty) {
                continue;
            }
            std::size_t i = slot.hash & mask_;
            while (slots_[i].offset != kEmpty) {
                i = (i + 1) & mask_;
            }
            slots_[i] = std::move(slot);
        }
    }

    std::vector<Slot> slots_;
    std::string pool_;
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

}  // namespace blitz::router

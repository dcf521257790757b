#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blitz::router {

/// Hashes the prefixes of one string, shortest first, each in time proportional to the bytes
/// added since the previous one: probing every candidate prefix of a request path costs one pass
/// over the path. hash(n) equals hash_string(s.substr(0, n)), the hash StringMap stores.
///
/// Sixteen bytes per step, folded by one 64x64->128-bit multiply (its two halves xor-ed), so a
/// 20-byte path costs three multiplies. Keys come from the config, so an attacker choosing
/// request paths can only probe, never build, collision chains.
///
/// Thread: one caller. Lifetime: views the string it hashes.
class PrefixHasher {
public:
    explicit PrefixHasher(std::string_view s) noexcept : s_(s) {}

    /// The hash of the first `length` bytes (at most the string's size). Cheapest when lengths
    /// do not decrease from call to call; a shorter length starts over.
    std::uint32_t hash(std::size_t length) noexcept {
        if (length < blocks_ * 16) {
            blocks_ = 0;
            state_ = 0;
        }
        for (; (blocks_ + 1) * 16 <= length; ++blocks_) {
            const char* p = s_.data() + blocks_ * 16;
            state_ = fold(load(p, 8) ^ state_ ^ kK0, load(p + 8, 8) ^ kK1);
        }
        std::uint64_t h = state_;
        if (const std::size_t rest = length - blocks_ * 16; rest != 0) {
            const char* p = s_.data() + blocks_ * 16;
            const std::uint64_t a = load(p, rest < 8 ? rest : 8);
            const std::uint64_t b = rest > 8 ? load(p + 8, rest - 8) : 0;
            h = fold(a ^ h ^ kK0, b ^ kK1);
        }
        // The length goes in last, so "ab" and "ab\0" (same padded words) differ.
        h = fold(h ^ kK2, length ^ kK3);
        return static_cast<std::uint32_t>(h ^ (h >> 32));
    }

private:
    static constexpr std::uint64_t kK0 = 0x9e3779b97f4a7c15;
    static constexpr std::uint64_t kK1 = 0xc2b2ae3d27d4eb4f;
    static constexpr std::uint64_t kK2 = 0x165667b19e3779f9;
    static constexpr std::uint64_t kK3 = 0x27d4eb2f165667c5;

    static std::uint64_t fold(std::uint64_t a, std::uint64_t b) noexcept {
        __extension__ using U128 = unsigned __int128;
        const U128 r = static_cast<U128>(a) * b;
        return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
    }

    /// The `n` (1..8) bytes at `p` as a native word zero-padded like memcpy into 0 would
    /// leave it, without a variable-length memcpy call.
    std::uint64_t load(const char* p, std::size_t n) const noexcept {
        std::uint64_t w = 0;
        if (n == 8) {
            std::memcpy(&w, p, 8);
            return w;
        }
        if constexpr (std::endian::native == std::endian::little) {
            if (p + 8 <= s_.data() + s_.size()) {
                // Bytes past the prefix but inside the string are readable: mask them off.
                std::memcpy(&w, p, 8);
                return w & (~std::uint64_t{0} >> (64 - 8 * n));
            }
            if (n >= 4) {
                // Two overlapping 4-byte loads place every byte where memcpy would.
                std::uint32_t lo;
                std::uint32_t hi;
                std::memcpy(&lo, p, 4);
                std::memcpy(&hi, p + n - 4, 4);
                return lo | (std::uint64_t{hi} << (8 * (n - 4)));
            }
            const auto byte = [p](std::size_t i) {
                return std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
            };
            return byte(0) | byte(n / 2) | byte(n - 1);
        }
        std::memcpy(&w, p, n);
        return w;
    }

    std::string_view s_;
    std::size_t blocks_ = 0;  ///< whole 16-byte blocks folded into state_
    std::uint64_t state_ = 0;
};

/// The hash StringMap keys by.
inline std::uint32_t hash_string(std::string_view s) noexcept {
    return PrefixHasher(s).hash(s.size());
}

/// Whether the `n` bytes at `a` and at `b` are equal: memcmp() == 0 without the library call,
/// for the short keys of route tables, compared a word at a time.
inline bool same_bytes(const char* a, const char* b, std::size_t n) noexcept {
    const auto word = [](const char* p) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        return w;
    };
    const auto half = [](const char* p) {
        std::uint32_t w;
        std::memcpy(&w, p, 4);
        return w;
    };
    if (n >= 8) {
        for (std::size_t i = 0; i + 8 < n; i += 8) {
            if (word(a + i) != word(b + i)) {
                return false;
            }
        }
        // The last eight bytes, overlapping the words compared above.
        return word(a + n - 8) == word(b + n - 8);
    }
    if (n >= 4) {
        return half(a) == half(b) && half(a + n - 4) == half(b + n - 4);
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

/// An open-addressing hash map from strings to small values, looked up by string_view without
/// allocating (the route table's lookups run on the request path).
///
/// Each slot is one 64-byte cache line holding the key's hash, its length, the value and, when
/// it fits (up to 36 to 48 bytes, by the value's size: most paths and hosts), the key itself;
/// longer keys live in one pooled string. Next to the slots, one tag byte per slot (0 when
/// free, else 7 bits of the hash) is what the linear probing reads: the tags of a 10,000-key
/// map take 16 KiB and stay in cache, while its slots do not. So a lookup reads the one slot whose tag matches (a false
/// match costs one more, with odds of 1 in 128 per probe): one cache line for a short key, and
/// none for a key that is absent.
///
/// Thread: built single-threaded; once built, find() is safe from any number of threads.
/// Lifetime: value type; find() results and for_each() keys are valid until the next
/// try_emplace().
template <class V>
class StringMap {
public:
    /// The value for `key`, inserting `init` first when the key is absent.
    V& try_emplace(std::string_view key, V init) {
        if ((size_ + 1) * 4 > slots_.size() * 3) {
            grow();
        }
        const std::uint32_t hash = hash_string(key);
        std::size_t i = hash & mask_;
        while (tags_[i] != kFree) {
            if (tags_[i] == tag_of(hash) && equal(slots_[i], hash, key)) {
                return slots_[i].value;
            }
            i = (i + 1) & mask_;
        }
        tags_[i] = tag_of(hash);
        Slot& slot = slots_[i];
        slot.hash = hash;
        slot.length = static_cast<std::uint32_t>(key.size());
        if (key.size() <= kInlineBytes) {
            std::memcpy(slot.bytes, key.data(), key.size());
        } else {
            slot.offset = static_cast<std::uint32_t>(pool_.size());
            pool_.append(key);
        }
        slot.value = std::move(init);
        ++size_;
        return slot.value;
    }

    /// The value for `key`, or nullptr.
    const V* find(std::string_view key) const noexcept { return find(key, hash_string(key)); }

    V* find(std::string_view key) noexcept {
        return const_cast<V*>(std::as_const(*this).find(key));
    }

    /// The value for `key` whose hash_string() the caller computed, or nullptr.
    const V* find(std::string_view key, std::uint32_t hash) const noexcept {
        return find_if(hash, key.size(), [key](const char* stored, const V&) {
            return same_bytes(stored, key.data(), key.size());
        });
    }

    /// The first value whose key has this hash and length and for which same(key bytes, value)
    /// holds, or nullptr: for callers that know part of the key already matches.
    template <class Same>
    const V* find_if(std::uint32_t hash, std::size_t length, Same&& same) const noexcept {
        if (size_ == 0) {
            return nullptr;
        }
        const std::uint8_t tag = tag_of(hash);
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            if (tags_[i] == kFree) {
                return nullptr;
            }
            if (tags_[i] != tag) {
                continue;
            }
            const Slot& slot = slots_[i];
            if (slot.hash == hash && slot.length == length && same(key_of(slot), slot.value)) {
                return &slot.value;
            }
        }
    }

    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

    /// Calls f(key, value) for every entry, in no particular order.
    template <class F>
    void for_each(F&& f) const {
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            if (tags_[i] != kFree) {
                f(std::string_view(key_of(slots_[i]), slots_[i].length), slots_[i].value);
            }
        }
    }

    /// Calls f(key, value) for every entry, in no particular order; f may change the value.
    template <class F>
    void for_each(F&& f) {
        for (std::size_t i = 0; i < slots_.size(); ++i) {
            if (tags_[i] != kFree) {
                f(std::string_view(key_of(slots_[i]), slots_[i].length), slots_[i].value);
            }
        }
    }

private:
    static constexpr std::uint8_t kFree = 0;

    /// The tag of a used slot: never kFree; from the hash's high bits, as its low bits are the
    /// slot's index.
    static std::uint8_t tag_of(std::uint32_t hash) noexcept {
        return static_cast<std::uint8_t>(0x80 | (hash >> 25));
    }

    /// What a slot holds besides the key's bytes.
    struct Head {
        std::uint32_t hash = 0;  ///< the low bits of the key's hash: enough to index and filter
        std::uint32_t length = 0;
        std::uint32_t offset = 0;  ///< where pool_ holds a key longer than kInlineBytes
        V value{};
    };

    static constexpr std::size_t kSlotBytes = (sizeof(Head) + 16 + 63) / 64 * 64;
    static constexpr std::size_t kInlineBytes = kSlotBytes - sizeof(Head);

    struct alignas(64) Slot : Head {
        char bytes[kInlineBytes];
    };

    const char* key_of(const Slot& slot) const noexcept {
        return slot.length <= kInlineBytes ? slot.bytes : pool_.data() + slot.offset;
    }

    bool equal(const Slot& slot, std::uint32_t hash, std::string_view key) const noexcept {
        return slot.hash == hash && slot.length == key.size() &&
               same_bytes(key_of(slot), key.data(), key.size());
    }

    void grow() {
        std::vector<Slot> old = std::move(slots_);
        const std::vector<std::uint8_t> old_tags = std::move(tags_);
        slots_.assign(old.empty() ? 16 : old.size() * 2, Slot{});
        tags_.assign(slots_.size(), kFree);
        mask_ = slots_.size() - 1;
        for (std::size_t k = 0; k < old.size(); ++k) {
            if (old_tags[k] == kFree) {
                continue;
            }
            std::size_t i = old[k].hash & mask_;
            while (tags_[i] != kFree) {
                i = (i + 1) & mask_;
            }
            tags_[i] = old_tags[k];
            slots_[i] = std::move(old[k]);
        }
    }

    std::vector<std::uint8_t> tags_;  ///< by slot: kFree or tag_of(hash)
    std::vector<Slot> slots_;
    std::string pool_;  ///< keys longer than kInlineBytes
    std::size_t mask_ = 0;
    std::size_t size_ = 0;
};

}  // namespace blitz::router

#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "router/string_map.hpp"

namespace blitz::router {

/// A map from byte-string keys to values that finds, for a request path, the longest key that
/// is a prefix of it and then, one link at a time, each shorter such key.
///
/// Keys are hashed whole into a StringMap. A lookup hashes the path's prefixes of the lengths
/// some key has, in ascending order and in one incremental pass (see PrefixHasher); a key
/// ending in '/' is only tried where the path has a '/', so a table of "/api/v1/resource42/"
/// keys costs about one probe per path segment. The work is O(path length), does not grow
/// with the number of keys (a radix tree's walk grows with their depth), and allocates nothing.
///
/// Each key is linked to its longest proper prefix among the keys, which also keeps a lookup's
/// byte comparisons to one pass: a candidate is accepted only if its link is the key found
/// before it, so only its bytes beyond that key are compared.
///
/// The value is stored in the hash slot, so a lookup that stops at the longest key reads the
/// slot and the key's bytes and nothing else: keep V small and trivially copyable.
///
/// Thread: built single-threaded; after finish(), lookups are safe from any number of threads.
/// Lifetime: value type; Entry pointers are valid while the index is.
template <class V>
class BasicPrefixIndex {
public:
    static constexpr std::uint32_t kNone = ~std::uint32_t{0};

    /// A key's id (dense from 0, in insertion order), its link and its value.
    struct Entry {
        std::uint32_t id = kNone;
        std::uint32_t shorter = kNone;  ///< id of the longest key that is a proper prefix
        V value{};
    };

    /// Adds `key` with `value` and returns its id; a key added before keeps its value and id.
    std::uint32_t insert(std::string_view key, V value) {
        Entry& entry = keys_.try_emplace(key, Entry{});
        if (entry.id != kNone) {
            return entry.id;
        }
        entry.id = static_cast<std::uint32_t>(entries_.size());
        entry.value = value;
        entries_.push_back(entry);
        const std::size_t n = key.size();
        if (lengths_.size() <= n / 64) {
            lengths_.resize(n / 64 + 1);
        }
        const std::uint64_t bit = std::uint64_t{1} << (n % 64);
        if (n != 0 && key.back() == '/') {
            lengths_[n / 64].slash |= bit;
        } else {
            lengths_[n / 64].other |= bit;
        }
        max_length_ = std::max(max_length_, n);
        return entry.id;
    }

    /// The value of key `id`.
    const V& value(std::uint32_t id) const noexcept { return entries_[id].value; }

    /// Replaces every value v by f(v).
    template <class F>
    void transform_values(F&& f) {
        keys_.for_each([this, &f](std::string_view, Entry& e) {
            e.value = f(e.value);
            entries_[e.id].value = e.value;
        });
    }

    /// Links every key to its longest proper prefix. Call once, after the last insert().
    void finish() {
        std::vector<std::string_view> keys;
        keys.reserve(keys_.size());
        keys_.for_each([&keys](std::string_view key, const Entry&) { keys.push_back(key); });
        // Shortest first: a lookup accepts a key only through its link, so the keys shorter
        // than the one being linked must be linked already.
        std::sort(keys.begin(), keys.end(),
                  [](std::string_view a, std::string_view b) { return a.size() < b.size(); });
        for (const std::string_view key : keys) {
            Entry* entry = keys_.find(key);
            const Entry* link =
                key.empty() ? nullptr : longest_prefix_of(key.substr(0, key.size() - 1));
            entry->shorter = link != nullptr ? link->id : kNone;
            entries_[entry->id] = *entry;
        }
    }

    /// The longest key that is a prefix of `s` (the empty key is a prefix of everything), or
    /// nullptr.
    const Entry* longest_prefix_of(std::string_view s) const noexcept {
        if (entries_.empty()) {
            return nullptr;
        }
        const std::size_t limit = std::min(s.size(), max_length_);
        PrefixHasher hasher(s);
        const Entry* best = nullptr;
        std::uint32_t best_id = kNone;
        std::size_t known = 0;  ///< the length of `best`, whose bytes equal s's
        for (std::size_t w = 0; w <= limit / 64; ++w) {
            const Lengths& l = lengths_[w];
            std::uint64_t bits = l.other | l.slash;
            if (w == limit / 64 && limit % 64 != 63) {
                bits &= (std::uint64_t{2} << (limit % 64)) - 1;
            }
            while (bits != 0) {
                const auto i = static_cast<unsigned>(std::countr_zero(bits));
                bits &= bits - 1;
                const std::size_t length = w * 64 + i;
                // A key ending in '/' can only be a prefix where s has one (length >= 1 here:
                // the empty key counts as `other`).
                if (((l.other >> i) & 1) == 0 && s[length - 1] != '/') {
                    continue;
                }
                // Every key that is a prefix of s[0, length) was found before this one, so a
                // key that is one links to `best`: only its bytes after `best` need comparing.
                const Entry* e = keys_.find_if(
                    hasher.hash(length), length, [&](const char* key, const Entry& candidate) {
                        return candidate.shorter == best_id &&
                               same_bytes(key + known, s.data() + known, length - known);
                    });
                if (e != nullptr) {
                    best = e;
                    best_id = e->id;
                    known = length;
                }
            }
        }
        return best;
    }

    /// The longest key that is a proper prefix of `e`'s, or nullptr.
    const Entry* shorter(const Entry& e) const noexcept {
        return e.shorter == kNone ? nullptr : &entries_[e.shorter];
    }

    std::size_t size() const noexcept { return entries_.size(); }
    bool empty() const noexcept { return entries_.empty(); }

private:
    /// Which key lengths exist, 64 lengths per element: bit i of `other` is set when a key of
    /// length 64 * element + i ends in a byte other than '/' (or is empty); of `slash`, when
    /// one ends in '/'.
    struct Lengths {
        std::uint64_t other = 0;
        std::uint64_t slash = 0;
    };

    /// The lookup proper: a probe reads only the hash slot (which holds the Entry) and the key.
    StringMap<Entry> keys_;
    std::vector<Entry> entries_;  ///< by id, for following links
    std::vector<Lengths> lengths_;
    std::size_t max_length_ = 0;
};

/// A prefix index to 32-bit values (indices into the caller's arrays).
using PrefixIndex = BasicPrefixIndex<std::uint32_t>;

}  // namespace blitz::router

#pragma once

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
/// Thread: built single-threaded; after finish(), lookups are safe from any number of threads.
/// Lifetime: value type; Entry pointers are valid while the index is.
class PrefixIndex {
public:
    static constexpr std::uint32_t kNone = ~std::uint32_t{0};

    /// A key's id (dense from 0, in insertion order), its link and its value.
    struct Entry {
        std::uint32_t id = kNone;
        std::uint32_t shorter = kNone;  ///< id of the longest key that is a proper prefix
        std::uint32_t value = 0;
    };

    /// Adds `key` with `value` and returns its id; a key added before keeps its value and id.
    std::uint32_t insert(std::string_view key, std::uint32_t value);

    /// The value of key `id`.
    std::uint32_t value(std::uint32_t id) const noexcept { return entries_[id].value; }

    /// Links every key to its longest proper prefix. Call once, after the last insert().
    void finish();

    /// The longest key that is a prefix of `s` (the empty key is a prefix of everything), or
    /// nullptr.
    const Entry* longest_prefix_of(std::string_view s) const noexcept;

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

}  // namespace blitz::router

#include "router/prefix_index.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace blitz::router {

std::uint32_t PrefixIndex::insert(std::string_view key, std::uint32_t value) {
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

void PrefixIndex::finish() {
    std::vector<std::string_view> keys;
    keys.reserve(keys_.size());
    keys_.for_each([&keys](std::string_view key, const Entry&) { keys.push_back(key); });
    // Shortest first: a lookup accepts a key only through its link, so the keys shorter than the
    // one being linked must be linked already.
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

const PrefixIndex::Entry* PrefixIndex::longest_prefix_of(std::string_view s) const noexcept {
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
            // A key ending in '/' can only be a prefix where s has one (length >= 1 here: the
            // empty key counts as `other`).
            if (((l.other >> i) & 1) == 0 && s[length - 1] != '/') {
                continue;
            }
            // Every key that is a prefix of s[0, length) was found before this one, so a key
            // that is one links to `best`: only its bytes after `best` need comparing.
            const Entry* e = keys_.find_if(
                hasher.hash(length), length, [&](const char* key, const Entry& candidate) {
                    return candidate.shorter == best_id &&
                           (length == known ||
                            std::memcmp(key + known, s.data() + known, length - known) == 0);
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

}  // namespace blitz::router

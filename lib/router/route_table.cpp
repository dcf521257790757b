#include "router/route_table.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "router/string_map.hpp"

namespace blitz::router {
namespace {

constexpr std::uint32_t kNone = ~std::uint32_t{0};

constexpr std::size_t index_of(Method m) noexcept {
    return static_cast<std::size_t>(m);
}

bool allows(MethodSet set, Method m) noexcept {
    return set.empty() || set.contains(m);
}

/// The routes that share one (host, path, exact-or-prefix) key, resolved per request method
/// when the table is compiled. Usually one route answers every method allowed here, so a level
/// is 12 bytes and points to a per-method row only when its routes split the methods.
struct Level {
    std::uint32_t route = kNone;  ///< the route for every allowed method, unless `row` is set
    std::uint32_t row = kNone;    ///< index into the per-method rows, or kNone
    MethodSet allowed;            ///< methods with a route here
};

using MethodRow = std::array<std::uint32_t, kMethodCount>;

/// `members` are route indices in config order.
MethodRow resolve_methods(const std::vector<std::uint32_t>& members,
                          const std::vector<Route>& routes) {
    MethodRow row;
    row.fill(kNone);
    for (std::size_t m = 0; m < kMethodCount; ++m) {
        for (std::uint32_t i : members) {
            if (allows(routes[i].methods, static_cast<Method>(m))) {
                row[m] = i;
                break;
            }
        }
    }
    // RFC 9110 §9.3.2: HEAD is GET without the content, so a route for GET answers HEAD too,
    // unless a route with the same key allows HEAD itself (that one was picked above).
    if (row[index_of(Method::Head)] == kNone) {
        row[index_of(Method::Head)] = row[index_of(Method::Get)];
    }
    return row;
}

void merge(MethodSet& into, MethodSet from) noexcept {
    for (std::size_t m = 0; m < kMethodCount; ++m) {
        if (from.contains(static_cast<Method>(m))) {
            into.add(static_cast<Method>(m));
        }
    }
}

/// A radix tree over path prefixes. Built from (prefix, level) pairs, then flattened so that
/// each node's children are adjacent and edge labels share one string: a lookup walks at most
/// one node per path byte and never allocates.
///
/// Thread: immutable once finish() returned; finish() must be called before lookups.
/// Lifetime: part of its host bucket.
class PrefixTree {
public:
    PrefixTree() { build_.emplace_back(); }

    /// Marks `prefix` as ending at `level`. Each prefix is inserted once.
    void insert(std::string_view prefix, std::uint32_t level) {
        std::uint32_t n = 0;
        while (!prefix.empty()) {
            const auto byte = static_cast<unsigned char>(prefix.front());
            std::uint32_t c = child(n, byte);
            if (c == kNone) {
                // Labels longer than a Node can describe become a chain of nodes.
                const std::size_t length = std::min(prefix.size(), kMaxLabel);
                c = static_cast<std::uint32_t>(build_.size());
                build_.push_back(BuildNode{std::string(prefix.substr(0, length)), {}, kNone});
                auto& kids = build_[n].children;
                kids.insert(lower(kids, byte), {byte, c});
                prefix.remove_prefix(length);
                n = c;
                continue;
            }
            const std::string& label = build_[c].label;
            const std::size_t common = static_cast<std::size_t>(
                std::mismatch(label.begin(), label.end(), prefix.begin(), prefix.end()).first -
                label.begin());
            if (common < label.size()) {
                // The new prefix ends inside this edge or leaves it: split the edge.
                const auto mid = static_cast<std::uint32_t>(build_.size());
                BuildNode split{label.substr(0, common), {}, kNone};
                split.children.emplace_back(static_cast<unsigned char>(label[common]), c);
                build_[c].label.erase(0, common);
                build_.push_back(std::move(split));
                lower(build_[n].children, byte)->second = mid;
                c = mid;
            }
            prefix.remove_prefix(common);
            n = c;
        }
        build_[n].level = level;
    }

    /// Flattens the tree (breadth first, so siblings are adjacent) and links every node to its
    /// nearest ancestor that ends a prefix.
    void finish() {
        nodes_.clear();
        shorter_.clear();
        first_bytes_.clear();
        labels_.clear();
        // Reserved up front so that `node` below stays valid while its children are appended.
        nodes_.reserve(build_.size());
        shorter_.reserve(build_.size());
        first_bytes_.reserve(build_.size());
        std::vector<std::uint32_t> order{0};
        nodes_.push_back(Node{});
        shorter_.push_back(kNone);
        first_bytes_.push_back(0);
        for (std::size_t pos = 0; pos < order.size(); ++pos) {
            const BuildNode& b = build_[order[pos]];
            Node& node = nodes_[pos];
            node.level = b.level;
            node.first_child = static_cast<std::uint32_t>(nodes_.size());
            node.child_count = static_cast<std::uint16_t>(b.children.size());
            const std::uint32_t shorter =
                b.level != kNone ? static_cast<std::uint32_t>(pos) : shorter_[pos];
            for (const auto& [byte, c] : b.children) {
                order.push_back(c);
                const std::string& label = build_[c].label;
                Node kid;
                kid.label_length = static_cast<std::uint16_t>(label.size());
                if (label.size() <= kid.label.size()) {
                    std::memcpy(kid.label.data(), label.data(), label.size());
                } else {
                    const auto offset = static_cast<std::uint32_t>(labels_.size());
                    std::memcpy(kid.label.data(), &offset, sizeof offset);
                    labels_ += label;
                }
                nodes_.push_back(kid);
                shorter_.push_back(shorter);
                first_bytes_.push_back(byte);
            }
        }
        first_bytes_.insert(first_bytes_.end(), sizeof(std::uint64_t), 0);
        build_.clear();
        build_.shrink_to_fit();
    }

    /// Calls visit(level) for each prefix of `path` that ends a level, longest first, until
    /// visit returns true. Returns whether it did.
    template <class F>
    bool visit_longest_first(std::string_view path, F&& visit) const noexcept {
        const Node* nodes = nodes_.data();
        const Node* node = nodes;
        std::uint32_t best = node->level != kNone ? 0 : kNone;
        const char* p = path.data();
        const char* const end = p + path.size();
        while (p != end) {
            const std::uint32_t c = find_child(*node, static_cast<unsigned char>(*p));
            if (c == kNone) {
                break;
            }
            node = nodes + c;
            if (static_cast<std::size_t>(end - p) < node->label_length ||
                !same_tail(p, label_of(*node), node->label_length)) {
                break;
            }
            p += node->label_length;
            if (node->level != kNone) {
                best = c;
            }
        }
        for (std::uint32_t i = best; i != kNone; i = shorter_[i]) {
            if (visit(nodes_[i].level)) {
                return true;
            }
        }
        return false;
    }

private:
    using Children = std::vector<std::pair<unsigned char, std::uint32_t>>;

    struct BuildNode {
        std::string label;  ///< edge label from the parent
        Children children;  ///< sorted by first byte
        std::uint32_t level = kNone;
    };

    static constexpr std::size_t kMaxLabel = 0xffff;
    /// Up to this many children, find_child() scans rather than bisects.
    static constexpr std::size_t kScanChildren = 32;

    /// 16 bytes, so that the nodes a walk visits in a large tree mostly stay in cache; short
    /// edge labels are kept inline, so a walk through them reads no other memory.
    struct Node {
        std::uint32_t first_child = 0;
        std::uint32_t level = kNone;  ///< the level this prefix ends, or kNone
        std::uint16_t child_count = 0;
        std::uint16_t label_length = 0;  ///< of the edge label from the parent
        /// The label when it fits, else its offset in labels_ (in native byte order).
        std::array<char, 4> label{};
    };

    /// The child of `node` whose label starts with `byte`, or kNone.
    std::uint32_t find_child(const Node& node, unsigned char byte) const noexcept {
        const unsigned char* first = first_bytes_.data() + node.first_child;
        const std::size_t count = node.child_count;
        if constexpr (std::endian::native == std::endian::little) {
            if (count <= kScanChildren) {
                // Eight first bytes per step: the lowest zero byte of (word ^ pattern) is the
                // first match (the borrow trick can flag only bytes above a true zero). Reads
                // past the last child stay inside first_bytes_'s padding.
                constexpr std::uint64_t kOnes = 0x0101010101010101;
                constexpr std::uint64_t kHighs = 0x8080808080808080;
                const std::uint64_t pattern = kOnes * byte;
                for (std::size_t i = 0; i < count; i += 8) {
                    std::uint64_t word = 0;
                    std::memcpy(&word, first + i, sizeof word);
                    const std::uint64_t x = word ^ pattern;
                    const std::uint64_t zero = (x - kOnes) & ~x & kHighs;
                    if (zero != 0) {
                        const std::size_t at =
                            i + static_cast<std::size_t>(std::countr_zero(zero)) / 8;
                        return at < count ? node.first_child + static_cast<std::uint32_t>(at)
                                          : kNone;
                    }
                }
                return kNone;
            }
        }
        const unsigned char* last = first + count;
        const unsigned char* it = std::lower_bound(first, last, byte);
        return it != last && *it == byte ? static_cast<std::uint32_t>(it - first_bytes_.data())
                                         : kNone;
    }

    /// Whether a[1..length) == b[1..length): the first byte matched in find_child().
    static bool same_tail(const char* a, const char* b, std::size_t length) noexcept {
        if (length > 8) {
            return std::memcmp(a + 1, b + 1, length - 1) == 0;
        }
        for (std::size_t i = 1; i < length; ++i) {
            if (a[i] != b[i]) {
                return false;
            }
        }
        return true;
    }

    const char* label_of(const Node& n) const noexcept {
        if (n.label_length <= n.label.size()) {
            return n.label.data();
        }
        std::uint32_t offset = 0;
        std::memcpy(&offset, n.label.data(), sizeof offset);
        return labels_.data() + offset;
    }

    static Children::iterator lower(Children& kids, unsigned char byte) {
        return std::lower_bound(kids.begin(), kids.end(), byte,
                                [](const auto& kid, unsigned char b) { return kid.first < b; });
    }

    std::uint32_t child(std::uint32_t n, unsigned char byte) {
        auto& kids = build_[n].children;
        auto it = lower(kids, byte);
        return it != kids.end() && it->first == byte ? it->second : kNone;
    }

    std::vector<BuildNode> build_;
    std::vector<Node> nodes_;
    /// By node: its nearest proper ancestor with a level (read only when the longest matching
    /// prefix has no route for the method, so kept out of Node).
    std::vector<std::uint32_t> shorter_;
    /// First label byte of each node, by index, then 8 bytes of padding for find_child().
    std::vector<unsigned char> first_bytes_;
    std::string labels_;
};

/// The routes for one host key (an exact host, a wildcard suffix, or any host).
struct Bucket {
    StringMap<std::uint32_t> exact;  ///< path -> level
    PrefixTree prefixes;
};

/// The compiled table: host buckets found by hash (exact hosts, then wildcard suffixes label
/// by label from the longest, then the any-host bucket); in each, the exact path by hash, then
/// the prefixes along one radix-tree walk, longest first.
class CompiledRouteTable final : public RouteTable {
public:
    explicit CompiledRouteTable(std::vector<Route> routes) : routes_(std::move(routes)) {
        std::vector<std::vector<std::uint32_t>> members;
        std::vector<StringMap<std::uint32_t>> prefix_keys;
        for (std::size_t i = 0; i < routes_.size(); ++i) {
            const Route& r = routes_[i];
            const std::uint32_t b = bucket_for(r.host);
            prefix_keys.resize(buckets_.size());
            StringMap<std::uint32_t>& keys = r.prefix ? prefix_keys[b] : buckets_[b].exact;
            std::uint32_t& level = keys.try_emplace(r.path, kNone);
            if (level == kNone) {
                level = static_cast<std::uint32_t>(members.size());
                members.emplace_back();
            }
            members[level].push_back(static_cast<std::uint32_t>(i));
        }
        levels_.reserve(members.size());
        for (const auto& m : members) {
            levels_.push_back(make_level(resolve_methods(m, routes_)));
        }
        for (std::size_t b = 0; b < buckets_.size(); ++b) {
            PrefixTree& tree = buckets_[b].prefixes;
            prefix_keys[b].for_each(
                [&tree](std::string_view prefix, std::uint32_t level) { tree.insert(prefix, level); });
            tree.finish();
        }
    }

    RouteMatch match(std::string_view host, std::string_view path,
                     Method method) const noexcept override {
        RouteMatch result;
        // Tables with only any-host routes (the common small config) skip the host entirely.
        if (!exact_hosts_.empty() || !wildcard_hosts_.empty()) {
            std::array<char, kMaxHostBytes> buf;
            const std::string_view h = normalise_host(host, buf);
            if (search_hosts(h, path, method, result)) {
                return result;
            }
        }
        if (any_host_ != kNone) {
            search(any_host_, path, method, result);
        }
        return result;
    }

    std::size_t size() const noexcept override { return routes_.size(); }

private:
    /// Searches the exact-host bucket, then the wildcard buckets from the longest suffix.
    bool search_hosts(std::string_view h, std::string_view path, Method method,
                      RouteMatch& result) const noexcept {
        if (h.empty()) {
            return false;
        }
        if (const std::uint32_t* b = exact_hosts_.find(h);
            b != nullptr && search(*b, path, method, result)) {
            return true;
        }
        if (wildcard_hosts_.empty()) {
            return false;
        }
        // A wildcard needs at least one label before its suffix, so "*.example.com" is tried
        // for "a.example.com" but not for "example.com" or ".example.com".
        for (std::size_t dot = h.find('.', 1); dot != std::string_view::npos;
             dot = h.find('.', dot + 1)) {
            const std::uint32_t* b = wildcard_hosts_.find(h.substr(dot + 1));
            if (b != nullptr && search(*b, path, method, result)) {
                return true;
            }
        }
        return false;
    }

    std::uint32_t bucket_for(const std::string& host) {
        std::uint32_t* slot = nullptr;
        if (host.empty()) {
            slot = &any_host_;
        } else if (host.starts_with("*.")) {
            slot = &wildcard_hosts_.try_emplace(std::string_view(host).substr(2), kNone);
        } else {
            slot = &exact_hosts_.try_emplace(host, kNone);
        }
        if (*slot == kNone) {
            *slot = static_cast<std::uint32_t>(buckets_.size());
            buckets_.emplace_back();
        }
        return *slot;
    }

    /// Looks `path` up in one bucket: the exact path, then prefixes longest first. Sets
    /// result.route (and clears result.allowed) on a match; otherwise adds the methods that
    /// would have matched to result.allowed.
    bool search(std::uint32_t bucket, std::string_view path, Method method,
                RouteMatch& result) const noexcept {
        auto visit = [&](std::uint32_t level) {
            const Level& l = levels_[level];
            if (l.allowed.contains(method)) {
                const std::uint32_t r = l.row == kNone ? l.route : rows_[l.row][index_of(method)];
                result.route = &routes_[r];
                result.allowed = MethodSet();
                return true;
            }
            merge(result.allowed, l.allowed);
            return false;
        };
        const Bucket& b = buckets_[bucket];
        if (const std::uint32_t* level = b.exact.find(path); level != nullptr && visit(*level)) {
            return true;
        }
        return b.prefixes.visit_longest_first(path, visit);
    }

    Level make_level(const MethodRow& row) {
        Level level;
        bool mixed = false;
        for (std::size_t m = 0; m < kMethodCount; ++m) {
            if (row[m] == kNone) {
                continue;
            }
            level.allowed.add(static_cast<Method>(m));
            if (level.route == kNone) {
                level.route = row[m];
            } else if (level.route != row[m]) {
                mixed = true;
            }
        }
        if (mixed) {
            level.row = static_cast<std::uint32_t>(rows_.size());
            rows_.push_back(row);
        }
        return level;
    }

    std::vector<Route> routes_;
    std::vector<Level> levels_;
    std::vector<MethodRow> rows_;
    std::vector<Bucket> buckets_;
    StringMap<std::uint32_t> exact_hosts_;     ///< host -> bucket
    StringMap<std::uint32_t> wildcard_hosts_;  ///< suffix after "*." -> bucket
    std::uint32_t any_host_ = kNone;
};

}  // namespace

std::string_view normalise_host(std::string_view authority,
                                std::span<char, kMaxHostBytes> buf) noexcept {
    std::string_view h = authority;
    if (h.starts_with('[')) {
        // RFC 3986 §3.2.2: an IPv6 literal is bracketed; its colons are not the port's.
        if (const std::size_t close = h.find(']'); close != std::string_view::npos) {
            h = h.substr(0, close + 1);
        }
    } else if (const std::size_t colon = h.rfind(':'); colon != std::string_view::npos) {
        h = h.substr(0, colon);
    }
    if (h.ends_with('.')) {
        h.remove_suffix(1);
    }
    if (h.size() > buf.size()) {
        return {};
    }
    char* out = buf.data();
    for (const char c : h) {
        *out++ = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return {buf.data(), h.size()};
}

std::shared_ptr<const RouteTable> compile(std::vector<Route> routes) {
    return std::make_shared<const CompiledRouteTable>(std::move(routes));
}

}  // namespace blitz::router

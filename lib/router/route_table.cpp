#include "router/route_table.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "router/compiled_route.hpp"
#include "router/prefix_index.hpp"
#include "router/string_map.hpp"

namespace blitz::router {
namespace {

constexpr std::uint32_t kNone = ~std::uint32_t{0};

/// Literal prefixes of regexes are computed up to this many bytes.
constexpr int kMaxLiteralPrefix = 256;

constexpr std::size_t index_of(Method m) noexcept {
    return static_cast<std::size_t>(m);
}

bool allows(MethodSet set, Method m) noexcept {
    return set.empty() || set.contains(m);
}

void merge(MethodSet& into, MethodSet from) noexcept {
    for (std::size_t m = 0; m < kMethodCount; ++m) {
        if (from.contains(static_cast<Method>(m))) {
            into.add(static_cast<Method>(m));
        }
    }
}

/// The methods a route for `methods` answers, HEAD included wherever GET is (RFC 9110 §9.3.2).
MethodSet answered(MethodSet methods) noexcept {
    MethodSet set = methods.empty() ? MethodSet::all() : methods;
    if (set.contains(Method::Get)) {
        set.add(Method::Head);
    }
    return set;
}

/// The routes that share one (priority, host, path) key: an exact path, a prefix or a regex.
///
/// When none of them has header or query matchers, the route for each method is resolved when
/// the table is compiled: usually one route answers every method allowed here (kind Route),
/// and only when the routes split the methods does the level point to a per-method row (kind
/// Row). Otherwise (kind Members) the members are tried at request time, in config order.
///
/// Eight bytes, stored in the hash slot of its path (or prefix) so that a lookup that is
/// decided at compile time reads the slot, the key's bytes and nothing else. While the table
/// is compiled, a slot holds a placeholder whose `target` is the level's index.
struct Level {
    enum class Kind : std::uint16_t { Route, Row, Members };

    std::uint32_t target = kNone;  ///< the route, the row, or the first member, by `kind`
    MethodSet allowed;             ///< methods with a route here (kinds Route and Row)
    Kind kind = Kind::Route;
};

static_assert(sizeof(Level) == 8);

/// A route of a level resolved at request time, with all a lookup reads of it, so that a
/// lookup touches no Route object: its methods and its matchers, copied next to each other.
struct Member {
    std::uint32_t route = 0;
    std::uint32_t count = 0;  ///< the members of its level: the same in each
    std::uint32_t first_matcher = 0;  ///< matchers_[first_matcher, + headers + queries)
    std::uint32_t headers = 0;        ///< header matchers, then `queries` query matchers
    std::uint32_t queries = 0;
    MethodSet methods;
    /// The route's client_cert matcher (checked after the others), or null.
    const ClientCertMatcher* client_cert = nullptr;
    const CompiledRoute* compiled = nullptr;
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

/// The bytes every path `re` matches starts with (possibly fewer): the common prefix of the
/// bounds RE2 computes for its matches, which holds for alternations, classes, case folding
/// and repetitions alike. Empty when RE2 cannot tell (a leading ".*").
std::string literal_prefix(const RE2& re) {
    std::string min;
    std::string max;
    if (!re.PossibleMatchRange(&min, &max, kMaxLiteralPrefix)) {
        return {};
    }
    // Every match s has min <= s <= max, so s starts with what min and max share.
    const auto end = std::mismatch(min.begin(), min.end(), max.begin(), max.end()).first;
    min.erase(end, min.end());
    return min;
}

/// A regex level, listed under its pattern's literal prefix.
struct RegexEntry {
    std::uint32_t order;  ///< of the level's first route: regexes are tried in config order
    Level level;
    const RE2* regex;  ///< the routes' pattern (null only for a route freeze() did not compile)
};

/// The routes for one host key (an exact host, a wildcard suffix, or any host) in one tier.
struct Bucket {
    StringMap<Level> exact;            ///< path -> level
    BasicPrefixIndex<Level> prefixes;  ///< prefix -> level
    PrefixIndex regex_prefixes;        ///< literal prefix of regex patterns -> index in `regexes`
    std::vector<std::vector<RegexEntry>> regexes;  ///< in config order
};

/// The routes of one priority.
struct Tier {
    std::vector<Bucket> buckets;
    StringMap<std::uint32_t> exact_hosts;     ///< host -> bucket
    StringMap<std::uint32_t> wildcard_hosts;  ///< suffix after "*." -> bucket
    std::uint32_t any_host = kNone;
};

/// One request being looked up.
struct Lookup {
    std::string_view path;
    Method method;
    const Request* request;  ///< null: routes with header or query matchers never match
    const TlsInfo* tls;      ///< null: plaintext (no client certificate)
};

/// The compiled table: tiers by descending priority; in each, host buckets found by hash (the
/// exact host, then wildcard suffixes label by label from the longest, then the any-host
/// bucket); in each bucket the exact path by hash, then the prefixes longest first (see
/// PrefixIndex), then the regexes whose literal prefix the path starts with, in config order.
class CompiledRouteTable final : public RouteTable {
public:
    CompiledRouteTable(const CompiledRouteTable&) = delete;  // views into itself
    CompiledRouteTable& operator=(const CompiledRouteTable&) = delete;

    explicit CompiledRouteTable(std::vector<Route> routes) : routes_(std::move(routes)) {
        for (const Route& r : routes_) {
            priorities_.push_back(r.priority);
            host_routes_ = host_routes_ || !r.host.empty();
            client_cert_ = client_cert_ || r.client_cert.has_value();
        }
        std::sort(priorities_.begin(), priorities_.end(), std::greater<>());
        priorities_.erase(std::unique(priorities_.begin(), priorities_.end()), priorities_.end());
        tiers_.resize(priorities_.size());
        patterns_.resize(tiers_.size());
        for (std::size_t i = 0; i < routes_.size(); ++i) {
            members_of_[level_for(static_cast<std::uint32_t>(i))].push_back(
                static_cast<std::uint32_t>(i));
        }
        std::size_t text_bytes = 0;
        for (const Route& r : routes_) {
            for (const HeaderMatcher& h : r.headers) {
                text_bytes += h.name.size() + h.value.size();
            }
            for (const QueryMatcher& h : r.query) {
                text_bytes += h.name.size() + h.value.size();
            }
        }
        matcher_text_.reserve(text_bytes);
        std::vector<Level> levels;
        levels.reserve(members_of_.size());
        for (const auto& m : members_of_) {
            levels.push_back(make_level(m));
        }
        const auto resolve = [&levels](const Level& placeholder) {
            return levels[placeholder.target];
        };
        for (Tier& tier : tiers_) {
            for (Bucket& bucket : tier.buckets) {
                bucket.exact.for_each(
                    [&resolve](std::string_view, Level& level) { level = resolve(level); });
                bucket.prefixes.transform_values(resolve);
                bucket.prefixes.finish();
                bucket.regex_prefixes.finish();
                for (std::vector<RegexEntry>& list : bucket.regexes) {
                    for (RegexEntry& entry : list) {
                        entry.level = resolve(entry.level);
                    }
                }
            }
        }
        // Only needed while compiling.
        members_of_ = {};
        patterns_ = {};
        priorities_ = {};
    }

    RouteMatch match(std::string_view host, std::string_view path,
                     Method method) const noexcept override {
        return lookup(host, Lookup{path, method, nullptr, nullptr});
    }

    RouteMatch match(const Request& request, const TlsInfo* tls) const noexcept override {
        return lookup(request.authority, Lookup{request.path, request.method, &request, tls});
    }

    bool uses_client_cert() const noexcept override { return client_cert_; }

    std::size_t size() const noexcept override { return routes_.size(); }
    std::span<const Route> routes() const noexcept override { return routes_; }

private:
    RouteMatch lookup(std::string_view authority, const Lookup& q) const noexcept {
        RouteMatch result;
        std::array<char, kMaxHostBytes> buf;
        std::string_view host;
        // Tables with only any-host routes (the common small config) skip the host entirely.
        if (host_routes_) {
            host = normalise_host(authority, buf);
        }
        for (const Tier& tier : tiers_) {
            if (search_tier(tier, host, q, result)) {
                break;
            }
        }
        return result;
    }

    /// Searches the exact-host bucket, then the wildcard buckets from the longest suffix, then
    /// the any-host bucket.
    bool search_tier(const Tier& tier, std::string_view h, const Lookup& q,
                     RouteMatch& result) const noexcept {
        if (!h.empty()) {
            if (const std::uint32_t* b = tier.exact_hosts.find(h);
                b != nullptr && search(tier.buckets[*b], q, result)) {
                return true;
            }
            if (!tier.wildcard_hosts.empty()) {
                // A wildcard needs at least one label before its suffix, so "*.example.com" is
                // tried for "a.example.com" but not for "example.com" or ".example.com".
                for (std::size_t dot = h.find('.', 1); dot != std::string_view::npos;
                     dot = h.find('.', dot + 1)) {
                    const std::uint32_t* b = tier.wildcard_hosts.find(h.substr(dot + 1));
                    if (b != nullptr && search(tier.buckets[*b], q, result)) {
                        return true;
                    }
                }
            }
        }
        return tier.any_host != kNone && search(tier.buckets[tier.any_host], q, result);
    }

    static std::uint32_t bucket_for(Tier& tier, const std::string& host) {
        std::uint32_t* slot = nullptr;
        if (host.empty()) {
            slot = &tier.any_host;
        } else if (host.starts_with("*.")) {
            slot = &tier.wildcard_hosts.try_emplace(std::string_view(host).substr(2), kNone);
        } else {
            slot = &tier.exact_hosts.try_emplace(host, kNone);
        }
        if (*slot == kNone) {
            *slot = static_cast<std::uint32_t>(tier.buckets.size());
            tier.buckets.emplace_back();
        }
        return *slot;
    }

    /// The level route `i` belongs to in its tier and host bucket, made when new.
    std::uint32_t level_for(std::uint32_t i) {
        const Route& r = routes_[i];
        const auto t = static_cast<std::size_t>(
            std::lower_bound(priorities_.begin(), priorities_.end(), r.priority, std::greater<>()) -
            priorities_.begin());
        Tier& tier = tiers_[t];
        const std::uint32_t b = bucket_for(tier, r.host);
        Bucket& bucket = tier.buckets[b];
        const auto next = static_cast<std::uint32_t>(members_of_.size());
        std::uint32_t level = kNone;
        if (!r.path_regex.empty()) {
            patterns_[t].resize(tier.buckets.size());
            level = patterns_[t][b].try_emplace(r.path_regex, next);
            if (level == next) {
                // A new pattern: listed under its literal prefix, in config order.
                const RE2* re = r.compiled ? r.compiled->path_regex.get() : nullptr;
                const auto lists = static_cast<std::uint32_t>(bucket.regexes.size());
                const std::uint32_t list = bucket.regex_prefixes.value(
                    bucket.regex_prefixes.insert(re != nullptr ? literal_prefix(*re) : "", lists));
                if (list == lists) {
                    bucket.regexes.emplace_back();
                }
                bucket.regexes[list].push_back({i, Level{.target = level}, re});
            }
        } else if (r.prefix) {
            level = bucket.prefixes.value(bucket.prefixes.insert(r.path, Level{.target = next}))
                        .target;
        } else {
            level = bucket.exact.try_emplace(r.path, Level{.target = next}).target;
        }
        if (level == next) {
            members_of_.emplace_back();
        }
        return level;
    }

    /// Looks the path up in one bucket: the exact path, then prefixes longest first, then
    /// regexes. Sets result.route (and clears result.allowed) on a match; otherwise adds the
    /// methods that would have matched to result.allowed.
    bool search(const Bucket& b, const Lookup& q, RouteMatch& result) const noexcept {
        if (!b.exact.empty()) {
            if (const Level* level = b.exact.find(q.path);
                level != nullptr && visit(*level, q, result)) {
                return true;
            }
        }
        for (const auto* e = b.prefixes.longest_prefix_of(q.path); e != nullptr;
             e = b.prefixes.shorter(*e)) {
            if (visit(e->value, q, result)) {
                return true;
            }
        }
        return !b.regexes.empty() && search_regexes(b, q, result);
    }

    /// Tries the regex levels whose literal prefix starts the path: those listed under the
    /// longest such prefix and under each shorter one, merged into config order.
    bool search_regexes(const Bucket& b, const Lookup& q, RouteMatch& result) const noexcept {
        const PrefixIndex::Entry* top = b.regex_prefixes.longest_prefix_of(q.path);
        std::uint32_t next_order = 0;  // the lowest order not tried yet
        while (true) {
            const RegexEntry* next = nullptr;
            for (const PrefixIndex::Entry* e = top; e != nullptr;
                 e = b.regex_prefixes.shorter(*e)) {
                const std::vector<RegexEntry>& list = b.regexes[e->value];
                const auto it = std::lower_bound(list.begin(), list.end(), next_order,
                                                 [](const RegexEntry& entry, std::uint32_t order) {
                                                     return entry.order < order;
                                                 });
                if (it != list.end() && (next == nullptr || it->order < next->order)) {
                    next = &*it;
                }
            }
            if (next == nullptr) {
                return false;
            }
            next_order = next->order + 1;
            if (next->regex != nullptr && full_match(*next->regex, q.path) &&
                visit(next->level, q, result)) {
                return true;
            }
        }
    }

    /// Whether the route's header and query matchers, then its client_cert matcher, hold for
    /// the lookup.
    bool holds(const Member& m, const Lookup& q) const noexcept {
        if (m.headers == 0 && m.queries == 0 && m.client_cert == nullptr) {
            return true;
        }
        if (q.request == nullptr) {
            return false;
        }
        const MatcherView* matcher = matchers_.data() + m.first_matcher;
        for (const MatcherView* end = matcher + m.headers; matcher != end; ++matcher) {
            if (!header_holds(*matcher, q.request->headers)) {
                return false;
            }
        }
        for (const MatcherView* end = matcher + m.queries; matcher != end; ++matcher) {
            if (!query_holds(*matcher, q.request->query)) {
                return false;
            }
        }
        return m.client_cert == nullptr || client_cert_holds(*m.client_cert, m.compiled, q.tls);
    }

    /// Picks the route of `level` for the method, or adds the level's methods to
    /// result.allowed.
    bool visit(const Level& level, const Lookup& q, RouteMatch& result) const noexcept {
        if (level.kind != Level::Kind::Members) {
            if (level.allowed.contains(q.method)) {
                const std::uint32_t r = level.kind == Level::Kind::Route
                                            ? level.target
                                            : rows_[level.target][index_of(q.method)];
                return pick(r, result);
            }
            merge(result.allowed, level.allowed);
            return false;
        }
        const Member* first = members_.data() + level.target;
        const Member* const last = first + first->count;
        for (const Member* m = first; m != last; ++m) {
            if (allows(m->methods, q.method) && holds(*m, q)) {
                return pick(m->route, result);
            }
        }
        // RFC 9110 §9.3.2: a GET route answers HEAD when no route here allows HEAD itself.
        if (q.method == Method::Head) {
            for (const Member* m = first; m != last; ++m) {
                if (allows(m->methods, Method::Get) && holds(*m, q)) {
                    return pick(m->route, result);
                }
            }
        }
        for (const Member* m = first; m != last; ++m) {
            if (holds(*m, q)) {
                merge(result.allowed, answered(m->methods));
            }
        }
        return false;
    }

    bool pick(std::uint32_t route, RouteMatch& result) const noexcept {
        result.route = &routes_[route];
        result.allowed = MethodSet();
        return true;
    }

    /// Copies route `i`'s methods and matchers (their strings into matcher_text_, which was
    /// reserved for all of them, so the views stay valid).
    Member make_member(std::uint32_t i, std::uint32_t count) {
        const Route& r = routes_[i];
        Member m;
        m.route = i;
        m.count = count;
        m.methods = r.methods;
        m.first_matcher = static_cast<std::uint32_t>(matchers_.size());
        m.headers = static_cast<std::uint32_t>(r.headers.size());
        m.queries = static_cast<std::uint32_t>(r.query.size());
        m.client_cert = r.client_cert ? &*r.client_cert : nullptr;
        m.compiled = r.compiled.get();
        auto text = [this](const std::string& s) {
            const std::size_t at = matcher_text_.size();
            matcher_text_ += s;
            return std::string_view(matcher_text_).substr(at, s.size());
        };
        auto regex = [&r](bool header, std::size_t k) -> const RE2* {
            if (!r.compiled) {
                return nullptr;
            }
            const auto& regexes = header ? r.compiled->header_regexes : r.compiled->query_regexes;
            return k < regexes.size() ? regexes[k].get() : nullptr;
        };
        for (std::size_t k = 0; k < r.headers.size(); ++k) {
            const HeaderMatcher& h = r.headers[k];
            matchers_.push_back({h.kind, text(h.name), text(h.value), regex(true, k)});
        }
        for (std::size_t k = 0; k < r.query.size(); ++k) {
            const QueryMatcher& h = r.query[k];
            matchers_.push_back({h.kind, text(h.name), text(h.value), regex(false, k)});
        }
        return m;
    }

    Level make_level(const std::vector<std::uint32_t>& members) {
        Level level;
        if (std::any_of(members.begin(), members.end(),
                        [this](std::uint32_t i) { return has_matchers(routes_[i]); })) {
            level.kind = Level::Kind::Members;
            level.target = static_cast<std::uint32_t>(members_.size());
            for (const std::uint32_t i : members) {
                members_.push_back(make_member(i, static_cast<std::uint32_t>(members.size())));
            }
            return level;
        }
        const MethodRow row = resolve_methods(members, routes_);
        bool mixed = false;
        for (std::size_t m = 0; m < kMethodCount; ++m) {
            if (row[m] == kNone) {
                continue;
            }
            level.allowed.add(static_cast<Method>(m));
            if (level.target == kNone) {
                level.target = row[m];
            } else if (level.target != row[m]) {
                mixed = true;
            }
        }
        if (mixed) {
            level.kind = Level::Kind::Row;
            level.target = static_cast<std::uint32_t>(rows_.size());
            rows_.push_back(row);
        }
        return level;
    }

    std::vector<Route> routes_;
    std::vector<MethodRow> rows_;
    std::vector<Member> members_;
    std::vector<MatcherView> matchers_;
    std::string matcher_text_;  ///< the matchers' names and values (never reallocated)
    // While compiling: the routes of each level (config order), the regex pattern -> level
    // maps by tier and bucket, and the distinct priorities, highest first (by tier).
    std::vector<std::vector<std::uint32_t>> members_of_;
    std::vector<std::vector<StringMap<std::uint32_t>>> patterns_;
    std::vector<std::int32_t> priorities_;
    std::vector<Tier> tiers_;  ///< by descending priority
    bool host_routes_ = false;
    bool client_cert_ = false;  ///< some route has a client_cert matcher
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

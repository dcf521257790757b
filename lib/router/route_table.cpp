#include "router/route_table.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
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
/// decided at compile time reads that slot (see StringMap) and nothing else. While the table
/// is compiled, a slot holds a placeholder whose `target` is the level's index.
struct Level {
    enum class Kind : std::uint16_t { Route, Row, Members };

    std::uint32_t target = kNone;  ///< the route, the row, or the first member, by `kind`
    MethodSet allowed;             ///< methods with a route here (kinds Route and Row)
    Kind kind = Kind::Route;
};

static_assert(sizeof(Level) == 8);

/// The levels resolved at request time are records in one arena, so that a lookup reads a
/// level's routes, methods and matchers (names and values included) from a run of adjacent
/// bytes, usually one cache line, and touches no Route object unless a client_cert matcher is
/// to be checked. A level's record is its member count (a std::uint32_t) and then, in config
/// order, each member's: a MemberHead, then `headers` header and `queries` query matchers, each
/// a MatcherHead followed by its name and value. Records are copied in and out with memcpy,
/// so they need no alignment; a level's record is kept within one cache line when it fits.
struct MemberHead {
    std::uint32_t route = 0;
    std::uint32_t bytes = 0;  ///< the member's record, its matchers included
    std::uint32_t headers = 0;
    std::uint32_t queries = 0;
    MethodSet methods;
    bool client_cert = false;  ///< the route has a client_cert matcher (checked last)
};

struct MatcherHead {
    const RE2* regex = nullptr;  ///< the compiled `value` of a Regex matcher
    std::uint32_t name = 0;      ///< bytes of the name, which follows
    std::uint32_t value = 0;     ///< bytes of the value, which follows the name
    MatchKind kind = MatchKind::Exact;
};

template <class T>
T read(const char* p) noexcept {
    T t;
    std::memcpy(&t, p, sizeof t);
    return t;
}

template <class T>
void append(std::string& out, const T& t) {
    out.append(reinterpret_cast<const char*>(&t), sizeof t);
}

/// One cache line of the member arena.
struct alignas(64) Line {
    char bytes[64];
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
        std::vector<Level> levels;
        levels.reserve(members_of_.size());
        std::string records;
        for (const auto& m : members_of_) {
            levels.push_back(make_level(m, records));
        }
        if (!records.empty()) {
            members_.resize((records.size() + sizeof(Line) - 1) / sizeof(Line));
            std::memcpy(members_.data(), records.data(), records.size());
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
    // Flattened: one frame instead of five calls halves the stores of a lookup (cachegrind: 49
    // to 26 for an exact path) and cuts a fifth of its instructions, so that in a large table,
    // whose slot is a cache miss, the next lookup gets into the out-of-order window while this
    // one waits for its slot.
    [[gnu::flatten]] RouteMatch lookup(std::string_view authority,
                                       const Lookup& q) const noexcept {
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

    /// Whether the header and query matchers of the member whose record starts at `p`, then its
    /// client_cert matcher, hold for the lookup.
    bool holds(const char* p, const MemberHead& m, const Lookup& q) const noexcept {
        if (m.headers == 0 && m.queries == 0 && !m.client_cert) {
            return true;
        }
        if (q.request == nullptr) {
            return false;
        }
        p += sizeof(MemberHead);
        for (std::uint32_t k = 0; k < m.headers + m.queries; ++k) {
            const auto h = read<MatcherHead>(p);
            p += sizeof h;
            const MatcherView v{h.kind, {p, h.name}, {p + h.name, h.value}, h.regex};
            p += h.name + h.value;
            if (k < m.headers ? !header_holds(v, q.request->headers)
                              : !query_holds(v, q.request->query)) {
                return false;
            }
        }
        if (!m.client_cert) {
            return true;
        }
        const Route& r = routes_[m.route];
        return client_cert_holds(*r.client_cert, r.compiled.get(), q.tls);
    }

    /// Calls f(record, head) for each member of a Members level in config order, until f
    /// returns true; returns whether one did.
    template <class F>
    bool any_member(const Level& level, F&& f) const noexcept {
        const char* p = reinterpret_cast<const char*>(members_.data()) + level.target;
        const auto count = read<std::uint32_t>(p);
        p += sizeof count;
        for (std::uint32_t k = 0; k < count; ++k) {
            const auto m = read<MemberHead>(p);
            if (f(p, m)) {
                return true;
            }
            p += m.bytes;
        }
        return false;
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
        const auto answers = [&](Method method) {
            return [&, method](const char* p, const MemberHead& m) {
                return allows(m.methods, method) && holds(p, m, q) && pick(m.route, result);
            };
        };
        if (any_member(level, answers(q.method))) {
            return true;
        }
        // RFC 9110 §9.3.2: a GET route answers HEAD when no route here allows HEAD itself.
        if (q.method == Method::Head && any_member(level, answers(Method::Get))) {
            return true;
        }
        any_member(level, [&](const char* p, const MemberHead& m) {
            if (holds(p, m, q)) {
                merge(result.allowed, answered(m.methods));
            }
            return false;
        });
        return false;
    }

    bool pick(std::uint32_t route, RouteMatch& result) const noexcept {
        result.route = &routes_[route];
        result.allowed = MethodSet();
        return true;
    }

    /// Appends route `i`'s member record (see MemberHead) to `out`.
    void append_member(std::uint32_t i, std::string& out) const {
        const Route& r = routes_[i];
        const std::size_t at = out.size();
        MemberHead m;
        m.route = i;
        m.headers = static_cast<std::uint32_t>(r.headers.size());
        m.queries = static_cast<std::uint32_t>(r.query.size());
        m.methods = r.methods;
        m.client_cert = r.client_cert.has_value();
        append(out, m);
        auto regex = [&r](bool header, std::size_t k) -> const RE2* {
            if (!r.compiled) {
                return nullptr;
            }
            const auto& regexes = header ? r.compiled->header_regexes : r.compiled->query_regexes;
            return k < regexes.size() ? regexes[k].get() : nullptr;
        };
        auto matcher = [&out](MatchKind kind, const std::string& name, const std::string& value,
                              const RE2* re) {
            append(out, MatcherHead{re, static_cast<std::uint32_t>(name.size()),
                                    static_cast<std::uint32_t>(value.size()), kind});
            out += name;
            out += value;
        };
        for (std::size_t k = 0; k < r.headers.size(); ++k) {
            matcher(r.headers[k].kind, r.headers[k].name, r.headers[k].value, regex(true, k));
        }
        for (std::size_t k = 0; k < r.query.size(); ++k) {
            matcher(r.query[k].kind, r.query[k].name, r.query[k].value, regex(false, k));
        }
        m.bytes = static_cast<std::uint32_t>(out.size() - at);
        std::memcpy(out.data() + at, &m, sizeof m);
    }

    /// The level of `members`; a Members level's record is appended to `records`.
    Level make_level(const std::vector<std::uint32_t>& members, std::string& records) {
        Level level;
        if (std::any_of(members.begin(), members.end(),
                        [this](std::uint32_t i) { return has_matchers(routes_[i]); })) {
            std::string record;
            append(record, static_cast<std::uint32_t>(members.size()));
            for (const std::uint32_t i : members) {
                append_member(i, record);
            }
            // A record that fits in a cache line starts on a fresh one rather than straddle two.
            const std::size_t used = records.size() % sizeof(Line);
            if (record.size() <= sizeof(Line) && used + record.size() > sizeof(Line)) {
                records.append(sizeof(Line) - used, '\0');
            }
            level.kind = Level::Kind::Members;
            level.target = static_cast<std::uint32_t>(records.size());
            records += record;
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
    std::vector<Line> members_;  ///< the records of Members levels (see MemberHead)
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

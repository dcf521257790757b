// Route lookup cost against the number of routes (1, 10 and 10,000), for three tables:
//  - ExactPath: exact paths, looked up with match(host, path, method);
//  - PathPrefix: path prefixes, likewise;
//  - Mixed: exact paths, prefixes, routes with header and query matchers (and the plain routes
//    they fall through to), and four regex routes, looked up with match(const Request&); the
//    lookups hit each kind in turn, regexes included.
// Two access patterns: "Warm" cycles through (up to) 16 routes spread over the table, so it
// measures the lookup's work; "AllRoutes" cycles through every route in a shuffled order, so a
// large table is also measured with its cache misses.
// Each benchmark also reports "allocs": heap allocations per lookup, RE2's included, counted by
// replacing the global operator new. Our lookup allocates nothing; RE2 allocates only while its
// DFA meets a state it has not built yet, so a regex allocates in its first few matches after
// freeze() (16 allocations for the Mixed table's four) and never after: "allocs" is that
// handful divided by the iterations.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include <blitz/router.hpp>

namespace {

/// Heap allocations made by this process so far (see the replaced operator new below).
std::uint64_t allocations = 0;

}  // namespace

// RE2 allocates through operator new (and new[], which libstdc++ forwards to it), so this sees
// its allocations too.
[[gnu::noinline]] void* operator new(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}

// Out of line: GCC 12 otherwise misreads free() inside operator delete as a mismatched pair.
[[gnu::noinline]] void operator delete(void* p) noexcept {
    std::free(p);
}

[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

constexpr std::int64_t kWarmRoutes = 16;

/// A request the benchmark will look up: path, query and header fields.
struct Wanted {
    std::string path;
    std::string query;
    std::vector<std::pair<std::string, std::string>> fields;
};

/// Built in place (its views point into itself), never moved.
struct Fixture {
    std::shared_ptr<const blitz::RouteTable> table;
    /// The requests' paths, queries and header fields, back to back in lookup order, so that
    /// reading them costs the benchmark loop next to nothing (as a request just parsed would)
    /// and what is measured is the table's memory traffic.
    std::string text;
    std::vector<blitz::Header> headers;
    std::vector<blitz::Request> requests;
};

enum class Table { ExactPath, PathPrefix, Mixed };

/// Adds route `i` of the table to `router` and returns the request that should match it.
Wanted add_route(blitz::Router& router, Table table, std::int64_t i) {
    using blitz::MatchKind;
    const std::string n = std::to_string(i);
    if (table == Table::ExactPath) {
        router.route(blitz::Method::Get, "/static/file" + n + ".css");
        return {"/static/file" + n + ".css", {}, {}};
    }
    if (table == Table::PathPrefix) {
        router.route(blitz::Method::Get, "/api/v1/resource" + n + "/").prefix();
        return {"/api/v1/resource" + n + "/items/42", {}, {}};
    }
    switch (i % 5) {
        case 0:
            router.route(blitz::Method::Get, "/static/file" + n + ".css");
            return {"/static/file" + n + ".css", {}, {}};
        case 1:
            router.route("/api/v1/resource" + n + "/").prefix();
            return {"/api/v1/resource" + n + "/items/42", "page=2", {}};
        case 2:
            // A tenant's route and the plain one its misses fall through to.
            router.route("/users/" + n + "/profile")
                .header({"x-tenant", MatchKind::Exact, "t" + n});
            router.route("/users/" + n + "/profile");
            return {"/users/" + n + "/profile", {}, {{"accept", "*/*"}, {"X-Tenant", "t" + n}}};
        case 3:
            router.route("/users/" + n + "/profile")
                .header({"x-tenant", MatchKind::Exact, "t" + n});
            router.route("/users/" + n + "/profile");
            return {"/users/" + n + "/profile", {}, {{"accept", "*/*"}}};
        default:
            router.route("/svc/" + n + "/").prefix().query({"version", MatchKind::Prefix, "2"});
            router.route("/svc/" + n + "/").prefix();
            return {"/svc/" + n + "/call", "a=1&version=2.4", {}};
    }
}

/// The regex routes of the Mixed table, and a path for each.
const std::vector<std::pair<std::string, std::string>> kRegexRoutes = {
    {"/orders/[0-9]+", "/orders/12345"},
    {"/img/[a-z0-9]+\\.(png|jpg)", "/img/logo.png"},
    {"(?i)/legacy/.*", "/Legacy/page"},
    {".*\\.php", "/wp/index.php"},
};

void make_fixture(Fixture& f, std::int64_t count, Table table, bool all_routes) {
    blitz::Router router;
    std::vector<Wanted> wanted;
    const std::int64_t looked_up = all_routes ? count : std::min(count, kWarmRoutes);
    const std::int64_t stride = count / looked_up;
    for (std::int64_t i = 0; i < count; ++i) {
        Wanted w = add_route(router, table, i);
        if (i % stride == 0 && i / stride < looked_up) {
            wanted.push_back(std::move(w));
        }
    }
    if (table == Table::Mixed) {
        // Every fourth lookup is a regex one (regexes are tried after exact and prefix routes).
        const std::size_t plain = wanted.size();
        for (std::size_t r = 0; r < kRegexRoutes.size(); ++r) {
            router.route("/").path_regex(kRegexRoutes[r].first);
        }
        for (std::size_t k = 0; k < std::max<std::size_t>(plain / 3, 1); ++k) {
            wanted.push_back({kRegexRoutes[k % kRegexRoutes.size()].second, {}, {}});
        }
    }
    std::shuffle(wanted.begin(), wanted.end(), std::mt19937(42));
    // Reserved in full first: the requests view into both.
    std::size_t text_bytes = 0;
    std::size_t fields = 0;
    for (const Wanted& w : wanted) {
        text_bytes += w.path.size() + w.query.size();
        for (const auto& [name, value] : w.fields) {
            text_bytes += name.size() + value.size();
        }
        fields += w.fields.size();
    }
    f.text.reserve(text_bytes);
    f.headers.reserve(fields);
    auto text = [&f](const std::string& s) {
        const std::size_t at = f.text.size();
        f.text += s;
        return std::string_view(f.text).substr(at, s.size());
    };
    for (const Wanted& w : wanted) {
        blitz::Request r;
        r.method = blitz::Method::Get;
        r.authority = "example.com:8080";
        r.path = text(w.path);
        r.query = text(w.query);
        const std::size_t first = f.headers.size();
        for (const auto& [name, value] : w.fields) {
            f.headers.push_back(blitz::Header{text(name), text(value)});
        }
        r.headers = blitz::Headers(std::span(f.headers).subspan(first, w.fields.size()));
        f.requests.push_back(r);
    }
    auto frozen = router.freeze();
    if (frozen) {
        f.table = *frozen;
    }
}

void run(benchmark::State& state, Table table, bool all_routes) {
    Fixture f;
    make_fixture(f, state.range(0), table, all_routes);
    if (!f.table) {
        state.SkipWithError("Router::freeze failed");
        return;
    }
    std::size_t i = 0;
    std::size_t misses = 0;
    const std::uint64_t allocations_before = allocations;
    for (auto _ : state) {
        const blitz::Request& r = f.requests[i];
        const blitz::RouteMatch m = table == Table::Mixed
                                        ? f.table->match(r)
                                        : f.table->match(r.authority, r.path, r.method);
        misses += m.route == nullptr ? 1 : 0;
        benchmark::DoNotOptimize(m);
        i = i + 1 == f.requests.size() ? 0 : i + 1;
    }
    // Read before the counters below, whose map nodes allocate.
    const std::uint64_t allocated = allocations - allocations_before;
    if (misses != 0) {
        state.SkipWithError("a lookup found no route");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["allocs"] = benchmark::Counter(
        static_cast<double>(allocated), benchmark::Counter::kAvgIterations);
}

void BM_RouterExactPathWarm(benchmark::State& state) {
    run(state, Table::ExactPath, false);
}

void BM_RouterPathPrefixWarm(benchmark::State& state) {
    run(state, Table::PathPrefix, false);
}

void BM_RouterMixedWarm(benchmark::State& state) {
    run(state, Table::Mixed, false);
}

void BM_RouterExactPathAllRoutes(benchmark::State& state) {
    run(state, Table::ExactPath, true);
}

void BM_RouterPathPrefixAllRoutes(benchmark::State& state) {
    run(state, Table::PathPrefix, true);
}

void BM_RouterMixedAllRoutes(benchmark::State& state) {
    run(state, Table::Mixed, true);
}

/// With --benchmark_repetitions, the fastest repetition too: on a shared machine the other
/// processes only ever add time (and evict the table from the caches), so the minimum is the
/// steadiest figure to compare the 10- and 10,000-route tables by.
double fastest(const std::vector<double>& v) {
    return *std::min_element(v.begin(), v.end());
}

void sizes_from_1(benchmark::internal::Benchmark* b) {
    b->Arg(1)->Arg(10)->Arg(10'000);
}

void sizes_from_10(benchmark::internal::Benchmark* b) {
    b->Arg(10)->Arg(10'000);
}

}  // namespace

BENCHMARK(BM_RouterExactPathWarm)->Apply(sizes_from_1)->ComputeStatistics("min", fastest);
BENCHMARK(BM_RouterPathPrefixWarm)->Apply(sizes_from_1)->ComputeStatistics("min", fastest);
BENCHMARK(BM_RouterMixedWarm)->Apply(sizes_from_10)->ComputeStatistics("min", fastest);
BENCHMARK(BM_RouterExactPathAllRoutes)->Apply(sizes_from_1)->ComputeStatistics("min", fastest);
BENCHMARK(BM_RouterPathPrefixAllRoutes)->Apply(sizes_from_1)->ComputeStatistics("min", fastest);
BENCHMARK(BM_RouterMixedAllRoutes)->Apply(sizes_from_10)->ComputeStatistics("min", fastest);

BENCHMARK_MAIN();

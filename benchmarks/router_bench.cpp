// Route lookup cost against the number of routes: exact paths and path prefixes, with 1, 10 and
// 10,000 routes. Two access patterns: "Warm" cycles through (up to) 16 routes spread over the
// table, so it measures the lookup's work; "AllRoutes" cycles through every route in a
// shuffled order, so a large table is also measured with its cache misses.

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>

#include <blitz/router.hpp>

namespace {

struct Fixture {
    std::shared_ptr<const blitz::RouteTable> table;
    /// The request paths, back to back in lookup order, so that reading them costs the
    /// benchmark loop next to nothing and what is measured is the table's memory traffic.
    std::string text;
    std::vector<std::string_view> paths;
};

constexpr std::int64_t kWarmRoutes = 16;

Fixture make_fixture(std::int64_t count, bool prefix, bool all_routes) {
    blitz::Router router;
    std::vector<std::string> paths;
    const std::int64_t looked_up = all_routes ? count : std::min(count, kWarmRoutes);
    const std::int64_t stride = count / looked_up;
    for (std::int64_t i = 0; i < count; ++i) {
        const std::string n = std::to_string(i);
        const bool use = i % stride == 0 && i / stride < looked_up;
        if (prefix) {
            router.route(blitz::Method::Get, "/api/v1/resource" + n + "/").prefix();
            if (use) {
                paths.push_back("/api/v1/resource" + n + "/items/42");
            }
        } else {
            router.route(blitz::Method::Get, "/static/file" + n + ".css");
            if (use) {
                paths.push_back("/static/file" + n + ".css");
            }
        }
    }
    std::shuffle(paths.begin(), paths.end(), std::mt19937(42));
    Fixture f;
    std::vector<std::size_t> offsets;
    for (const std::string& p : paths) {
        offsets.push_back(f.text.size());
        f.text += p;
    }
    for (std::size_t i = 0; i < paths.size(); ++i) {
        f.paths.emplace_back(f.text.data() + offsets[i], paths[i].size());
    }
    auto table = router.freeze();
    if (table) {
        f.table = *table;
    }
    return f;
}

void run(benchmark::State& state, bool prefix, bool all_routes) {
    const Fixture f = make_fixture(state.range(0), prefix, all_routes);
    if (!f.table) {
        state.SkipWithError("Router::freeze failed");
        return;
    }
    std::size_t i = 0;
    std::size_t misses = 0;
    for (auto _ : state) {
        const blitz::RouteMatch m = f.table->match("example.com:8080", f.paths[i], blitz::Method::Get);
        misses += m.route == nullptr ? 1 : 0;
        benchmark::DoNotOptimize(m);
        i = i + 1 == f.paths.size() ? 0 : i + 1;
    }
    if (misses != 0) {
        state.SkipWithError("a lookup found no route");
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
}

void BM_RouterExactPathWarm(benchmark::State& state) {
    run(state, false, false);
}

void BM_RouterPathPrefixWarm(benchmark::State& state) {
    run(state, true, false);
}

void BM_RouterExactPathAllRoutes(benchmark::State& state) {
    run(state, false, true);
}

void BM_RouterPathPrefixAllRoutes(benchmark::State& state) {
    run(state, true, true);
}

}  // namespace

BENCHMARK(BM_RouterExactPathWarm)->Arg(1)->Arg(10)->Arg(10'000);
BENCHMARK(BM_RouterPathPrefixWarm)->Arg(1)->Arg(10)->Arg(10'000);
BENCHMARK(BM_RouterExactPathAllRoutes)->Arg(1)->Arg(10)->Arg(10'000);
BENCHMARK(BM_RouterPathPrefixAllRoutes)->Arg(1)->Arg(10)->Arg(10'000);

BENCHMARK_MAIN();

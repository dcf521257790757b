// The cost of one access-log line: formatting a typical proxied HTTPS exchange as JSON and as
// an nginx-combined-like template, and appending it through the per-reactor Writer.
#include <string>

#include <benchmark/benchmark.h>

#include "accesslog/format.hpp"
#include "accesslog/writer.hpp"

using namespace blitz;

namespace {

accesslog::Record typical() {
    accesslog::Record r;
    r.time_us = 1795698483'123456;
    r.duration_us = 1234;
    r.client = "192.0.2.7";
    r.client_port = 51234;
    r.method = "GET";
    r.scheme = "https";
    r.authority = "api.example.com";
    r.path = "/v1/items?id=42&filter=active";
    r.protocol = "HTTP/1.1";
    r.status = 200;
    r.bytes_received = 312;
    r.bytes_sent = 1045;
    r.route = "items";
    r.upstream = "backend";
    r.upstream_endpoint = "10.0.0.1:8080";
    r.upstream_status = 200;
    r.upstream_connect_us = 150;
    r.upstream_first_byte_us = 900;
    r.attempts = 1;
    r.request_id = "8f14e45fceea167a5a36dedd4bea2543";
    r.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    r.span_id = "00f067aa0ba902b7";
    r.tls_version = "TLSv1.3";
    r.tls_sni = "api.example.com";
    r.user_agent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)";
    r.referer = "https://example.com/items";
    r.listener = "public";
    return r;
}

void format_line(benchmark::State& state, const accesslog::Format& f) {
    const accesslog::Record r = typical();
    accesslog::TimeCache tc;
    char buf[2048];
    std::size_t bytes = 0;
    for (auto _ : state) {
        const std::size_t n = f.format_to(r, tc, buf);
        benchmark::DoNotOptimize(buf);
        bytes += n;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}

void BM_FormatJson(benchmark::State& state) { format_line(state, accesslog::Format::json()); }
BENCHMARK(BM_FormatJson);

void BM_FormatTemplate(benchmark::State& state) {
    auto f = accesslog::Format::compile(
        "$client - - [$time_local] \"$method $path $protocol\" $status $bytes_sent \"$referer\" "
        "\"$user_agent\" $duration_us");
    if (!f) {
        state.SkipWithError("template does not compile");
        return;
    }
    format_line(state, *f);
}
BENCHMARK(BM_FormatTemplate);

// Append plus the batch hand-off a reactor does when the buffer is half full (the write
// completing at once).
void BM_WriterAppendJson(benchmark::State& state) {
    const accesslog::Format f = accesslog::Format::json();
    const accesslog::Record r = typical();
    accesslog::Writer w(64 * 1024);
    for (auto _ : state) {
        w.append(f, r);
        if (w.buffered_bytes() >= w.buffer_bytes() / 2) {
            auto s = w.start_write();
            w.write_done(static_cast<long>(s.size()));
        }
    }
    state.counters["dropped"] = static_cast<double>(w.dropped().value());
}
BENCHMARK(BM_WriterAppendJson);

}  // namespace

BENCHMARK_MAIN();

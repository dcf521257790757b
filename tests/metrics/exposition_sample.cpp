// Prints an exposition holding every kind of family the writer produces (counters with and
// without labels, integer and float gauges, histograms with data and empty ones), label
// values that need escaping or are not UTF-8, and this process's process_* metrics, for the
// metrics-promtool test to feed to `promtool check metrics`. Exits 1 if the writer reports a
// mistake.

#include <cstdint>
#include <cstdio>
#include <string>

#include "metrics/exposition.hpp"
#include "metrics/histogram.hpp"
#include "metrics/label_cap.hpp"
#include "metrics/process.hpp"

using blitz::metrics::Histogram;
using blitz::metrics::MetricType;

int main() {
    std::string out;
    blitz::metrics::Writer w(out);

    blitz::metrics::LabelCap hosts(2);
    const std::string_view seen[] = {"a.example", "evil\"host\\\nname", "c.example", "other"};
    std::uint64_t per_slot[3] = {};
    for (std::string_view host : seen) {
        ++per_slot[hosts.slot(host)];
    }
    w.family("blitz_requests_total", "Requests answered, by host.\nSecond help line \\.",
             MetricType::Counter);
    for (std::size_t s = 0; s < hosts.slots(); ++s) {
        w.counter({{"host", hosts.value(s)}, {"code", "2xx"}}, per_slot[s]);
    }
    w.counter({{"host", "\xFF\xFE not utf-8 \xC0\xAF"}, {"code", "5xx"}}, 1);
    w.family("blitz_connections_accepted_total", "Connections accepted.", MetricType::Counter);
    w.counter({}, 12345);
    w.family("blitz_requests_in_flight", "Requests being served.", MetricType::Gauge);
    w.gauge({}, -1);
    w.family("blitz_buffer_ring_use_ratio", "Share of receive buffers in use.", MetricType::Gauge);
    w.sample({{"reactor", "0"}}, 0.125);
    w.sample({{"reactor", "1"}}, 0);

    Histogram fast;
    Histogram slow;
    for (std::uint64_t v = 1; v < 200'000'000; v = v * 3 / 2 + 1) {
        fast.observe(v / 100);
        slow.observe(v);
    }
    Histogram::Snapshot both = fast.snapshot();
    slow.merge_into(both);
    w.family("blitz_request_duration_seconds", "Request duration.", MetricType::Histogram);
    w.histogram({{"route", "api \"v1\""}}, fast.snapshot());
    w.histogram({{"route", "all"}}, both);
    w.histogram({{"route", "none"}}, Histogram::Snapshot{});
    w.family("blitz_upstream_connect_seconds", "Upstream connect time.", MetricType::Histogram);
    w.histogram({}, slow.snapshot());

    const auto process = blitz::metrics::read_process_stats();
    if (!process) {
        std::fprintf(stderr, "read_process_stats: %s\n", process.error().context);
        return 1;
    }
    blitz::metrics::write_process_metrics(w, *process);

    if (const auto st = w.status(); !st) {
        std::fprintf(stderr, "writer: %s\n", st.error().context);
        return 1;
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    return std::fflush(stdout) == 0 ? 0 : 1;
}

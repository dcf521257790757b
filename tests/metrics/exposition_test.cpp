#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "metrics/exposition.hpp"
#include "metrics/histogram.hpp"

using blitz::metrics::append_double;
using blitz::metrics::append_label_value;
using blitz::metrics::append_seconds;
using blitz::metrics::Histogram;
using blitz::metrics::Label;
using blitz::metrics::MetricType;
using blitz::metrics::Writer;

namespace {

std::vector<std::string> lines(std::string_view text) {
    std::vector<std::string> out;
    while (!text.empty()) {
        const std::size_t nl = text.find('\n');
        REQUIRE(nl != std::string_view::npos);  // every line ends in a newline
        out.emplace_back(text.substr(0, nl));
        text.remove_prefix(nl + 1);
    }
    return out;
}

std::string seconds(std::uint64_t micros) {
    std::string s;
    append_seconds(s, micros);
    return s;
}

std::string real(double v) {
    std::string s;
    append_double(s, v);
    return s;
}

std::string escaped(std::string_view v) {
    std::string s;
    append_label_value(s, v);
    return s;
}

std::string context_of(const Writer& w) {
    const auto st = w.status();
    return st ? std::string() : std::string(st.error().context);
}

}  // namespace

TEST_CASE("metrics::Writer writes HELP and TYPE once per family, then its samples", "[metrics]") {
    std::string out = "# previous\n";
    Writer w(out);
    w.family("blitz_requests_total", "Requests answered.", MetricType::Counter);
    w.counter({{"route", "api"}, {"method", "GET"}, {"code", "2xx"}}, 42);
    w.counter({{"route", "static"}, {"method", "HEAD"}, {"code", "5xx"}}, 0);
    w.family("blitz_requests_in_flight", "Requests being served.", MetricType::Gauge);
    w.gauge({}, -3);
    w.family("blitz_uptime_ratio", "A float gauge.", MetricType::Gauge);
    const Label dynamic[] = {{"reactor", "0"}};
    w.sample(dynamic, 0.25);
    w.family("blitz_bytes_received_total", "Bytes read.", MetricType::Counter);
    w.counter({}, UINT64_MAX);
    REQUIRE(w.status());
    CHECK(lines(out) == std::vector<std::string>{
                            "# previous",
                            "# HELP blitz_requests_total Requests answered.",
                            "# TYPE blitz_requests_total counter",
                            R"(blitz_requests_total{route="api",method="GET",code="2xx"} 42)",
                            R"(blitz_requests_total{route="static",method="HEAD",code="5xx"} 0)",
                            "# HELP blitz_requests_in_flight Requests being served.",
                            "# TYPE blitz_requests_in_flight gauge",
                            "blitz_requests_in_flight -3",
                            "# HELP blitz_uptime_ratio A float gauge.",
                            "# TYPE blitz_uptime_ratio gauge",
                            R"(blitz_uptime_ratio{reactor="0"} 0.25)",
                            "# HELP blitz_bytes_received_total Bytes read.",
                            "# TYPE blitz_bytes_received_total counter",
                            "blitz_bytes_received_total 18446744073709551615",
                        });
}

TEST_CASE("metrics::Writer escapes backslash, quote and newline in label values and help",
          "[metrics]") {
    CHECK(escaped("plain-host.example:8080") == "plain-host.example:8080");
    CHECK(escaped("a\\b\"c\nd") == R"(a\\b\"c\nd)");
    CHECK(escaped("\\\\") == R"(\\\\)");
    CHECK(escaped("tab\tand\rcr") == "tab\tand\rcr");  // only \, " and newline are escaped
    CHECK(escaped("") == "");

    std::string out;
    Writer w(out);
    w.family("x_total", "line one\nsays \"hi\" \\ bye", MetricType::Counter);
    w.counter({{"path", "/a\"b\\c\nd"}}, 1);
    REQUIRE(w.status());
    CHECK(lines(out) == std::vector<std::string>{
                            R"(# HELP x_total line one\nsays "hi" \\ bye)",
                            "# TYPE x_total counter",
                            R"(x_total{path="/a\"b\\c\nd"} 1)",
                        });
}

TEST_CASE("metrics::Writer replaces invalid UTF-8 in label values with U+FFFD", "[metrics]") {
    const std::string r = "\xEF\xBF\xBD";
    CHECK(escaped("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") ==
          "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
    CHECK(escaped("\xFF") == r);
    CHECK(escaped("a\x80z") == "a" + r + "z");
    CHECK(escaped("\xC0\xAF") == r + r);                  // overlong '/'
    CHECK(escaped("\xED\xA0\x80") == r + r + r);          // a UTF-16 surrogate
    CHECK(escaped("\xF4\x90\x80\x80") == r + r + r + r);  // above U+10FFFF
    CHECK(escaped("x\xE2\x82") == "x" + r + r);           // truncated at the end
    CHECK(escaped("\xE2\x82\"") == r + r + "\\\"");       // truncated before an escaped quote
}

TEST_CASE("metrics::Writer writes a histogram as cumulative buckets in seconds", "[metrics]") {
    Histogram h;
    for (std::uint64_t v : {50u, 100u, 101u, 150'000u, 60'000'000u, 60'000'001u, 200'000'000u}) {
        h.observe(v);
    }
    std::string out;
    Writer w(out);
    w.family("blitz_request_duration_seconds", "Request duration.", MetricType::Histogram);
    w.histogram({{"route", "api"}}, h.snapshot());
    w.histogram({}, Histogram::Snapshot{});
    REQUIRE(w.status());
    const std::string p = R"(blitz_request_duration_seconds_bucket{route="api",le=")";
    const std::string e = R"(blitz_request_duration_seconds_bucket{le=")";
    CHECK(lines(out) == std::vector<std::string>{
                            "# HELP blitz_request_duration_seconds Request duration.",
                            "# TYPE blitz_request_duration_seconds histogram",
                            p + R"(0.0001"} 2)",
                            p + R"(0.0002"} 3)",
                            p + R"(0.0005"} 3)",
                            p + R"(0.001"} 3)",
                            p + R"(0.002"} 3)",
                            p + R"(0.005"} 3)",
                            p + R"(0.01"} 3)",
                            p + R"(0.02"} 3)",
                            p + R"(0.05"} 3)",
                            p + R"(0.1"} 3)",
                            p + R"(0.2"} 4)",
                            p + R"(0.5"} 4)",
                            p + R"(1"} 4)",
                            p + R"(2"} 4)",
                            p + R"(5"} 4)",
                            p + R"(10"} 4)",
                            p + R"(20"} 4)",
                            p + R"(50"} 4)",
                            p + R"(60"} 5)",
                            p + R"(+Inf"} 7)",
                            R"(blitz_request_duration_seconds_sum{route="api"} 320.150252)",
                            R"(blitz_request_duration_seconds_count{route="api"} 7)",
                            e + R"(0.0001"} 0)",
                            e + R"(0.0002"} 0)",
                            e + R"(0.0005"} 0)",
                            e + R"(0.001"} 0)",
                            e + R"(0.002"} 0)",
                            e + R"(0.005"} 0)",
                            e + R"(0.01"} 0)",
                            e + R"(0.02"} 0)",
                            e + R"(0.05"} 0)",
                            e + R"(0.1"} 0)",
                            e + R"(0.2"} 0)",
                            e + R"(0.5"} 0)",
                            e + R"(1"} 0)",
                            e + R"(2"} 0)",
                            e + R"(5"} 0)",
                            e + R"(10"} 0)",
                            e + R"(20"} 0)",
                            e + R"(50"} 0)",
                            e + R"(60"} 0)",
                            e + R"(+Inf"} 0)",
                            "blitz_request_duration_seconds_sum 0",
                            "blitz_request_duration_seconds_count 0",
                        });
}

TEST_CASE("metrics::Writer leaves out invalid families and samples and reports the first",
          "[metrics]") {
    struct Case {
        const char* what;
        void (*write)(Writer&);
        std::string_view context;
    };
    const Case cases[] = {
        {"metric name starting with a digit",
         [](Writer& w) { w.family("1x_total", "h", MetricType::Counter); },
         "metrics: invalid metric name"},
        {"metric name with a dash", [](Writer& w) { w.family("a-b", "h", MetricType::Gauge); },
         "metrics: invalid metric name"},
        {"counter without _total",
         [](Writer& w) { w.family("requests", "h", MetricType::Counter); },
         "metrics: a counter's name must end in _total"},
        {"counter named only _total",
         [](Writer& w) { w.family("_total", "h", MetricType::Counter); },
         "metrics: a counter's name must end in _total"},
        {"histogram without _seconds",
         [](Writer& w) { w.family("latency_ms", "h", MetricType::Histogram); },
         "metrics: a duration histogram's name must end in _seconds"},
        {"family written twice",
         [](Writer& w) {
             w.family("g", "h", MetricType::Gauge);
             w.family("g", "h", MetricType::Gauge);
         },
         "metrics: a metric family was written twice"},
        {"sample before any family", [](Writer& w) { w.gauge({}, 1); },
         "metrics: sample outside a family of its type"},
        {"counter sample in a gauge family",
         [](Writer& w) {
             w.family("g", "h", MetricType::Gauge);
             w.counter({}, 1);
         },
         "metrics: sample outside a family of its type"},
        {"float sample in a histogram family",
         [](Writer& w) {
             w.family("d_seconds", "h", MetricType::Histogram);
             w.sample({}, 1.0);
         },
         "metrics: sample outside a family of its type"},
        {"reserved label name",
         [](Writer& w) {
             w.family("g", "h", MetricType::Gauge);
             w.gauge({{"__name__", "x"}}, 1);
         },
         "metrics: invalid label name"},
        {"label name with a dot",
         [](Writer& w) {
             w.family("g", "h", MetricType::Gauge);
             w.gauge({{"a.b", "x"}}, 1);
         },
         "metrics: invalid label name"},
        {"empty label name",
         [](Writer& w) {
             w.family("g", "h", MetricType::Gauge);
             w.gauge({{"", "x"}}, 1);
         },
         "metrics: invalid label name"},
        {"le on a histogram",
         [](Writer& w) {
             w.family("d_seconds", "h", MetricType::Histogram);
             w.histogram({{"le", "1"}}, Histogram::Snapshot{});
         },
         "metrics: label le is reserved in histograms"},
        {"duplicate label",
         [](Writer& w) {
             w.family("g", "h", MetricType::Gauge);
             w.gauge({{"a", "1"}, {"b", "2"}, {"a", "3"}}, 1);
         },
         "metrics: duplicate label name in a sample"},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        std::string out;
        Writer w(out);
        c.write(w);
        CHECK(context_of(w) == c.context);
        // Nothing but the valid family header may have been written.
        for (const std::string& l : lines(out)) {
            CHECK(l.starts_with("# "));
        }
        // The writer goes on with later valid families and keeps the first error.
        w.family("after_total", "h", MetricType::Counter);
        w.counter({}, 5);
        CHECK(out.ends_with("# TYPE after_total counter\nafter_total 5\n"));
        CHECK(context_of(w) == c.context);
    }
}

TEST_CASE("metrics::Writer skips the samples of an invalid family", "[metrics]") {
    std::string out;
    Writer w(out);
    w.family("bad name", "h", MetricType::Gauge);
    w.gauge({}, 1);
    w.gauge({}, 2);
    CHECK(out.empty());
    CHECK(context_of(w) == "metrics: invalid metric name");
}

TEST_CASE("metrics::append_seconds writes microseconds as exact decimal seconds", "[metrics]") {
    CHECK(seconds(0) == "0");
    CHECK(seconds(1) == "0.000001");
    CHECK(seconds(100) == "0.0001");
    CHECK(seconds(250'000) == "0.25");
    CHECK(seconds(1'500'000) == "1.5");
    CHECK(seconds(60'000'000) == "60");
    CHECK(seconds(123'456'789) == "123.456789");
    CHECK(seconds(UINT64_MAX) == "18446744073709.551615");
}

TEST_CASE("metrics::append_double writes the shortest exact form and Prometheus specials",
          "[metrics]") {
    CHECK(real(0) == "0");
    CHECK(real(0.1) == "0.1");
    CHECK(real(-2.5) == "-2.5");
    CHECK(real(1700000000.37) == "1700000000.37");
    CHECK(real(1e300) == "1e+300");
    CHECK(real(std::numeric_limits<double>::infinity()) == "+Inf");
    CHECK(real(-std::numeric_limits<double>::infinity()) == "-Inf");
    CHECK(real(std::nan("")) == "NaN");
}

TEST_CASE("metrics::valid_metric_name and valid_label_name follow the data model", "[metrics]") {
    using blitz::metrics::valid_label_name;
    using blitz::metrics::valid_metric_name;
    CHECK(valid_metric_name("blitz_requests_total"));
    CHECK(valid_metric_name("_x"));
    CHECK(valid_metric_name("job:rate5m"));
    CHECK(valid_metric_name("A9"));
    CHECK_FALSE(valid_metric_name(""));
    CHECK_FALSE(valid_metric_name("9a"));
    CHECK_FALSE(valid_metric_name("a b"));
    CHECK_FALSE(valid_metric_name("caf\xC3\xA9"));
    CHECK(valid_label_name("route"));
    CHECK(valid_label_name("_private"));
    CHECK(valid_label_name("code2"));
    CHECK_FALSE(valid_label_name(""));
    CHECK_FALSE(valid_label_name("__reserved"));
    CHECK_FALSE(valid_label_name("a:b"));
    CHECK_FALSE(valid_label_name("2xx"));
}

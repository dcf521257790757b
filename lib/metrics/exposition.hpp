#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <blitz/result.hpp>

#include "metrics/histogram.hpp"

namespace blitz::metrics {

/// The kind of a metric family, as written on its `# TYPE` line.
enum class MetricType : std::uint8_t { Counter, Gauge, Histogram };

/// One label of a sample. The value may be any bytes (it is escaped, and invalid UTF-8 is
/// replaced by U+FFFD); the name must match [a-zA-Z_][a-zA-Z0-9_]* and not start with "__".
///
/// Thread: value type. Lifetime: views, valid for the call they are passed to.
struct Label {
    std::string_view name;
    std::string_view value;
};

/// The labels of one sample: a view of a brace list (`{{"route", r}, {"code", "2xx"}}`), an
/// array or a span. Construct it in the call's argument list; it must not outlive the call.
///
/// Thread: value type. Lifetime: a view, valid for the full expression it is built in.
class Labels {
public:
    Labels() noexcept = default;
    // Like C++26 std::span's initializer_list constructor: the list's array lives until the
    // end of the full expression holding the call, which is as long as a Labels is used.
    Labels(std::initializer_list<Label> list) noexcept  // NOLINT(google-explicit-constructor)
        : data_(std::data(list)), size_(list.size()) {}
    Labels(std::span<const Label> labels) noexcept  // NOLINT(google-explicit-constructor)
        : data_(labels.data()), size_(labels.size()) {}
    template <std::size_t N>
    Labels(const Label (&labels)[N]) noexcept  // NOLINT(google-explicit-constructor)
        : data_(labels), size_(N) {}

    const Label* begin() const noexcept { return data_; }
    const Label* end() const noexcept { return data_ + size_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

private:
    const Label* data_ = nullptr;
    std::size_t size_ = 0;
};

/// Writes the Prometheus text exposition format, version 0.0.4, by appending to a caller's
/// string. A family is started by family() (its `# HELP` and `# TYPE` lines, written once per
/// family) and followed by its samples. The writer enforces the conventions promtool checks:
/// counter names end in `_total`; histogram names end in `_seconds` (durations are recorded in
/// microseconds and exported in seconds); a family appears once. A family or sample with an
/// invalid name is left out, so the output always parses, and the first such mistake is kept
/// for status().
///
/// Thread: one thread at a time (the scrape). Lifetime: refers to `out`, which must outlive it;
/// keep that string across scrapes (clear() keeps its capacity) so a scrape does not regrow it.
class Writer {
public:
    /// Appends to `out`; existing contents are kept.
    explicit Writer(std::string& out) noexcept : out_(out) {}
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    /// Starts the family `name`: writes `# HELP name help` (help escaped) and `# TYPE`.
    void family(std::string_view name, std::string_view help, MetricType type);
    /// A sample of the current counter family: `name{labels} value`.
    void counter(Labels labels, std::uint64_t value);
    /// A sample of the current gauge family.
    void gauge(Labels labels, std::int64_t value);
    /// A sample of the current counter or gauge family with a floating-point value (written in
    /// the shortest form that reads back exactly; NaN and infinities as `NaN`, `+Inf`, `-Inf`).
    void sample(Labels labels, double value);
    /// A histogram of the current histogram family: cumulative `_bucket` lines, one per
    /// kExportBoundsMicros bound (`le` in seconds) and `le="+Inf"`, then `_sum` (seconds) and
    /// `_count`. All counts come from the one snapshot, so they are consistent.
    void histogram(Labels labels, const Histogram::Snapshot& snapshot);

    /// Success, or the first invalid family or sample (Errc::InvalidArgument; context names
    /// the rule broken).
    Result<void> status() const noexcept;

private:
    bool begin_sample(MetricType type, Labels labels);
    void fail_with(const char* context) noexcept;
    void series_head(std::string_view suffix);

    std::string& out_;
    std::string name_;  // the current family
    MetricType type_ = MetricType::Counter;
    bool in_family_ = false;         // false before the first family and after an invalid one
    std::string labels_;             // rendered labels of the current sample, without braces
    std::vector<std::string> seen_;  // families written so far
    const char* error_ = nullptr;
};

/// Appends `micros` microseconds as seconds in exact decimal (`0.0001`, `1.5`, `60`).
void append_seconds(std::string& out, std::uint64_t micros);
/// Appends `value` as a Prometheus float: shortest exact form, or `NaN`, `+Inf`, `-Inf`.
void append_double(std::string& out, double value);
/// Appends `value` escaped for a label value (`\\`, `\"`, `\n`; invalid UTF-8 as U+FFFD).
void append_label_value(std::string& out, std::string_view value);
/// True if `name` is a valid metric name: [a-zA-Z_:][a-zA-Z0-9_:]*.
bool valid_metric_name(std::string_view name) noexcept;
/// True if `name` is a valid, non-reserved label name: [a-zA-Z_][a-zA-Z0-9_]* not starting
/// with "__".
bool valid_label_name(std::string_view name) noexcept;

}  // namespace blitz::metrics

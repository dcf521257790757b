#include "metrics/exposition.hpp"

#include <charconv>
#include <cmath>

#include "core/utf8.hpp"

namespace blitz::metrics {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool is_alpha_or_underscore(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
    return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Appends `s` with `\` and newline escaped (and `"` too when `quote`), invalid UTF-8 replaced.
// Text format 0.0.4: label values escape all three; HELP text escapes `\` and newline only.
void append_escaped(std::string& out, std::string_view s, bool quote) {
    std::size_t plain = 0;  // start of the run not yet copied
    std::size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x80 && c != '\\' && c != '\n' && !(quote && c == '"')) {
            ++i;
            continue;
        }
        const std::size_t n = u < 0x80 ? 1 : blitz::detail::utf8_sequence(s.substr(i));
        if (n > 1) {
            i += n;
            continue;
        }
        out.append(s.substr(plain, i - plain));
        if (c == '\n') {
            out.append("\\n");
        } else if (u < 0x80) {
            out.push_back('\\');
            out.push_back(c);
        } else {
            out.append(kReplacement);
        }
        plain = ++i;
    }
    out.append(s.substr(plain));
}

template <class Int>
void append_int(std::string& out, Int value) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, r.ptr);
}

std::string_view type_name(MetricType type) noexcept {
    switch (type) {
        case MetricType::Counter:
            return "counter";
        case MetricType::Gauge:
            return "gauge";
        case MetricType::Histogram:
            return "histogram";
    }
    return "untyped";
}

}  // namespace

void append_seconds(std::string& out, std::uint64_t micros) {
    append_int(out, micros / 1'000'000);
    std::uint64_t frac = micros % 1'000'000;
    if (frac == 0) {
        return;
    }
    char digits[6];
    for (int i = 5; i >= 0; --i) {
        digits[i] = static_cast<char>('0' + frac % 10);
        frac /= 10;
    }
    std::size_t len = 6;
    while (digits[len - 1] == '0') {
        --len;
    }
    out.push_back('.');
    out.append(digits, len);
}

void append_double(std::string& out, double value) {
    if (std::isnan(value)) {
        out.append("NaN");
    } else if (std::isinf(value)) {
        out.append(value > 0 ? "+Inf" : "-Inf");
    } else {
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, value);
        out.append(buf, r.ptr);
    }
}

void append_label_value(std::string& out, std::string_view value) {
    append_escaped(out, value, true);
}

bool valid_metric_name(std::string_view name) noexcept {
    if (name.empty() || !(is_alpha_or_underscore(name[0]) || name[0] == ':')) {
        return false;
    }
    for (char c : name) {
        if (!(is_alpha_or_underscore(c) || is_digit(c) || c == ':')) {
            return false;
        }
    }
    return true;
}

bool valid_label_name(std::string_view name) noexcept {
    if (name.empty() || !is_alpha_or_underscore(name[0]) || name.starts_with("__")) {
        return false;
    }
    for (char c : name) {
        if (!(is_alpha_or_underscore(c) || is_digit(c))) {
            return false;
        }
    }
    return true;
}

void Writer::fail_with(const char* context) noexcept {
    if (error_ == nullptr) {
        error_ = context;
    }
}

Result<void> Writer::status() const noexcept {
    if (error_ != nullptr) {
        return fail(
            Error{.code = Errc::InvalidArgument, .source = ErrorSource::Local, .context = error_});
    }
    return {};
}

void Writer::family(std::string_view name, std::string_view help, MetricType type) {
    in_family_ = false;
    if (!valid_metric_name(name)) {
        return fail_with("metrics: invalid metric name");
    }
    if (type == MetricType::Counter && !ends_with(name, "_total")) {
        return fail_with("metrics: a counter's name must end in _total");
    }
    if (type == MetricType::Histogram && !ends_with(name, "_seconds")) {
        return fail_with("metrics: a duration histogram's name must end in _seconds");
    }
    for (const std::string& s : seen_) {
        if (s == name) {
            return fail_with("metrics: a metric family was written twice");
        }
    }
    seen_.emplace_back(name);
    name_.assign(name);
    type_ = type;
    in_family_ = true;
    out_.append("# HELP ").append(name).push_back(' ');
    append_escaped(out_, help, false);
    out_.append("\n# TYPE ").append(name).push_back(' ');
    out_.append(type_name(type)).push_back('\n');
}

// Checks that a sample of `type` may follow and renders its labels into labels_ (no braces).
bool Writer::begin_sample(MetricType type, Labels labels) {
    if (!in_family_ || type != type_) {
        fail_with("metrics: sample outside a family of its type");
        return false;
    }
    labels_.clear();
    for (const Label* l = labels.begin(); l != labels.end(); ++l) {
        if (!valid_label_name(l->name)) {
            fail_with("metrics: invalid label name");
            return false;
        }
        if (type == MetricType::Histogram && l->name == "le") {
            fail_with("metrics: label le is reserved in histograms");
            return false;
        }
        for (const Label* p = labels.begin(); p != l; ++p) {
            if (p->name == l->name) {
                fail_with("metrics: duplicate label name in a sample");
                return false;
            }
        }
        if (l != labels.begin()) {
            labels_.push_back(',');
        }
        labels_.append(l->name).append("=\"");
        append_label_value(labels_, l->value);
        labels_.push_back('"');
    }
    return true;
}

void Writer::series_head(std::string_view suffix) {
    out_.append(name_).append(suffix);
    if (!labels_.empty()) {
        out_.append("{").append(labels_).push_back('}');
    }
    out_.push_back(' ');
}

void Writer::counter(Labels labels, std::uint64_t value) {
    if (begin_sample(MetricType::Counter, labels)) {
        series_head("");
        append_int(out_, value);
        out_.push_back('\n');
    }
}

void Writer::gauge(Labels labels, std::int64_t value) {
    if (begin_sample(MetricType::Gauge, labels)) {
        series_head("");
        append_int(out_, value);
        out_.push_back('\n');
    }
}

void Writer::sample(Labels labels, double value) {
    // Counters and gauges only: a histogram family is reported as a type mismatch.
    const MetricType type = type_ == MetricType::Histogram ? MetricType::Counter : type_;
    if (begin_sample(type, labels)) {
        series_head("");
        append_double(out_, value);
        out_.push_back('\n');
    }
}

void Writer::histogram(Labels labels, const Histogram::Snapshot& snapshot) {
    if (!begin_sample(MetricType::Histogram, labels)) {
        return;
    }
    // Each line: name, suffix, labels, le="...", a count of up to 20 digits.
    constexpr std::size_t kLines = kExportBoundsMicros.size() + 3;
    out_.reserve(out_.size() + kLines * (name_.size() + labels_.size() + 48));
    const auto bucket_line = [&](auto&& append_le, std::uint64_t count) {
        out_.append(name_).append("_bucket{").append(labels_);
        if (!labels_.empty()) {
            out_.push_back(',');
        }
        out_.append("le=\"");
        append_le();
        out_.append("\"} ");
        append_int(out_, count);
        out_.push_back('\n');
    };
    // One pass over the fine buckets: each export bound is the upper edge of one of them.
    std::uint64_t cumulative = 0;
    std::size_t fine = 0;
    for (std::size_t j = 0; j < kExportBoundsMicros.size(); ++j) {
        for (; fine <= detail::kExportBuckets[j]; ++fine) {
            cumulative += snapshot.counts[fine];
        }
        bucket_line([&] { append_seconds(out_, kExportBoundsMicros[j]); }, cumulative);
    }
    for (; fine < Histogram::kBuckets; ++fine) {
        cumulative += snapshot.counts[fine];
    }
    bucket_line([&] { out_.append("+Inf"); }, cumulative);
    series_head("_sum");
    append_seconds(out_, snapshot.sum_micros);
    out_.push_back('\n');
    series_head("_count");
    append_int(out_, cumulative);
    out_.push_back('\n');
}

}  // namespace blitz::metrics

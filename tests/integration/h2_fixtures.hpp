#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "harness.hpp"

/// HTTP/2 integration-test fixtures: the HTTP/2 clients the [h2] tests run against blitzd
/// (curl, nghttp and h2load from nghttp2-client) and readers for what they print. Nothing here
/// links nghttp2: the clients are separate programs.
namespace blitz::itest {

/// curl with `-sS --max-time 5 --http2-prior-knowledge` prepended to `args` (h2c).
CommandResult curl_h2c(std::vector<std::string> args);

/// `nghttp` with `args` (killed after `timeout`). Use `-v` for parse_nghttp() and `-n` to
/// keep response bodies out of the trace.
CommandResult nghttp(const std::vector<std::string>& args, Millis timeout = Millis(10'000));

/// `h2load` with `args` (killed after `timeout`).
CommandResult h2load(const std::vector<std::string>& args, Millis timeout = Millis(60'000));

/// One response stream as `nghttp -v` reported it.
struct NghttpStream {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;  ///< without :status
    /// Fields of a HEADERS frame after the final response head (the trailer section).
    std::vector<std::pair<std::string, std::string>> trailers;
    std::vector<int> interim;         ///< 1xx statuses before the final one
    bool head_done = false;           ///< the final response head arrived
    std::size_t data_bytes = 0;
    std::vector<double> data_times;  ///< seconds since start, one per DATA frame with bytes
    bool headers_end_stream = false;  ///< the response HEADERS carried END_STREAM
    bool end_stream = false;          ///< END_STREAM arrived (HEADERS or DATA)
    bool reset = false;               ///< RST_STREAM from the server
    std::string reset_error;          ///< its error name ("NO_ERROR", "CANCEL")

    /// The first field with this name; nullopt when absent.
    std::optional<std::string> header(std::string_view name) const;
};

/// What `nghttp -v` printed: response streams by id, and the server's GOAWAY.
struct NghttpTrace {
    std::map<std::int32_t, NghttpStream> streams;
    bool goaway = false;
    std::int32_t goaway_last_stream = -1;
    std::string goaway_error;  ///< "NO_ERROR", "ENHANCE_YOUR_CALM"
};
NghttpTrace parse_nghttp(std::string_view verbose_output);
/// The one stream of an nghttp run (a test failure unless there was exactly one).
NghttpStream only_stream(std::string_view verbose_output);

/// h2load's summary lines ("requests: ..." and "status codes: ...").
struct H2loadSummary {
    bool parsed = false;
    long total = 0, started = 0, done = 0, succeeded = 0, failed = 0, errored = 0, timeout = 0;
    long s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0;
};
H2loadSummary parse_h2load(std::string_view output);

}  // namespace blitz::itest

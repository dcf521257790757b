#include "h2_fixtures.hpp"

#include <catch2/catch_test_macros.hpp>

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace blitz::itest {

namespace {

/// The number after `key` in `line` ("length=" -> 9); -1 when absent.
long number_after(std::string_view line, std::string_view key) {
    const auto at = line.find(key);
    if (at == std::string_view::npos) {
        return -1;
    }
    return std::strtol(std::string(line.substr(at + key.size(), 20)).c_str(), nullptr, 0);
}

/// The error name in "error_code=NAME(0x..)".
std::string error_name(std::string_view line) {
    static constexpr std::string_view kKey = "error_code=";
    const auto at = line.find(kKey);
    if (at == std::string_view::npos) {
        return {};
    }
    std::string_view rest = line.substr(at + kKey.size());
    return std::string(rest.substr(0, rest.find('(')));
}

}  // namespace

CommandResult curl_h2c(std::vector<std::string> args) {
    args.insert(args.begin(), "--http2-prior-knowledge");
    return curl(std::move(args));
}

CommandResult nghttp(const std::vector<std::string>& args, Millis timeout) {
    std::vector<std::string> argv = {"nghttp"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, timeout);
}

CommandResult h2load(const std::vector<std::string>& args, Millis timeout) {
    std::vector<std::string> argv = {"h2load"};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, timeout);
}

std::optional<std::string> NghttpStream::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (n == name) {
            return v;
        }
    }
    return std::nullopt;
}

NghttpTrace parse_nghttp(std::string_view out) {
    // Lines look like "[  0.003] recv (stream_id=13) :status: 200" and
    // "[  0.003] recv DATA frame <length=9, flags=0x01, stream_id=13>", a frame's details on the
    // indented lines after it.
    NghttpTrace t;
    enum class Pending { None, Rst, Goaway } pending = Pending::None;
    std::int32_t pending_id = 0;
    std::size_t pos = 0;
    while (pos < out.size()) {
        std::size_t eol = out.find('\n', pos);
        if (eol == std::string_view::npos) {
            eol = out.size();
        }
        const std::string_view line = out.substr(pos, eol - pos);
        pos = eol + 1;
        if (pending != Pending::None && line.find("error_code=") != std::string_view::npos) {
            if (pending == Pending::Rst) {
                t.streams[pending_id].reset_error = error_name(line);
            } else {
                t.goaway_last_stream = static_cast<std::int32_t>(number_after(line, "last_stream_id="));
                t.goaway_error = error_name(line);
            }
            pending = Pending::None;
            continue;
        }
        if (line.size() < 10 || line[0] != '[') {
            continue;
        }
        const auto close = line.find("] ");
        if (close == std::string_view::npos) {
            continue;
        }
        const double when = std::strtod(std::string(line.substr(1, close - 1)).c_str(), nullptr);
        const std::string_view what = line.substr(close + 2);
        if (what.rfind("recv (stream_id=", 0) == 0) {
            const auto id = static_cast<std::int32_t>(number_after(what, "stream_id="));
            const auto fields = what.find(") ");
            if (fields == std::string_view::npos) {
                continue;
            }
            const std::string_view field = what.substr(fields + 2);
            const auto colon = field.find(": ", 1);  // pseudo-fields start with ':'
            if (colon == std::string_view::npos) {
                continue;
            }
            const std::string name(field.substr(0, colon));
            const std::string value(field.substr(colon + 2));
            NghttpStream& s = t.streams[id];
            if (s.head_done) {
                s.trailers.emplace_back(name, value);
            } else if (name == ":status") {
                s.status = std::atoi(value.c_str());
            } else {
                s.headers.emplace_back(name, value);
            }
        } else if (what.rfind("recv HEADERS frame", 0) == 0 || what.rfind("recv DATA frame", 0) == 0) {
            const auto id = static_cast<std::int32_t>(number_after(what, "stream_id="));
            const long flags = number_after(what, "flags=");
            const long length = number_after(what, "length=");
            NghttpStream& s = t.streams[id];
            const bool end = flags >= 0 && (flags & 1) != 0;
            if (what.rfind("recv DATA", 0) == 0) {
                if (length > 0) {
                    s.data_bytes += static_cast<std::size_t>(length);
                    s.data_times.push_back(when);
                }
            } else if (s.status > 0 && s.status < 200 && !s.head_done) {
                s.interim.push_back(s.status);  // a 1xx head: the final one follows
                s.status = 0;
            } else if (!s.head_done) {
                s.head_done = true;
                s.headers_end_stream = end;
            }
            s.end_stream = s.end_stream || end;
        } else if (what.rfind("recv RST_STREAM frame", 0) == 0) {
            pending_id = static_cast<std::int32_t>(number_after(what, "stream_id="));
            t.streams[pending_id].reset = true;
            pending = Pending::Rst;
        } else if (what.rfind("recv GOAWAY frame", 0) == 0) {
            t.goaway = true;
            pending = Pending::Goaway;
        }
    }
    return t;
}

H2loadSummary parse_h2load(std::string_view out) {
    H2loadSummary s;
    const auto req = out.find("\nrequests: ");
    const auto codes = out.find("\nstatus codes: ");
    if (req == std::string_view::npos || codes == std::string_view::npos) {
        return s;
    }
    const std::string r(out.substr(req + 11, out.find('\n', req + 1) - req - 11));
    const std::string c(out.substr(codes + 15, out.find('\n', codes + 1) - codes - 15));
    s.parsed = std::sscanf(r.c_str(), "%ld total, %ld started, %ld done, %ld succeeded, %ld failed, %ld errored, %ld timeout",
                           &s.total, &s.started, &s.done, &s.succeeded, &s.failed, &s.errored, &s.timeout) == 7 &&
               std::sscanf(c.c_str(), "%ld 2xx, %ld 3xx, %ld 4xx, %ld 5xx", &s.s2xx, &s.s3xx, &s.s4xx, &s.s5xx) == 4;
    return s;
}

NghttpStream only_stream(std::string_view verbose_output) {
    NghttpTrace t = parse_nghttp(verbose_output);
    REQUIRE(t.streams.size() == 1);
    return t.streams.begin()->second;
}

}  // namespace blitz::itest

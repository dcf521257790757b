// Cost of parsing one HTTP/1.1 request head, of decoding a chunked body and of writing a
// response head, per call.

#include <array>
#include <string>
#include <string_view>

#include <benchmark/benchmark.h>

#include "http1/parser.hpp"

namespace {

using blitz::http1::BodyDecoder;
using blitz::http1::ParseResult;
using blitz::http1::ParseStatus;
using blitz::http1::RequestHead;

// What a desktop browser sends for an API call: ~400 bytes, 8 fields.
constexpr std::string_view kBrowserRequest =
    "GET /api/v1/users/12345/profile?fields=name,email&lang=en HTTP/1.1\r\n"
    "Host: www.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\n"
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Connection: keep-alive\r\n"
    "Cookie: session=abc123def456ghi789; theme=dark\r\n"
    "Upgrade-Insecure-Requests: 1\r\n"
    "\r\n";

constexpr std::string_view kMinimalRequest = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

// What a load generator (h2load) sends: the request the server micro-benchmarks see most.
constexpr std::string_view kLoadGeneratorRequest =
    "GET / HTTP/1.1\r\nHost: 127.0.0.1:38469\r\nUser-Agent: h2load/1.52\r\nAccept: */*\r\n\r\n";

// Neither target needs normalising, so the buffer is never rewritten and can be parsed again.
void parse_loop(benchmark::State& state, std::string_view request) {
    std::string buf(request);
    std::array<blitz::Header, 100> storage{};
    RequestHead head;
    for (auto _ : state) {
        benchmark::DoNotOptimize(buf.data());
        const ParseResult r = blitz::http1::parse_request_head(buf, storage, {}, head);
        if (r.status != ParseStatus::Done || r.consumed != request.size()) {
            state.SkipWithError("request did not parse");
            return;
        }
        benchmark::DoNotOptimize(head);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * request.size()));
    state.counters["head_bytes"] = static_cast<double>(request.size());
}

void BM_parse_browser_request(benchmark::State& state) { parse_loop(state, kBrowserRequest); }
BENCHMARK(BM_parse_browser_request);

void BM_parse_minimal_request(benchmark::State& state) { parse_loop(state, kMinimalRequest); }
BENCHMARK(BM_parse_minimal_request);

void BM_parse_load_generator_request(benchmark::State& state) {
    parse_loop(state, kLoadGeneratorRequest);
}
BENCHMARK(BM_parse_load_generator_request);

// The worst case of re-parsing from scratch: the head arrives in 64-byte reads.
void BM_parse_browser_request_in_64_byte_reads(benchmark::State& state) {
    std::string buf(kBrowserRequest);
    std::array<blitz::Header, 100> storage{};
    RequestHead head;
    for (auto _ : state) {
        ParseResult r;
        for (std::size_t n = 64;; n += 64) {
            const std::size_t len = n < buf.size() ? n : buf.size();
            r = blitz::http1::parse_request_head(std::span<char>(buf.data(), len), storage, {},
                                                 head);
            if (r.status != ParseStatus::Incomplete) {
                break;
            }
        }
        if (r.status != ParseStatus::Done) {
            state.SkipWithError("request did not parse");
            return;
        }
        benchmark::DoNotOptimize(head);
    }
}
BENCHMARK(BM_parse_browser_request_in_64_byte_reads);

// 16 KiB of body in 1 KiB chunks with an extension and a trailer.
void BM_decode_chunked_body(benchmark::State& state) {
    std::string wire;
    for (int i = 0; i < 16; ++i) {
        wire += "400;i=x\r\n";
        wire.append(1024, 'b');
        wire += "\r\n";
    }
    wire += "0\r\nX-Checksum: 1\r\n\r\n";
    BodyDecoder decoder;
    for (auto _ : state) {
        decoder.reset_chunked();
        std::span<const char> in(wire);
        std::size_t body = 0;
        for (;;) {
            const BodyDecoder::Step s = decoder.decode(in);
            body += s.data.size();
            in = in.subspan(s.consumed);
            if (s.done || s.error_status != 0 || s.consumed == 0) {
                break;
            }
        }
        if (body != 16 * 1024) {
            state.SkipWithError("body did not decode");
            return;
        }
        benchmark::DoNotOptimize(body);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * wire.size()));
}
BENCHMARK(BM_decode_chunked_body);

// The response head of a small handler answer: status line, one field, Date, Content-Length.
void BM_write_response_head(benchmark::State& state) {
    const std::array<blitz::Header, 1> fields = {{{"Content-Type", "text/plain"}}};
    std::array<char, 512> out{};
    for (auto _ : state) {
        benchmark::DoNotOptimize(fields.data());
        const std::size_t n = blitz::http1::write_response_head(
            out, 200, blitz::Headers(fields), 13, true, "Tue, 15 Nov 1994 08:12:31 GMT");
        if (n == 0) {
            state.SkipWithError("response head did not fit");
            return;
        }
        benchmark::DoNotOptimize(out.data());
    }
}
BENCHMARK(BM_write_response_head);

}  // namespace

BENCHMARK_MAIN();

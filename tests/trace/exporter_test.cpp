#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <simdjson.h>
#include <catch2/catch_test_macros.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "trace/exporter.hpp"
#include "trace/ids.hpp"

using namespace blitz::trace;
using Clock = std::chrono::steady_clock;

namespace {

// One request the receiver read.
struct Received {
    std::string path;
    std::string content_type;
    std::string body;
};

// How the receiver answers the n-th request (0-based); the default is 200 keep-alive.
enum class Reply { Ok, OkThenClose, Status503, Status400, Never };

/// A minimal OTLP/HTTP receiver on 127.0.0.1: one thread, one connection at a time,
/// Content-Length bodies only (all the exporter sends).
class Receiver {
public:
    explicit Receiver(std::function<Reply(std::size_t)> policy =
                          [](std::size_t) { return Reply::Ok; })
        : policy_(std::move(policy)) {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(listen_fd_ >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        REQUIRE(::listen(listen_fd_, 16) == 0);
        socklen_t len = sizeof a;
        REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] { run(); });
    }
    ~Receiver() {
        stop_ = true;
        thread_.join();
        ::close(listen_fd_);
    }

    std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
    std::vector<Received> received() {
        std::lock_guard lock(mu_);
        return received_;
    }
    std::size_t connections() const { return connections_.load(); }

private:
    bool readable(int fd) {
        pollfd p{fd, POLLIN, 0};
        return ::poll(&p, 1, 20) > 0;
    }

    void run() {
        while (!stop_) {
            if (!readable(listen_fd_)) {
                continue;
            }
            int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) {
                continue;
            }
            ++connections_;
            serve(fd);
            ::close(fd);
        }
    }

    void serve(int fd) {
        std::string buf;
        while (!stop_) {
            auto head_end = buf.find("\r\n\r\n");
            if (head_end != std::string::npos) {
                std::string head = buf.substr(0, head_end + 4);
                auto header = [&](const std::string& name) {
                    auto p = head.find("\r\n" + name + ": ");
                    if (p == std::string::npos) {
                        return std::string();
                    }
                    p += name.size() + 4;
                    return head.substr(p, head.find("\r\n", p) - p);
                };
                std::size_t length = std::stoul(header("Content-Length"));
                if (buf.size() >= head.size() + length) {
                    Received r;
                    r.path = head.substr(5, head.find(' ', 5) - 5);
                    r.content_type = header("Content-Type");
                    r.body = buf.substr(head.size(), length);
                    buf.erase(0, head.size() + length);
                    std::size_t n = 0;
                    {
                        std::lock_guard lock(mu_);
                        n = received_.size();
                        received_.push_back(std::move(r));
                    }
                    Reply reply = policy_(n);
                    if (reply == Reply::Never) {
                        // Reads and discards until the exporter gives up and closes.
                        while (!stop_) {
                            char sink[4096];
                            if (readable(fd) && ::recv(fd, sink, sizeof sink, 0) <= 0) {
                                return;
                            }
                        }
                        return;
                    }
                    const char* status = reply == Reply::Status503   ? "503 Service Unavailable"
                                         : reply == Reply::Status400 ? "400 Bad Request"
                                                                     : "200 OK";
                    std::string resp = std::string("HTTP/1.1 ") + status +
                                       "\r\nContent-Type: application/json\r\n"
                                       "Content-Length: 21\r\n\r\n{\"partialSuccess\":{}}";
                    ::send(fd, resp.data(), resp.size(), MSG_NOSIGNAL);
                    if (reply == Reply::OkThenClose) {
                        return;  // closes without announcing it, like an idle timeout
                    }
                    continue;
                }
            }
            if (!readable(fd)) {
                continue;
            }
            char tmp[65536];
            ssize_t r = ::recv(fd, tmp, sizeof tmp, 0);
            if (r <= 0) {
                return;
            }
            buf.append(tmp, static_cast<std::size_t>(r));
        }
    }

    std::function<Reply(std::size_t)> policy_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<std::size_t> connections_{0};
    std::mutex mu_;
    std::vector<Received> received_;
    std::thread thread_;
};

// A loopback port with nothing listening: bound, then closed.
std::string dead_address() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
}

// Waits up to `limit` for `cond`.
bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds limit = std::chrono::seconds(5)) {
    auto deadline = Clock::now() + limit;
    while (Clock::now() < deadline) {
        if (cond()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return cond();
}

std::unique_ptr<Exporter> make(ExporterOptions o) {
    auto r = Exporter::start(std::move(o));
    REQUIRE(r);
    return std::move(r.value());
}

// A batch of `n` spans of one trace: a server span and client spans under it.
Batch make_batch(IdGenerator& gen, std::size_t n, std::vector<SpanId>* ids = nullptr) {
    Batch b(n);
    TraceId trace = gen.trace_id();
    SpanId server = gen.span_id();
    for (std::size_t i = 0; i < n; ++i) {
        SpanId id = i == 0 ? server : gen.span_id();
        Span* s = b.add(i == 0 ? SpanKind::Server : SpanKind::Client, "GET", trace, id,
                        i == 0 ? std::nullopt : std::optional<SpanId>(server), 1000 + i, 2000 + i);
        REQUIRE(s != nullptr);
        b.set(*s, attr::kHttpRequestMethod, "GET");
        b.set(*s, attr::kHttpResponseStatusCode, std::int64_t{200});
        if (ids != nullptr) {
            ids->push_back(id);
        }
    }
    return b;
}

std::string hex(const SpanId& id) {
    char buf[16];
    format_hex(buf, id);
    return {buf, sizeof buf};
}

}  // namespace

TEST_CASE("trace::Exporter::start rejects collector names, relative paths and zero sizes",
          "[trace]") {
    CHECK_FALSE(Exporter::start({.collector = "localhost:4318"}));
    CHECK_FALSE(Exporter::start({.collector = "127.0.0.1"}));
    CHECK_FALSE(Exporter::start({.collector = "::1:4318"}));
    CHECK_FALSE(Exporter::start({.collector = "127.0.0.1:4318", .path = "v1/traces"}));
    CHECK_FALSE(Exporter::start({.collector = "127.0.0.1:4318", .path = "/a b"}));
    CHECK_FALSE(Exporter::start({.collector = "127.0.0.1:4318", .batch_spans = 0}));
    CHECK_FALSE(Exporter::start({.collector = "127.0.0.1:4318", .queue_batches = 0}));
    auto ok = Exporter::start({.collector = "[::1]:4318"});
    REQUIRE(ok);
    (*ok)->stop();
}

TEST_CASE("trace::Exporter POSTs OTLP JSON batches over one keep-alive connection", "[trace]") {
    Receiver receiver;
    auto exporter = make({.collector = receiver.address(), .service_name = "gw-test"});
    IdGenerator gen(1);
    std::vector<SpanId> ids;
    Batch first = make_batch(gen, 3, &ids);
    TraceId trace = first.spans()[0].trace;
    REQUIRE(exporter->submit(std::move(first)));
    REQUIRE(eventually([&] { return exporter->spans_exported() == 3; }));
    REQUIRE(exporter->submit(make_batch(gen, 2)));
    REQUIRE(eventually([&] { return exporter->spans_exported() == 5; }));
    CHECK(exporter->spans_dropped() == 0);
    CHECK(exporter->export_failures() == 0);
    CHECK(receiver.connections() == 1);

    auto got = receiver.received();
    REQUIRE(got.size() == 2);
    CHECK(got[0].path == "/v1/traces");
    CHECK(got[0].content_type == "application/json");
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.parse(simdjson::padded_string(got[0].body));
    simdjson::dom::element rs = doc["resourceSpans"].at(0);
    CHECK(std::string_view(rs["resource"]["attributes"].at(0)["value"]["stringValue"]) ==
          "gw-test");
    simdjson::dom::array spans = rs["scopeSpans"].at(0)["spans"];
    REQUIRE(spans.size() == 3);
    char trace_hex[32];
    format_hex(trace_hex, trace);
    for (std::size_t i = 0; i < 3; ++i) {
        simdjson::dom::element s = spans.at(i);
        CHECK(std::string_view(s["traceId"]) == std::string_view(trace_hex, 32));
        CHECK(std::string_view(s["spanId"]) == hex(ids[i]));
        CHECK(std::string_view(s["startTimeUnixNano"]) == std::to_string(1000 + i));
        if (i == 0) {
            CHECK(std::int64_t(s["kind"]) == 2);
            CHECK(s["parentSpanId"].error() == simdjson::NO_SUCH_FIELD);
        } else {
            CHECK(std::int64_t(s["kind"]) == 3);
            CHECK(std::string_view(s["parentSpanId"]) == hex(ids[0]));
        }
    }
    exporter->stop();
}

TEST_CASE("trace::Exporter never blocks submit and counts drops when the collector is down",
          "[trace]") {
    auto exporter = make({.collector = dead_address(), .queue_batches = 2, .timeout_ms = 500});
    IdGenerator gen(2);
    constexpr int kBatches = 200;
    std::size_t refused = 0;
    auto worst = Clock::duration::zero();
    for (int i = 0; i < kBatches; ++i) {
        Batch b = make_batch(gen, 4);
        auto t0 = Clock::now();
        bool ok = exporter->submit(std::move(b));
        worst = std::max(worst, Clock::now() - t0);
        refused += ok ? 0 : 1;
        if (!ok) {
            CHECK(b.size() == 4);  // a refused batch is left to the caller
        }
    }
    CHECK(worst < std::chrono::milliseconds(50));
    exporter->stop();
    CHECK(exporter->spans_exported() == 0);
    CHECK(exporter->spans_dropped() == kBatches * 4);
    // Each batch that reached the thread failed twice (first try and the retry).
    CHECK(exporter->export_failures() == 2 * (kBatches - refused));
    CHECK_FALSE(exporter->submit(make_batch(gen, 1)));
    CHECK(exporter->spans_dropped() == kBatches * 4 + 1);
}

TEST_CASE("trace::Exporter times out on a collector that never answers and counts the failure",
          "[trace]") {
    Receiver receiver([](std::size_t) { return Reply::Never; });
    auto exporter = make({.collector = receiver.address(), .queue_batches = 1, .timeout_ms = 300});
    IdGenerator gen(3);
    auto t0 = Clock::now();
    REQUIRE(exporter->submit(make_batch(gen, 5)));
    // While the thread waits on the silent collector, submits return at once.
    REQUIRE(eventually([&] { return receiver.received().size() == 1; }));
    auto s0 = Clock::now();
    exporter->submit(make_batch(gen, 1));
    bool queued_again = exporter->submit(make_batch(gen, 1));
    CHECK(Clock::now() - s0 < std::chrono::milliseconds(50));
    CHECK_FALSE(queued_again);  // the one slot is taken
    REQUIRE(eventually([&] { return exporter->export_failures() >= 2; }));
    auto took = Clock::now() - t0;
    CHECK(took >= std::chrono::milliseconds(2 * 300 - 20));
    CHECK(exporter->spans_exported() == 0);
    REQUIRE(eventually([&] { return exporter->spans_dropped() >= 5 + 1; }));
    // The retry used a new connection (the timed-out one is closed).
    CHECK(receiver.connections() >= 2);
    exporter->stop();
    CHECK(exporter->spans_dropped() == 5 + 1 + 1);
}

TEST_CASE("trace::Exporter::stop flushes queued batches before joining", "[trace]") {
    Receiver receiver;
    auto exporter = make({.collector = receiver.address(), .queue_batches = 16});
    IdGenerator gen(4);
    for (int i = 0; i < 10; ++i) {
        REQUIRE(exporter->submit(make_batch(gen, 3)));
    }
    exporter->stop();
    CHECK(exporter->spans_exported() == 30);
    CHECK(exporter->spans_dropped() == 0);
    CHECK(receiver.received().size() == 10);
    exporter->stop();  // idempotent
}

TEST_CASE("trace::Exporter::stop gives up on a silent collector after timeout_ms", "[trace]") {
    Receiver receiver([](std::size_t) { return Reply::Never; });
    auto exporter = make({.collector = receiver.address(), .queue_batches = 8, .timeout_ms = 400});
    IdGenerator gen(5);
    for (int i = 0; i < 4; ++i) {
        REQUIRE(exporter->submit(make_batch(gen, 2)));
    }
    REQUIRE(eventually([&] { return receiver.received().size() == 1; }));
    auto t0 = Clock::now();
    exporter->stop();
    auto took = Clock::now() - t0;
    CHECK(took < std::chrono::milliseconds(400 + 300));
    CHECK(exporter->spans_exported() == 0);
    CHECK(exporter->spans_dropped() == 8);
}

TEST_CASE("trace::Exporter retries a 503 once and does not retry a 400", "[trace]") {
    SECTION("503 then 200") {
        Receiver receiver([](std::size_t n) { return n == 0 ? Reply::Status503 : Reply::Ok; });
        auto exporter = make({.collector = receiver.address()});
        IdGenerator gen(6);
        REQUIRE(exporter->submit(make_batch(gen, 3)));
        exporter->stop();
        CHECK(exporter->spans_exported() == 3);
        CHECK(exporter->export_failures() == 1);
        CHECK(exporter->spans_dropped() == 0);
        CHECK(receiver.received().size() == 2);
        CHECK(receiver.received()[0].body == receiver.received()[1].body);
    }
    SECTION("400") {
        Receiver receiver([](std::size_t) { return Reply::Status400; });
        auto exporter = make({.collector = receiver.address()});
        IdGenerator gen(7);
        REQUIRE(exporter->submit(make_batch(gen, 3)));
        exporter->stop();
        CHECK(exporter->spans_exported() == 0);
        CHECK(exporter->export_failures() == 1);
        CHECK(exporter->spans_dropped() == 3);
        CHECK(receiver.received().size() == 1);
    }
}

TEST_CASE(
    "trace::Exporter reconnects without a failure when the collector closed an idle "
    "connection",
    "[trace]") {
    Receiver receiver([](std::size_t) { return Reply::OkThenClose; });
    auto exporter = make({.collector = receiver.address()});
    IdGenerator gen(8);
    for (int i = 1; i <= 3; ++i) {
        REQUIRE(exporter->submit(make_batch(gen, 2)));
        REQUIRE(eventually([&] { return exporter->spans_exported() == std::uint64_t(2 * i); }));
        // Let the close reach the exporter's socket before the next batch.
        REQUIRE(eventually([&] { return receiver.connections() == std::size_t(i); }));
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    exporter->stop();
    CHECK(exporter->export_failures() == 0);
    CHECK(exporter->spans_dropped() == 0);
    CHECK(receiver.received().size() == 3);
}

TEST_CASE("trace::Batcher submits full batches and flushes on the interval", "[trace]") {
    Receiver receiver;
    auto exporter =
        make({.collector = receiver.address(), .batch_spans = 4, .flush_interval_ms = 100});
    Batcher batcher(*exporter);
    IdGenerator gen(9);
    TraceId trace = gen.trace_id();
    auto add = [&](int i) {
        Span& s = batcher.add(SpanKind::Server, "GET", trace, gen.span_id(), std::nullopt,
                              std::uint64_t(i), std::uint64_t(i) + 1);
        batcher.set(s, attr::kUrlPath, "/p/" + std::to_string(i));
        batcher.set(s, attr::kServerPort, std::int64_t{8080});
    };
    batcher.tick(1000);
    for (int i = 0; i < 4; ++i) {
        add(i);
    }
    CHECK(batcher.pending() == 4);
    batcher.tick(1001);  // full: submitted without waiting for the interval
    CHECK(batcher.pending() == 0);
    REQUIRE(eventually([&] { return exporter->spans_exported() == 4; }));

    for (int i = 4; i < 9; ++i) {
        add(i);  // the 5th span of a batch submits the first four
    }
    CHECK(batcher.pending() == 1);
    REQUIRE(eventually([&] { return exporter->spans_exported() == 8; }));
    batcher.tick(1050);
    CHECK(batcher.pending() == 1);  // interval not yet over
    batcher.tick(1101);
    CHECK(batcher.pending() == 0);
    REQUIRE(eventually([&] { return exporter->spans_exported() == 9; }));

    add(9);
    batcher.flush();
    exporter->stop();
    CHECK(exporter->spans_exported() == 10);
    auto got = receiver.received();
    REQUIRE(got.size() == 4);
    CHECK(got[3].body.find("\"/p/9\"") != std::string::npos);
    CHECK(got[0].body.find("\"/p/3\"") != std::string::npos);
}

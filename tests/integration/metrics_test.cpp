// Metrics as a scraper sees them: the per-route label cap ranks routes by their traffic.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

using Samples = std::map<std::string, double, std::less<>>;

// "name{labels} value" lines of a text exposition, by "name{labels}".
Samples parse_samples(std::string_view text) {
    Samples out;
    while (!text.empty()) {
        const std::size_t end = text.find('\n');
        const std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
        if (line.empty() || line.front() == '#') {
            continue;
        }
        const std::size_t space = line.rfind(' ');
        out[std::string(line.substr(0, space))] = std::stod(std::string(line.substr(space + 1)));
    }
    return out;
}

// The sum of a family's samples whose labels contain `labels` (every sample when empty).
double sum_of(const Samples& samples, std::string_view family, std::string_view labels = "") {
    double sum = 0;
    for (const auto& [name, value] : samples) {
        if (name.size() > family.size() && name.starts_with(family) && name[family.size()] == '{' &&
            name.find(labels) != std::string::npos) {
            sum += value;
        }
    }
    return sum;
}

}  // namespace

TEST_CASE("blitzd gives a busy route seen last its own series, and its counts still add up",
          "[metrics]") {
    Blitzd d(R"({
      "workers": 1,
      "admin": {"address": "127.0.0.1:0"},
      "metrics": {"max_route_labels": 2},
      "listeners": [{"name": "main", "address": "127.0.0.1:0"}],
      "routes": [
        {"name": "early-a", "match": {"path": "/a"}, "respond": {"status": 200, "body": "a"}},
        {"name": "early-b", "match": {"path": "/b"}, "respond": {"status": 200, "body": "b"}},
        {"name": "late", "match": {"path": "/late"}, "respond": {"status": 200, "body": "late"}}
      ]
    })",
             2);
    std::optional<Client> c(d.connect(0));
    Client admin = d.connect(1);
    double sent = 0;
    const auto get = [&](const char* path) {
        const Response r = must_answer(*c, request("GET", path));
        REQUIRE(r.status == 200);
        ++sent;
        if (r.connection_has("close")) {
            c.emplace(d.connect(0));  // the keep-alive request limit
        }
    };
    std::string text;
    const auto scrape = [&] {
        const Response r = must_answer(admin, request("GET", "/metrics"));
        REQUIRE(r.status == 200);
        text = r.body;
        return parse_samples(text);
    };

    // The two early routes take the two slots; the busiest route comes last.
    for (int i = 0; i < 3; ++i) {
        get("/a");
        get("/b");
    }
    const std::string late = R"(blitz_route_requests_total{route="late",code="2xx"})";
    const std::string other = R"(blitz_route_requests_total{route="other",code="2xx"})";
    Samples s = scrape();
    CHECK(s.count(late) == 0);
    double last_other = 0;
    bool promoted = false;
    // The reactor re-ranks once a second: traffic to the late route until it has a series.
    for (Deadline deadline(Millis(15'000)); !promoted && !deadline.expired();) {
        for (int i = 0; i < 5; ++i) {
            get("/late");
        }
        s = scrape();
        // "other" only grows, also when a displaced route's counts join it.
        CHECK(s[other] >= last_other);
        last_other = s[other];
        promoted = s.count(late) != 0;
        if (!promoted) {
            std::this_thread::sleep_for(Millis(100));
        }
    }
    REQUIRE(promoted);
    const double late_at_promotion = s[late];
    for (int i = 0; i < 10; ++i) {
        get("/late");
    }
    s = scrape();
    INFO(text);
    // Its series is new: it counts from its promotion on, the requests before are in "other".
    CHECK(s[late] == late_at_promotion + 10);
    CHECK(s[late] < sent - 6);
    // One early route (3 requests, the least busy) gave up its slot: its 3 are in "other".
    const bool a_kept = s.count(R"(blitz_route_requests_total{route="early-a",code="2xx"})") != 0;
    const bool b_kept = s.count(R"(blitz_route_requests_total{route="early-b",code="2xx"})") != 0;
    CHECK(a_kept != b_kept);
    CHECK(s[other] >= 3 + (sent - 6 - s[late]));
    CHECK(s[other] >= last_other);
    // Every request is in exactly one route series, and the unlabelled totals agree.
    CHECK(sum_of(s, "blitz_route_requests_total") == sent);
    CHECK(s[R"(blitz_requests_total{method="GET",code="2xx"})"] == sent);
    CHECK(sum_of(s, "blitz_route_request_duration_seconds_count") == sent);
    CHECK(s["blitz_request_duration_seconds_count"] == sent);
    CHECK(sum_of(s, "blitz_route_request_duration_seconds_bucket", "le=\"+Inf\"") == sent);

    if (run_command({"sh", "-c", "command -v promtool"}).status.exited_with(0)) {
        TempDir dir;
        const std::string file = dir.write("metrics.txt", text);
        const CommandResult check =
            run_command({"sh", "-c", "promtool check metrics < \"$0\"", file});
        INFO(check.out << check.err);
        CHECK(check.status.exited_with(0));
    }
}

TEST_CASE("blitzd with two workers never lowers a route series when its reactors re-rank",
          "[metrics]") {
    Blitzd d(R"({
      "workers": 2,
      "admin": {"address": "127.0.0.1:0"},
      "metrics": {"max_route_labels": 1},
      "listeners": [{"name": "main", "address": "127.0.0.1:0"}],
      "routes": [
        {"name": "first", "match": {"path": "/first"}, "respond": {"status": 200, "body": "f"}},
        {"name": "second", "match": {"path": "/second"}, "respond": {"status": 200, "body": "s"}}
      ]
    })",
             2);
    // Several connections, so that both reactors (SO_REUSEPORT) serve some of them.
    std::vector<std::optional<Client>> clients;
    for (int i = 0; i < 8; ++i) {
        clients.emplace_back(d.connect(0));
    }
    Client admin = d.connect(1);
    double sent = 0;
    const auto get = [&](std::optional<Client>& c, const char* path) {
        const Response r = must_answer(*c, request("GET", path));
        REQUIRE(r.status == 200);
        ++sent;
        if (r.connection_has("close")) {
            c.emplace(d.connect(0));  // the keep-alive request limit
        }
    };
    const auto round = [&](const char* path) {
        for (auto& c : clients) {
            get(c, path);
        }
    };
    Samples last;
    std::string text;
    const auto scrape_and_check = [&] {
        const Response r = must_answer(admin, request("GET", "/metrics"));
        REQUIRE(r.status == 200);
        text = r.body;
        const Samples now = parse_samples(text);
        INFO(text);
        for (const auto& [name, value] : last) {
            const auto it = now.find(name);
            if (name.starts_with("blitz_route_requests_total") && it != now.end()) {
                INFO(name);
                CHECK(it->second >= value);  // a series grows or disappears, never drops
            }
        }
        CHECK(sum_of(now, "blitz_route_requests_total") == sent);
        last = now;
        return now;
    };

    // "first" takes each reactor's single slot, much busier on the reactor serving the first
    // connection; then "second" is the busy one. The other reactor gives it the slot seconds
    // before that one would on its own: "first" must vanish, never shrink to that one's part.
    round("/first");
    for (int i = 0; i < 100; ++i) {
        get(clients[0], "/first");
    }
    scrape_and_check();
    const std::string first = R"(blitz_route_requests_total{route="first",code="2xx"})";
    const std::string second = R"(blitz_route_requests_total{route="second",code="2xx"})";
    bool swapped = false;
    for (Deadline deadline(Millis(20'000)); !swapped && !deadline.expired();) {
        round("/second");
        const Samples s = scrape_and_check();
        swapped = s.count(second) != 0 && s.count(first) == 0;
        if (!swapped) {
            std::this_thread::sleep_for(Millis(50));
        }
    }
    REQUIRE(swapped);
    // A little more traffic and scrapes while both reactors keep ranking.
    for (int i = 0; i < 10; ++i) {
        round(i % 3 == 0 ? "/first" : "/second");
        scrape_and_check();
        std::this_thread::sleep_for(Millis(100));
    }
}

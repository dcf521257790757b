#include <string>
#include <utility>

#include <catch2/catch_test_macros.hpp>

#include "trace/span.hpp"

using namespace blitz::trace;

namespace {

const TraceId kTrace{{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}};
const SpanId kSpan{{0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x10, 0x11}};
const SpanId kParent{{9, 9, 9, 9, 9, 9, 9, 9}};

}  // namespace

TEST_CASE("trace::http_span_status marks server 5xx and client 4xx/5xx as errors", "[trace]") {
    CHECK(http_span_status(SpanKind::Server, 200) == StatusCode::Unset);
    CHECK(http_span_status(SpanKind::Server, 404) == StatusCode::Unset);
    CHECK(http_span_status(SpanKind::Server, 499) == StatusCode::Unset);
    CHECK(http_span_status(SpanKind::Server, 500) == StatusCode::Error);
    CHECK(http_span_status(SpanKind::Server, 503) == StatusCode::Error);
    CHECK(http_span_status(SpanKind::Client, 302) == StatusCode::Unset);
    CHECK(http_span_status(SpanKind::Client, 400) == StatusCode::Error);
    CHECK(http_span_status(SpanKind::Client, 502) == StatusCode::Error);
    // No (valid) response at all, e.g. a failed connect.
    CHECK(http_span_status(SpanKind::Client, 0) == StatusCode::Error);
    CHECK(http_span_status(SpanKind::Server, 600) == StatusCode::Error);
}

TEST_CASE("trace::Batch copies names and attributes so spans outlive their request", "[trace]") {
    Batch batch(4);
    std::string name = "GET /users/{id}";
    std::string path = "/users/42";
    Span* s = batch.add(SpanKind::Server, name, kTrace, kSpan, kParent, 100, 250);
    REQUIRE(s != nullptr);
    batch.set(*s, attr::kUrlPath, path);
    batch.set(*s, attr::kHttpResponseStatusCode, std::int64_t{200});
    name.assign("XXXXXXXXXXXXXXX");
    path.assign("XXXXXXXXX");

    Batch moved = std::move(batch);
    CHECK(batch.empty());
    CHECK(batch.full());
    REQUIRE(moved.size() == 1);
    const Span& got = moved.spans()[0];
    CHECK(got.name == "GET /users/{id}");
    CHECK(got.trace == kTrace);
    CHECK(got.id == kSpan);
    REQUIRE(got.parent);
    CHECK(*got.parent == kParent);
    CHECK(got.start_unix_ns == 100);
    CHECK(got.end_unix_ns == 250);
    REQUIRE(got.attrs().size() == 2);
    CHECK(got.attrs()[0].key == "url.path");
    CHECK(got.attrs()[0].str == "/users/42");
    CHECK_FALSE(got.attrs()[0].is_int);
    CHECK(got.attrs()[1].key == "http.response.status_code");
    CHECK(got.attrs()[1].is_int);
    CHECK(got.attrs()[1].num == 200);
}

TEST_CASE("trace::Batch is full at its span capacity and after clear() takes spans again",
          "[trace]") {
    Batch batch(2);
    CHECK_FALSE(batch.full());
    CHECK(batch.add(SpanKind::Server, "a", kTrace, kSpan, std::nullopt, 1, 2) != nullptr);
    CHECK(batch.add(SpanKind::Client, "b", kTrace, kSpan, kParent, 1, 2) != nullptr);
    CHECK(batch.full());
    CHECK(batch.add(SpanKind::Server, "c", kTrace, kSpan, std::nullopt, 1, 2) == nullptr);
    CHECK(batch.size() == 2);
    batch.clear();
    CHECK(batch.empty());
    CHECK_FALSE(batch.full());
    Span* s = batch.add(SpanKind::Server, "d", kTrace, kSpan, std::nullopt, 1, 2);
    REQUIRE(s != nullptr);
    CHECK(s->name == "d");
    CHECK_FALSE(s->parent);
    CHECK(Batch().full());
}

TEST_CASE("trace::Batch caps attributes per span and value length at a UTF-8 boundary", "[trace]") {
    Batch batch(4);
    Span* s = batch.add(SpanKind::Server, "n", kTrace, kSpan, std::nullopt, 1, 2);
    REQUIRE(s != nullptr);
    for (std::size_t i = 0; i < Span::kMaxAttributes + 3; ++i) {
        batch.set(*s, "k" + std::to_string(i), static_cast<std::int64_t>(i));
    }
    CHECK(s->attrs().size() == Span::kMaxAttributes);
    CHECK(s->attrs().back().key == "k" + std::to_string(Span::kMaxAttributes - 1));

    Span* t = batch.add(SpanKind::Server, "n", kTrace, kSpan, std::nullopt, 1, 2);
    REQUIRE(t != nullptr);
    // 1023 ASCII bytes then a 2-byte character straddling the 1024-byte limit.
    std::string value(Batch::kMaxValueBytes - 1, 'a');
    value += "\xc3\xa9tail";
    batch.set(*t, "long", value);
    REQUIRE(t->attrs().size() == 1);
    CHECK(t->attrs()[0].str.size() == Batch::kMaxValueBytes - 1);
    CHECK(t->attrs()[0].str == std::string(Batch::kMaxValueBytes - 1, 'a'));
}

TEST_CASE("trace::Batch bounds one span's text and reports full when text runs low", "[trace]") {
    // Text for exactly two worst-case spans.
    Batch batch(100, 2 * Batch::kMaxSpanTextBytes);
    std::string big(Batch::kMaxValueBytes, 'v');
    for (int i = 0; i < 2; ++i) {
        Span* s = batch.add(SpanKind::Server, big, kTrace, kSpan, std::nullopt, 1, 2);
        REQUIRE(s != nullptr);
        for (int j = 0; j < 6; ++j) {
            batch.set(*s, "key", big);
        }
        std::size_t text = s->name.size();
        for (const Attribute& a : s->attrs()) {
            text += a.key.size() + a.str.size();
        }
        CHECK(text <= Batch::kMaxSpanTextBytes);
        // The earlier strings are intact (no overlap with later copies).
        CHECK(s->name == big);
        CHECK(s->attrs()[0].str == big);
    }
    CHECK(batch.full());
    CHECK(batch.add(SpanKind::Server, "x", kTrace, kSpan, std::nullopt, 1, 2) == nullptr);
}

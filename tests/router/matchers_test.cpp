#include <deque>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include <blitz/router.hpp>
#include <blitz/tls.hpp>

#include "router/compiled_route.hpp"
#include "helpers.hpp"

using blitz::HeaderMatcher;
using blitz::MatchKind;
using blitz::QueryMatcher;
using blitz::Route;
using blitz::Router;
using router_test::TestRequest;

namespace {

/// A table of one route with these matchers (compiled by freeze()), asked through
/// RouteTable::match(const Request&).
class MatcherRoute {
public:
   explicit MatcherRoute(std::vector<HeaderMatcher> headers, std::vector<QueryMatcher> query = {}) {
       Route r;
       r.name = "m";
       r.headers = std::move(headers);
       r.query = std::move(query);
       router_.add(r);
       table_ = router_test::freeze_ok(router_);
   }

    /// Whether every matcher holds.
    bool operator()(const TestRequest& request) const {
        const blitz::RouteMatch m = table_->match(*request);
        return m.route != nullptr && m.route->name == "m";
    }

private:
    Router router_;
    std::shared_ptr<const blitz::RouteTable> table_;
};

}  // namespace

TEST_CASE("router::matchers_hold compares header names without case and any field may match",
          "[router]") {
    MatcherRoute exact({{"X-Env", MatchKind::Exact, "canary"}});
    CHECK(exact(TestRequest("", "/", "", {{"x-env", "canary"}})));
    CHECK(exact(TestRequest("", "/", "", {{"X-ENV", "stable"}, {"x-Env", "canary"}})));
    CHECK_FALSE(exact(TestRequest("", "/", "", {{"x-env", "Canary"}})));
    CHECK_FALSE(exact(TestRequest("", "/", "", {{"x-env", "canary, stable"}})));
    CHECK_FALSE(exact(TestRequest("", "/", "", {{"x-other", "canary"}})));
    CHECK_FALSE(exact(TestRequest("", "/")));
}

TEST_CASE("router::matchers_hold supports every header match kind", "[router]") {
    MatcherRoute prefix({{"accept", MatchKind::Prefix, "application/"}});
    CHECK(prefix(TestRequest("", "/", "", {{"Accept", "application/json"}})));
    CHECK(prefix(TestRequest("", "/", "", {{"Accept", "application/"}})));
    CHECK_FALSE(prefix(TestRequest("", "/", "", {{"Accept", "text/html"}})));

    MatcherRoute regex({{"x-version", MatchKind::Regex, "v[0-9]+"}});
    CHECK(regex(TestRequest("", "/", "", {{"x-version", "v12"}})));
    // The whole value must match, not a part of it.
    CHECK_FALSE(regex(TestRequest("", "/", "", {{"x-version", "v12-beta"}})));
    CHECK_FALSE(regex(TestRequest("", "/", "", {{"x-version", "av1"}})));
    CHECK(regex(TestRequest("", "/", "", {{"x-version", "beta"}, {"x-version", "v2"}})));

    MatcherRoute present({{"authorization", MatchKind::Present, ""}});
    CHECK(present(TestRequest("", "/", "", {{"Authorization", ""}})));
    CHECK_FALSE(present(TestRequest("", "/")));

    MatcherRoute absent({{"cookie", MatchKind::Absent, ""}});
    CHECK(absent(TestRequest("", "/", "", {{"x", "y"}})));
    CHECK_FALSE(absent(TestRequest("", "/", "", {{"x", "y"}, {"Cookie", "a=b"}})));
}

TEST_CASE("router::matchers_hold needs every matcher of a route to hold", "[router]") {
    MatcherRoute both({{"a", MatchKind::Present, ""}, {"b", MatchKind::Absent, ""}},
                      {{"q", MatchKind::Exact, "1"}});
    CHECK(both(TestRequest("", "/", "q=1", {{"a", ""}})));
    CHECK_FALSE(both(TestRequest("", "/", "q=1", {{"a", ""}, {"b", ""}})));
    CHECK_FALSE(both(TestRequest("", "/", "q=2", {{"a", ""}})));
    CHECK_FALSE(both(TestRequest("", "/", "q=1")));
}

TEST_CASE("router::matchers_hold splits the query on '&' and decodes names and values",
          "[router]") {
    MatcherRoute exact({}, {{"user name", MatchKind::Exact, "a b/c"}});
    CHECK(exact(TestRequest("", "/", "user%20name=a%20b%2Fc")));
    CHECK(exact(TestRequest("", "/", "x=1&user%20name=a%20b%2fc&y")));
    CHECK(exact(TestRequest("", "/", "user%20name=zzz&user%20name=a%20b%2Fc")));
    // '+' stays '+' (RFC 3986 gives it no meaning in a query).
    CHECK_FALSE(exact(TestRequest("", "/", "user+name=a+b%2Fc")));
    CHECK_FALSE(exact(TestRequest("", "/", "user%20name=a%20b%2Fcd")));
    CHECK_FALSE(exact(TestRequest("", "/", "user%20name=a%20b%2")));
    CHECK_FALSE(exact(TestRequest("", "/", "")));

    MatcherRoute empty({}, {{"flag", MatchKind::Exact, ""}});
    CHECK(empty(TestRequest("", "/", "flag")));
    CHECK(empty(TestRequest("", "/", "flag=")));
    CHECK(empty(TestRequest("", "/", "&&flag&")));
    CHECK_FALSE(empty(TestRequest("", "/", "flag=1")));
    CHECK_FALSE(empty(TestRequest("", "/", "flagx")));
}

TEST_CASE("router::matchers_hold keeps malformed escapes in the query literal", "[router]") {
    MatcherRoute literal({}, {{"a", MatchKind::Exact, "%zz%4"}});
    CHECK(literal(TestRequest("", "/", "a=%zz%4")));
    MatcherRoute percent({}, {{"a", MatchKind::Exact, "%"}});
    CHECK(percent(TestRequest("", "/", "a=%25")));
    CHECK(percent(TestRequest("", "/", "a=%")));
}

TEST_CASE("router::matchers_hold supports every query match kind", "[router]") {
    MatcherRoute prefix({}, {{"path", MatchKind::Prefix, "/a b"}});
    CHECK(prefix(TestRequest("", "/", "path=%2Fa%20b%2Fc")));
    CHECK(prefix(TestRequest("", "/", "path=/a%20b")));
    CHECK_FALSE(prefix(TestRequest("", "/", "path=/a%20")));
    CHECK_FALSE(prefix(TestRequest("", "/", "path=/a+b")));

    MatcherRoute regex({}, {{"id", MatchKind::Regex, "[0-9]+ x"}});
    CHECK(regex(TestRequest("", "/", "id=42%20x")));
    CHECK(regex(TestRequest("", "/", "id=a&id=7%20x")));
    CHECK_FALSE(regex(TestRequest("", "/", "id=42x")));
    CHECK_FALSE(regex(TestRequest("", "/", "id=42%20xy")));

    MatcherRoute present({}, {{"debug", MatchKind::Present, ""}});
    CHECK(present(TestRequest("", "/", "a=1&debug")));
    CHECK(present(TestRequest("", "/", "de%62ug=0")));
    CHECK_FALSE(present(TestRequest("", "/", "debugger=1")));

    MatcherRoute absent({}, {{"debug", MatchKind::Absent, ""}});
    CHECK(absent(TestRequest("", "/", "a=1")));
    CHECK(absent(TestRequest("", "/", "")));
    CHECK_FALSE(absent(TestRequest("", "/", "a=1&debug=")));
}

TEST_CASE("router::matchers_hold fails a query regex whose decoded value exceeds the buffer",
          "[router]") {
    MatcherRoute regex({}, {{"v", MatchKind::Regex, "x*"}});
    const std::size_t limit = blitz::router::kMaxDecodedQueryValue;
    // Without escapes the raw value is matched in place, whatever its length.
    CHECK(regex(TestRequest("", "/", "v=" + std::string(limit * 2, 'x'))));
    CHECK(regex(TestRequest("", "/", "v=%78" + std::string(limit - 1, 'x'))));
    CHECK_FALSE(regex(TestRequest("", "/", "v=%78" + std::string(limit, 'x'))));
}

TEST_CASE("router::matchers_hold supports suffix matchers on headers and decoded query values",
          "[router]") {
    MatcherRoute header({{"x-client", MatchKind::Suffix, ".internal"}});
    CHECK(header(TestRequest("", "/", "", {{"X-Client", "a.internal"}})));
    CHECK(header(TestRequest("", "/", "", {{"X-Client", "b"}, {"X-Client", ".internal"}})));
    CHECK_FALSE(header(TestRequest("", "/", "", {{"X-Client", "a.internal.com"}})));
    CHECK_FALSE(header(TestRequest("", "/", "", {{"X-Client", "a.INTERNAL"}})));

    MatcherRoute query({}, {{"f", MatchKind::Suffix, ".tar gz"}});
    CHECK(query(TestRequest("", "/", "f=a.tar%20gz")));
    CHECK(query(TestRequest("", "/", "f=a.tar gz")));
    CHECK_FALSE(query(TestRequest("", "/", "f=a.tar%20gz2")));
    CHECK_FALSE(query(TestRequest("", "/", "f=a.tar+gz")));
}

namespace {

using blitz::CertTextMatcher;
using blitz::ClientCertMatcher;
using blitz::TlsInfo;

/// A table of one route with this client_cert matcher (compiled by freeze()), asked through
/// RouteTable::match(const Request&, const TlsInfo*).
class CertRoute {
public:
    explicit CertRoute(ClientCertMatcher m) {
        Route r;
        r.name = "m";
        r.client_cert = std::move(m);
        router_.add(r);
        table_ = router_test::freeze_ok(router_);
    }

    bool operator()(const TlsInfo* tls) const {
        const TestRequest request("", "/");
        const blitz::RouteMatch m = table_->match(*request, tls);
        return m.route != nullptr && m.route->name == "m";
    }

private:
    Router router_;
    std::shared_ptr<const blitz::RouteTable> table_;
};

/// A TLS connection whose client presented a verified certificate with the subjectAltNames
/// `sans`. Their views are kept for the whole run, as a session keeps them for an exchange.
TlsInfo verified_client(std::string_view subject, std::initializer_list<std::string_view> sans) {
    static std::deque<std::vector<std::string_view>> kept;
    const std::vector<std::string_view>& names = kept.emplace_back(sans);
    TlsInfo tls;
    tls.client_presented = true;
    tls.client_verified = true;
    tls.client_subject = subject;
    tls.client_san = names.empty() ? std::string_view() : names.front();
    tls.client_sans = names;
    return tls;
}

}  // namespace

TEST_CASE("router::client_cert_holds tells presented, verified and absent certificates apart",
          "[router]") {
    const TlsInfo none;
    const TlsInfo good = verified_client("CN=alice,O=Example", {"alice.example.com"});
    TlsInfo unverified = good;
    unverified.client_verified = false;

    CertRoute presented(ClientCertMatcher{.presented = true});
    CHECK(presented(&good));
    CHECK(presented(&unverified));
    CHECK_FALSE(presented(&none));
    CHECK_FALSE(presented(nullptr));

    CertRoute not_presented(ClientCertMatcher{.presented = false});
    CHECK(not_presented(&none));
    CHECK(not_presented(nullptr));
    CHECK_FALSE(not_presented(&good));

    CertRoute verified(ClientCertMatcher{.verified = true});
    CHECK(verified(&good));
    CHECK_FALSE(verified(&unverified));
    CHECK_FALSE(verified(nullptr));

    CertRoute not_verified(ClientCertMatcher{.verified = false});
    CHECK(not_verified(&unverified));
    CHECK(not_verified(nullptr));
    CHECK_FALSE(not_verified(&good));
}

TEST_CASE("router::client_cert_holds supports every text match kind on subject and SAN",
          "[router]") {
    const TlsInfo alice = verified_client("CN=alice,O=Example", {"spiffe://example.org/alice"});
    const TlsInfo bob = verified_client("CN=bob,O=Other", {"bob.example.com"});
    const TlsInfo bare = verified_client("", {});

    CertRoute exact(
        ClientCertMatcher{.subject = CertTextMatcher{MatchKind::Exact, "CN=alice,O=Example"}});
    CHECK(exact(&alice));
    CHECK_FALSE(exact(&bob));

    CertRoute prefix(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Prefix, "spiffe://"}});
    CHECK(prefix(&alice));
    CHECK_FALSE(prefix(&bob));

    CertRoute suffix(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Suffix, ".example.com"}});
    CHECK(suffix(&bob));
    CHECK_FALSE(suffix(&alice));

    // The whole subject must match, and case counts.
    CertRoute regex(
        ClientCertMatcher{.subject = CertTextMatcher{MatchKind::Regex, "CN=[a-z]+,O=Example"}});
    CHECK(regex(&alice));
    CHECK_FALSE(regex(&bob));
    const TlsInfo longer = verified_client("CN=alice,O=Example,C=DE", {});
    CHECK_FALSE(regex(&longer));

    CertRoute present(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Present, ""}});
    CHECK(present(&bob));
    CHECK_FALSE(present(&bare));

    CertRoute absent(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Absent, ""}});
    CHECK(absent(&bare));
    CHECK_FALSE(absent(&bob));
}

TEST_CASE("router::client_cert_holds fails subject and SAN conditions without a certificate",
          "[router]") {
    const TlsInfo none;
    CertRoute absent_san(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Absent, ""}});
    CHECK_FALSE(absent_san(&none));
    CHECK_FALSE(absent_san(nullptr));

    CertRoute any_subject(ClientCertMatcher{.subject = CertTextMatcher{MatchKind::Regex, ".*"}});
    CHECK_FALSE(any_subject(&none));
    CHECK_FALSE(any_subject(nullptr));
}

TEST_CASE("router::client_cert_holds needs every condition of the matcher to hold", "[router]") {
    CertRoute both(
        ClientCertMatcher{.verified = true,
                          .subject = CertTextMatcher{MatchKind::Prefix, "CN=alice,"},
                          .san = CertTextMatcher{MatchKind::Exact, "alice.example.com"}});
    const TlsInfo ok = verified_client("CN=alice,O=Example", {"alice.example.com"});
    CHECK(both(&ok));
    const TlsInfo other_san = verified_client("CN=alice,O=Example", {"mallory.example.com"});
    CHECK_FALSE(both(&other_san));
    const TlsInfo other_subject = verified_client("CN=mallory,O=Example", {"alice.example.com"});
    CHECK_FALSE(both(&other_subject));
    TlsInfo unverified = ok;
    unverified.client_verified = false;
    CHECK_FALSE(both(&unverified));
}

TEST_CASE("router::client_cert_holds matches a SAN condition against every SAN", "[router]") {
    const TlsInfo many = verified_client("CN=svc", {"svc.internal.example", "spiffe://example.org/svc",
                                                    "svc@example.org", "192.0.2.7"});

    // Only a later SAN satisfies each of these: the first one alone would fail them all.
    CertRoute exact(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Exact, "192.0.2.7"}});
    CHECK(exact(&many));
    CertRoute prefix(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Prefix, "spiffe://"}});
    CHECK(prefix(&many));
    CertRoute suffix(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Suffix, "@example.org"}});
    CHECK(suffix(&many));
    CertRoute regex(
        ClientCertMatcher{.san = CertTextMatcher{MatchKind::Regex, "spiffe://example\\.org/.*"}});
    CHECK(regex(&many));

    CertRoute nowhere(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Suffix, ".test"}});
    CHECK_FALSE(nowhere(&many));
    // A regex must match one whole SAN, not the names run together.
    CertRoute joined(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Regex, "svc.*192.*"}});
    CHECK_FALSE(joined(&many));

    CertRoute present(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Present, ""}});
    CertRoute absent(ClientCertMatcher{.san = CertTextMatcher{MatchKind::Absent, ""}});
    CHECK(present(&many));
    CHECK_FALSE(absent(&many));
    // A certificate whose only name is an IP address still has a SAN.
    const TlsInfo ip_only = verified_client("CN=box", {"192.0.2.8"});
    CHECK(present(&ip_only));
    CHECK_FALSE(absent(&ip_only));
}

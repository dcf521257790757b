// Routing as a client sees it: path normalisation, host matching, absolute-form targets and
// the headers filter.

#include <string>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

namespace {

Response must_answer(const Server& server, const std::string& raw) {
    Reply reply = send_one(server, raw);
    INFO("request: " << raw << "\nreceived: " << reply.transcript);
    REQUIRE(reply.response);
    return *reply.response;
}

}  // namespace

TEST_CASE("blitzd normalises the path before routing", "[routing]") {
    Blitzd d(ConfigSpec{});
    for (const char* target : {"/a/../hello", "/./hello", "/%68ello", "/%68%65llo?x=1",
                               "/hello?q=%2F", "/../hello", "/a/b/../../hello"}) {
        Response res = must_answer(d, request("GET", target));
        INFO("target " << target);
        CHECK(res.status == 200);
        CHECK(res.body == "Hello, World!");
    }
}

TEST_CASE("blitzd does not decode %2F into a path separator", "[routing]") {
    Blitzd d(ConfigSpec{});
    CHECK(must_answer(d, request("GET", "/a/b")).body == "a-b");
    CHECK(must_answer(d, request("GET", "/a%2Fb")).status == 404);
    CHECK(must_answer(d, request("GET", "/a%2fb")).status == 404);
}

TEST_CASE("blitzd matches hosts ignoring case and port", "[routing]") {
    Blitzd d(ConfigSpec{});
    for (const char* host : {"api.example.com", "API.example.com:8080", "Api.Example.Com"}) {
        std::string raw = "GET /v1/items HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n";
        Response res = must_answer(d, raw);
        INFO("Host: " << host);
        CHECK(res.status == 201);
        CHECK(res.body == "created");
    }
}

TEST_CASE("blitzd does not serve a host-bound route to another host", "[routing]") {
    Blitzd d(ConfigSpec{});
    Response other = must_answer(d, "GET /v1/items HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
    CHECK(other.status == 404);
    Response suffix =
        must_answer(d, "GET /v1/items HTTP/1.1\r\nHost: xapi.example.com\r\n\r\n");
    CHECK(suffix.status == 404);
    // Routes without a host answer every host.
    Response any = must_answer(d, "GET /hello HTTP/1.1\r\nHost: www.example.com\r\n\r\n");
    CHECK(any.status == 200);
}

TEST_CASE("blitzd routes prefix routes on the path prefix only", "[routing]") {
    Blitzd d(ConfigSpec{});
    auto get = [&](const char* path) {
        return must_answer(d, "GET " + std::string(path) +
                                  " HTTP/1.1\r\nHost: api.example.com\r\n\r\n")
            .status;
    };
    CHECK(get("/v1/") == 201);
    CHECK(get("/v1/a/b/c") == 201);
    CHECK(get("/v2/a") == 404);
    CHECK(get("/v1") == 404);
}

TEST_CASE("blitzd accepts an absolute-form target whose host agrees with Host", "[routing]") {
    Blitzd d(ConfigSpec{});
    Response res = must_answer(
        d, "GET http://api.example.com/v1/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n");
    CHECK(res.status == 201);
    CHECK(res.body == "created");
}

TEST_CASE("blitzd rejects an absolute-form target whose host differs from Host", "[routing]") {
    Blitzd d(ConfigSpec{});
    Client c = d.connect();
    REQUIRE(c.send("GET http://api.example.com/v1/x HTTP/1.1\r\nHost: other.example.com\r\n\r\n"));
    auto res = c.read_response();
    INFO("received: " << c.transcript());
    REQUIRE(res);
    CHECK(res->status == 400);
    CHECK(c.wait_closed(Millis(2000)));
}

TEST_CASE("blitzd applies a route's headers filter to that route's responses", "[routing]") {
    Blitzd d(ConfigSpec{});
    SECTION("the filtered route") {
        CommandResult r = curl({"-i", "-H", "Host: api.example.com", d.url("/v1/things")});
        INFO("curl: " << r.out << r.err);
        auto responses = parse_all_responses(r.out);
        REQUIRE(responses.size() == 1);
        const Response& res = responses[0];
        INFO(res.head_text());
        CHECK(res.status == 201);
        CHECK(res.header("X-Added") == "yes");
        CHECK(res.header("X-Keep") == "k");
        CHECK_FALSE(res.header("X-Test"));
    }
    SECTION("a POST with a body on the filtered route") {
        CommandResult r = curl({"-i", "-H", "Host: api.example.com", "--data-binary", "x=1",
                                d.url("/v1/things")});
        INFO("curl: " << r.out << r.err);
        auto responses = parse_all_responses(r.out);
        REQUIRE(responses.size() == 1);
        CHECK(responses[0].status == 201);
        CHECK(responses[0].header("X-Added") == "yes");
    }
    SECTION("another route is untouched") {
        Response res = must_answer(d, request("GET", "/hello"));
        INFO(res.head_text());
        CHECK(res.header("X-Test") == "1");
        CHECK_FALSE(res.header("X-Added"));
    }
}

TEST_CASE("blitzd picks the most specific route: exact host before any host", "[routing]") {
    ConfigSpec spec;
    spec.routes = R"([
        { "name": "catchall", "match": { "path_prefix": "/" },
          "respond": { "status": 200, "body": "catchall" } },
        { "name": "exact", "match": { "path": "/x" },
          "respond": { "status": 200, "body": "exact" } },
        { "name": "hosted", "match": { "host": "h.example.com", "path_prefix": "/" },
          "respond": { "status": 200, "body": "hosted" } }
    ])";
    Blitzd d(spec);
    CHECK(must_answer(d, request("GET", "/x")).body == "exact");
    CHECK(must_answer(d, request("GET", "/y")).body == "catchall");
    CHECK(must_answer(d, "GET /x HTTP/1.1\r\nHost: h.example.com\r\n\r\n").body == "hosted");
}

// HTTP/2 clients through blitzd to an HTTP/1.1 upstream (tests/backend, which logs every request
// it receives): the head translated (:authority to Host, cookies joined, forwarded fields, Via),
// request bodies with and without content-length (re-framed chunked), byte-exact echoes of
// multi-megabyte bodies, a streamed event stream, and the gateway error of a dead upstream; and
// both kinds of client through blitzd to nginx speaking HTTP/2 (upstreams[].protocol "h2").

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch_test_macros.hpp>

#include "h2_fixtures.hpp"
#include "harness.hpp"

using namespace blitz::itest;

namespace {

/// blitzd proxying every path to `b`; /down/ and /down-once/ go to a port nothing listens on,
/// with the default retry policy (one retry after a back-off) and with none.
std::string proxy_config(const Backend& b) {
    ProxyConfig c;
    c.upstreams = R"([{ "name": "u", "endpoints": [")" + b.address() +
                  R"("] }, { "name": "down", "endpoints": ["127.0.0.1:)" +
                  std::to_string(free_loopback_port()) + R"("] }])";
    c.routes = R"([{ "name": "down", "match": { "path_prefix": "/down/" }, "upstream": "down" },
                   { "name": "down-once", "match": { "path_prefix": "/down-once/" },
                     "proxy": { "upstream": "down", "retry": { "max_retries": 0 } } },
                   { "name": "all", "match": { "path_prefix": "/" }, "upstream": "u" }])";
    return c.render();
}

std::string read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("blitzd forwards an h2 GET to an HTTP/1.1 upstream with the head translated", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    // nghttp sends each -H as a field of its own: two cookie fields (RFC 9113 §8.2.3 crumbs).
    CommandResult r = nghttp({"-H", "cookie: a=1", "-H", "cookie: b=2", "-H", "x-custom: v",
                              "-H", "x-forwarded-for: 203.0.113.9", d.url("/echo?headers=1")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    auto json = parse_json(r.out);
    REQUIRE(json);
    const Json* version = json->get("version");
    REQUIRE(version);
    CHECK(version->string == "HTTP/1.1");
    const Json* headers = json->get("headers");
    REQUIRE(headers);
    auto field = [&](std::string_view name) -> std::string {
        const Json* v = headers->get(name);
        return v != nullptr ? v->string : "<absent>";
    };
    CHECK(field("cookie") == "a=1; b=2");
    CHECK(field("x-custom") == "v");
    CHECK(field("host") == "127.0.0.1:" + std::to_string(d.port()));
    CHECK(field("x-forwarded-proto") == "http");
    // The client's own X-Forwarded-For is not trusted (no trusted_proxies).
    CHECK(field("x-forwarded-for") == "127.0.0.1");
    CHECK(field("via") == "2 blitz");

    LoggedRequest req = logged(b, "/echo?headers=1");
    INFO(req.line);
    CHECK(req.method == "GET");
    CHECK(req.version == "HTTP/1.1");
    CHECK(req.header_count("cookie") == 1);
    CHECK(req.header_count("host") == 1);
    CHECK(req.header_count("content-length") == 0);
    CHECK(req.header_count("transfer-encoding") == 0);
    CHECK(req.body_bytes == 0);
}

TEST_CASE("blitzd relays the upstream's response head to an h2 client", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    CommandResult r = curl_h2c({"-i", d.url("/?status=201&header=X-Up:yes&header=Connection:x-hop")});
    INFO(r.out << r.err);
    std::vector<Response> all = parse_all_responses(r.out);
    REQUIRE(all.size() == 1);
    CHECK(all[0].version == "HTTP/2");
    CHECK(all[0].status == 201);
    CHECK(all[0].header("x-up") == "yes");
    CHECK(all[0].header("x-backend") == "b1");
    CHECK(all[0].header("via") == "2 blitz");
    CHECK(all[0].body == "b1\n");
    CHECK_FALSE(all[0].header("connection"));
    CHECK_FALSE(all[0].header("x-hop"));  // named by Connection: hop-by-hop
}

TEST_CASE("blitzd forwards a 3 MB h2 upload with content-length byte for byte", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    TempDir dir;
    constexpr std::size_t kSize = 3 * 1024 * 1024 + 11;
    const std::string in = dir.write("up", random_bytes(kSize, 17));
    const std::string out = dir.path() + "/echo";
    CommandResult r = curl_h2c({"--max-time", "20", "--data-binary", "@" + in, "-H", "content-type: application/x-test",
                                "-o", out, "-w", "%{http_code} %{http_version}", d.url("/echo")});
    INFO(r.err);
    CHECK(r.out == "200 2");
    CHECK(read_all(out) == read_all(in));
    LoggedRequest req = logged(b, "/echo");
    INFO(req.line);
    CHECK(req.header("content-length") == std::to_string(kSize));
    CHECK(req.header_count("transfer-encoding") == 0);
    CHECK(req.body_bytes == kSize);
}

TEST_CASE("blitzd forwards an h2 upload without content-length chunked, byte for byte", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    TempDir dir;
    constexpr std::size_t kSize = 1024 * 1024 + 3;
    const std::string in = dir.write("up", random_bytes(kSize, 23));
    SECTION("nghttp --no-content-length") {
        CommandResult r = nghttp({"--no-content-length", "-d", in, d.url("/echo")}, Millis(20'000));
        INFO(r.err);
        REQUIRE(r.status.exited_with(0));
        CHECK(r.out == read_all(in));
    }
    SECTION("curl with its Content-Length removed") {
        const std::string out = dir.path() + "/echo";
        CommandResult r = curl_h2c({"--max-time", "20", "--data-binary", "@" + in, "-H", "Content-Length:",
                                    "-o", out, "-w", "%{http_code}", d.url("/echo")});
        INFO(r.err);
        CHECK(r.out == "200");
        CHECK(read_all(out) == read_all(in));
    }
    LoggedRequest req = logged(b, "/echo");
    INFO(req.line);
    CHECK(req.header_count("content-length") == 0);
    CHECK(req.header("transfer-encoding") == "chunked");
    CHECK(req.body_bytes == kSize);
}

TEST_CASE("blitzd forwards an empty h2 POST", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    CommandResult r = curl_h2c({"-X", "POST", "-w", "\n%{http_code}", d.url("/sink")});
    INFO(r.out << r.err);
    CHECK(r.out == "{\"bytes\":0}\n\n200");
    LoggedRequest req = logged(b, "/sink");
    CHECK(req.method == "POST");
    CHECK(req.body_bytes == 0);
}

TEST_CASE("blitzd streams an upstream event stream to an h2 client as it comes", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    CommandResult r = nghttp({"-v", d.url("/sse?count=3&chunk_delay_ms=300")});
    INFO(r.out << r.err);
    REQUIRE(r.status.exited_with(0));
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.header("content-type") == "text/event-stream");
    CHECK(s.end_stream);
    CHECK(s.data_bytes == 27);
    // One DATA frame per event, each as the upstream sent it: ~300 ms apart, not held back.
    REQUIRE(s.data_times.size() == 3);
    CHECK(s.data_times[1] - s.data_times[0] > 0.2);
    CHECK(s.data_times[2] - s.data_times[1] > 0.2);
    CHECK(r.out.find("data: 3") != std::string::npos);
}

TEST_CASE("blitzd answers 502 with X-Blitz-Error over h2 when the upstream is down", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    // The error is decided on a completion (or a retry's back-off timer), not while the
    // request is read: the answer must still go out at once, without more client input.
    std::string path;
    SECTION("after a retry") { path = "/down/x"; }
    SECTION("without retries") { path = "/down-once/x"; }
    CommandResult r = curl_h2c({"-i", d.url(path)});
    INFO(path << "\n" << r.out << r.err);
    std::vector<Response> all = parse_all_responses(r.out);
    REQUIRE(all.size() == 1);
    CHECK(all[0].version == "HTTP/2");
    CHECK(all[0].status == 502);
    CHECK(all[0].header("content-type") == "application/json");
    auto cause = all[0].header("x-blitz-error");
    REQUIRE(cause);
    auto json = parse_json(all[0].body);
    REQUIRE(json);
    REQUIRE(json->get("error"));
    REQUIRE(json->get("cause"));
    CHECK(json->get("cause")->string == *cause);
}

TEST_CASE("blitzd ends an h2 response cut by the upstream with RST_STREAM, not END_STREAM",
          "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    CommandResult r = nghttp({"-v", "-n", d.url("/?bytes=200000&reset=body")});
    INFO(r.out << r.err);
    const NghttpStream s = only_stream(r.out);
    CHECK(s.status == 200);
    CHECK(s.reset);
    CHECK(s.reset_error != "NO_ERROR");
    CHECK_FALSE(s.end_stream);
    CHECK(s.data_bytes < 200000);
}

TEST_CASE("blitzd proxies concurrent h2 streams on one connection to the upstream", "[h2][proxy]") {
    Backend b("b1");
    Blitzd d(proxy_config(b));
    std::vector<std::string> args = {"-v", "-n"};
    for (int i = 0; i < 20; ++i) {
        args.push_back(d.url("/?bytes=" + std::to_string(1000 + i) + "&delay_ms=" + std::to_string(20 * (i % 5))));
    }
    CommandResult r = nghttp(args);
    INFO(r.out << r.err);
    NghttpTrace t = parse_nghttp(r.out);
    std::size_t ok = 0;
    std::size_t bytes = 0;
    for (const auto& [id, s] : t.streams) {
        ok += s.status == 200 && s.end_stream ? 1 : 0;
        bytes += s.data_bytes;
    }
    CHECK(ok == 20);
    CHECK(bytes == 20 * 1000 + 190);
    REQUIRE(b.wait_for_requests(20));
}

TEST_CASE("blitzd proxies to nginx over HTTP/2 with prior knowledge", "[h2][proxy]") {
    if (nginx_path().empty()) {
        SKIP("nginx is not installed");
    }
    Nginx n(R"(    location / { return 200 "nginx over h2\n"; }
    location /static/ { root www; })",
            " http2");
    const std::string blob = random_bytes(3 << 20, 11);
    std::filesystem::create_directories(n.dir().path() + "/www/static");
    n.dir().write("www/static/blob.bin", blob);

    ProxyConfig cfg;
    cfg.upstreams = R"([{ "name": "nginx", "endpoints": [")" + n.address() + R"("], "protocol": "h2" }])";
    cfg.routes = R"([{ "match": { "path_prefix": "/" }, "upstream": "nginx" }])";
    Blitzd d(cfg.render());

    // HTTP/1.1 client: the answer comes back with its length; HEAD keeps it without a body.
    Client c = d.connect();
    Response hello = must_answer(c, request("GET", "/"));
    CHECK(hello.status == 200);
    CHECK(hello.body == "nginx over h2\n");
    CHECK(hello.header("Server").value_or("").rfind("nginx", 0) == 0);
    Response file = must_answer(c, request("GET", "/static/blob.bin"));
    CHECK(file.status == 200);
    CHECK(file.body == blob);
    Response head = must_answer(c, request("HEAD", "/static/blob.bin"), true);
    CHECK(head.status == 200);
    CHECK(head.header("Content-Length") == std::to_string(blob.size()));
    CHECK(c.quiet_for(Millis(100)));

    // HTTP/2 client: the same file byte for byte.
    TempDir out;
    CommandResult r = curl_h2c({"-s", "-o", out.path() + "/blob", "-w", "%{http_code} %{http_version}",
                                d.url("/static/blob.bin")});
    CHECK(r.out == "200 2");
    CHECK(read_all(out.path() + "/blob") == blob);

    // Many streams at once from many HTTP/2 clients, multiplexed on the upstream side; nginx
    // ends each connection with GOAWAY after 1,000 requests (keepalive_requests), and the
    // streams it refused then are sent again on a new connection.
    CommandResult load = h2load({"-n", "2000", "-c", "8", "-m", "16", d.url("/")});
    INFO(load.out << load.err);
    CHECK(load.out.find("2000 succeeded, 0 failed") != std::string::npos);
}

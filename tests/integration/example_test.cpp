// The embedding example (examples/hello): a program built on libblitz's public API alone.

#include <csignal>
#include <string>

#include <catch2/catch_test_macros.hpp>

#include "harness.hpp"

using namespace blitz::itest;

TEST_CASE("examples/hello serves /healthz and its handler, then exits 0 on SIGTERM",
          "[example]") {
    std::string path = hello_example_path();
    if (path.empty()) {
        SKIP("HELLO_EXAMPLE is not set (the examples are not built)");
    }
    Server s({path, "127.0.0.1:0"}, 1);
    REQUIRE(s.port() != 0);

    CommandResult health = curl({"-i", s.url("/healthz")});
    INFO("curl /healthz: " << health.out << health.err);
    auto h = parse_all_responses(health.out);
    REQUIRE(h.size() == 1);
    CHECK(h[0].status == 200);
    CHECK((h[0].body == "ok" || h[0].body == "ok\n"));
    CHECK(h[0].header("Content-Length") == std::to_string(h[0].body.size()));

    CommandResult hello = curl({"-i", s.url("/hello")});
    INFO("curl /hello: " << hello.out << hello.err);
    auto r = parse_all_responses(hello.out);
    REQUIRE(r.size() == 1);
    CHECK(r[0].status == 200);
    CHECK(r[0].body.rfind("Hello", 0) == 0);

    CommandResult missing = curl({"-i", s.url("/missing")});
    auto m = parse_all_responses(missing.out);
    REQUIRE(m.size() == 1);
    CHECK(m[0].status == 404);

    ExitStatus st = s.stop(SIGTERM);
    INFO("stderr: " << s.process().err());
    CHECK(st.describe() == "exited with status 0");
}

// A program built against an installed libblitz (see Makefile and CMakeLists.txt here): a
// fixed response, a C++ handler, and a custom filter that guards one route.
//
//   example [ADDRESS]    ADDRESS defaults to 127.0.0.1:8080; "127.0.0.1:0" picks a free port
//
// It prints the URL it serves on stdout, then runs until SIGTERM or Ctrl-C.
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include <blitz/blitz.hpp>

namespace {

// Answers 401 unless the request carries `X-Api-Key: <key>`. Filters are shared by every
// reactor thread, so the only state is the immutable key.
class RequireApiKey final : public blitz::Filter {
public:
    explicit RequireApiKey(std::string key) : key_(std::move(key)) {}

    blitz::Flow on_request_headers(blitz::Exchange& ex) override {
        if (ex.request().headers.get("x-api-key") == key_) {
            return blitz::Flow::Continue;
        }
        return ex.respond_static(401, "missing or wrong X-Api-Key\n");
    }

    // Response phases run for every response of the route, the 401 above included.
    blitz::Flow on_response_headers(blitz::Exchange& ex) override {
        ex.response().set_header("cache-control", "no-store");
        return blitz::Flow::Continue;
    }

private:
    std::string key_;
};

}  // namespace

int main(int argc, char** argv) {
    blitz::Router router;
    router.route(blitz::Method::Get, "/healthz").respond(200, "ok\n");
    router.route(blitz::Method::Get, "/hello").handle([](blitz::Exchange& ex) {
        return ex.respond(200, "Hello from a C++ handler\n");
    });
    router.route(blitz::Method::Get, "/private")
        .filter<RequireApiKey>("s3cret")
        .handle([](blitz::Exchange& ex) {
            std::string_view agent = ex.request().headers.get("user-agent");
            std::string body = "private hello to " + std::string(agent.empty() ? "you" : agent) + "\n";
            return ex.respond(200, body);
        });

    blitz::Server server({.workers = 1});
    if (auto r = server.listen({.address = argc > 1 ? argv[1] : "127.0.0.1:8080"}, router); !r) {
        std::fprintf(stderr, "example: %s\n", r.error().c_str());
        return 1;
    }
    std::printf("serving on %s (libblitz %s)\n", server.url().c_str(), blitz::version());
    std::fflush(stdout);
    return server.run_until_signal();
}

// The embedding example from README.md: a fixed response and a C++ handler on one listener.
//
//   hello [ADDRESS]      ADDRESS defaults to 127.0.0.1:8080; "127.0.0.1:0" picks a free port
#include <cstdio>

#include <blitz/blitz.hpp>

int main(int argc, char** argv) {
    blitz::Router router;
    router.route(blitz::Method::Get, "/healthz").respond(200, "ok\n");
    router.route(blitz::Method::Get, "/hello").handle([](blitz::Exchange& ex) {
        return ex.respond(200, "Hello from a C++ handler\n");
    });

    blitz::Server server({.workers = 1});
    if (auto r = server.listen({.address = argc > 1 ? argv[1] : "127.0.0.1:8080"}, router); !r) {
        std::fprintf(stderr, "hello: %s\n", r.error().c_str());
        return 1;
    }
    return server.run_until_signal();  // logs the URL; SIGTERM or Ctrl-C stops it
}

#include "support.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <openssl/ssl.h>

#include <catch2/catch_test_macros.hpp>

namespace tls_test {

namespace {

struct FixtureDir {
    std::string path;

    FixtureDir() {
        char templ[] = "/tmp/blitz-tls-test-XXXXXX";
        const char* made = ::mkdtemp(templ);
        if (made == nullptr) {
            std::fprintf(stderr, "cannot make a temporary directory\n");
            std::exit(1);
        }
        path = made;
        const std::string cmd = std::string("sh '") + BLITZ_TLS_FIXTURES_SCRIPT + "' '" +
                                BLITZ_OPENSSL_TOOL + "' '" + path + "' > '" + path +
                                "/make_fixtures.log' 2>&1";
        if (std::system(cmd.c_str()) != 0) {
            std::fprintf(stderr, "make_fixtures.sh failed, see %s/make_fixtures.log\n",
                         path.c_str());
            std::exit(1);
        }
    }
    ~FixtureDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

}  // namespace

const std::string& fixture_dir() {
    static FixtureDir dir;
    return dir.path;
}

std::string fixture(std::string_view name) { return fixture_dir() + "/" + std::string(name); }

std::string read_fixture(std::string_view name) {
    std::ifstream in(fixture(name), std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

CountingBuffers::~CountingBuffers() = default;

char* CountingBuffers::take_buffer() noexcept {
    ++taken;
    return static_cast<char*>(std::malloc(bytes_));
}

void CountingBuffers::give_buffer(char* buffer) noexcept {
    ++given;
    std::free(buffer);
}

TlsOptions server_options() {
    TlsOptions o;
    o.certificates = {
        {.cert = fixture("a-ec.pem"),
         .key = fixture("a-ec.key"),
         .ocsp_staple = fixture("ocsp.der")},
        {.cert = fixture("a-rsa.pem"), .key = fixture("a-rsa.key")},
        {.cert = fixture("b-ec.pem"), .key = fixture("b-ec.key")},
        {.cert = fixture("other.pem"), .key = fixture("other.key"), .server_names = {"c.test"}},
    };
    return o;
}

UpstreamTlsOptions client_options() {
    UpstreamTlsOptions o;
    o.enabled = true;
    o.ca = fixture("ca.pem");
    return o;
}

std::shared_ptr<tls::ServerContext> make_server(const TlsOptions& options) {
    auto cx = tls::ServerContext::make(options);
    if (!cx) {
        FAIL("ServerContext::make: " << cx.error());
    }
    return *cx;
}

std::shared_ptr<tls::ClientContext> make_client(const UpstreamTlsOptions& options) {
    auto cx = tls::ClientContext::make(options);
    if (!cx) {
        FAIL("ClientContext::make: " << cx.error());
    }
    return *cx;
}

void transfer(tls::Session& from, std::string& inbox) {
    while (from.has_output()) {
        const std::string_view out = from.pending_output();
        inbox.append(out);
        from.output_sent(out.size());
    }
}

tls::Status feed(tls::Session& s, std::string& inbox, std::string& received) {
    s.set_input(inbox.data(), inbox.size());
    tls::Status st = tls::Status::WantRead;
    for (;;) {
        if (!s.handshake_done()) {
            st = s.handshake();
            if (st != tls::Status::Ok) {
                break;
            }
        }
        char buf[4096];
        std::size_t n = 0;
        st = s.read(buf, sizeof buf, n);
        if (st != tls::Status::Ok) {
            break;
        }
        received.append(buf, n);
    }
    if (st == tls::Status::WantRead) {
        REQUIRE(s.input_left() == 0);
    }
    inbox.erase(0, inbox.size() - s.input_left());
    return st;
}

std::size_t send(tls::Session& s, std::string_view data) {
    const iovec iov{const_cast<char*>(data.data()), data.size()};
    return s.write(&iov, 1, data.size());
}

bool Link::start(const std::shared_ptr<tls::ServerContext>& server_cx,
                 const std::shared_ptr<tls::ClientContext>& client_cx, std::string_view name,
                 SSL_SESSION* reuse) {
    return server.start_server(server_cx) && client.start_client(client_cx, name, reuse);
}

void Link::run() {
    // A side that failed or was closed takes no more input.
    auto done = [](tls::Status s) { return s == tls::Status::Error || s == tls::Status::Closed; };
    for (int round = 0; round < 50; ++round) {
        if (!done(client_status)) {
            client_status = feed(client, to_client, client_got);
        }
        if (done(client_status)) {
            to_client.clear();
        }
        transfer(client, to_server);
        if (!done(server_status)) {
            server_status = feed(server, to_server, server_got);
        }
        if (done(server_status)) {
            to_server.clear();
        }
        transfer(server, to_client);
        if (done(client_status)) {
            to_client.clear();
        }
        if (to_server.empty() && to_client.empty()) {
            return;
        }
    }
    FAIL("the sessions kept talking");
}

bool Link::connected() const {
    return server.handshake_done() && client.handshake_done() &&
           server_status != tls::Status::Error && client_status != tls::Status::Error;
}

SSL_SESSION* fetch_session(const std::shared_ptr<tls::ServerContext>& server_cx,
                           const std::shared_ptr<tls::ClientContext>& client_cx,
                           std::string_view name, SSL_SESSION* reuse, bool* resumed) {
    Link link;
    REQUIRE(link.start(server_cx, client_cx, name, reuse));
    link.run();
    REQUIRE(link.connected());
    // One exchange: BoringSSL sends the tickets with the server's first write, OpenSSL at the
    // end of the handshake; the client reads them with the answer.
    REQUIRE(send(link.client, "ping") == 4);
    link.run();
    REQUIRE(link.server_got == "ping");
    REQUIRE(send(link.server, "pong") == 4);
    link.run();
    REQUIRE(link.client_got == "pong");
    if (resumed != nullptr) {
        *resumed = link.server.resumed();
        CHECK(link.client.resumed() == link.server.resumed());
    }
    return link.client.take_session();
}

}  // namespace tls_test

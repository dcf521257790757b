#pragma once

// Shared by the TLS tests: certificate fixtures made with the openssl tool, a counting
// BufferSource, and an in-memory link between a server and a client Session.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tls/session.hpp"

namespace tls_test {

using namespace blitz;

/// Directory of the fixtures (made once per process by make_fixtures.sh, removed at exit).
const std::string& fixture_dir();
/// Path of one fixture file.
std::string fixture(std::string_view name);
/// Contents of a fixture file.
std::string read_fixture(std::string_view name);

/// A BufferSource that counts: every buffer taken must come back.
class CountingBuffers final : public tls::BufferSource {
public:
    explicit CountingBuffers(std::size_t bytes = 40 * 1024) : bytes_(bytes) {}
    ~CountingBuffers();
    char* take_buffer() noexcept override;
    void give_buffer(char* buffer) noexcept override;
    std::size_t buffer_bytes() const noexcept override { return bytes_; }

    std::size_t taken = 0;
    std::size_t given = 0;
    std::size_t outstanding() const { return taken - given; }

private:
    std::size_t bytes_;
};

/// The usual listener: a.test (ECDSA, then RSA), b.test + *.wild.test, c.test (server_names
/// over a certificate for other.test).
TlsOptions server_options();
/// A client trusting the test root, offering http/1.1.
UpstreamTlsOptions client_options();

std::shared_ptr<tls::ServerContext> make_server(const TlsOptions& options);
std::shared_ptr<tls::ClientContext> make_client(const UpstreamTlsOptions& options);

/// Moves everything `from` has to send to the end of `inbox`.
void transfer(tls::Session& from, std::string& inbox);
/// Lends `inbox` to `s`, drives the handshake and reads application data into `received`;
/// keeps in `inbox` what was not consumed. Returns the last status.
tls::Status feed(tls::Session& s, std::string& inbox, std::string& received);
/// Encrypts all of `data` (draining nothing): the plaintext bytes consumed.
std::size_t send(tls::Session& s, std::string_view data);

/// A server and a client session joined in memory.
struct Link {
    explicit Link(std::size_t buffer_bytes = 40 * 1024) : buffers(buffer_bytes) {}

    CountingBuffers buffers;
    tls::Session server{buffers};
    tls::Session client{buffers};
    std::string to_server;
    std::string to_client;
    std::string server_got;
    std::string client_got;
    tls::Status server_status = tls::Status::WantRead;
    tls::Status client_status = tls::Status::WantRead;

    /// Starts both sides; the client connects to `name`.
    bool start(const std::shared_ptr<tls::ServerContext>& server_cx,
               const std::shared_ptr<tls::ClientContext>& client_cx, std::string_view name,
               SSL_SESSION* reuse = nullptr);
    /// Exchanges records until neither side has anything to say (or one failed).
    void run();
    /// Both sides completed the handshake without an error.
    bool connected() const;
};

/// A fresh session from the client side of a handshake with `server_cx` on `name` (after the
/// client read the tickets); nullptr when none came.
SSL_SESSION* fetch_session(const std::shared_ptr<tls::ServerContext>& server_cx,
                           const std::shared_ptr<tls::ClientContext>& client_cx,
                           std::string_view name, SSL_SESSION* reuse = nullptr,
                           bool* resumed = nullptr);

}  // namespace tls_test

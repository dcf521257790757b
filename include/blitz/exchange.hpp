#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include <blitz/arena.hpp>
#include <blitz/filter.hpp>
#include <blitz/http.hpp>
#include <blitz/tls.hpp>

namespace blitz {

struct Route;
class Reactor;

namespace detail {
class ExchangeDriver;
}

/// The response being built for an exchange. Header views must outlive the exchange: pass
/// literals, config-owned strings, or copies made with Exchange::arena().copy().
///
/// Thread: reactor-local. Lifetime: part of its Exchange.
class Response {
public:
    explicit Response(Arena& arena) noexcept : arena_(&arena) {}

    int status() const noexcept { return status_; }
    void set_status(int status) noexcept { status_ = status; }
    /// Appends a field (duplicates allowed, as for Set-Cookie).
    void add_header(std::string_view name, std::string_view value);
    /// Replaces every field with this name by one field.
    void set_header(std::string_view name, std::string_view value);
    /// Removes every field with this name.
    void remove_header(std::string_view name) noexcept;
    Headers headers() const noexcept { return Headers({fields_, count_}); }
    std::string_view body() const noexcept { return body_; }
    void set_body(std::string_view body) noexcept { body_ = body; }
    /// Clears status, headers and body (the arena keeps its memory until the exchange ends).
    void clear() noexcept;

private:
    Arena* arena_;
    Header* fields_ = nullptr;
    std::uint16_t count_ = 0;
    std::uint16_t capacity_ = 0;
    int status_ = 0;
    std::string_view body_;
};

/// Receives the request body as it streams in; `end` is set on the last call.
using BodyReader = std::function<void(std::span<const std::byte> chunk, bool end)>;

/// One request and its response, as filters and handlers see it, for every protocol.
///
/// Thread: reactor-local: touch it only on the reactor that runs it (post to that reactor
/// from other threads). Lifetime: from the end of the request head until the response was
/// handed to the connection and on_log ran. A paused exchange stays alive until resume() is
/// called, exactly once, even when its client went away meanwhile (then `aborted()` is true and
/// resume() only releases it).
class Exchange {
public:
    Exchange(detail::ExchangeDriver& driver, Arena& arena) noexcept
        : driver_(&driver), arena_(&arena), response_(arena) {}
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

    const Request& request() const noexcept { return request_; }
    Response& response() noexcept { return response_; }
    const Response& response() const noexcept { return response_; }
    /// The route that matched, or nullptr (no route: the exchange answers 404/405).
    const Route* route() const noexcept { return route_; }
    Arena& arena() noexcept { return *arena_; }
    Reactor& reactor() const noexcept;
    /// The client's address as text ("192.0.2.1", "2001:db8::1").
    std::string_view client_address() const noexcept;
    /// What the connection's TLS negotiated, or nullptr for plain HTTP.
    const TlsInfo* tls() const noexcept;

    /// Sets the response: status, a copy of `body` (and of `content_type`, sent when the body is
    /// non-empty). Returns Flow::Respond, so a handler can `return ex.respond(...)`.
    Flow respond(int status, std::string_view body = {},
                 std::string_view content_type = "text/plain; charset=utf-8");
    /// As respond(), without copying: `body` must outlive the exchange (a literal, config).
    Flow respond_static(int status, std::string_view body,
                        std::string_view content_type = "text/plain; charset=utf-8");
    /// Whether respond() set the response. A filter that answers after pausing calls
    /// respond() and then resume(); on a proxied response, respond() from a response filter
    /// replaces the upstream's response (whose body is then not read).
    bool responded() const noexcept { return responded_; }
    /// Continues after a filter or handler returned Flow::Pause. A paused handler calls
    /// respond() and then resume().
    void resume();
    /// Whether the connection went away while the exchange was paused.
    bool aborted() const noexcept;
    /// Streams the request body to `reader` (call from a handler before returning). Without a
    /// reader the body is read and discarded, within the route's body limit.
    void read_body(BodyReader reader);

    // Used by the connection driver.
    Request& mutable_request() noexcept { return request_; }
    void set_route(const Route* r) noexcept { route_ = r; }
    BodyReader& body_reader() noexcept { return body_reader_; }

private:
    detail::ExchangeDriver* driver_;
    Arena* arena_;
    Request request_;
    Response response_;
    const Route* route_ = nullptr;
    bool responded_ = false;
    BodyReader body_reader_;
};

}  // namespace blitz

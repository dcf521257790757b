#pragma once

#include <cstddef>
#include <span>

namespace blitz {

class Exchange;

/// What a filter phase or a handler asks the request path to do next.
enum class Flow : unsigned char {
    Continue,  ///< go on to the next filter / phase
    Pause,     ///< stop here; someone calls Exchange::resume() (or respond()) later
    Respond,   ///< a response was set with Exchange::respond(); skip to the response phases
};

/// A filter (middleware) in a route's chain. The phases map one-to-one onto the Proxy-Wasm
/// ABI. Request phases run in chain order, response phases in reverse order; on_log runs
/// exactly once per exchange, after the response was handed to the connection.
///
/// Filters are stateless and shared by every reactor: per-request state belongs in the
/// Exchange (its arena). Thread: called on the exchange's reactor only, concurrently from
/// several reactors. Lifetime: shared_ptr held by the routes that use it.
class Filter {
public:
    virtual ~Filter() = default;
    virtual Flow on_request_headers(Exchange&) { return Flow::Continue; }
    /// A chunk of request body as it arrives (never the whole body buffered); `end` on the last.
    virtual Flow on_request_body(Exchange&, std::span<const std::byte> /*chunk*/, bool /*end*/) {
        return Flow::Continue;
    }
    /// The response head, before it is written. On a proxied route it is the upstream's: Pause
    /// holds it (the upstream is not read until resume()), and ex.respond() replaces it.
    virtual Flow on_response_headers(Exchange&) { return Flow::Continue; }
    virtual Flow on_response_body(Exchange&, std::span<const std::byte> /*chunk*/, bool /*end*/) {
        return Flow::Continue;
    }
    virtual void on_log(const Exchange&) {}
};

}  // namespace blitz

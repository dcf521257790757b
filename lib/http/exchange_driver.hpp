#pragma once

#include <string_view>

namespace blitz {
class Reactor;
class Exchange;
struct TlsInfo;
}  // namespace blitz

namespace blitz::detail {

/// What an Exchange needs from the connection (or stream) that carries it. Each codec's
/// connection implements it, so Exchange stays protocol-neutral.
///
/// Thread: the exchange's reactor. Lifetime: outlives the exchange (a connection whose
/// exchange is paused is kept until the exchange ends).
class ExchangeDriver {
public:
    virtual void exchange_resume() = 0;
    virtual void exchange_read_body() = 0;
    virtual Reactor& exchange_reactor() noexcept = 0;
    /// Formats the peer's IP into the exchange's arena (cached after the first call).
    virtual std::string_view exchange_client_address() noexcept = 0;
    virtual bool exchange_aborted() const noexcept = 0;
    /// The connection's TLS parameters, or nullptr for plain HTTP.
    virtual const TlsInfo* exchange_tls() noexcept = 0;

protected:
    ~ExchangeDriver() = default;
};

}  // namespace blitz::detail

#pragma once

#include <cstdint>

#include <sys/uio.h>

#include <blitz/tls.hpp>

#include "tls/session.hpp"

namespace blitz::server {

/// A downstream connection's TLS: the session, what the exchanges see of it, and the ciphertext
/// send in flight.
///
/// Thread: its reactor's. Lifetime: taken from the reactor's pool when a connection starts TLS,
/// given back (session reset) when the connection is recycled.
struct TlsState {
    explicit TlsState(tls::BufferSource& buffers) noexcept : session(buffers) {}

    tls::Session session;
    TlsInfo info;
    bool info_ready = false;
    bool data_inflight = false;  // the ciphertext in flight carries `plain_inflight` bytes
    bool failed = false;         // a fatal alert is going out; the connection then closes
    bool notify_queued = false;  // close_notify was written
    std::uint32_t plain_inflight = 0;
    iovec iov{};
};

}  // namespace blitz::server

#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "tls/compat.hpp"

namespace blitz::tls {

/// Session-ticket keys of one listener, bound to its virtual hosts.
///
/// A random 32-byte secret per period ("epoch" = time since start / period) comes from the
/// CSPRNG; each virtual host's ticket name, AES key and HMAC key are derived from it and the
/// host's binding (HMAC-SHA256 with distinct labels), so a ticket issued for one host carries a
/// name no other host recognises. Rotation is lazy: the first ticket operation of a new epoch
/// makes the next secret; the previous epoch's secret still decrypts (and the ticket is renewed),
/// older ones are gone.
///
/// Thread: every method locks; they run once per handshake that issues or presents a ticket.
/// Lifetime: owned by its ServerContext.
class TicketKeys {
public:
    using Binding = std::array<std::uint8_t, 32>;
    using Clock = std::chrono::steady_clock;

    TicketKeys() = default;
    ~TicketKeys();
    TicketKeys(const TicketKeys&) = delete;
    TicketKeys& operator=(const TicketKeys&) = delete;

    /// Makes the first secret; false when the CSPRNG fails. `bindings` has one entry per host.
    bool init(std::chrono::seconds period, std::vector<Binding> bindings) noexcept;
    /// The current keys for host `host` (false: issue no ticket).
    bool encrypt_key(std::size_t host, compat::TicketKey& key) noexcept;
    /// 1: `name` is host `host`'s current key; 2: its previous one (renew the ticket);
    /// 0: unknown (a full handshake follows).
    int decrypt_key(std::size_t host, const std::uint8_t* name, compat::TicketKey& key) noexcept;
    /// Moves this object's clock forward, for tests of rotation.
    void advance_clock(std::chrono::seconds by) noexcept;

private:
    struct Generation {
        bool valid = false;
        std::array<std::uint8_t, 32> secret{};
        std::vector<compat::TicketKey> keys;  // one per host
    };

    void rotate_locked() noexcept;
    bool fill(Generation& g) noexcept;
    static void wipe(Generation& g) noexcept;

    std::mutex mutex_;
    std::chrono::seconds period_{3600};
    Clock::duration skew_{};
    Clock::time_point start_{};
    std::int64_t epoch_ = 0;
    std::vector<Binding> bindings_;
    Generation current_;
    Generation previous_;
};

}  // namespace blitz::tls
